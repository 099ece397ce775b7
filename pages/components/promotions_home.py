"""Home page, promotions: the requests waiting for an approver's decision, and the state of a
data scientist's own recent requests, each linking to the request on the Promotions page."""

from __future__ import annotations

import streamlit as st

from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import local_time
from pages.components.layout import internal_link
from pages.components.promotions_table import approvals_text, status_badge
from services import promotions
from services.promotions import RequestFilter, RequestRow

SHOWN = 5


def _link(row: RequestRow) -> None:
    request = row.request
    internal_link(
        f"/promotions?request={request.id}",
        f"#{request.id} {row.model_name} v{row.version_number} → {request.target_stage}",
        ":material/verified:",
    )


def waiting_for_me() -> None:
    queue = attempt(lambda: promotions.approval_queue(database(), actor=current_actor()))
    if queue is None:
        return
    with st.container(border=True):
        st.markdown("**As approver**")
        if not queue:
            st.caption("No promotion request is waiting for your decision.")
            return
        count = len(queue)
        st.markdown(
            f":material/pending_actions: **{count} promotion request{'s' if count != 1 else ''}"
            f" waiting for your decision**"
        )
        zone = settings().zone
        for row in queue[:SHOWN]:
            _link(row)
            st.caption(
                f"by {row.request.requested_by}, {local_time(row.request.created_at, zone)} · "
                f"{approvals_text(row)} approvals"
            )
        if count > SHOWN:
            internal_link("/promotions", f"All {count} on the Promotions page")


def my_requests() -> None:
    actor = current_actor()
    page = attempt(
        lambda: promotions.list_requests(
            database(),
            actor=actor,
            query=RequestFilter(requested_by=actor.username),
            page_size=SHOWN,
        )
    )
    if page is None:
        return
    with st.container(border=True):
        st.markdown("**Your promotion requests**")
        if not page.rows:
            st.caption(
                "You have not requested a promotion yet. Put a version forward from the "
                "Promotions page or a model card in the Registry."
            )
            internal_link("/promotions", "Open Promotions", ":material/arrow_forward:")
            return
        zone = settings().zone
        for row in page.rows:
            _link(row)
            when = row.request.decided_at or row.request.created_at
            st.caption(
                f"{status_badge(row)} · {approvals_text(row)} approvals · {local_time(when, zone)}"
            )
        if page.total > SHOWN:
            internal_link(
                "/promotions?mine=1", f"All {page.total} of your requests", ":material/list:"
            )
