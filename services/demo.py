"""``demo seed``: a believable demo organisation (teams and one user per role and more), with
random passwords printed once. Later capabilities add their demo data here."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from models.team import TeamCreate
from models.user import UserCreate
from services import teams, users
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import Conflict
from services.promotions.demo import seed_requests
from services.registry.demo import seed_catalog
from services.training.demo import seed_jobs

DEMO_TEAMS = (
    # Monthly gateway budgets sized to the demo traffic: Search overspends, Customer Care is
    # heading past its budget by the month end, the others have room.
    ("Payments", "CC-4100", Decimal("40.00")),
    ("Search", "CC-4200", Decimal("3000.00")),
    ("Customer Care", "CC-4300", Decimal("20.00")),
    ("Platform", "CC-1000", Decimal("150.00")),
)

DEMO_USERS = (
    ("dana", "Dana Whitfield", ["data_scientist"], "Payments"),
    ("sam", "Sam Okafor", ["data_scientist"], "Search"),
    ("priya", "Priya Raman", ["approver"], "Platform"),
    ("omar", "Omar Haddad", ["approver"], "Customer Care"),
    ("maria", "Maria Lindqvist", ["manager"], "Payments"),
    ("lee", "Lee Chen", ["admin"], "Platform"),
)


@dataclass
class SeedResult:
    teams: list[str] = field(default_factory=list)
    new_users: list[tuple[str, str, str]] = field(default_factory=list)  # username, roles, password
    catalog: str = ""
    jobs: str = ""
    promotions: str = ""
    usage: str = ""


def seed(db: Database, *, usage: bool = False) -> SeedResult:
    """Create what is missing of the demo organisation; existing teams and users are kept.
    ``usage`` adds three months of gateway traffic (seconds of work, so only on request)."""
    actor = Actor.command_line()
    result = SeedResult()
    existing = {t.name: t.id for t in teams.list_teams(db)}
    for name, cost_center, budget in DEMO_TEAMS:
        if name not in existing:
            created = teams.create_team(
                db,
                actor=actor,
                data=TeamCreate(name=name, cost_center=cost_center, monthly_budget=budget),
            )
            existing[name] = created.id
        result.teams.append(name)
    for username, display_name, roles, team in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        data = UserCreate(
            username=username,
            display_name=display_name,
            roles=roles,
            team_id=existing[team],
            email=f"{username}@example.com",
            password=password,
        )
        try:
            users.create_user(db, actor=actor, data=data)
        except Conflict:
            continue
        result.new_users.append((username, ",".join(roles), password))
    result.catalog = seed_catalog(db, get_settings(), existing)
    result.jobs = seed_jobs(db, get_settings())
    result.promotions = seed_requests(db, get_settings())
    if usage:
        from services.gateway.demo import seed_usage

        result.usage = seed_usage(db, get_settings())
    return result
