"""User accounts: the first administrator, creation, roles and team, disabling, passwords
and unlocking. Every change is permission-checked and audited in its own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from models.team import Team
from models.types import utcnow
from models.user import Role, User, UserCreate, UserPublic, UserUpdate, check_password_strength
from services import audit
from services.access import Actor, require
from services.auth import hash_password, verify_password
from services.db import Database, text_match
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.permissions import Permission


def _snapshot(session: Session, user: User) -> dict[str, Any]:
    team = session.get(Team, user.team_id) if user.team_id else None
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": list(user.roles),
        "team": team.name if team else None,
        "disabled": user.disabled,
    }


def _public(session: Session, user: User) -> UserPublic:
    team = session.get(Team, user.team_id) if user.team_id else None
    return UserPublic.model_validate(user, update={"team_name": team.name if team else None})


def _active_admin_count(session: Session, *, excluding: int | None = None) -> int:
    users = session.exec(select(User).where(User.disabled == False)).all()  # noqa: E712
    return sum(1 for u in users if Role.ADMIN in u.roles and u.id != excluding)


def _load(session: Session, user_id: int, expected_version: int | None = None) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    if expected_version is not None and user.version != expected_version:
        raise Conflict(
            f"{user.username} was changed by someone else since you opened it. "
            "Reload the page to see the current values, then make your change again."
        )
    return user


def _guard_last_admin(session: Session, user: User, *, still_admin: bool) -> None:
    """The portal always keeps one active administrator: refuse the change that would end that."""
    if (
        Role.ADMIN in user.roles
        and not user.disabled
        and not still_admin
        and _active_admin_count(session, excluding=user.id) == 0
    ):
        raise Conflict(
            f"{user.username} is the last active administrator; give another user the admin "
            "role first."
        )


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationError("Team: does not exist.", fields={"team_id": "does not exist"})


def _insert(session: Session, data: UserCreate, *, actor_name: str, action: str) -> User:
    exists = session.exec(select(User.id).where(User.username == data.username)).first()
    if exists is not None:
        raise Conflict(f"A user named {data.username!r} already exists.")
    _check_team(session, data.team_id)
    user = User.model_validate(
        data.model_dump(exclude={"password"}),
        update={"password_hash": hash_password(data.password)},
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A user named {data.username!r} already exists.") from exc
    audit.record(
        session,
        actor=actor_name,
        action=action,
        entity_type="user",
        entity_id=user.id,
        summary=f"Created user {user.username} with roles {', '.join(user.roles)}",
        after=_snapshot(session, user),
    )
    return user


def needs_first_admin(db: Database) -> bool:
    """True until an active administrator exists: the portal then offers first-run setup."""
    with db.read() as session:
        return _active_admin_count(session) == 0


def create_first_admin(db: Database, *, data: UserCreate) -> UserPublic:
    """Create the first administrator. Refused once any active administrator exists."""
    if Role.ADMIN not in data.roles:
        data = data.model_copy(update={"roles": [*data.roles, Role.ADMIN.value]})
    with db.write() as session:
        if _active_admin_count(session) > 0:
            raise PermissionDenied(
                "An administrator already exists. Log in, or ask an administrator for an account."
            )
        user = _insert(session, data, actor_name=data.username, action="user.bootstrap_admin")
        return _public(session, user)


def create_user(db: Database, *, actor: Actor, data: UserCreate) -> UserPublic:
    with db.write() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = _insert(session, data, actor_name=actor.username, action="user.create")
        return _public(session, user)


def list_users(db: Database, *, actor: Actor, search: str | None = None) -> list[UserPublic]:
    with db.read() as session:
        require(session, actor, Permission.MANAGE_USERS)
        stmt = select(User).order_by(col(User.username))
        if search:
            email = func.coalesce(User.email, "")
            stmt = stmt.where(text_match(search, User.username, User.display_name, email))
        return [_public(session, u) for u in session.exec(stmt).all()]


def get_user(db: Database, *, actor: Actor, username: str) -> UserPublic:
    with db.read() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = session.exec(select(User).where(User.username == username.strip().lower())).first()
        if user is None:
            raise NotFound(f"No user named {username!r}.")
        return _public(session, user)


def update_user(
    db: Database, *, actor: Actor, user_id: int, changes: UserUpdate, expected_version: int
) -> UserPublic:
    """Change name, email, roles or team. ``expected_version`` is the version the admin saw;
    if someone saved in between, the change is refused rather than silently overwriting."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = _load(session, user_id, expected_version)
        before = _snapshot(session, user)
        if changes.roles is not None:
            _guard_last_admin(session, user, still_admin=Role.ADMIN in changes.roles)
            user.roles = list(changes.roles)
        if changes.display_name is not None:
            user.display_name = changes.display_name
        if "email" in changes.model_fields_set:
            user.email = changes.email
        if changes.clear_team:
            user.team_id = None
        elif changes.team_id is not None:
            _check_team(session, changes.team_id)
            user.team_id = changes.team_id
        after = _snapshot(session, user)
        if after == before:
            return _public(session, user)
        user.version += 1
        session.add(user)
        changed = ", ".join(k for k in after if after[k] != before[k])
        audit.record(
            session,
            actor=actor.username,
            action="user.update",
            entity_type="user",
            entity_id=user.id,
            summary=f"Changed {changed} of {user.username}",
            before={k: before[k] for k in after if after[k] != before[k]},
            after={k: after[k] for k in after if after[k] != before[k]},
        )
        return _public(session, user)


def set_disabled(
    db: Database, *, actor: Actor, user_id: int, disabled: bool, expected_version: int | None = None
) -> UserPublic:
    """Disable (or enable again) an account. A disabled user cannot log in, and their open
    sessions end at their next click."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = _load(session, user_id, expected_version)
        if user.disabled == disabled:
            return _public(session, user)
        if disabled and actor.user_id == user.id:
            raise ValidationError("You cannot disable your own account.")
        if disabled:
            _guard_last_admin(session, user, still_admin=False)
        user.disabled = disabled
        user.version += 1
        session.add(user)
        verb = "Disabled" if disabled else "Enabled"
        audit.record(
            session,
            actor=actor.username,
            action="user.disable" if disabled else "user.enable",
            entity_type="user",
            entity_id=user.id,
            summary=f"{verb} {user.username}",
            before={"disabled": not disabled},
            after={"disabled": disabled},
        )
        return _public(session, user)


def reset_password(db: Database, *, actor: Actor, user_id: int, new_password: str) -> UserPublic:
    """Set a new password for a user (an admin action); also lifts any lockout."""
    _check_new_password(new_password)
    with db.write() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = _load(session, user_id)
        _set_password(user, new_password)
        session.add(user)
        audit.record(
            session,
            actor=actor.username,
            action="user.reset_password",
            entity_type="user",
            entity_id=user.id,
            summary=f"Reset the password of {user.username}",
        )
        return _public(session, user)


def change_own_password(
    db: Database, *, actor: Actor, current_password: str, new_password: str
) -> UserPublic:
    """A user changes their own password, proving they know the current one."""
    _check_new_password(new_password)
    if actor.user_id is None:
        raise PermissionDenied("Only a logged-in user can change their own password.")
    with db.write() as session:
        user = _load(session, actor.user_id)
        if user.disabled:
            raise PermissionDenied("Your account is no longer active.")
        if not verify_password(current_password, user.password_hash):
            raise ValidationError(
                "Your current password is not correct.",
                fields={"current_password": "is not correct"},
            )
        if verify_password(new_password, user.password_hash):
            raise ValidationError(
                "The new password must differ from the current one.",
                fields={"new_password": "must differ from the current one"},
            )
        _set_password(user, new_password)
        session.add(user)
        audit.record(
            session,
            actor=actor.username,
            action="user.change_password",
            entity_type="user",
            entity_id=user.id,
            summary=f"{user.username} changed their password",
        )
        return _public(session, user)


def unlock(db: Database, *, actor: Actor, user_id: int) -> UserPublic:
    """Lift a lockout after failed logins before its 15 minutes are up."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_USERS)
        user = _load(session, user_id)
        if user.locked_until is None and user.failed_login_count == 0:
            return _public(session, user)
        user.locked_until = None
        user.failed_login_count = 0
        session.add(user)
        audit.record(
            session,
            actor=actor.username,
            action="user.unlock",
            entity_type="user",
            entity_id=user.id,
            summary=f"Unlocked {user.username}",
        )
        return _public(session, user)


def _check_new_password(password: str) -> None:
    try:
        check_password_strength(password)
    except ValueError as exc:
        raise ValidationError(
            f"The new password {exc}.", fields={"new_password": str(exc)}
        ) from None


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_login_count = 0
    user.locked_until = None


def team_name(db: Database, team_id: int | None) -> str | None:
    if team_id is None:
        return None
    with db.read() as session:
        team = session.get(Team, team_id)
        return team.name if team else None
