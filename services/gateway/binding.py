"""Usage values as the database driver takes them, converted once per row in plain Python.

``Binder.event`` turns a row in ``records.FIELDS`` order, its tags already converted by
``Binder.tags``, into the tuple that the compiled ``INSERT`` of ``usage_event`` binds; ``day``
and ``cost`` do the same for the rollups' date and money columns. On SQLite the conversions
are written out and give exactly what the columns' SQLAlchemy bind processors give
(``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text, ``YYYY-MM-DD``, JSON text, float); on other
databases the columns' own processors are applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, Dialect, Table

from services.gateway.records import FIELDS

Processor = Callable[[Any], Any]


def column_processor(table: Table, name: str, dialect: Dialect) -> Processor | None:
    """What SQLAlchemy does to a value of ``table.name`` before the driver binds it (JSON on
    SQLite written by orjson, as ``json.dumps`` would but faster)."""
    column = table.c[name]
    if isinstance(column.type, JSON) and dialect.name == "sqlite":
        return json_text
    processor: Processor | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def json_text(value: Any) -> str:
    """A JSON column's value as the text SQLite stores."""
    return orjson.dumps(value).decode()


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"


class Binder:
    """Driver-ready values for one dialect, for the bulk path (``batches`` and ``bulk``)."""

    def __init__(self, dialect: Dialect, events: Table) -> None:
        self.dialect_name = dialect.name
        self._days: dict[date, Any] = {}
        self._day = column_processor(events, "day", dialect)
        self._cost = column_processor(events, "cost", dialect)
        self._tags = column_processor(events, "tags", dialect)
        self._processors = tuple(
            None if name == "tags" else column_processor(events, name, dialect) for name in FIELDS
        )
        self.event: Callable[[Sequence[Any]], tuple[Any, ...]] = (
            self._sqlite_event if dialect.name == "sqlite" else self._generic_event
        )

    def day(self, value: date) -> Any:
        """A ``day`` column's value (cached: a run has few distinct days)."""
        bound = self._days.get(value)
        if bound is None:
            bound = self._days[value] = value if self._day is None else self._day(value)
        return bound

    def tags(self, value: list[str]) -> Any:
        """A ``tags`` column's value (``event`` takes it so: a batch converts each set once)."""
        return value if self._tags is None else self._tags(value)

    def cost(self, value: Decimal | None) -> Any:
        """A money column's value."""
        if value is None or self._cost is None:
            return value
        return self._cost(value)

    def _generic_event(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(values, self._processors, strict=True)
        )

    def _sqlite_event(self, v: Sequence[Any]) -> tuple[Any, ...]:
        cost = v[18]
        return (
            v[0],
            v[1],
            _sqlite_time(v[2]),
            self.day(v[3]),
            v[4],
            v[5],
            v[6],
            v[7],
            v[8],
            v[9],
            v[10],
            v[11],
            v[12],
            v[13],
            v[14],
            v[15],
            v[16],
            v[17],
            None if cost is None else float(cost),
            v[19],
        )
