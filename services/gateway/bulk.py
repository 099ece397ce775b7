"""Storing a ``PreparedBatch`` in the caller's transaction: its new events, then the rollup
increments of exactly those events (the file ingest and the LiteLLM callback both store here).

On SQLite the transaction holds the database's write lock, so the new events are told apart
without asking first: they are inserted with ``ON CONFLICT DO NOTHING`` and, if some were
already stored, they are the rows whose id is above the largest id before the insert (SQLite
gives a new row the largest id plus one). On PostgreSQL the stored request ids are looked up
first, and a batch that finds fewer rows inserted than it expected raises
``ConcurrentIngest`` (another ingest stored some of them since: roll back and try again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from services.gateway.batches import PreparedBatch
from services.gateway.binding import Binder
from services.gateway.rollups import regroup
from services.gateway.storage import (
    COUNTERS,
    DAILY,
    DAILY_COLUMNS,
    EVENT_COLUMNS,
    EVENTS,
    LOOKUP_CHUNK,
    ROLLUP_KEY,
    TEAM_MODEL,
    TEAM_MODEL_COLUMNS,
    TEAM_MODEL_KEY,
    ConcurrentIngest,
    prepare,
)

ROLLUP_ORDER = (*COUNTERS[:7], "cost", COUNTERS[7])
"""The rollups' measure columns in table order, as ``batches`` lays them out."""


def store_batch(
    connection: Connection,
    batch: PreparedBatch,
    binder: Binder,
    team_model: TeamModelSums | None = None,
) -> int:
    """Store ``batch``'s events that are new and add their increments to both rollups (to
    ``team_model`` instead of its table when given: ``TeamModelSums.store`` adds them later
    in the same transaction); return how many were new. Raises ``ConcurrentIngest`` when
    another transaction stored some of them in the meantime."""
    if not batch.events:
        return 0
    if connection.dialect.name == "sqlite":
        new = _insert_sqlite(connection, batch.events)
    else:
        new = _insert_checked(connection, batch.events)
    if new is None:
        daily, coarse = batch.daily, batch.team_model
        count = len(batch.events)
    elif not new:
        return 0
    else:
        daily, coarse = regroup(batch, new, binder)
        count = len(new)
    _executemany(connection, DAILY, DAILY_COLUMNS, ROLLUP_KEY, daily)
    if team_model is None:
        _executemany(connection, TEAM_MODEL, TEAM_MODEL_COLUMNS, TEAM_MODEL_KEY, coarse)
    else:
        team_model.add(coarse)
    return count


class TeamModelSums:
    """Team-and-model rollup increments of several batches summed before they are stored:
    that rollup has few keys, which every batch of a transaction adds to again."""

    def __init__(self) -> None:
        self._sums: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        sums = self._sums
        width = len(TEAM_MODEL_KEY)
        for row in rows:
            key = row[:width]
            total = sums.get(key)
            if total is None:
                sums[key] = list(row[width:])
            else:
                for i, value in enumerate(row[width:]):
                    total[i] += value

    def store(self, connection: Connection) -> None:
        """Add the sums to the table, in the caller's transaction, and start again."""
        rows = [(*key, *total) for key, total in self._sums.items()]
        self._sums = {}
        if rows:
            _executemany(connection, TEAM_MODEL, TEAM_MODEL_COLUMNS, TEAM_MODEL_KEY, rows)


def _executemany(
    connection: Connection,
    table: Any,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    prepared = prepare(connection.dialect, table, columns)
    expected = EVENT_COLUMNS if table is EVENTS else (*key, *ROLLUP_ORDER)
    assert prepared.columns == expected, prepared.columns
    return int(connection.exec_driver_sql(prepared.sql, rows).rowcount)


def _insert_sqlite(connection: Connection, events: list[tuple[Any, ...]]) -> list[int] | None:
    """Positions of the new events in ``events``, or None when all of them were new."""
    before = connection.exec_driver_sql("SELECT max(id) FROM usage_event").scalar() or 0
    inserted = _executemany(connection, EVENTS, EVENT_COLUMNS, (), events)
    if inserted == len(events):
        return None
    if inserted == 0:
        return []
    stored = set(
        connection.execute(select(EVENTS.c.request_id).where(EVENTS.c.id > before)).scalars()
    )
    return [i for i, event in enumerate(events) if event[1] in stored]


def _insert_checked(connection: Connection, events: list[tuple[Any, ...]]) -> list[int] | None:
    source = events[0][0]
    ids = [event[1] for event in events]
    stored: set[str] = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        query = select(EVENTS.c.request_id).where(
            EVENTS.c.source == source, EVENTS.c.request_id.in_(chunk)
        )
        stored.update(connection.execute(query).scalars())
    if not stored:
        new, rows = None, events
    else:
        new = [i for i, request_id in enumerate(ids) if request_id not in stored]
        rows = [events[i] for i in new]
    if rows and _executemany(connection, EVENTS, EVENT_COLUMNS, (), rows) != len(rows):
        raise ConcurrentIngest(f"{source} events of this batch were stored by another ingest")
    return new
