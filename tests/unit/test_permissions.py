"""The authorization matrix: every administrative action refuses every role but admin, inside
the service (not just by hiding a page); and which roles open which page."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from models.team import TeamCreate, TeamUpdate
from models.user import Role, UserCreate, UserUpdate
from services import attention, audit, teams, users
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import PermissionDenied
from services.permissions import PAGES
from services.system import system_status
from tests.conftest import PASSWORD, make_user

Action = Callable[[Database, Actor, int, int], object]

ADMIN_ACTIONS: dict[str, Action] = {
    "create user": lambda db, a, uid, tid: users.create_user(
        db,
        actor=a,
        data=UserCreate(username="newbie", display_name="N", password=PASSWORD, roles=["manager"]),
    ),
    "list users": lambda db, a, uid, tid: users.list_users(db, actor=a),
    "update user": lambda db, a, uid, tid: users.update_user(
        db, actor=a, user_id=uid, changes=UserUpdate(roles=["admin"]), expected_version=1
    ),
    "disable user": lambda db, a, uid, tid: users.set_disabled(
        db, actor=a, user_id=uid, disabled=True
    ),
    "reset password": lambda db, a, uid, tid: users.reset_password(
        db, actor=a, user_id=uid, new_password="a whole new secret"
    ),
    "unlock user": lambda db, a, uid, tid: users.unlock(db, actor=a, user_id=uid),
    "create team": lambda db, a, uid, tid: teams.create_team(
        db, actor=a, data=TeamCreate(name="X1")
    ),
    "update team": lambda db, a, uid, tid: teams.update_team(
        db,
        actor=a,
        team_id=tid,
        expected_version=1,
        data=TeamUpdate(name="Renamed", monthly_budget=Decimal(1)),
    ),
    "browse audit log": lambda db, a, uid, tid: audit.search_events(
        db, actor=a, query=audit.AuditFilter(), limit=5, offset=0
    ),
    "verify audit chain": lambda db, a, uid, tid: audit.verify_chain(db, actor=a),
    "admin overview": lambda db, a, uid, tid: attention.admin_overview(db, actor=a),
    "system status": lambda db, a, uid, tid: system_status(db, get_settings(), actor=a),
}


@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_admin_actions_refuse_every_other_role(db: Database, admin: Actor, action: str) -> None:
    target = make_user(db, "target", Role.DATA_SCIENTIST)
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Target team"))
    assert target.user_id is not None
    tried = []
    for roles in (
        [Role.DATA_SCIENTIST],
        [Role.APPROVER],
        [Role.MANAGER],
        [Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER],
    ):
        actor = make_user(db, "as-" + "-".join(r.value for r in roles).replace("_", ""), *roles)
        with pytest.raises(PermissionDenied, match="admin role"):
            ADMIN_ACTIONS[action](db, actor, target.user_id, team.id)
        tried.append("+".join(roles))
    print(f"{action}: refused for {', '.join(tried)}")
    ADMIN_ACTIONS[action](db, admin, target.user_id, team.id)  # and allowed for an admin


EXPECTED_PAGES = {
    Role.DATA_SCIENTIST: {"home", "registry", "fine-tuning", "experiments", "promotions", "usage"},
    Role.APPROVER: {"home", "registry", "fine-tuning", "experiments", "promotions", "usage"},
    Role.MANAGER: {"home", "usage"},
    Role.ADMIN: {"home", "registry", "fine-tuning", "usage", "admin"},
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_its_pages(role: Role) -> None:
    assert {key for key, page in PAGES.items() if page.allows([role])} == EXPECTED_PAGES[role]


def test_several_roles_open_the_union_of_their_pages() -> None:
    roles = [Role.MANAGER, Role.ADMIN]
    assert {k for k, p in PAGES.items() if p.allows(roles)} == {
        "home",
        "usage",
        "admin",
        "registry",
        "fine-tuning",
    }
