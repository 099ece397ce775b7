"""Formatters shared by pages (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from models.user import Role

GOOD, BAD = "#1a7f37", "#cf222e"  # better/worse, pass/fail: readable on light and dark


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


def table_height(rows: int, *, max_rows: int = 12) -> int:
    """Pixel height that shows ``rows`` rows without an empty band, scrolling past max_rows."""
    return 38 + 35 * max(1, min(rows, max_rows))


def parse_pairs(text: str) -> dict[str, str]:
    """``"a=1, b=two"`` as ``{"a": "1", "b": "two"}``, the way key=value fields are typed."""
    pairs = (chunk.partition("=") for chunk in text.split(",") if chunk.strip())
    return {key.strip(): value.strip() for key, _, value in pairs}
