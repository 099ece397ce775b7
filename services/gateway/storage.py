"""Writing a batch of usage rows: the events that are new, and the daily rollups they add to,
in the caller's transaction, so a rollup never counts an event that was not stored or an
event twice.

Both statements are SQLAlchemy dialect inserts that work on SQLite and PostgreSQL alike:
``INSERT … ON CONFLICT (occurred_at, source, request_id) DO NOTHING`` for events (after one
query for the batch's ids already stored), and ``INSERT … ON CONFLICT (<rollup key>) DO UPDATE
SET n = n + excluded.n`` for rollups. Each is compiled once per process and run with the DBAPI's
``executemany`` over plain tuples: SQLAlchemy's per-row parameter handling cost more than the
database's own work at gateway volumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from models.usage import (
    EVENT_KEY,
    ROLLUP_KEY,
    TEAM_MODEL_KEY,
    UsageDaily,
    UsageDailyTeamModel,
    UsageEvent,
)
from services.gateway.binding import column_processor

Row = dict[str, Any]
COUNTERS = (
    "requests",
    "errors",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "unpriced_requests",
)
EVENTS: Table = UsageEvent.__table__  # type: ignore[attr-defined]
DAILY: Table = UsageDaily.__table__  # type: ignore[attr-defined]
TEAM_MODEL: Table = UsageDailyTeamModel.__table__  # type: ignore[attr-defined]
EVENT_COLUMNS = tuple(c.name for c in EVENTS.columns if c.name != "id")
DAILY_COLUMNS = (*ROLLUP_KEY, *COUNTERS, "cost")
TEAM_MODEL_COLUMNS = (*TEAM_MODEL_KEY, *COUNTERS, "cost")
ROLLUP_KEYS = {DAILY.name: ROLLUP_KEY, TEAM_MODEL.name: TEAM_MODEL_KEY}


class ConcurrentIngest(Exception):
    """Another transaction stored some of this batch's events after it looked: retry it.
    (The batch path no longer looks first, so no longer raises it; callers still retry.)"""


@dataclass(frozen=True)
class _Prepared:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def params(self, rows: Sequence[Row]) -> list[Any]:
        """Each row as a sequence in ``columns`` order, through the columns' bind processors."""
        values = itemgetter(*self.columns)
        converted = [(i, p) for i, p in enumerate(self.processors) if p is not None]
        if not converted:
            return [values(row) for row in rows]
        params = []
        for row in rows:
            param = list(values(row))
            for i, process in converted:
                param[i] = process(param[i])
            params.append(tuple(param))
        return params


_PREPARED: dict[tuple[str, str], _Prepared] = {}


def _dialect_insert(dialect: Dialect) -> Callable[[Table], Any]:
    if dialect.name == "postgresql":
        return postgresql.insert
    if dialect.name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"usage ingestion supports SQLite and PostgreSQL, not {dialect.name}")


def prepare(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Prepared:
    """``table``'s insert (or upsert) for ``dialect``, compiled once per process."""
    key = (dialect.name, table.name)
    if key not in _PREPARED:
        stmt = _dialect_insert(dialect)(table)
        if table is EVENTS:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(EVENT_KEY))
        else:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(ROLLUP_KEYS[table.name]),
                set_={c: table.c[c] + stmt.excluded[c] for c in (*COUNTERS, "cost")},
            )
        # A positional paramstyle, so rows can be passed as tuples in ``columns`` order.
        positional = dialect if dialect.positional else type(dialect)(paramstyle="format")  # type: ignore[call-arg]
        compiled = stmt.compile(dialect=positional, column_keys=list(columns))
        order = tuple(compiled.positiontup or ())
        assert sorted(order) == sorted(columns), order
        processors = tuple(column_processor(table, c, dialect) for c in order)
        _PREPARED[key] = _Prepared(str(compiled), order, processors)
    return _PREPARED[key]


def _executemany(
    session: Session, table: Table, columns: tuple[str, ...], rows: Sequence[Row]
) -> int:
    connection = session.connection()
    prepared = prepare(connection.dialect, table, columns)
    result = connection.exec_driver_sql(prepared.sql, prepared.params(rows))
    return int(result.rowcount)


def tag_key(tags: Sequence[str]) -> str:
    """A request's tag set as one rollup dimension: sorted, comma-joined, at most 500 chars."""
    if not tags:
        return ""
    return ",".join(sorted(set(tags)))[:500]


def add_to_rollups(session: Session, increments: Sequence[Row]) -> None:
    """Add ``increments`` (rows of ``DAILY_COLUMNS``) to the daily rollups, and their sums per day,
    team, model and provider to the coarser rollup, creating missing rows."""
    if increments:
        _executemany(session, DAILY, DAILY_COLUMNS, increments)
        _executemany(session, TEAM_MODEL, TEAM_MODEL_COLUMNS, coarsen(increments))


def coarsen(increments: Sequence[Row]) -> list[Row]:
    """``increments`` summed over the dimensions the team-and-model rollup drops."""
    totals: dict[tuple[Any, ...], list[Any]] = {}
    measures = (*COUNTERS, "cost")
    for row in increments:
        key = (row["day"], row["team"], row["model"], row["provider"])
        counts = totals.get(key)
        if counts is None:
            totals[key] = [row[m] for m in measures]
        else:
            for i, measure in enumerate(measures):
                counts[i] += row[measure]
    return [
        dict(zip(TEAM_MODEL_COLUMNS, (*key, *counts), strict=True))
        for key, counts in totals.items()
    ]
