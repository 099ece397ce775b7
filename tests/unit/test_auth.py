"""Logins and the lockout, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models.audit import AuditEvent
from models.types import utcnow
from models.user import Role, User
from services import users
from services.access import Actor
from services.auth import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    authenticate,
    end_sessions,
    login_directory,
)
from services.db import Database
from services.errors import AccountDisabled, AccountLocked, InvalidCredentials
from tests.conftest import PASSWORD, make_user


def fail_logins(db: Database, username: str, times: int) -> list[Exception]:
    errors: list[Exception] = []
    for _ in range(times):
        with pytest.raises((InvalidCredentials, AccountLocked)) as caught:
            authenticate(db, username=username, password="not the password")
        errors.append(caught.value)
    return errors


def test_successful_login_is_recorded(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    user = authenticate(db, username=" Alice ", password=PASSWORD)
    assert user.last_login_at is not None
    with db.read() as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "auth.login" in actions


def test_unknown_user_and_wrong_password_get_the_same_message(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    with pytest.raises(InvalidCredentials) as unknown:
        authenticate(db, username="nobody", password=PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        authenticate(db, username="alice", password="wrong password!")
    assert str(unknown.value) == str(wrong.value) == "Username or password is incorrect."


def test_five_failures_lock_the_account_for_fifteen_minutes(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    errors = fail_logins(db, "alice", MAX_FAILED_LOGINS)
    assert all(isinstance(e, InvalidCredentials) for e in errors[:-1])
    assert isinstance(errors[-1], AccountLocked)
    assert "locked after too many failed logins" in str(errors[-1])
    # Even the right password is refused while the lock lasts.
    with pytest.raises(AccountLocked) as caught:
        authenticate(db, username="alice", password=PASSWORD)
    remaining = caught.value.until - utcnow()
    assert LOCKOUT - timedelta(minutes=1) < remaining <= LOCKOUT


def test_lock_expires_after_fifteen_minutes(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    fail_logins(db, "alice", MAX_FAILED_LOGINS)
    with db.write() as session:  # let the clock run past the lock
        row = session.exec(select(User).where(User.username == "alice")).one()
        assert row.locked_until is not None
        row.locked_until = utcnow() - timedelta(seconds=1)
        session.add(row)
    assert authenticate(db, username="alice", password=PASSWORD).failed_login_count == 0


def test_admin_unlocks_a_locked_account(db: Database, admin: Actor) -> None:
    alice = make_user(db, "alice", Role.DATA_SCIENTIST)
    fail_logins(db, "alice", MAX_FAILED_LOGINS)
    assert alice.user_id is not None
    unlocked = users.unlock(db, actor=admin, user_id=alice.user_id)
    assert unlocked.locked_until is None and unlocked.failed_login_count == 0
    assert authenticate(db, username="alice", password=PASSWORD)


def test_a_success_resets_the_failure_count(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    fail_logins(db, "alice", MAX_FAILED_LOGINS - 1)
    authenticate(db, username="alice", password=PASSWORD)
    errors = fail_logins(db, "alice", MAX_FAILED_LOGINS - 1)
    assert all(isinstance(e, InvalidCredentials) for e in errors)


def test_disabled_account_cannot_log_in(db: Database, admin: Actor) -> None:
    alice = make_user(db, "alice", Role.DATA_SCIENTIST)
    assert alice.user_id is not None
    users.set_disabled(db, actor=admin, user_id=alice.user_id, disabled=True)
    with pytest.raises(AccountDisabled):
        authenticate(db, username="alice", password=PASSWORD)
    assert "alice" not in login_directory(db)["usernames"]


def test_login_directory_never_carries_password_hashes(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    entry = login_directory(db)["usernames"]["alice"]
    assert entry["password"] == "" and entry["roles"] == ["data_scientist"]


def test_logging_out_ends_the_accounts_sessions_and_is_recorded(db: Database) -> None:
    make_user(db, "alice", Role.DATA_SCIENTIST)
    before = utcnow()
    end_sessions(db, "Alice")
    with db.read() as session:
        user = session.exec(select(User).where(User.username == "alice")).one()
        actions = session.exec(select(AuditEvent.action)).all()
    assert user.sessions_ended_at is not None and user.sessions_ended_at >= before
    assert "auth.logout" in actions
    end_sessions(db, "nobody")  # a session whose account is gone ends without error
