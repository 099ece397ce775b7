"""Reports as text: CSV (the group-by keys, then requests, input_tokens, output_tokens,
cost_usd, unpriced_requests) and JSON, the same numbers the Usage page shows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from services.access import Actor
from services.db import Database
from services.gateway.reports import CSV_MEASURES, grouped
from services.gateway.scope import UsageQuery


def rows_as_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_plain(row.get(c)) for c in columns])
    return out.getvalue()


def report_text(db: Database, *, actor: Actor, query: UsageQuery, fmt: str) -> str:
    """``grouped`` as CSV or JSON text (one object per row, keys as in the CSV)."""
    rows = grouped(db, actor=actor, query=query)
    columns = [*query.group_by, *CSV_MEASURES]
    if fmt == "csv":
        return rows_as_csv(rows, columns).rstrip("\n")
    return json.dumps([{c: _plain(row.get(c)) for c in columns} for row in rows], indent=1)


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if not isinstance(value, int | str | float):
        return str(value)  # Decimal: exact, as stored
    return value
