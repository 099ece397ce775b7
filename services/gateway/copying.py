"""PostgreSQL's way to store a batch: its rows sent with ``COPY`` (psycopg's ``cursor.copy``)
into a temporary table, then moved into the real one by a single ``INSERT … SELECT`` with the
same ``ON CONFLICT`` clause as the row-by-row statement (``storage.prepare``). One round trip
per table instead of one per row, and psycopg's ``COPY`` writes rows in C.

The temporary table lives until the transaction ends (``ON COMMIT DROP``), so a rolled-back
batch leaves nothing behind and a changed schema is picked up by the next transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, column, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from models.usage import EVENT_KEY
from services.gateway.storage import COUNTERS, EVENTS, ROLLUP_KEYS

_COMPILED: dict[tuple[str, tuple[str, ...]], str] = {}


def copy_insert(
    connection: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> list[Any]:
    """Insert ``rows`` (in ``columns`` order, values as the driver binds them) into ``table``
    in the caller's transaction, as ``storage.prepare``'s statement does: events that are
    stored already are skipped, rollup rows add to the stored ones. Returns (request id,
    time) of each event inserted, or ``[]`` for a rollup."""
    if not rows:
        return []
    staging = f"incoming_{table.name}"
    names = ", ".join(f'"{name}"' for name in columns)
    connection.exec_driver_sql(  # names of our own tables and columns, not input
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {names} FROM {table.name} WITH NO DATA"
    )
    connection.exec_driver_sql(f"TRUNCATE {staging}")
    statement = f"COPY {staging} ({names}) FROM STDIN"
    raw = connection.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    except raw.Error as exc:  # as SQLAlchemy wraps the driver's errors everywhere else
        raise DBAPIError.instance(statement, None, exc, raw.Error) from exc
    inserted = connection.exec_driver_sql(_insert_select(table, staging, columns))
    return [(request_id, at) for request_id, at in inserted] if table is EVENTS else []


def _insert_select(table: Table, staging: str, columns: tuple[str, ...]) -> str:
    key = (table.name, columns)
    if key not in _COMPILED:
        source = table_clause(staging, *(column(name) for name in columns))
        rows = select(*(source.c[name] for name in columns))
        stmt = postgresql.insert(table)
        compiled: Any
        # Rows are locked in key order, so two ingests storing some of the same requests (or
        # adding to the same rollup rows) at once wait for each other instead of deadlocking.
        if table is EVENTS:
            rows = rows.order_by(*(source.c[name] for name in EVENT_KEY))
            skip = stmt.from_select(list(columns), rows).on_conflict_do_nothing(
                index_elements=list(EVENT_KEY)
            )
            compiled = skip.returning(table.c.request_id, table.c.occurred_at)
        else:
            rows = rows.order_by(*(source.c[name] for name in ROLLUP_KEYS[table.name]))
            insert = stmt.from_select(list(columns), rows)
            compiled = insert.on_conflict_do_update(
                index_elements=list(ROLLUP_KEYS[table.name]),
                set_={c: table.c[c] + insert.excluded[c] for c in (*COUNTERS, "cost")},
            )
        _COMPILED[key] = str(compiled.compile(dialect=postgresql.dialect()))
    return _COMPILED[key]
