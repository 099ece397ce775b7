"""Checking and converting one field of a logged request, with the reason to reject it.

Shared by both log formats in ``records``: request ids and names trimmed to their column,
token counts that must be whole and sane, times that must be real and in range (epoch
seconds or ISO 8601 with a zone), costs, and the reporting-zone date of a moment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

MAX_TOKENS = 10_000_000
"""More tokens than this in one request is a corrupt record, not a real request."""
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_EARLIEST, _LATEST = EARLIEST.timestamp(), LATEST.timestamp()


class RecordError(ValueError):
    """Why a record cannot be ingested, in words for the operator."""


def text(value: Any, limit: int) -> str:
    """A text field, trimmed and cut to ``limit``; NUL characters (which PostgreSQL cannot
    store, and which callers control through request metadata) are dropped."""
    if value.__class__ is not str:
        if value is None:
            return ""
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value.strip()[:limit]


_DAYS: dict[ZoneInfo, dict[int, date]] = {}
_MAX_CACHED_DAYS = 65_536


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """``moment``'s date in ``zone``. Every zone's offset is a whole number of quarter hours,
    so the date is the same for a whole UTC quarter hour and can be cached per quarter."""
    quarter = int(moment.timestamp() // 900)
    days = _DAYS.get(zone)
    if days is None:
        days = _DAYS.setdefault(zone, {})
    day = days.get(quarter)
    if day is None:
        if len(days) >= _MAX_CACHED_DAYS:
            days.clear()
        day = days[quarter] = datetime.fromtimestamp(quarter * 900, UTC).astimezone(zone).date()
    return day


def tokens(value: Any, name: str) -> int:
    if value.__class__ is int and 0 <= value <= MAX_TOKENS:
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"`{name}` is not a number ({value!r})")
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"`{name}` is not a whole number ({value!r})")
        value = int(value)
    if value < 0:
        raise RecordError(f"negative token count in `{name}` ({value})")
    if value > MAX_TOKENS:
        raise RecordError(f"absurd token count in `{name}` ({value:,} > {MAX_TOKENS:,})")
    return value


def epoch(value: Any, name: str) -> datetime:
    if value.__class__ is float and _EARLIEST <= value < _LATEST:
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return iso(value, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"`{name}` is missing or not a time ({value!r})")
    if not EARLIEST.timestamp() <= value < LATEST.timestamp():
        raise RecordError(f"`{name}` is out of range ({value!r})")
    return datetime.fromtimestamp(value, UTC)


def iso(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(f"`{name}` is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"`{name}` is not an ISO 8601 time ({value!r})") from None
    if moment.tzinfo is None:
        raise RecordError(f"`{name}` has no time zone ({value!r}); cannot tell when it happened")
    if not EARLIEST <= moment < LATEST:
        raise RecordError(f"`{name}` is out of range ({value!r})")
    return moment.astimezone(UTC)


MAX_REQUEST_COST = 10_000
"""USD. A logged cost above this for one request is a broken record, not a price (and the
cost columns hold at most 16 digits, 8 of them decimals)."""


def cost(value: Any) -> Decimal | None:
    if value.__class__ is float and 0 <= value <= MAX_REQUEST_COST:  # the usual case, fast
        return Decimal(repr(value))
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        raise RecordError(f"`response_cost` is not a valid amount ({value!r})")
    if value > MAX_REQUEST_COST:
        raise RecordError(
            f"`response_cost` is not a valid amount ({value!r}): over "
            f"${MAX_REQUEST_COST:,} for one request"
        )
    return Decimal(repr(value))


_EMPTY: Mapping[str, Any] = {}


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY
