"""Budgets against spend: the month so far, warning levels, the forecast from the last
week's run rate, the burn-down, custom periods, and who may see and set them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from models.team import TeamCreate
from models.usage import UsageSource
from models.user import Role
from services import teams
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import ConfigurationError, PermissionDenied, ValidationError
from services.gateway import budgets
from services.gateway.budget_admin import add_budget, set_monthly_budget
from services.gateway.ingest import ingest
from tests.conftest import make_user
from tests.unit.gateway.support import litellm, write_lines

TODAY = date(2026, 11, 11)


def noon(day: int) -> float:
    return datetime(2026, 11, day, 12, tzinfo=UTC).timestamp()


@pytest.fixture
def spend(db: Database, admin: Actor, tmp_path: Path) -> dict[str, int]:
    """Payments spends $0.05 a day from the 1st to the 10th; Search $0.01 on the 3rd."""
    ids = {}
    for name, monthly in (("Payments", "1.00"), ("Search", "5.00"), ("Idle", "0")):
        team = teams.create_team(
            db, actor=admin, data=TeamCreate(name=name, monthly_budget=Decimal(monthly))
        )
        ids[name] = team.id or 0
    records = [litellm(f"p{d}", noon(d), response_cost=0.05) for d in range(1, 11)]
    records.append(litellm("s3", noon(3), team="Search", response_cost=0.01))
    ingest(
        db, get_settings(), actor=Actor.command_line(),
        location=str(write_lines(tmp_path / "nov.jsonl", records)), source=UsageSource.LITELLM,
    )  # fmt: skip
    return ids


def test_the_month_so_far_and_the_forecast(db: Database, spend: dict[str, int]) -> None:
    found = budgets.team_budgets(db, get_settings(), actor=Actor.command_line(), today=TODAY)
    assert [s.team for s in found] == ["Payments", "Search"]  # no budget, no line; riskiest first
    payments = found[0]
    assert (payments.spent, payments.amount, payments.period) == (
        Decimal("0.50"), Decimal("1.00"), "November 2026",
    )  # fmt: skip
    # $0.05 a day for the 19 days after today and the rest of today: $1.50 by the 30th.
    assert payments.forecast == Decimal("1.50")
    assert payments.crossed is None and payments.at_risk  # heading over, not over yet
    search = found[1]
    assert search.spent == Decimal("0.01") and not search.at_risk


def test_warning_levels_are_configurable(
    db: Database, spend: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_BUDGET_WARNINGS", "25,50")
    get_settings.cache_clear()
    payments = budgets.team_budgets(db, get_settings(), actor=Actor.command_line(), today=TODAY)[0]
    assert payments.levels == (25, 50) and payments.crossed == 50
    monkeypatch.setenv("PORTAL_BUDGET_WARNINGS", "eighty")
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="PORTAL_BUDGET_WARNINGS: must be whole"):
        get_settings()


def test_burn_down_runs_to_the_month_end(db: Database, spend: dict[str, int]) -> None:
    chart = budgets.burn_down(
        db, get_settings(), actor=Actor.command_line(), team="Payments", today=TODAY
    )
    assert chart is not None
    assert chart.days[0] == date(2026, 11, 1) and chart.days[-1] == TODAY
    assert chart.cumulative[4] == Decimal("0.25") and chart.cumulative[-1] == Decimal("0.50")
    assert chart.forecast[-1] == (date(2026, 11, 30), Decimal("1.45"))


def test_a_custom_period_has_its_own_burn_down(db: Database, spend: dict[str, int]) -> None:
    manager = make_user(db, "maria", Role.MANAGER)
    add_budget(
        db, actor=manager, team_id=spend["Payments"], name="Q4 pilot",
        start=date(2026, 10, 1), end=date(2026, 12, 31), amount="5", warn_at=[80],
    )  # fmt: skip
    pilot = budgets.burn_down(
        db, get_settings(), actor=manager, team="Payments", period="Q4 pilot", today=TODAY
    )
    monthly = budgets.burn_down(db, get_settings(), actor=manager, team="Payments", today=TODAY)
    assert pilot is not None and monthly is not None
    assert pilot.status.period == "Q4 pilot" and pilot.days[0] == date(2026, 10, 1)
    assert pilot.forecast[-1][0] == date(2026, 12, 31)  # to the period's end, not the month's
    assert pilot.cumulative[-1] == monthly.cumulative[-1] == Decimal("0.50")
    assert monthly.status.period == "November 2026" and monthly.days[0] == date(2026, 11, 1)
    assert (
        budgets.burn_down(
            db, get_settings(), actor=manager, team="Payments", period="No such", today=TODAY
        )
        is None
    )


def test_custom_periods_and_who_sets_them(db: Database, spend: dict[str, int]) -> None:
    manager = make_user(db, "maria", Role.MANAGER)
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST, team_id=spend["Search"])
    add_budget(
        db, actor=manager, team_id=spend["Payments"], name="Q4 pilot",
        start=date(2026, 10, 1), end=date(2026, 12, 31), amount="0.40", warn_at=[50, 100],
    )  # fmt: skip
    statuses = budgets.team_budgets(db, get_settings(), actor=manager, today=TODAY)
    pilot = next(s for s in statuses if s.period == "Q4 pilot")
    assert pilot.spent == Decimal("0.50") and pilot.crossed == 100
    with pytest.raises(PermissionDenied, match="manager"):
        set_monthly_budget(db, actor=scientist, team_id=spend["Search"], amount="99")
    with pytest.raises(ValidationError, match="Amount"):
        set_monthly_budget(db, actor=manager, team_id=spend["Search"], amount="-3")
    set_monthly_budget(db, actor=manager, team_id=spend["Search"], amount="0.01")
    own = budgets.team_budgets(db, get_settings(), actor=scientist, today=TODAY)
    assert [(s.team, s.crossed) for s in own] == [("Search", 100)]  # only their own team
