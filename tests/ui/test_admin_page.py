"""The Admin page driven through AppTest: forms keep the input on errors and say what is
wrong, changes land and are audited, the chain can be verified."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest

from models.user import Role
from services import audit, teams
from services.access import Actor
from services.auth import active_user
from services.db import Database
from tests.conftest import make_user
from tests.ui.conftest import signed_in, texts


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def admin_page(app_db: Database) -> AppTest:
    make_user(app_db, "root.admin", Role.ADMIN)
    at = signed_in("root.admin").run()
    return at.switch_page("pages/views/admin.py").run()


def button(at: AppTest, label: str) -> Any:
    return widget(at.button, label)


def test_create_user_form_reports_bad_input_and_keeps_it(app_db: Database) -> None:
    at = admin_page(app_db)
    widget(at.text_input, "Username").input("new.person")
    widget(at.text_input, "Full name").input("New Person")
    widget(at.text_input, "Initial password").input("too short")
    widget(at.text_input, "Repeat the password").input("too short")
    button(at, "Create user").click().run()
    assert not at.exception
    assert "Password: must be at least 12 characters" in texts(at)
    assert widget(at.text_input, "Username").value == "new.person"
    assert active_user(app_db, "new.person") is None


def test_create_user_form_creates_the_user(app_db: Database) -> None:
    teams.create_team(app_db, actor=Actor.command_line(), data=teams.TeamCreate(name="Search"))
    at = admin_page(app_db)
    widget(at.text_input, "Username").input("new.person")
    widget(at.text_input, "Full name").input("New Person")
    widget(at.selectbox, "Team").select("Search")
    widget(at.multiselect, "Roles").select("approver")
    widget(at.text_input, "Initial password").input("a long enough secret")
    widget(at.text_input, "Repeat the password").input("a long enough secret")
    button(at, "Create user").click().run()
    assert not at.exception
    created = active_user(app_db, "new.person")
    assert created is not None and set(created.roles) == {"data_scientist", "approver"}
    assert at.query_params["user"] == "new.person"


def test_mismatched_passwords_are_caught_before_anything_is_written(app_db: Database) -> None:
    at = admin_page(app_db)
    widget(at.text_input, "Username").input("new.person")
    widget(at.text_input, "Full name").input("New Person")
    widget(at.text_input, "Initial password").input("a long enough secret")
    widget(at.text_input, "Repeat the password").input("another long secret")
    button(at, "Create user").click().run()
    assert "The two passwords do not match." in texts(at)
    assert active_user(app_db, "new.person") is None


def test_create_team_with_budget(app_db: Database) -> None:
    at = admin_page(app_db)
    widget(at.text_input, "Name").input("Payments")
    widget(at.text_input, "Cost center").input("CC-4100")
    widget(at.number_input, "Monthly budget (USD)").set_value(2500.5)
    button(at, "Create team").click().run()
    assert not at.exception
    created = {t.name: t for t in teams.list_teams(app_db)}["Payments"]
    assert str(created.monthly_budget) == "2500.50" and created.cost_center == "CC-4100"


def test_duplicate_team_name_is_explained(app_db: Database) -> None:
    teams.create_team(app_db, actor=Actor.command_line(), data=teams.TeamCreate(name="Payments"))
    at = admin_page(app_db)
    widget(at.text_input, "Name").input("payments")
    button(at, "Create team").click().run()
    assert "A team named 'payments' already exists." in texts(at)


def test_verify_chain_button_reports_the_result(app_db: Database) -> None:
    at = admin_page(app_db)
    button(at, "Verify chain").click().run()
    assert "Audit chain verified" in texts(at)
    report = audit.verify_chain(app_db, actor=Actor.command_line())
    assert report.ok


def test_selected_user_from_the_url_opens_its_details(app_db: Database) -> None:
    make_user(app_db, "bob", Role.DATA_SCIENTIST)
    make_user(app_db, "root.admin", Role.ADMIN)
    at = signed_in("root.admin")
    at.query_params["user"] = "bob"
    at.run()
    at.switch_page("pages/views/admin.py").run()
    assert not at.exception
    assert any(s.value.startswith("Bob (bob)") for s in at.subheader)
    assert widget(at.button, "Disable account…")


def test_password_reset_ends_the_users_open_session(app_db: Database) -> None:
    from services import users

    admin = make_user(app_db, "root.admin", Role.ADMIN)
    bob = make_user(app_db, "bob", Role.MANAGER)
    session = signed_in("bob").run()
    assert "Welcome, Bob" in texts(session)
    assert bob.user_id is not None
    users.reset_password(app_db, actor=admin, user_id=bob.user_id, new_password="fresh secret 123")
    session.run()
    assert "Your password was changed. Please log in again." in texts(session)


def test_gateway_prices_and_identities_are_set_from_the_gateway_tab(app_db: Database) -> None:
    from services.gateway import admin as gateway_admin

    at = admin_page(app_db)
    widget(at.text_input, "Model").input("support-assistant")
    widget(at.text_input, "Input price (USD)").input("zero point eight")
    widget(at.text_input, "Output price (USD)").input("3.20")
    button(at, "Save model price").click().run()
    assert any("Input price: enter a number of dollars" in e.value for e in at.error)
    assert widget(at.text_input, "Model").value == "support-assistant"  # input kept
    widget(at.text_input, "Input price (USD)").input("0.80")
    button(at, "Save model price").click().run()
    assert not at.error
    root = Actor.of(active_user(app_db, "root.admin"))  # type: ignore[arg-type]
    prices = gateway_admin.list_price_overrides(app_db, actor=root)
    assert [(p.model, str(p.input_price)) for p in prices] == [("support-assistant", "0.80000000")]

    widget(at.text_input, "ARN").input("not-an-arn")
    widget(at.text_input, "Team").input("Search")
    button(at, "Save mapping").click().run()
    assert any("Give an ARN" in e.value for e in at.error)
    widget(at.text_input, "ARN").input("arn:aws:iam::123456789012:role/search-app")
    button(at, "Save mapping").click().run()
    mapped = gateway_admin.list_identity_mappings(app_db, actor=root)
    assert [(m.arn, m.team) for m in mapped] == [
        ("arn:aws:iam::123456789012:role/search-app", "Search")
    ]
