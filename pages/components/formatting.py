"""Formatters shared by pages (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from models.user import Role


def role_labels(roles: Iterable[str]) -> str:
    return ", ".join(Role(r).label for r in roles) or "no role"


def local_time(value: datetime | None, zone: ZoneInfo, *, with_zone: bool = True) -> str:
    if value is None:
        return "—"
    local = value.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M") + (f" {local.tzname()}" if with_zone else "")


def money(value: Decimal | float | int | None, currency: str = "$") -> str:
    if value is None:
        return "—"
    return f"{currency}{Decimal(value):,.2f}"
