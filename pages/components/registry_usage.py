"""Registry model card, gateway usage: which gateway model names this version serves, what
they were used for and cost over the last 30 days, and a form to link another name."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from pages.components.context import current_actor, current_user, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from services.gateway.budgets import today_in
from services.gateway.model_usage import link_gateway_model, version_usage
from services.permissions import Permission, permissions_of

FORM = "link-gateway-model"


def render(version_id: int) -> None:
    usage = attempt(
        lambda: version_usage(
            database(), actor=current_actor(), version_id=version_id, end=today_in(settings())
        )
    )
    if usage is None:
        return
    if not usage.gateway_models:
        st.caption(
            "No gateway model name is linked to this version, so its usage and cost are not "
            "known here. Link the name the LLM gateway logs for it."
        )
    else:
        names = ", ".join(f"`{n}`" for n in usage.gateway_models)
        st.caption(f"Through the gateway as {names}, {usage.start:%d %b} – {usage.end:%d %b}")
        with st.container(horizontal=True):
            st.metric("Requests", f"{usage.requests:,}", border=True)
            st.metric("Cost", f"${usage.cost:,.2f}", border=True)
        if usage.unpriced_requests:
            st.warning(
                f"{usage.unpriced_requests:,} requests have no price and are not in the cost.",
                icon=":material/warning:",
            )
        if usage.daily:
            frame = pd.DataFrame(usage.daily, columns=["Day", "Cost", "Requests"])
            frame["Cost"] = frame["Cost"].astype(float)
            chart = (
                alt.Chart(frame)
                .mark_bar()
                .encode(
                    x=alt.X("Day:T", title=None),
                    y=alt.Y("Cost:Q", title="USD per day", scale=alt.Scale(zero=True)),
                    tooltip=["Day:T", alt.Tooltip("Cost:Q", format="$,.2f"), "Requests:Q"],
                )
                .properties(height=160)
            )
            st.altair_chart(chart, width="stretch")
    if Permission.MANAGE_REGISTRY in permissions_of(current_user().roles):
        _link_form(version_id)


def _link_form(version_id: int) -> None:
    with st.popover("Link a gateway model name", icon=":material/link:"):
        with st.form(form_key(FORM)):
            name = st.text_input(
                "Gateway model name", placeholder="e.g. support-assistant (as LiteLLM logs it)"
            )
            submitted = st.form_submit_button("Link", type="primary")
        if submitted:
            done = attempt(
                lambda: link_gateway_model(
                    database(), actor=current_actor(), version_id=version_id, gateway_model=name
                )
            )
            if done is not None:
                renew_form(FORM)
                flash(f"Linked {done.gateway_model!r} to this version.")
                st.rerun()
