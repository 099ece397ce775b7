"""Every page rendered for every role with AppTest, plus the first-run and login screens."""

from __future__ import annotations

import pytest

from models.user import Role
from pages.components.navigation import PAGE_SPECS
from services.db import Database
from services.permissions import PAGES
from tests.conftest import make_user
from tests.ui.conftest import new_app, signed_in, texts

ROLE_SETS = {
    "data_scientist": [Role.DATA_SCIENTIST],
    "approver": [Role.APPROVER],
    "manager": [Role.MANAGER],
    "admin": [Role.ADMIN],
    "manager+admin": [Role.MANAGER, Role.ADMIN],
}


def test_first_run_offers_to_create_the_administrator(app_db: Database) -> None:
    at = new_app().run()
    assert not at.exception
    assert "Set up the AI Ops Portal" in texts(at)
    at.text_input[0].input("jane.doe")
    at.text_input[1].input("Jane Doe")
    at.text_input[3].input("short")
    at.text_input[4].input("short")
    at.button[0].click().run()
    assert "Password: must be at least 12 characters" in texts(at)
    assert at.text_input[0].value == "jane.doe"  # the user's input stays on screen
    at.text_input[3].input("a long enough secret")
    at.text_input[4].input("a long enough secret")
    at.button[0].click().run()
    assert not at.exception
    assert "Administrator **jane.doe** created" in texts(at)


def test_login_form_when_nobody_is_signed_in(app_db: Database) -> None:
    make_user(app_db, "root.admin", Role.ADMIN)
    at = new_app().run()
    assert not at.exception
    assert "Sign in to manage" in texts(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]


@pytest.mark.parametrize("who", sorted(ROLE_SETS))
def test_every_allowed_page_renders_for_each_role(app_db: Database, who: str) -> None:
    make_user(app_db, "root.admin", Role.ADMIN)
    roles = ROLE_SETS[who]
    make_user(app_db, "person", *roles)
    for spec in PAGE_SPECS:
        at = signed_in("person").run()
        assert not at.exception, at.exception
        if not PAGES[spec.key].allows(roles):
            continue
        at.switch_page(spec.file).run()
        assert not at.exception, (spec.key, at.exception)
        assert at.title[0].value == spec.title, spec.key
        print(f"{who}: {spec.title} rendered")


def test_page_run_outside_the_router_asks_to_log_in(app_db: Database) -> None:
    """A page script run without the router shows nothing but a request to log in."""
    from streamlit.testing.v1 import AppTest

    from tests.ui.conftest import APP

    at = AppTest.from_file(APP.replace("app.py", "pages/views/admin.py"), default_timeout=30).run()
    assert not at.exception
    assert "Please log in" in texts(at)
    assert not at.dataframe


def test_page_refuses_a_signed_in_user_without_the_role(app_db: Database) -> None:
    from streamlit.testing.v1 import AppTest

    from pages.components.context import USER_KEY
    from services.auth import active_user
    from tests.ui.conftest import APP

    make_user(app_db, "maria", Role.MANAGER)
    at = AppTest.from_file(APP.replace("app.py", "pages/views/admin.py"), default_timeout=30)
    at.session_state[USER_KEY] = active_user(app_db, "maria")
    at.run()
    assert "You do not have access to this page. It needs one of these roles: admin" in texts(at)
    assert not at.dataframe


def test_disabled_user_is_logged_out_at_the_next_click(app_db: Database) -> None:
    from services import users

    admin = make_user(app_db, "root.admin", Role.ADMIN)
    bob = make_user(app_db, "bob", Role.DATA_SCIENTIST)
    at = signed_in("bob").run()
    assert "Welcome, Bob" in texts(at)
    assert bob.user_id is not None
    users.set_disabled(app_db, actor=admin, user_id=bob.user_id, disabled=True)
    at.run()
    assert "Your account is disabled" in texts(at)
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_broken_portal_home_shows_what_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from services.config import get_settings

    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("PORTAL_HOME", str(blocker))
    get_settings.cache_clear()
    at = new_app().run()
    assert not at.exception
    assert "The portal cannot start" in texts(at) and "is a file, not a folder" in texts(at)


def test_unreachable_database_shows_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.config import get_settings

    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+psycopg://portal:pw@127.0.0.1:1/portal")
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "x" * 40)
    get_settings.cache_clear()
    at = new_app().run()
    assert not at.exception
    message = texts(at)
    assert (
        "Cannot use the portal database at postgresql+psycopg://portal:***@127.0.0.1:1/portal"
        in message
    )
    assert "pw@" not in message


def test_corrupt_portal_database_shows_what_to_fix(portal_env) -> None:
    portal_env.mkdir(parents=True, exist_ok=True)
    (portal_env / "portal.db").write_bytes(b"definitely not sqlite " * 200)
    at = new_app().run()
    assert not at.exception
    assert "The portal cannot start" in texts(at) and "file is not a database" in texts(at)


def test_admin_sees_the_mlflow_store_prepared_at_start(app_db: Database) -> None:
    from pages.components.context import _tracking_warmup
    from services.config import get_settings

    make_user(app_db, "root.admin", Role.ADMIN)
    at = signed_in("root.admin").run()
    _tracking_warmup(get_settings().resolved_tracking_uri).wait(timeout=120)
    at.switch_page("pages/views/admin.py").run()
    system = at.dataframe[-1].value
    state = system.loc[system["Setting"] == "MLflow store", "In effect"].item()
    assert state.startswith("ready (sqlite:///"), state
