"""Managers set budgets: a team's monthly budget, and budgets for custom periods. Audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from sqlmodel import select

from models.team import Team
from models.usage import Budget
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import Conflict, NotFound, ValidationError
from services.permissions import Permission

MAX_AMOUNT = Decimal("100000000")


def _amount(value: Decimal | str | float) -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ValidationError(
            "Amount: enter a number of dollars.", fields={"amount": "not a number"}
        ) from None
    if not Decimal(0) <= amount <= MAX_AMOUNT:
        raise ValidationError(
            f"Amount: between $0 and ${MAX_AMOUNT:,.0f}.", fields={"amount": "out of range"}
        )
    return amount


def set_monthly_budget(
    db: Database, *, actor: Actor, team_id: int, amount: Decimal | str | float
) -> Team:
    """Change a team's calendar-month budget (0 means no budget)."""
    value = _amount(amount)
    with db.write() as session:
        require(session, actor, Permission.MANAGE_BUDGETS)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"No team with id {team_id}.")
        before = team.monthly_budget
        team.monthly_budget = value
        session.add(team)
        audit.record(
            session,
            actor=actor.username,
            action="budget.monthly",
            entity_type="team",
            entity_id=team.id,
            summary=f"monthly budget of {team.name}: ${before:,.2f} → ${value:,.2f}",
            before={"monthly_budget": str(before)},
            after={"monthly_budget": str(value)},
        )
        return team


def add_budget(
    db: Database,
    *,
    actor: Actor,
    team_id: int,
    name: str,
    start: date,
    end: date,
    amount: Decimal | str | float,
    warn_at: list[int] | None = None,
) -> Budget:
    """A budget for a custom period (a quarter, a project) beside the monthly one."""
    value = _amount(amount)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("Name: 1 to 100 characters.", fields={"name": "required"})
    if end < start:
        raise ValidationError("The period ends before it starts.", fields={"end": "before start"})
    levels = sorted(set(warn_at or [80, 90, 100]))
    if any(not 1 <= level <= 1000 for level in levels):
        raise ValidationError(
            "Warnings: percentages between 1 and 1000.", fields={"warn_at": "range"}
        )
    with db.write() as session:
        require(session, actor, Permission.MANAGE_BUDGETS)
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"No team with id {team_id}.")
        taken = session.exec(
            select(Budget.id).where(Budget.team_id == team_id, Budget.name == name)
        ).first()
        if taken is not None:
            raise Conflict(f"{team.name} already has a budget named {name!r}.")
        budget = Budget(
            team_id=team_id, name=name, start=start, end=end, amount=value, warn_at=levels,
            created_by=actor.username,
        )  # fmt: skip
        session.add(budget)
        session.flush()
        audit.record(
            session,
            actor=actor.username,
            action="budget.add",
            entity_type="usage_budget",
            entity_id=budget.id,
            summary=f"{team.name} budget {name!r}: ${value:,.2f} from {start} to {end}",
        )
        return budget
