"""Home: per role, what needs the user's attention."""

from __future__ import annotations

import streamlit as st

from models.user import Role
from pages.components.context import current_actor, database
from pages.components.feedback import attempt
from pages.components.guard import page_user
from pages.components.navigation import SPECS_BY_KEY
from pages.components.promotions_home import my_requests, waiting_for_me
from pages.components.usage_budgets import at_risk_panel
from services import attention
from services.permissions import Permission, permissions_of

ICONS = {"error": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}

user = page_user("home")
st.subheader(f"Welcome, {user.display_name}", anchor=False)

items: list[attention.AttentionItem] = []
if Role.ADMIN in user.roles:
    overview = attempt(lambda: attention.admin_overview(database(), actor=current_actor()))
    if overview is not None:
        with st.container(horizontal=True):
            st.metric("Active users", overview.active_users, border=True)
            st.metric("Disabled users", overview.disabled_users, border=True)
            st.metric("Teams", overview.teams, border=True)
            st.metric("Audit events", f"{overview.audit_events:,}", border=True)
        items += overview.items
if Permission.VIEW_REGISTRY in permissions_of(user.roles):
    items += attempt(lambda: attention.registry_items(database(), actor=current_actor())) or []
if Permission.LAUNCH_JOBS in permissions_of(user.roles):
    items += attempt(lambda: attention.job_items(database(), actor=current_actor())) or []

granted = permissions_of(user.roles)
if Permission.APPROVE_PROMOTION in granted:
    waiting_for_me()
if Permission.REQUEST_PROMOTION in granted:
    my_requests()
if Permission.MANAGE_BUDGETS in granted:
    at_risk_panel()
has_panels = bool(
    {Permission.APPROVE_PROMOTION, Permission.REQUEST_PROMOTION, Permission.MANAGE_BUDGETS}
    & granted
)

if items:
    st.markdown("#### Needs your attention")
elif not has_panels:  # the panels above say themselves when there is nothing to do
    st.success("Nothing needs your attention right now.", icon=":material/check_circle:")
for item in items:
    with st.container(border=True):
        st.markdown(f"{ICONS[item.severity]} **{item.title}**  \n{item.detail}")
        if item.page:
            spec = SPECS_BY_KEY[item.page]
            st.page_link(spec.file, label=f"Open {spec.title}", icon=":material/arrow_forward:")
