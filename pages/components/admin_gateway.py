"""Admin page, Gateway tab: the prices gateway requests are costed with where LiteLLM's map
lacks a model or a rate was negotiated, and which team Bedrock traffic belongs to when its
logs carry no team (IAM roles and application inference profiles mapped to teams)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from models.usage import PriceUnit
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.formatting import local_time, table_height
from services.errors import ValidationError
from services.gateway import admin
from services.gateway.reprice import reprice_unpriced


def render() -> None:
    st.markdown("#### Model prices")
    st.caption(
        "Requests are costed with LiteLLM's bundled price map. A price here wins over it: "
        "for negotiated rates and for models the map lacks (those are shown as unpriced in "
        "every report, never as $0). Stored requests that had no price are costed when "
        "their model gets one; those already costed keep their cost."
    )
    _prices()
    st.divider()
    st.markdown("#### Bedrock identities")
    st.caption(
        "Bedrock invocation logs name an IAM principal, not a team. Map roles, users and "
        "application inference profiles to teams; a log's own requestMetadata wins."
    )
    _identities()


def _prices() -> None:
    rows = attempt(lambda: admin.list_price_overrides(database(), actor=current_actor()))
    if rows is None:
        return
    zone = settings().zone
    if rows:
        st.dataframe(
            pd.DataFrame(
                {
                    "Model": [r.model for r in rows],
                    "Input": [float(r.input_price) for r in rows],
                    "Output": [float(r.output_price) for r in rows],
                    "Per": [f"{PriceUnit(r.unit).tokens:,} tokens" for r in rows],
                    "Note": [r.note for r in rows],
                    "Set by": [f"{r.updated_by}, {local_time(r.updated_at, zone)}" for r in rows],
                }
            ),
            hide_index=True,
            width="stretch",
            height=table_height(len(rows), max_rows=12),
            column_config={
                "Input": st.column_config.NumberColumn("Input (USD)", format="$%.4g"),
                "Output": st.column_config.NumberColumn("Output (USD)", format="$%.4g"),
            },
        )
    else:
        st.caption("No price overrides: every model is priced from LiteLLM's map.")
    with st.form(form_key("gateway-price")):
        left, right = st.columns(2)
        model = left.text_input(
            "Model", placeholder="as the gateway logs it, e.g. support-assistant"
        )
        unit = right.selectbox(
            "Prices per", [u.value for u in PriceUnit], index=1,
            format_func=lambda u: f"{PriceUnit(u).tokens:,} tokens",
        )  # fmt: skip
        a, b = st.columns(2)
        input_price = a.text_input("Input price (USD)", placeholder="0.80")
        output_price = b.text_input("Output price (USD)", placeholder="3.20")
        note = st.text_input("Note", placeholder="e.g. Enterprise agreement 2026, §4")
        if not st.form_submit_button("Save model price", type="primary"):
            return
        saved = attempt(
            lambda: admin.set_price_override(
                database(),
                actor=current_actor(),
                model=model,
                unit=PriceUnit(unit),
                input_price=_dollars(input_price, "Input price"),
                output_price=_dollars(output_price, "Output price"),
                note=note,
            )
        )
    if saved is not None:
        renew_form("gateway-price")
        repriced = attempt(
            lambda: reprice_unpriced(database(), actor=current_actor(), model=saved.model)
        )
        past = (
            f" {repriced:,} stored requests that had no price now have a cost." if repriced else ""
        )
        flash(
            f"{saved.model} is now priced at ${saved.input_price} in, "
            f"${saved.output_price} out.{past}"
        )
        st.rerun()


def _dollars(text: str, label: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"{label}: enter a number of dollars, e.g. 0.80.") from None
    if not value.is_finite():
        raise ValidationError(f"{label}: enter a number of dollars, e.g. 0.80.")
    return value


def _identities() -> None:
    rows = attempt(lambda: admin.list_identity_mappings(database(), actor=current_actor()))
    if rows is None:
        return
    if rows:
        st.dataframe(
            pd.DataFrame(
                {
                    "ARN": [r.arn for r in rows],
                    "Team": [r.team for r in rows],
                    "User": [r.user or "—" for r in rows],
                    "Set by": [r.updated_by for r in rows],
                }
            ),
            hide_index=True,
            width="stretch",
            height=table_height(len(rows), max_rows=12),
        )
    else:
        st.caption("No identities mapped yet: Bedrock traffic without requestMetadata has no team.")
    with st.form(form_key("gateway-identity")):
        arn = st.text_input("ARN", placeholder="arn:aws:iam::123456789012:role/search-app")
        left, right = st.columns(2)
        team = left.text_input("Team")
        user = right.text_input("User (optional)")
        if not st.form_submit_button("Save mapping", type="primary"):
            return
        saved = attempt(
            lambda: admin.set_identity_mapping(
                database(), actor=current_actor(), arn=arn, team=team, user=user
            )
        )
    if saved is not None:
        renew_form("gateway-identity")
        flash(f"Bedrock traffic of {saved.arn} now counts for {saved.team}.")
        st.rerun()
