"""Logins, lockout and permission checks.

Passwords are bcrypt hashes in the portal database. Five failed logins lock an account for
15 minutes; the portal enforces this itself (streamlit-authenticator's own counter never
expires and lives only in memory).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import bcrypt
from sqlmodel import Session, select

from models.types import utcnow
from models.user import User
from services import audit
from services.config import get_settings
from services.db import Database
from services.errors import AccountDisabled, AccountLocked, InvalidCredentials

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Checked against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds=4)).decode()


def hash_password(password: str) -> str:
    rounds = get_settings().bcrypt_rounds
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:  # a malformed hash or an over-long password never matches
        return False


def authenticate(db: Database, *, username: str, password: str) -> User:
    """Check a login. Raises ``InvalidCredentials``, ``AccountLocked`` or ``AccountDisabled``.

    Every attempt on an existing account is recorded (and audited) in its own transaction,
    so the failure count survives even though the caller shows an error."""
    username = username.strip().lower()
    now = utcnow()
    with db.write() as session:
        user = session.exec(select(User).where(User.username == username)).one_or_none()
        if user is None:
            verify_password(password, _DUMMY_HASH)
            outcome: Exception | None = InvalidCredentials()
        else:
            outcome = _check_account(session, user, password, now)
    if outcome is not None:
        raise outcome
    assert user is not None
    return user


def _check_account(session: Session, user: User, password: str, now: datetime) -> Exception | None:
    if user.disabled:
        return AccountDisabled()
    if user.locked_until is not None and user.locked_until > now:
        return AccountLocked(user.locked_until)
    if user.locked_until is not None:  # the lock has expired: start counting again
        user.locked_until = None
        user.failed_login_count = 0
    if not verify_password(password, user.password_hash):
        user.failed_login_count += 1
        locked = user.failed_login_count >= MAX_FAILED_LOGINS
        if locked:
            user.locked_until = now + LOCKOUT
        session.add(user)
        audit.record(
            session,
            actor=user.username,
            action="auth.login_failed",
            entity_type="user",
            entity_id=user.id,
            summary=f"Failed login for {user.username} "
            f"({user.failed_login_count} in a row)"
            + ("; account locked for 15 minutes" if locked else ""),
        )
        return AccountLocked(user.locked_until) if user.locked_until else InvalidCredentials()
    user.failed_login_count = 0
    user.last_login_at = now
    session.add(user)
    audit.record(
        session,
        actor=user.username,
        action="auth.login",
        entity_type="user",
        entity_id=user.id,
        summary=f"{user.username} logged in",
    )
    return None


def end_sessions(db: Database, username: str) -> None:
    """Log ``username`` out for good: a login cookie issued before now no longer logs in,
    whether a browser still holds it (it is deleted a moment after the logout, by the page)
    or someone copied it. Every browser the account is logged in on is logged out."""
    with db.write() as session:
        user = session.exec(select(User).where(User.username == username.lower())).one_or_none()
        if user is None:
            return
        user.sessions_ended_at = utcnow()
        session.add(user)
        audit.record(
            session,
            actor=user.username,
            action="auth.logout",
            entity_type="user",
            entity_id=user.id,
            summary=f"{user.username} logged out",
        )


def active_user(db: Database, username: str | None) -> User | None:
    """The active account behind a login session, or None if it is gone or disabled."""
    if not username:
        return None
    with db.read() as session:
        user = session.exec(select(User).where(User.username == username.lower())).one_or_none()
    if user is None or user.disabled:
        return None
    return user


def login_directory(db: Database) -> dict[str, dict[str, dict[str, Any]]]:
    """The active users in the shape streamlit-authenticator expects for ``credentials``.

    Password hashes are left out on purpose: the portal checks passwords itself
    (``authenticate``), so hashes never leave the database layer."""
    with db.read() as session:
        users = session.exec(select(User).where(User.disabled == False)).all()  # noqa: E712
    return {
        "usernames": {
            u.username: {
                "name": u.display_name,
                "email": u.email,
                "roles": list(u.roles),
                "password": "",
                "failed_login_attempts": 0,
            }
            for u in users
        }
    }
