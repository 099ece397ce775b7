"""User accounts through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import col, func, select

from models.audit import AuditEvent
from models.team import TeamCreate
from models.user import Role, User, UserCreate, UserUpdate
from services import teams, users
from services.access import Actor
from services.auth import active_user, authenticate
from services.db import Database
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.validation import parse
from tests.conftest import PASSWORD, make_user


def audit_count(db: Database) -> int:
    with db.read() as session:
        return session.exec(select(func.count()).select_from(AuditEvent)).one()


def user_count(db: Database) -> int:
    with db.read() as session:
        return session.exec(select(func.count()).select_from(User)).one()


def test_first_admin_is_offered_until_one_exists_then_refused(db: Database) -> None:
    assert users.needs_first_admin(db)
    first = users.create_first_admin(
        db,
        data=UserCreate(
            username="Jane.Doe", display_name="Jane", password=PASSWORD, roles=["data_scientist"]
        ),
    )
    assert first.username == "jane.doe"
    assert set(first.roles) == {"data_scientist", "admin"}  # the first user is always an admin
    assert not users.needs_first_admin(db)
    with pytest.raises(PermissionDenied, match="already exists"):
        users.create_first_admin(
            db,
            data=UserCreate(
                username="mallory", display_name="M", password=PASSWORD, roles=["admin"]
            ),
        )
    assert user_count(db) == 1


def test_password_is_stored_as_bcrypt_hash_and_logs_in(db: Database, admin: Actor) -> None:
    created = users.create_user(
        db,
        actor=admin,
        data=UserCreate(
            username="alice", display_name="Alice", password=PASSWORD, roles=["data_scientist"]
        ),
    )
    with db.read() as session:
        row = session.get(User, created.id)
    assert row is not None
    assert row.password_hash.startswith("$2b$") and PASSWORD not in row.password_hash
    assert authenticate(db, username="ALICE", password=PASSWORD).username == "alice"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": ""}, "username", "3-64 characters"),
        ({"username": "a b"}, "username", "3-64 characters"),
        ({"password": "short"}, "password", "at least 12 characters"),
        ({"password": " leading space ok?"}, "password", "must not start or end with a space"),
        ({"password": "x" * 80}, "password", "at most 72 bytes"),
        ({"roles": ["wizard"]}, "roles", "unknown role wizard"),
        ({"roles": []}, "roles", "choose at least one role"),
        ({"display_name": "   "}, "display_name", "must not be empty"),
        ({"email": "not-an-email"}, "email", "not an email address"),
        ({"display_name": "Nul\x00Byte"}, "display_name", "control characters"),
        ({"password": "twelve chars\x00 then more"}, "password", "control characters"),
    ],
)
def test_bad_user_input_is_named_and_nothing_is_written(
    db: Database, admin: Actor, data: dict[str, object], field: str, message: str
) -> None:
    before_users, before_events = user_count(db), audit_count(db)
    form = {
        "username": "bob",
        "display_name": "Bob",
        "password": PASSWORD,
        "roles": ["approver"],
    } | data
    with pytest.raises(ValidationError) as caught:
        users.create_user(db, actor=admin, data=parse(UserCreate, form))
    assert message in caught.value.fields[field]
    assert (user_count(db), audit_count(db)) == (before_users, before_events)


def test_duplicate_username_is_refused_whatever_its_case(db: Database, admin: Actor) -> None:
    make_user(db, "bob", Role.APPROVER)
    before = audit_count(db)
    with pytest.raises(Conflict, match="already exists"):
        users.create_user(
            db,
            actor=admin,
            data=parse(
                UserCreate,
                {
                    "username": "BOB",
                    "display_name": "Other Bob",
                    "password": PASSWORD,
                    "roles": ["manager"],
                },
            ),
        )
    assert audit_count(db) == before


def test_unknown_team_is_refused(db: Database, admin: Actor) -> None:
    with pytest.raises(ValidationError, match="Team"):
        users.create_user(
            db,
            actor=admin,
            data=UserCreate(
                username="bob",
                display_name="Bob",
                password=PASSWORD,
                roles=["manager"],
                team_id=999,
            ),
        )


def test_admin_sets_roles_and_team_and_the_change_is_audited(db: Database, admin: Actor) -> None:
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    bob = make_user(db, "bob", Role.DATA_SCIENTIST)
    assert bob.user_id is not None
    updated = users.update_user(
        db,
        actor=admin,
        user_id=bob.user_id,
        expected_version=1,
        changes=UserUpdate(roles=["data_scientist", "approver"], team_id=team.id),
    )
    assert updated.roles == ["data_scientist", "approver"] and updated.team_name == "Search"
    with db.read() as session:
        event = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).first()
    assert event is not None and event.action == "user.update" and event.actor == "root.admin"
    assert '"team":"Search"' in (event.after or "") and '"team":null' in (event.before or "")


def test_two_admins_editing_the_same_user_the_second_is_told(db: Database, admin: Actor) -> None:
    second_admin = make_user(db, "second.admin", Role.ADMIN)
    bob = make_user(db, "bob", Role.DATA_SCIENTIST)
    assert bob.user_id is not None
    users.update_user(
        db,
        actor=admin,
        user_id=bob.user_id,
        expected_version=1,
        changes=UserUpdate(display_name="Robert"),
    )
    with pytest.raises(Conflict, match="changed by someone else"):
        users.update_user(
            db,
            actor=second_admin,
            user_id=bob.user_id,
            expected_version=1,
            changes=UserUpdate(roles=["manager"]),
        )
    assert active_user(db, "bob").roles == ["data_scientist"]  # type: ignore[union-attr]


def test_the_last_active_admin_cannot_be_demoted_or_disabled(db: Database, admin: Actor) -> None:
    other = make_user(db, "helper", Role.ADMIN)
    assert admin.user_id is not None and other.user_id is not None
    with pytest.raises(ValidationError, match="your own account"):
        users.set_disabled(db, actor=admin, user_id=admin.user_id, disabled=True)
    users.set_disabled(db, actor=admin, user_id=other.user_id, disabled=True)
    with pytest.raises(Conflict, match="last active administrator"):
        users.update_user(
            db,
            actor=admin,
            user_id=admin.user_id,
            expected_version=1,
            changes=UserUpdate(roles=["manager"]),
        )


def test_disabled_user_cannot_act_even_with_an_old_actor(db: Database, admin: Actor) -> None:
    helper = make_user(db, "helper", Role.ADMIN)
    assert helper.user_id is not None
    users.set_disabled(db, actor=admin, user_id=helper.user_id, disabled=True)
    with pytest.raises(PermissionDenied, match="no longer active"):
        users.list_users(db, actor=helper)
    assert active_user(db, "helper") is None


def test_demoted_admin_loses_rights_at_once(db: Database, admin: Actor) -> None:
    helper = make_user(db, "helper", Role.ADMIN)
    assert helper.user_id is not None
    users.update_user(
        db,
        actor=admin,
        user_id=helper.user_id,
        expected_version=1,
        changes=UserUpdate(roles=["manager"]),
    )
    with pytest.raises(PermissionDenied, match="admin role"):
        users.create_user(
            db,
            actor=helper,
            data=UserCreate(username="eve", display_name="Eve", password=PASSWORD, roles=["admin"]),
        )


def test_reset_password_replaces_the_old_one(db: Database, admin: Actor) -> None:
    bob = make_user(db, "bob", Role.MANAGER)
    assert bob.user_id is not None
    users.reset_password(db, actor=admin, user_id=bob.user_id, new_password="brand new secret 42")
    assert authenticate(db, username="bob", password="brand new secret 42").username == "bob"
    with pytest.raises(ValidationError, match="at least 12"):
        users.reset_password(db, actor=admin, user_id=bob.user_id, new_password="tiny")


def test_user_changes_own_password_only_with_the_current_one(db: Database) -> None:
    bob = make_user(db, "bob", Role.MANAGER)
    with pytest.raises(ValidationError, match="current password is not correct"):
        users.change_own_password(
            db, actor=bob, current_password="wrong", new_password="another good secret"
        )
    users.change_own_password(
        db, actor=bob, current_password=PASSWORD, new_password="another good secret"
    )
    assert authenticate(db, username="bob", password="another good secret")


def test_unknown_user_is_not_found(db: Database, admin: Actor) -> None:
    with pytest.raises(NotFound):
        users.get_user(db, actor=admin, username="ghost")
    with pytest.raises(NotFound):
        users.unlock(db, actor=admin, user_id=4242)
