"""Admin page, Audit log tab: filter and page through events, export them, verify the chain."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from models.audit import AuditEventPublic
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import local_time
from services import audit

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
ANY = "Any"


def render() -> None:
    _verify_button()
    choices = attempt(lambda: audit.filter_choices(database(), actor=current_actor()))
    if choices is None:
        return
    query = _filters(*choices)
    first = attempt(
        lambda: audit.search_events(
            database(), actor=current_actor(), query=query, limit=PAGE_SIZE, offset=0
        )
    )
    if first is None:
        return
    _, total = first
    if total == 0:
        st.info("No audit event matches these filters. Widen the dates or clear a filter.")
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    page = right.number_input(
        f"Page (of {pages})", min_value=1, max_value=pages, value=1, key="audit-page"
    )
    left.caption(f"{total:,} matching events, newest first.")
    events, _ = audit.search_events(
        database(),
        actor=current_actor(),
        query=query,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    st.dataframe(
        _frame(events),
        hide_index=True,
        width="stretch",
        column_config={
            "#": st.column_config.NumberColumn(format="%d", width="small"),
            "Summary": st.column_config.TextColumn(width="large"),
        },
    )
    _export(query, total)


def _verify_button() -> None:
    left, right = st.columns([1, 3], vertical_alignment="center")
    if left.button("Verify chain", icon=":material/verified_user:"):
        with st.spinner("Checking every event's hash…"):
            report = attempt(lambda: audit.verify_chain(database(), actor=current_actor()))
        if report is not None:
            st.session_state["audit-report"] = (report.ok, report.describe())
    result = st.session_state.get("audit-report")
    if result:
        ok, text = result
        (right.success if ok else right.error)(
            text, icon=":material/check_circle:" if ok else ":material/gpp_bad:"
        )


def _filters(actors: list[str], actions: list[str], types: list[str]) -> audit.AuditFilter:
    zone = settings().zone
    cols = st.columns([1, 1, 1, 1.4, 1.4])
    actor = cols[0].selectbox("Actor", [ANY, *actors], key="audit-actor")
    action = cols[1].selectbox("Action", [ANY, *actions], key="audit-action")
    entity = cols[2].selectbox("Entity", [ANY, *types], key="audit-entity")
    text = cols[3].text_input("Contains", placeholder="text in summary or id", key="audit-text")
    today = datetime.now(zone).date()
    span = cols[4].date_input(
        "Dates",
        value=(today - timedelta(days=30), today),
        max_value=today,
        key="audit-dates",
        format="YYYY-MM-DD",
    )
    since, until = _date_bounds(span, zone)
    return audit.AuditFilter(
        actor=None if actor == ANY else actor,
        action_prefix=None if action == ANY else action,
        entity_type=None if entity == ANY else entity,
        text=text.strip() or None,
        since=since,
        until=until,
    )


def _date_bounds(span: Any, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The date picker gives one date while a range is half chosen, two once it is complete."""
    days = [d for d in (span if isinstance(span, (tuple, list)) else [span]) if isinstance(d, date)]
    if not days:
        return None, None
    start, end = days[0], days[-1]
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _frame(events: list[AuditEventPublic]) -> pd.DataFrame:
    zone = settings().zone
    return pd.DataFrame(
        {
            "#": [e.seq for e in events],
            "Time": [local_time(e.occurred_at, zone) for e in events],
            "Actor": [e.actor for e in events],
            "Action": [e.action for e in events],
            "Entity": [f"{e.entity_type} {e.entity_id}" for e in events],
            "Summary": [e.summary for e in events],
        }
    )


def _export(query: audit.AuditFilter, total: int) -> None:
    if total > EXPORT_LIMIT:
        st.caption(f"Export is limited to {EXPORT_LIMIT:,} events; narrow the filters to export.")
        return
    if st.button("Prepare CSV export", icon=":material/download:"):
        events, _ = audit.search_events(
            database(), actor=current_actor(), query=query, limit=EXPORT_LIMIT, offset=0
        )
        frame = _frame(events).assign(
            Before=[e.before or "" for e in events],
            After=[e.after or "" for e in events],
            Hash=[e.hash for e in events],
        )
        st.download_button(
            "Download CSV",
            frame.to_csv(index=False).encode(),
            file_name="audit-log.csv",
            mime="text/csv",
            type="primary",
        )
