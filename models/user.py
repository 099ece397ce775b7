"""Portal users and their roles. Password hashes (bcrypt) live here and nowhere else."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, reject_control_characters, utcnow

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_BYTES = 72  # bcrypt ignores (and bcrypt>=5 refuses) anything longer


class Role(StrEnum):
    DATA_SCIENTIST = "data_scientist"
    APPROVER = "approver"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


def check_password_strength(password: str) -> str:
    """Return the password if it is acceptable, else raise ``ValueError`` saying why."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"must be at most {MAX_PASSWORD_BYTES} bytes long")
    if password != password.strip():
        raise ValueError("must not start or end with a space")
    reject_control_characters(password)
    if len(set(password)) < 4:
        raise ValueError("is too repetitive")
    return password


def _clean_text(value: object) -> object:
    return reject_control_characters(value.strip()) if isinstance(value, str) else value


def _clean_email(value: object) -> object:
    if isinstance(value, str):
        value = reject_control_characters(value.strip()) or None
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("is not an email address")
    return value


def _normalise_roles(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        known = {r.value for r in Role}
        unknown = sorted(str(v) for v in value if str(v) not in known)
        if unknown:
            raise ValueError(
                f"unknown role {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
            )
        ordered = [r.value for r in Role if r.value in {str(v) for v in value}]
        if not ordered:
            raise ValueError("choose at least one role")
        return ordered
    return value


class _ProfileValidation(SQLModel):
    """Cleaning shared by every shape that carries a name, an email or roles."""

    @field_validator("display_name", mode="before", check_fields=False)
    @classmethod
    def _display_name(cls, value: object) -> object:
        return _clean_text(value)

    @field_validator("email", mode="before", check_fields=False)
    @classmethod
    def _email(cls, value: object) -> object:
        return _clean_email(value)

    @field_validator("roles", mode="before", check_fields=False)
    @classmethod
    def _roles(cls, value: object) -> object:
        return None if value is None else _normalise_roles(value)


class UserBase(_ProfileValidation):
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    roles: list[str]
    team_id: int | None = Field(default=None)

    @field_validator("username", mode="before")
    @classmethod
    def _username(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if not USERNAME_PATTERN.match(value):
                raise ValueError(
                    "must be 3-64 characters: lowercase letters, digits, '.', '_' or '-', "
                    "starting with a letter or digit"
                )
        return value


class User(UserBase, table=True):
    __tablename__ = "portal_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    password_hash: str = Field(max_length=100)
    disabled: bool = Field(default=False)
    failed_login_count: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    sessions_ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """When the user last logged out: a login cookie issued before then no longer logs in."""
    password_changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    version: int = Field(default=1)


class UserCreate(UserBase):
    password: str = Field(repr=False)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password_strength(value)


class UserUpdate(_ProfileValidation):
    """What an administrator may change on an existing user (``None`` leaves a field alone)."""

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = None
    roles: list[str] | None = None
    team_id: int | None = None
    clear_team: bool = False


class UserPublic(UserBase):
    id: int
    disabled: bool
    failed_login_count: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    version: int
    team_name: str | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r) for r in self.roles)
