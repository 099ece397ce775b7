"""Admin: users, teams, prices (training and gateway), Bedrock identities, promotion policies,
the audit log and what the portal runs on."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.components import (
    admin_audit,
    admin_gateway,
    admin_policies,
    admin_prices,
    admin_teams,
    admin_users,
)
from pages.components.context import current_actor, database, settings, tracking_store_state
from pages.components.feedback import attempt, show_flash
from pages.components.formatting import table_height
from pages.components.guard import page_user
from services.system import system_status

page_user("admin")
show_flash()

users_tab, teams_tab, prices_tab, gateway_tab, policies_tab, audit_tab, system_tab = st.tabs(
    ["Users", "Teams", "Prices", "Gateway", "Policies", "Audit log", "System"]
)
with users_tab:
    admin_users.render()
with teams_tab:
    admin_teams.render()
with prices_tab:
    admin_prices.render()
with gateway_tab:
    admin_gateway.render()
with policies_tab:
    admin_policies.render()
with audit_tab:
    admin_audit.render()
with system_tab:
    status = attempt(
        lambda: system_status(
            database(), settings(), actor=current_actor(), tracking_state=tracking_store_state()
        )
    )
    if status is not None:
        st.dataframe(
            pd.DataFrame(status.rows, columns=["Setting", "In effect", "Source"]),
            hide_index=True,
            width="stretch",
            height=table_height(len(status.rows), max_rows=20),
        )
        st.caption(
            "Change a setting through its PORTAL_* environment variable and restart the portal."
        )
