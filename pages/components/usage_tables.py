"""Usage page, the tables: top users, keys and models, the grouped table with any group-by
whose selected row opens the raw requests behind it, each with a CSV download of exactly
what it shows (exact amounts, as ``usage report`` prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from pages.components import usage_data as data
from pages.components.context import database
from pages.components.feedback import attempt
from pages.components.formatting import table_height
from pages.components.usage_filters import LABELS
from services.access import Actor
from services.gateway import reports
from services.gateway.export import rows_as_csv
from services.gateway.reports import CSV_MEASURES
from services.gateway.scope import UsageQuery

TOP = 10
TOP_TITLES = {"user": "Top users", "key": "Top API keys", "model": "Top models"}
RAW_PAGE_SIZE = 50
MEASURE_TITLES = {
    "requests": "Requests",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost_usd": "Spend (USD)",
    "unpriced_requests": "Unpriced",
    "errors": "Errors",
}
SHOWN = ("cost_usd", "requests", "input_tokens", "output_tokens", "errors", "unpriced_requests")
MONEY = st.column_config.NumberColumn(format="dollar")
TOKENS = st.column_config.NumberColumn(format="localized")


MEASURE_CONFIG: dict[str, Any] = {
    title: MONEY if m.endswith("_usd") else TOKENS for m, title in MEASURE_TITLES.items()
}
RAW_EXPORT_LIMIT = 10_000


def frame(rows: Sequence[dict[str, Any]], dimensions: Sequence[str]) -> pd.DataFrame:
    """Human titles; money as floats for display only (CSV keeps the exact Decimals)."""
    titles = {d: LABELS[d] for d in dimensions} | {m: MEASURE_TITLES[m] for m in SHOWN}
    table: dict[str, list[Any]] = {}
    for column, title in titles.items():
        values = [r.get(column) for r in rows]
        if column == "day":
            values = [v.isoformat() if v else "" for v in values]
        elif column in dimensions:
            values = [v if v else "(none)" for v in values]
        elif column.endswith("_usd"):
            values = [data.as_float(v) for v in values]
        table[title] = values
    return pd.DataFrame(table)


def csv_button(rows: Sequence[dict[str, Any]], columns: Sequence[str], name: str, key: str) -> None:
    """Download the rows; the CSV is built only when the button is pressed."""
    st.download_button(
        "Download CSV",
        data=lambda: rows_as_csv(rows, columns),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=key,
        disabled=not rows,
    )


def top_lists(actor: Actor, query: UsageQuery, sees_all: bool) -> None:
    """The biggest spenders side by side: users and keys for those who see every team."""
    dimensions = ["user", "key", "model"] if sees_all else ["model"]
    if query.team_totals:
        dimensions = ["model"]
    cols = st.columns(len(dimensions) if len(dimensions) > 1 else [1, 1])
    for dimension, col in zip(dimensions, cols, strict=False):
        rows = _top(actor, replace(query, group_by=(dimension,)))
        if rows is None:
            continue
        with col:
            st.markdown(f"**{TOP_TITLES[dimension]}**")
            shown = frame(rows[:TOP], [dimension])[[LABELS[dimension], "Spend (USD)", "Requests"]]
            st.dataframe(
                shown,
                hide_index=True,
                width="stretch",
                height=table_height(len(shown), max_rows=TOP),
                column_config=MEASURE_CONFIG,
            )
            more = f"; {len(rows) - TOP:,} more in the CSV" if len(rows) > TOP else ""
            st.caption(f"{min(len(rows), TOP)} of {len(rows):,} by spend{more}.")
            csv_button(rows, [dimension, *CSV_MEASURES], f"top-{dimension}s", f"csv-{dimension}")


def _top(actor: Actor, query: UsageQuery) -> list[dict[str, Any]] | None:
    return attempt(lambda: data.grouped(data.db_url(), actor, query))


def grouped_table(
    actor: Actor, query: UsageQuery, rows: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The grouped rows; returns the selected row, if any."""
    dims = list(query.group_by)
    shown = frame(rows, dims)
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=table_height(len(shown), max_rows=15),
        on_select="rerun",
        selection_mode="single-row",
        key=f"usage-grouped-{'-'.join(dims)}",
        column_config=MEASURE_CONFIG,
    )
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(
        f"{len(rows):,} row{'s' if len(rows) != 1 else ''}, biggest spend first. "
        "Select a row to see the requests behind it."
    )
    with right:
        csv_button(rows, [*dims, *CSV_MEASURES], "usage-" + "-".join(dims), "csv-grouped")
    chosen = event.selection.rows if event is not None else []
    return rows[chosen[0]] if chosen and chosen[0] < len(rows) else None


FILTER_FIELDS = {
    "tag": "tags",
    "team": "teams",
    "user": "users",
    "key": "keys",
    "model": "models",
    "provider": "providers",
}


def drill_query(query: UsageQuery, row: dict[str, Any]) -> UsageQuery:
    """``query`` narrowed to one grouped row's dimensions."""
    narrowed = replace(query, group_by=())
    for dimension in query.group_by:
        value = row[dimension]
        if dimension == "day":
            narrowed = replace(narrowed, start=value, end=value)
        else:  # "(none)" rows drill into the requests without one ("")
            only: dict[str, Any] = {FILTER_FIELDS[dimension]: (value or "",)}
            narrowed = replace(narrowed, **only)
    return narrowed


def raw_requests(actor: Actor, query: UsageQuery, row: dict[str, Any]) -> None:
    """The requests behind one grouped row, newest first, a page at a time."""
    what = ", ".join(f"{LABELS[d]} {row[d] or '(none)'}" for d in query.group_by)
    st.markdown(f"#### Requests behind {what}")
    narrowed = drill_query(query, row)
    key = f"usage-raw-page-{hash((narrowed, query.group_by))}"
    page = int(st.session_state.get(key, 1))
    found = attempt(lambda: data.raw_page(data.db_url(), actor, narrowed, page, RAW_PAGE_SIZE))
    if found is None:
        return
    rows, total, page, pages = found
    st.session_state[key] = page  # clamped: the list may have shrunk
    if not total:
        st.info(
            "The raw requests behind this row are no longer stored (raw events older than the "
            "retention period are pruned; the totals above are kept).",
            icon=":material/inventory_2:",
        )
        return
    shown = pd.DataFrame(rows).rename(columns=RAW_TITLES)
    shown["Cost (USD)"] = [data.as_float(r["cost_usd"]) for r in rows]
    shown = shown.drop(columns=["Request id", "Source"])
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=table_height(len(shown), max_rows=15),
        column_config={
            "Cost (USD)": st.column_config.NumberColumn(format="$%.6f", help="Empty: no price"),
            "Input tokens": TOKENS,
            "Output tokens": TOKENS,
            "Cache hit": st.column_config.CheckboxColumn(),
        },
    )
    left, middle, right = st.columns([3, 1, 1], vertical_alignment="center")
    left.caption(f"{total:,} request{'s' if total != 1 else ''} · page {page} of {pages}")
    if pages > 1:
        middle.number_input(
            "Page", min_value=1, max_value=pages, key=key, label_visibility="collapsed"
        )
    with right:
        raw_csv_button(actor, narrowed, total, key)


def raw_csv_button(actor: Actor, query: UsageQuery, total: int, key: str) -> None:
    """Every request behind the row (up to a limit), read only when the button is pressed."""
    db = database()

    def build() -> str:
        found = reports.raw_requests(db, actor=actor, query=query, page_size=RAW_EXPORT_LIMIT)
        return rows_as_csv(data.raw_rows(found), list(RAW_TITLES))

    st.download_button(
        "Download CSV",
        data=build,
        file_name="requests.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"csv-{key}",
        help=f"The newest {RAW_EXPORT_LIMIT:,} requests" if total > RAW_EXPORT_LIMIT else None,
    )


RAW_TITLES = {
    "time": "Time",
    "user": "User",
    "team": "Team",
    "key": "API key",
    "model": "Model",
    "provider": "Provider",
    "status": "Status",
    "error": "Error",
    "cache_hit": "Cache hit",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost_usd": "Cost (USD)",
    "tags": "Tags",
    "request_id": "Request id",
    "source": "Source",
}
