"""Admin page, Prices tab: the training price table the cost estimates use, with where each
price comes from, and the overrides admins set for negotiated rates or missing items."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from models.training import Backend
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form, show_error
from pages.components.formatting import local_time, table_height
from services.errors import PortalError
from services.training import pricing


def render() -> None:
    actor = current_actor()
    prices = attempt(lambda: pricing.list_prices(database(), actor=actor))
    if prices is None:
        return
    zone = settings().zone
    st.dataframe(
        pd.DataFrame(
            {
                "Backend": [Backend(p.backend).label for p in prices],
                "Item": [p.item for p in prices],
                "Price (USD)": [float(p.price) for p in prices],
                "Per": [p.unit for p in prices],
                "Source": [p.source for p in prices],
                "As of": [local_time(p.as_of, zone, with_zone=False)[:10] for p in prices],
                "Overridden by": [p.overridden_by or "" for p in prices],
            }
        ),
        hide_index=True,
        width="stretch",
        height=table_height(len(prices), max_rows=15),
        column_config={"Price (USD)": st.column_config.NumberColumn(format="$%.6g")},
    )
    st.caption(
        "Cost estimates on the Fine-tuning page use these prices. An override wins over the "
        "bundled table until it is removed."
    )
    left, right = st.columns(2)
    with left:
        _override_form()
    overridden = [p for p in prices if p.overridden]
    with right:
        if overridden:
            _clear_form(overridden)


def _override_form() -> None:
    with st.form(form_key("price-override")):
        st.markdown("**Set a price**")
        backend = st.selectbox(
            "Backend",
            [Backend.SAGEMAKER.value, Backend.BEDROCK.value],
            format_func=lambda b: Backend(b).label,
        )
        item = st.text_input(
            "Instance type or Bedrock base model",
            placeholder="ml.g5.xlarge or amazon.nova-lite-v1:0",
        )
        price = st.text_input(
            "Price in USD", placeholder="per hour (SageMaker) or per 1,000 tokens (Bedrock)"
        )
        source = st.text_input("Source", placeholder="e.g. Enterprise agreement 2026, §4")
        if not st.form_submit_button("Save price", type="primary"):
            return
        saved = attempt(
            lambda: pricing.set_price(
                database(),
                actor=current_actor(),
                backend=backend,
                item=item,
                price=price,
                source=source,
            )
        )
    if saved is not None:
        renew_form("price-override")
        flash(f"{saved.item} now costs ${saved.price} per {saved.unit}.")
        st.rerun()


def _clear_form(overridden: list[pricing.Price]) -> None:
    st.markdown("**Remove an override**")
    labels = {
        f"{p.backend}:{p.item}": f"{p.item} ({Backend(p.backend).label}, ${p.price})"
        for p in overridden
    }
    chosen = st.selectbox("Override", list(labels), format_func=labels.__getitem__)
    if st.button("Remove override"):
        backend, item = chosen.split(":", 1)
        try:
            pricing.clear_override(database(), actor=current_actor(), backend=backend, item=item)
        except PortalError as error:
            show_error(error)
        else:
            flash(f"Removed the override of {item}.")
            st.rerun()
