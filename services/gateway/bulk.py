"""Storing a ``PreparedBatch`` in the caller's transaction: its new events, then the rollup
increments of exactly those events (the file ingest and the LiteLLM callback both store here).

On SQLite the transaction holds the database's write lock, so the new events are told apart
without asking first: they are inserted with ``ON CONFLICT DO NOTHING`` and, if some were
already stored, they are the rows whose id is above the largest id before the insert (SQLite
gives a new row the largest id plus one). On PostgreSQL rows go through ``COPY``
(``copying``) and the insert returns the request ids it stored: an event another transaction
stored first, even at the same time, is skipped and not counted (``ConcurrentIngest`` is
no longer raised; callers still retry on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from services.gateway.batches import PreparedBatch
from services.gateway.binding import Binder
from services.gateway.copying import copy_insert
from services.gateway.rollups import regroup
from services.gateway.storage import (
    COUNTERS,
    DAILY,
    DAILY_COLUMNS,
    EVENT_COLUMNS,
    EVENTS,
    ROLLUP_KEY,
    TEAM_MODEL,
    TEAM_MODEL_COLUMNS,
    TEAM_MODEL_KEY,
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
    in the same transaction); return how many were new."""
    if not batch.events:
        return 0
    if connection.dialect.name == "sqlite":
        new = _insert_sqlite(connection, batch.events)
    else:
        new = _insert_copied(connection, batch.events)
    if new is None:
        daily, coarse = batch.daily, batch.team_model
        count = len(batch.events)
    elif not new:
        return 0
    else:
        daily, coarse = regroup(batch, new, binder)
        count = len(new)
    _upsert(connection, DAILY, ROLLUP_KEY, daily)
    if team_model is None:
        _upsert(connection, TEAM_MODEL, TEAM_MODEL_KEY, coarse)
    else:
        team_model.add(coarse)
    return count


assert len(TEAM_MODEL_COLUMNS) == 13 and len(TEAM_MODEL_KEY) == 4


class TeamModelSums:
    """Team-and-model rollup increments of several batches summed before they are stored:
    that rollup has few keys, which every batch of a transaction adds to again."""

    def __init__(self) -> None:
        self._sums: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Add rows of ``TEAM_MODEL_COLUMNS`` (4 key columns, then 9 measures)."""
        sums = self._sums
        for row in rows:
            key = row[:4]
            total = sums.get(key)
            if total is None:
                sums[key] = list(row[4:])
            else:  # written out: this runs for most rows of every batch
                total[0] += row[4]
                total[1] += row[5]
                total[2] += row[6]
                total[3] += row[7]
                total[4] += row[8]
                total[5] += row[9]
                total[6] += row[10]
                total[7] += row[11]
                total[8] += row[12]

    def store(self, connection: Connection) -> None:
        """Add the sums to the table, in the caller's transaction, and start again."""
        rows = [(*key, *total) for key, total in self._sums.items()]
        self._sums = {}
        if rows:
            _upsert(connection, TEAM_MODEL, TEAM_MODEL_KEY, rows)


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


def _upsert(
    connection: Connection, table: Any, key: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Add rollup rows (``key`` then ``ROLLUP_ORDER``) to ``table``."""
    if connection.dialect.name == "sqlite":
        columns = DAILY_COLUMNS if table is DAILY else TEAM_MODEL_COLUMNS
        _executemany(connection, table, columns, key, rows)
    else:
        copy_insert(connection, table, (*key, *ROLLUP_ORDER), rows)


def _insert_sqlite(connection: Connection, events: list[tuple[Any, ...]]) -> list[int] | None:
    """Positions of the new events in ``events``, or None when all of them were new."""
    before = connection.exec_driver_sql("SELECT max(id) FROM usage_event").scalar() or 0
    inserted = _executemany(connection, EVENTS, EVENT_COLUMNS, (), events)
    if inserted == len(events):
        return None
    if inserted == 0:
        return []
    # SQLite gives back the time text exactly as it was bound.
    stored = connection.exec_driver_sql(
        "SELECT request_id, occurred_at FROM usage_event WHERE id > ?", (before,)
    )
    return _positions(events, {(request_id, at) for request_id, at in stored})


def _insert_copied(connection: Connection, events: list[tuple[Any, ...]]) -> list[int] | None:
    """Positions of the new events in ``events``, or None when all of them were new."""
    inserted = set(copy_insert(connection, EVENTS, EVENT_COLUMNS, events))
    if len(inserted) == len(events):
        return None
    return _positions(events, inserted)


_RECORD = itemgetter(EVENT_COLUMNS.index("request_id"), EVENT_COLUMNS.index("occurred_at"))
"""An event's (request id, time): within one batch's source, its ``models.usage.EVENT_KEY``."""


def _positions(events: list[tuple[Any, ...]], stored: set[tuple[Any, Any]]) -> list[int]:
    """Positions in ``events`` of those whose (request id, time) is in ``stored``."""
    return [i for i, event in enumerate(events) if _RECORD(event) in stored]
