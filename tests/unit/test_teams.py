"""Teams, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.team import TeamCreate, TeamUpdate
from models.user import Role
from services import teams
from services.access import Actor
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.validation import parse
from tests.conftest import make_user


def test_admin_creates_and_edits_a_team_with_an_exact_budget(db: Database, admin: Actor) -> None:
    created = teams.create_team(
        db,
        actor=admin,
        data=parse(
            TeamCreate,
            {"name": " Payments ", "cost_center": "CC-4100", "monthly_budget": "1234.50"},
        ),
    )
    assert created.name == "Payments" and created.monthly_budget == Decimal("1234.50")
    updated = teams.update_team(
        db,
        actor=admin,
        team_id=created.id,
        expected_version=1,
        data=TeamUpdate(name="Payments EU", cost_center="CC-4101", monthly_budget=Decimal("0.10")),
    )
    assert updated.version == 2
    listed = {t.name: t for t in teams.list_teams(db)}
    assert listed["Payments EU"].monthly_budget == Decimal("0.10")


def test_team_names_are_unique_whatever_their_case(db: Database, admin: Actor) -> None:
    teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    with pytest.raises(Conflict, match="already exists"):
        teams.create_team(db, actor=admin, data=TeamCreate(name="SEARCH"))


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("-5", "at least 0"),
        ("1.234", "2 decimal places"),
        ("lots", "a number"),
        ("1e20", "too large"),
    ],
)
def test_bad_budgets_are_refused_with_a_reason(budget: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(TeamCreate, {"name": "Search", "monthly_budget": budget})


def test_stale_team_edit_is_refused(db: Database, admin: Actor) -> None:
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    teams.update_team(
        db,
        actor=admin,
        team_id=team.id,
        expected_version=1,
        data=TeamUpdate(name="Search", monthly_budget=Decimal(10)),
    )
    with pytest.raises(Conflict, match="changed by someone else"):
        teams.update_team(
            db,
            actor=admin,
            team_id=team.id,
            expected_version=1,
            data=TeamUpdate(name="Search", monthly_budget=Decimal(20)),
        )


def test_non_admins_cannot_create_teams(db: Database) -> None:
    manager = make_user(db, "maria", Role.MANAGER)
    with pytest.raises(PermissionDenied, match="admin role"):
        teams.create_team(db, actor=manager, data=TeamCreate(name="Rogue"))
