"""Team budgets against gateway spend: the calendar month (the team's monthly budget) and
custom periods, with warning levels, a forecast to the period's end from the recent run
rate, and the burn-down a chart draws. Spend comes from the team-and-model rollup, whose
size does not grow with traffic."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from models.team import Team
from models.usage import Budget, UsageDailyTeamModel
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.gateway.scope import usage_viewer

RUN_RATE_DAYS = 7
"""The forecast extrapolates the average daily spend of the last week (fewer days early in a
period): recent enough to follow a change, long enough to smooth a weekend."""


@dataclass(frozen=True)
class BudgetStatus:
    team: str
    period: str  # "November 2026" or a custom budget's name
    start: date
    end: date
    amount: Decimal
    spent: Decimal
    unpriced_requests: int
    forecast: Decimal
    levels: tuple[int, ...]

    @property
    def used(self) -> float:
        return float(self.spent / self.amount) if self.amount else 0.0

    @property
    def forecast_used(self) -> float:
        return float(self.forecast / self.amount) if self.amount else 0.0

    @property
    def reached(self) -> list[int]:
        """The warning levels already reached (percentages), lowest first."""
        return sorted(level for level in self.levels if self.used * 100 >= level)

    @property
    def crossed(self) -> int | None:
        """The highest warning level already reached (a percentage), if any."""
        reached = self.reached
        return reached[-1] if reached else None

    @property
    def at_risk(self) -> bool:
        """Over a warning level now, or heading past the budget by the period's end."""
        return self.crossed is not None or self.forecast > self.amount


@dataclass(frozen=True)
class BurnDown:
    status: BudgetStatus
    days: list[date]
    cumulative: list[Decimal]  # spend to the end of each day so far
    forecast: list[tuple[date, Decimal]]  # from today to the period's end


def month_of(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def today_in(settings: Settings, now: datetime | None = None) -> date:
    return (now or datetime.now(settings.zone)).astimezone(settings.zone).date()


def team_budgets(
    db: Database, settings: Settings, *, actor: Actor, today: date | None = None
) -> list[BudgetStatus]:
    """Every budget the actor may see, current month and custom periods that include today;
    most at risk first. Managers and admins see every team; others their own team's."""
    today = today or today_in(settings)
    with db.read() as session:
        teams = _visible_teams(session, actor)
        start, end = month_of(today)
        found = [
            _status(session, t.name, today.strftime("%B %Y"), start, end, t.monthly_budget,
                    tuple(settings.budget_warning_levels), today)
            for t in teams
            if t.monthly_budget > 0
        ]  # fmt: skip
        custom = session.exec(
            select(Budget, Team.name)
            .join(Team, col(Team.id) == Budget.team_id)
            .where(col(Budget.team_id).in_([t.id for t in teams]), Budget.start <= today)
            .where(Budget.end >= today)
        ).all()
        found += [
            _status(session, name, b.name, b.start, b.end, b.amount, tuple(b.warn_at), today)
            for b, name in custom
        ]
    return sorted(found, key=lambda s: (-s.forecast_used, s.team))


def burn_down(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    team: str,
    period: str | None = None,
    today: date | None = None,
) -> BurnDown | None:
    """The burn-down of ``team``'s budget for ``period`` (a custom budget's name; its monthly
    budget when None): spend so far day by day, and the forecast line to the period's end."""
    today = today or today_in(settings)
    monthly = month_of(today)
    status = next(
        (
            s
            for s in team_budgets(db, settings, actor=actor, today=today)
            if s.team == team and (s.period == period if period else (s.start, s.end) == monthly)
        ),
        None,
    )
    if status is None:
        return None
    with db.read() as session:
        daily = dict(_daily_spend(session, team, status.start, min(today, status.end)))
    days, cumulative, total = [], [], Decimal(0)
    day = status.start
    while day <= min(today, status.end):
        total += daily.get(day, Decimal(0))
        days.append(day)
        cumulative.append(total)
        day += timedelta(days=1)
    rate = _run_rate(daily, status.start, today)
    remaining = (status.end - today).days
    forecast = [(today + timedelta(days=i), total + rate * i) for i in range(remaining + 1)]
    return BurnDown(status, days, cumulative, forecast)


def _visible_teams(session: Session, actor: Actor) -> list[Team]:
    user, sees_all = usage_viewer(session, actor)
    teams = list(session.exec(select(Team).order_by(col(Team.name))).all())
    if sees_all:
        return teams
    own = user.team_id if user is not None else None
    return [t for t in teams if t.id == own]


def _daily_spend(session: Session, team: str, start: date, end: date) -> list[tuple[date, Decimal]]:
    table = UsageDailyTeamModel.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        select_columns(table.c.day, func.sum(table.c.cost))
        .where(table.c.team == team, table.c.day >= start, table.c.day <= end)
        .group_by(table.c.day)
    ).all()
    return [(day, Decimal(cost or 0)) for day, cost in rows]


def _run_rate(daily: dict[date, Decimal], start: date, today: date) -> Decimal:
    """Average daily spend over the last complete days (today is still running)."""
    first = max(start, today - timedelta(days=RUN_RATE_DAYS))
    days = (today - first).days
    if days <= 0:
        return daily.get(today, Decimal(0))
    return (
        sum((daily.get(first + timedelta(days=i), Decimal(0)) for i in range(days)), Decimal(0))
        / days
    )


def _status(
    session: Session,
    team: str,
    period: str,
    start: date,
    end: date,
    amount: Decimal,
    levels: tuple[int, ...],
    today: date,
) -> BudgetStatus:
    table = UsageDailyTeamModel.__table__  # type: ignore[attr-defined]
    spent, unpriced = session.execute(
        select_columns(
            func.coalesce(func.sum(table.c.cost), 0),
            func.coalesce(func.sum(table.c.unpriced_requests), 0),
        ).where(table.c.team == team, table.c.day >= start, table.c.day <= min(today, end))
    ).one()
    spent = Decimal(spent)
    daily = dict(
        _daily_spend(session, team, max(start, today - timedelta(days=RUN_RATE_DAYS)), today)
    )
    rate = _run_rate(daily, start, today)
    remaining = max(0, (end - today).days)
    today_so_far = daily.get(today, Decimal(0))
    # Today is partly spent: the forecast counts what is left of it at the run rate too.
    forecast = spent + rate * remaining + max(Decimal(0), rate - today_so_far)
    return BudgetStatus(
        team=team,
        period=period,
        start=start,
        end=end,
        amount=Decimal(amount),
        spent=spent.quantize(Decimal("0.01")),
        unpriced_requests=int(unpriced),
        forecast=forecast.quantize(Decimal("0.01")),
        levels=levels,
    )
