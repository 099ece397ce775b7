"""The acting user and the permission check every service makes before it changes or
reveals anything."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from models.user import Role, User
from services.errors import PermissionDenied
from services.permissions import Permission, permissions_of, roles_granting


@dataclass(frozen=True)
class Actor:
    """Who is acting. ``user_id`` is None for the command line, a trusted operator."""

    username: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        assert user.id is not None
        return cls(
            username=user.username, roles=frozenset(Role(r) for r in user.roles), user_id=user.id
        )

    @classmethod
    def command_line(cls) -> Actor:
        return cls(username="cli", roles=frozenset({Role.ADMIN}))


def require(session: Session, actor: Actor, permission: Permission) -> User | None:
    """``require_any`` with one permission."""
    return require_any(session, actor, permission)


def require_any(session: Session, actor: Actor, *permissions: Permission) -> User | None:
    """Refuse unless the actor, as the database knows them now, holds one of ``permissions``.

    Roles are re-read inside the caller's transaction, so a user demoted or disabled in
    another session loses their rights at once. Returns the acting user's row (None for
    the command line)."""
    if actor.user_id is None:
        user = None
    else:
        user = session.get(User, actor.user_id)
        if user is None or user.disabled:
            raise PermissionDenied("Your account is no longer active.")
    if not set(permissions) & permissions_of(roles_of(actor, user)):
        granting = {r: None for p in permissions for r in roles_granting(p)}
        needed = " or ".join(r.label.lower() for r in granting)
        raise PermissionDenied(f"You need the {needed} role to do this.")
    return user


def roles_of(actor: Actor, user: User | None) -> frozenset[Role]:
    """The actor's roles as the database knows them now (``user`` from ``require``; the
    command line, with no row, keeps its own)."""
    return actor.roles if user is None else frozenset(Role(r) for r in user.roles)
