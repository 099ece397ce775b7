"""The Usage & costs page through AppTest: what each role sees (managers and admins every
team, data scientists their own requests or their team's totals, approvers their own), the
unpriced warning, the empty state, budgets set from the page, the budget alerts told to the
webhook, and managers' Home panel.

Usage is created through the real ingest path, dated today (the page opens on this month)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from models.team import Team, TeamCreate
from models.usage import UsageSource
from models.user import Role
from services import teams
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.gateway import budget_alerts
from services.gateway.budget_admin import add_budget
from services.gateway.budgets import today_in
from services.gateway.ingest import ingest
from tests.conftest import make_user
from tests.ui.conftest import signed_in, texts
from tests.unit.gateway.support import litellm, write_lines
from tests.webhook_receiver import serve_receiver

PAGE = "pages/views/usage.py"
HOME = "pages/views/home.py"


@dataclass(frozen=True)
class Org:
    teams: dict[str, int]


def at_today(seconds: int) -> float:
    """A moment early today in the reporting time zone (never in the future)."""
    today = today_in(get_settings())
    midnight = datetime.combine(today, time(0, 0, 1), tzinfo=get_settings().zone)
    return midnight.astimezone(UTC).timestamp() + seconds


@pytest.fixture
def org(app_db: Database) -> Org:
    """Payments (budget $0.10) and Search (no budget); a manager, an admin, two data
    scientists in Payments, one in Search, and an approver without a team."""
    admin = make_user(app_db, "root.admin", Role.ADMIN)
    ids = {}
    for name, budget in (("Payments", "0.10"), ("Search", "0")):
        team = teams.create_team(
            app_db, actor=admin, data=TeamCreate(name=name, monthly_budget=Decimal(budget))
        )
        ids[name] = team.id or 0
    make_user(app_db, "mona", Role.MANAGER)
    make_user(app_db, "alice", Role.DATA_SCIENTIST, team_id=ids["Payments"])
    make_user(app_db, "bob", Role.DATA_SCIENTIST, team_id=ids["Payments"])
    make_user(app_db, "carol", Role.DATA_SCIENTIST, team_id=ids["Search"])
    make_user(app_db, "april", Role.APPROVER)
    return Org(ids)


def load(db: Database, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    result = ingest(
        db, get_settings(), actor=Actor.command_line(),
        location=str(write_lines(tmp_path / "usage.jsonl", records)), source=UsageSource.LITELLM,
    )  # fmt: skip
    assert result.summary().startswith(f"ingested={len(records)} ")


@pytest.fixture
def traffic(app_db: Database, org: Org, tmp_path: Path) -> Org:
    """Payments: alice 3 × gpt-4o-mini at $0.02, bob 2 × gpt-4o at $0.05 with his own key;
    Search: carol 2 × an in-house model that has no price."""
    records = [
        litellm(f"a{i}", at_today(i), user="alice", key="alice-key", response_cost=0.02)
        for i in range(3)
    ]
    records += [
        litellm(f"b{i}", at_today(10 + i), user="bob", key="bob-key", model="gpt-4o",
                response_cost=0.05)
        for i in range(2)
    ]  # fmt: skip
    records += [
        litellm(f"c{i}", at_today(20 + i), user="carol", team="Search", key="search-key",
                model="inhouse-7b", custom_llm_provider="hosted_vllm", response_cost=None)
        for i in range(2)
    ]  # fmt: skip
    load(app_db, tmp_path, records)
    return org


def page(username: str, path: str = PAGE, **params: str) -> AppTest:
    at = signed_in(username)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(path).run()


def metric(at: AppTest, label: str) -> str:
    found = [m for m in at.metric if m.label == label]
    assert found, f"no metric {label!r}"
    return str(found[0].value)


def table_with(at: AppTest, column: str) -> Any:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def monthly_budget(db: Database, team_id: int) -> Decimal:
    with db.read() as session:
        team = session.get(Team, team_id)
        assert team is not None
        return team.monthly_budget


def test_manager_sees_every_team_and_their_budgets(app_db: Database, traffic: Org) -> None:
    at = page("mona")
    assert not at.exception
    assert metric(at, "Requests") == "7"
    assert metric(at, "Spend") == "$0.16"
    assert metric(at, "Input tokens") == "7,000"
    grouped = table_with(at, "Team")
    assert set(grouped["Team"]) == {"Payments", "Search"}
    assert set(table_with(at, "User")["User"]) == {"alice", "bob", "carol"}
    assert "Top API keys" in texts(at)
    budgets = table_with(at, "Forecast (USD)")
    assert list(budgets["Team"]) == ["Payments"]
    assert list(budgets["Warning"]) == ["100% reached"]
    assert "Set monthly budget" in [b.label for b in at.button]
    assert "PORTAL_AWS_REGION" in texts(at)  # billed vs estimated: a calm notice, no AWS here


def test_manager_sets_a_monthly_budget_and_a_bad_amount_is_kept(
    app_db: Database, traffic: Org
) -> None:
    at = page("mona")
    widget(at.selectbox, "Team").set_value(traffic.teams["Search"])
    widget(at.text_input, "Monthly budget (USD)").input("lots")
    widget(at.button, "Set monthly budget").click().run()
    assert not at.exception
    assert "Amount: enter a number of dollars." in texts(at)
    assert widget(at.text_input, "Monthly budget (USD)").value == "lots"
    assert monthly_budget(app_db, traffic.teams["Search"]) == Decimal("0.00")
    widget(at.text_input, "Monthly budget (USD)").input("250")
    widget(at.button, "Set monthly budget").click().run()
    assert not at.exception
    assert monthly_budget(app_db, traffic.teams["Search"]) == Decimal("250.00")
    assert set(table_with(at, "Forecast (USD)")["Team"]) == {"Payments", "Search"}
    assert widget(at.text_input, "Monthly budget (USD)").value == ""


def test_a_custom_period_can_be_drawn_as_a_burn_down(app_db: Database, traffic: Org) -> None:
    today = today_in(get_settings())
    manager = Actor("cli", frozenset({Role.MANAGER}))  # budgets are managers' to set
    add_budget(
        app_db, actor=manager, team_id=traffic.teams["Payments"], name="Pilot",
        start=today - timedelta(days=3), end=today + timedelta(days=30), amount="1", warn_at=[90],
    )  # fmt: skip
    at = page("mona")
    chooser = widget(at.selectbox, "Burn-down of")
    assert chooser.options == ["Payments · " + today.strftime("%B %Y"), "Payments · Pilot"]
    chooser.set_value(("Payments", "Pilot")).run()
    assert not at.exception
    assert "Payments, Pilot: $0.16 of $1.00 spent (16%)" in texts(at)
    assert at.query_params["budget_period"] == "Pilot"  # the choice stays in the address


def test_data_scientist_sees_their_own_requests_then_their_teams_totals(
    app_db: Database, traffic: Org
) -> None:
    at = page("alice")
    assert not at.exception
    assert metric(at, "Requests") == "3"
    assert metric(at, "Spend") == "$0.06"
    assert "Top users" not in texts(at) and "Top API keys" not in texts(at)
    assert not [d for d in at.dataframe if "User" in d.value.columns]
    assert [m.label for m in at.multiselect if m.label in ("Teams", "Users", "API keys")] == []
    budgets = table_with(at, "Forecast (USD)")
    assert list(budgets["Team"]) == ["Payments"]  # their own team's budget only
    assert "Set monthly budget" not in [b.label for b in at.button]

    widget(at.segmented_control, "Show").set_value("team").run()
    assert not at.exception
    assert at.query_params["scope"] == "team"
    assert metric(at, "Requests") == "5"  # alice and bob: Payments only
    assert metric(at, "Spend") == "$0.16"
    assert "user" not in widget(at.multiselect, "Group by").options
    assert "key" not in widget(at.multiselect, "Group by").options
    assert not [d for d in at.dataframe if "User" in d.value.columns]


def test_a_link_reproduces_the_view(app_db: Database, traffic: Org) -> None:
    at = page("mona", model="gpt-4o", group="user")
    assert not at.exception
    assert metric(at, "Requests") == "2"
    assert list(table_with(at, "User")["User"])[:1] == ["bob"]
    assert widget(at.multiselect, "Group by").value == ["user"]


def test_admin_sees_every_team_without_budget_forms(app_db: Database, traffic: Org) -> None:
    at = page("root.admin")
    assert not at.exception
    assert metric(at, "Requests") == "7"
    assert set(table_with(at, "Team")["Team"]) == {"Payments", "Search"}
    assert "Set monthly budget" not in [b.label for b in at.button]
    assert "PORTAL_AWS_REGION" in texts(at)


def test_approver_sees_only_their_own_usage(app_db: Database, traffic: Org) -> None:
    at = page("april")
    assert not at.exception
    assert "No usage to show yet" in texts(at)
    assert not at.metric
    assert not [d for d in at.dataframe if "Team" in d.value.columns]


def test_unpriced_requests_are_called_out(app_db: Database, traffic: Org) -> None:
    at = page("mona")
    assert "2 requests have no price and are not in the spend" in texts(at)
    assert "`inhouse-7b`" in texts(at)
    search = page("carol")
    assert "2 requests have no price and are not in the spend" in texts(search)
    assert metric(search, "Spend") == "$0.00"


def test_no_usage_yet_says_how_it_arrives(app_db: Database, org: Org) -> None:
    at = page("mona")
    assert not at.exception
    assert "No gateway usage yet" in texts(at)
    assert "python -m services.cli usage ingest" in texts(at)
    assert "services.gateway.callback.portal_usage_logger" in texts(at)
    assert not at.metric


def test_home_lists_the_teams_at_risk_for_managers(app_db: Database, traffic: Org) -> None:
    at = page("mona", path=HOME)
    assert not at.exception
    assert "Teams at risk" in texts(at)
    assert "**Payments** (" in texts(at) and "100% warning reached" in texts(at)
    assert "Open Usage & costs" in [link.proto.label for link in at.get("page_link")]
    scientist = page("alice", path=HOME)
    assert "Teams at risk" not in texts(scientist)


def test_a_row_opens_the_requests_behind_it(app_db: Database, traffic: Org) -> None:
    at = page("mona", group="user")
    at.session_state["usage-grouped-user"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert "Requests behind User bob" in texts(at)
    raw = table_with(at, "Time")
    assert set(raw["User"]) == {"bob"} and len(raw) == 2
    assert "2 requests · page 1 of 1" in texts(at)


def test_a_bad_link_falls_back_to_this_month(app_db: Database, traffic: Org) -> None:
    at = page("mona", **{"from": "yesterday", "to": "2999-01-01"}, group="nonsense")
    assert not at.exception
    assert metric(at, "Requests") == "7"
    assert widget(at.multiselect, "Group by").value == ["team"]


def test_manager_adds_a_budget_for_a_custom_period(app_db: Database, traffic: Org) -> None:
    at = page("mona")
    widget(at.text_input, "Name").input("Q4 launch")
    widget(at.text_input, "Amount (USD)").input("1000")
    widget(at.text_input, "Warn at (%)").input("50, lots")
    widget(at.button, "Add budget").click().run()
    assert "Warn at: whole percentages separated by commas." in texts(at)
    assert widget(at.text_input, "Name").value == "Q4 launch"
    widget(at.text_input, "Warn at (%)").input("50, 75")
    widget(at.button, "Add budget").click().run()
    assert not at.exception
    budgets = table_with(at, "Forecast (USD)")
    assert "Q4 launch" in list(budgets["Period"])


def test_managers_see_what_the_budget_webhook_was_told(
    app_db: Database, traffic: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page("mona")
    assert "Budget alerts" in [e.label for e in at.expander]
    assert any("PORTAL_BUDGET_WEBHOOK_URL" in c.value for c in at.caption)  # off, and how to

    with serve_receiver("/hooks/budget") as hook:
        monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_SECRET", "s" * 32)
        get_settings.cache_clear()
        run = budget_alerts.check_alerts(app_db, get_settings(), actor=Actor.command_line())
        assert len(run.sent) == 1 and len(hook.deliveries) == 1

    at = page("mona")
    assert not at.exception
    assert "Budget alerts (3)" in [e.label for e in at.expander]
    alerts = table_with(at, "Level")
    # $0.16 of $0.10 at once: 100% is told, 80% and 90% are recorded as passed over
    assert dict(zip(alerts["Level"], alerts["Status"], strict=True)) == {
        "100%": "sent",
        "90%": "skipped: a higher level was told",
        "80%": "skipped: a higher level was told",
    }
    alice = page("alice")
    assert not alice.exception
    assert not [e for e in alice.expander if e.label.startswith("Budget alerts")]
