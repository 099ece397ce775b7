"""Registry model card, promotions: the link that opens the request form for a version, and
the version's promotion requests with their status."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.components.context import current_actor, current_user, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import local_time
from pages.components.layout import internal_link
from services import promotions
from services.permissions import Permission, permissions_of


def request_link(version_id: int) -> None:
    if Permission.REQUEST_PROMOTION in permissions_of(current_user().roles):
        internal_link(
            f"/promotions?version={version_id}", "Request promotion", ":material/upgrade:"
        )


def requests_table(version_id: int) -> None:
    """The version's promotion requests, each linking to the request for those who may open it."""
    rows = attempt(
        lambda: promotions.requests_of_version(
            database(), actor=current_actor(), version_id=version_id
        )
    )
    if rows is None:
        return
    st.markdown("**Promotion requests**")
    if not rows:
        st.caption("No promotion has been requested for this version.")
        return
    zone = settings().zone
    linked = Permission.VIEW_PROMOTIONS in permissions_of(current_user().roles)
    frame = pd.DataFrame(
        {
            "Request": [
                f"/promotions?request={r.request.id}" if linked else f"#{r.request.id}"
                for r in rows
            ],
            "To": [r.request.target_stage for r in rows],
            "Status": [r.status_label for r in rows],
            "Approvals": [f"{r.request.approvals} of {r.required_approvals}" for r in rows],
            "Requested by": [r.request.requested_by for r in rows],
            "Requested": [local_time(r.request.created_at, zone) for r in rows],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Request": st.column_config.LinkColumn(display_text=r"request=(\d+)")
            if linked
            else st.column_config.TextColumn(),
            "To": st.column_config.TextColumn("Target stage"),
        },
    )
