"""Promotions page, the lists: the approver's queue and the history of every request, both as
tables whose selected row opens the request (``?request=<id>`` in the URL)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from models.promotion import RequestStatus
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import local_time, table_height
from pages.components.layout import page_footer
from pages.components.registry_models import int_param
from services import promotions
from services.promotions import RequestFilter, RequestRow

PAGE_SIZE = 25
STATUS_BADGES = {
    "Pending": ":blue-badge[Pending]",
    "Approved": ":green-badge[Approved]",
    "Approved, sync pending": ":orange-badge[Approved, sync pending]",
    "Rejected": ":red-badge[Rejected]",
    "Withdrawn": ":gray-badge[Withdrawn]",
    "Expired": ":gray-badge[Expired]",
}


def status_badge(row: RequestRow) -> str:
    label = row.status_label
    return STATUS_BADGES.get(label, label)


def approvals_text(row: RequestRow) -> str:
    return f"{row.request.approvals} of {row.required_approvals}"


def open_request(request_id: int) -> None:
    st.query_params.clear()
    st.query_params["request"] = str(request_id)
    st.rerun(scope="app")


def requests_table(rows: list[RequestRow], key: str, *, decided: bool = True) -> int | None:
    """A table of requests; returns the id of the row the user selected, if any."""
    zone = settings().zone
    columns = {
        "Request": [f"#{r.request.id}" for r in rows],
        "Model": [r.model_name for r in rows],
        "Version": [r.version_number for r in rows],
        "To": [r.request.target_stage for r in rows],
        "Status": [r.status_label for r in rows],
        "Approvals": [approvals_text(r) for r in rows],
        "Requested by": [r.request.requested_by for r in rows],
        "Requested": [local_time(r.request.created_at, zone) for r in rows],
    }
    if decided:
        columns["Closed"] = [local_time(r.request.decided_at, zone) for r in rows]
    else:
        columns["Expires"] = [local_time(r.request.expires_at, zone) for r in rows]
    event = st.dataframe(
        pd.DataFrame(columns),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        width="stretch",
        height=table_height(len(rows), max_rows=PAGE_SIZE),
        column_config={
            "Request": st.column_config.TextColumn(width="small"),
            "Model": st.column_config.TextColumn(width="medium"),
            "Version": st.column_config.NumberColumn(format="v%d", width="small"),
            "To": st.column_config.TextColumn("Target stage"),
            "Approvals": st.column_config.TextColumn(help="Approvals so far of those required"),
        },
    )
    chosen = event.selection.rows if event is not None else []
    return rows[chosen[0]].request.id if chosen else None


def render_queue() -> None:
    """Pending requests the viewer could decide now, oldest first."""
    st.markdown("#### Waiting for your decision")
    queue = attempt(lambda: promotions.approval_queue(database(), actor=current_actor()))
    if queue is None:
        return
    if not queue:
        st.success(
            "No request is waiting for you. New requests you may decide appear here.",
            icon=":material/check_circle:",
        )
        return
    st.caption(
        f"{len(queue)} request{'s' if len(queue) != 1 else ''} you can decide. "
        "Select one to review its evidence and approve or reject it."
    )
    chosen = requests_table(queue, "promotion-queue", decided=False)
    if chosen is not None:
        open_request(chosen)


STATUS_CHOICES = [None, *(s.value for s in RequestStatus)]


def _filters(can_request: bool) -> RequestFilter:
    left, right, _ = st.columns([1.2, 1.2, 2], vertical_alignment="bottom")
    wanted = st.query_params.get("status")
    status = left.selectbox(
        "Status",
        STATUS_CHOICES,
        index=STATUS_CHOICES.index(wanted) if wanted in STATUS_CHOICES else 0,
        format_func=lambda s: "Any status" if s is None else RequestStatus(s).label,
    )
    mine = can_request and right.toggle("Only my requests", value="mine" in st.query_params)
    for name, value in (("status", status or ""), ("mine", "1" if mine else "")):
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]
    return RequestFilter(status=status, requested_by=current_actor().username if mine else None)


def render_history(can_request: bool) -> None:
    st.markdown("#### All requests")
    query = _filters(can_request)
    page = int_param("page", 1)
    result = attempt(
        lambda: promotions.list_requests(
            database(), actor=current_actor(), query=query, page=page, page_size=PAGE_SIZE
        )
    )
    if result is None:
        return
    if result.total == 0:
        if query.status or query.requested_by:
            message = "No request matches these filters. Clear a filter to see more."
        elif can_request:
            message = (
                "No promotion requests yet. Put a version forward with the form above; "
                "its evidence is checked against the policy as you send it."
            )
        else:
            message = "No promotion requests yet. Data scientists file them from this page."
        st.info(message, icon=":material/inbox:")
        return
    chosen = requests_table(result.rows, f"promotion-history-{result.page}")
    page_footer(result.total, "request", result.page, result.pages)
    if chosen is not None:
        open_request(chosen)
