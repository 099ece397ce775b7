"""Teams: who owns models and whose budget pays for gateway usage."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from pydantic import field_validator
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.types import MONEY, UTCDateTime, reject_control_characters, utcnow

TEAM_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.&-]{1,62}$")


class TeamBase(SQLModel):
    name: str = Field(max_length=63)
    cost_center: str = Field(default="", max_length=40)
    monthly_budget: Decimal = Field(default=Decimal("0.00"), ge=0, max_digits=14, decimal_places=2)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not TEAM_NAME_PATTERN.match(value):
                raise ValueError(
                    "must be 2-63 characters: letters, digits, spaces, '_', '.', '&' or '-', "
                    "starting with a letter or digit"
                )
        return value

    @field_validator("cost_center", mode="before")
    @classmethod
    def _cost_center(cls, value: object) -> object:
        return reject_control_characters(value.strip()) if isinstance(value, str) else value


class Team(TeamBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=63, unique=True, index=True)
    monthly_budget: Decimal = Field(default=Decimal("0.00"), sa_type=MONEY)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    version: int = Field(default=1)


class TeamCreate(TeamBase):
    pass


class TeamUpdate(TeamBase):
    pass


class TeamPublic(TeamBase):
    id: int
    created_at: datetime
    version: int
    member_count: int = 0
