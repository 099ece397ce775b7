"""Usage page, billed vs estimated: what AWS Cost Explorer billed per team tag beside what the
gateway logs estimate for Bedrock. Asking AWS costs money and time, so it runs on a button
press and the answer is kept in the session for the same dates."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import money, table_height
from pages.components.usage_tables import csv_button
from services import aws
from services.gateway import billing
from services.gateway.billing import Reconciliation

RESULT_KEY = "usage-billing-result"


def render(start: date, end: date) -> None:
    st.subheader("Billed vs estimated", anchor=False)
    current = settings()
    reason = aws.not_configured_reason(current)
    if reason:
        st.info(
            "Comparing with the AWS bill needs AWS: set **PORTAL_AWS_REGION** (and credentials "
            "that may call Cost Explorer) and restart the portal. The estimates above come "
            "from the gateway logs and do not need it.",
            icon=":material/cloud_off:",
        )
        return
    st.caption(
        f"Bedrock cost per team as the gateway logs estimate it, beside what AWS billed for the "
        f"`{current.cost_allocation_tag}` cost allocation tag, {start} to {end}. Cost Explorer "
        "charges per request and lags the usage by up to a day."
    )
    kept: dict[tuple[date, date], Reconciliation] = st.session_state.setdefault(RESULT_KEY, {})
    if st.button("Compare with the AWS bill", icon=":material/receipt_long:"):
        with st.spinner("Asking AWS Cost Explorer…"):
            found = attempt(
                lambda: billing.reconcile(
                    database(), current, actor=current_actor(), start=start, end=end
                )
            )
        if found is not None:
            kept[(start, end)] = found
    result = kept.get((start, end))
    if result is None:
        if kept:
            st.caption("The last comparison was for other dates; compare again for these.")
        return
    _show(result)


def _show(result: Reconciliation) -> None:
    rows = result.rows
    if not rows:
        st.info(
            "Neither the gateway logs nor the bill show Bedrock cost for these dates.",
            icon=":material/receipt_long:",
        )
    else:
        shown = pd.DataFrame(
            {
                "Team": [r["team"] for r in rows],
                "Estimated (USD)": [float(r["estimated_usd"]) for r in rows],
                "Billed (USD)": [float(r["billed_usd"]) for r in rows],
                "Difference (USD)": [float(r["difference_usd"]) for r in rows],
            }
        )
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            height=table_height(len(shown)),
            column_config={
                c: st.column_config.NumberColumn(format="dollar")
                for c in ("Estimated (USD)", "Billed (USD)", "Difference (USD)")
            }
            | {
                "Difference (USD)": st.column_config.NumberColumn(
                    format="dollar", help="Billed minus estimated: positive, the bill is higher"
                )
            },
        )
        csv_button(
            rows,
            ["team", "estimated_usd", "billed_usd", "difference_usd"],
            "billed-vs-estimated",
            "csv-billing",
        )
    if result.billed_by_service:
        services = sorted(result.billed_by_service.items(), key=lambda kv: -kv[1])
        text = ", ".join(f"{name} {money(amount)}" for name, amount in services[:6])
        st.caption(f"Billed by service over the same dates: {text}.")
