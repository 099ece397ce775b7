"""First line of every page: make sure the router authenticated this session and that the
user's roles open the page.

``app.py`` already leaves forbidden pages out of the menu and answers their URLs with a
refusal. This guard is the second lock, so that a page script run any other way (a test, a
future change to the router) shows nothing without a login and the right role."""

from __future__ import annotations

import streamlit as st

from models.user import User
from pages.components.context import USER_KEY
from pages.components.formatting import role_labels
from pages.components.layout import page_header
from services.permissions import PAGES


def page_user(key: str) -> User:
    """The logged-in user allowed on page ``key``; otherwise stop the page with the reason."""
    user: User | None = st.session_state.get(USER_KEY)
    if user is None:
        st.warning("Please log in to use the portal.", icon=":material/login:")
        st.markdown("[Go to the login page](/)")
        st.stop()
    if not PAGES[key].allows(user.roles):
        show_refusal(key, user)
        st.stop()
    page_header(key)
    return user


def show_refusal(key: str, user: User) -> None:
    needed = ", ".join(r.label.lower() for r in PAGES[key].required_roles())
    st.error(
        f"You do not have access to this page. It needs one of these roles: {needed}. "
        f"You have: {role_labels(user.roles).lower()}.",
        icon=":material/block:",
    )
    st.caption("Ask an administrator if you need access.")
