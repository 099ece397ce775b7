"""AI Ops Portal: the router. Settings and database, login, then the pages this user's roles
allow (``st.navigation``). Pages a user may not open are absent from the menu, and their URLs
show a refusal instead of the page."""

from __future__ import annotations

import logging

import streamlit as st

from models.user import User
from pages.components import auth_views, context
from pages.components.feedback import show_error
from pages.components.layout import account_summary
from pages.components.navigation import PAGE_SPECS, PageSpec
from services import users
from services.errors import PortalError
from services.permissions import PAGES

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("alembic").setLevel(logging.WARNING)
log = logging.getLogger("portal")

st.set_page_config(page_title="AI Ops Portal", page_icon=":material/hub:", layout="wide")


def _every_path(view: object, title: str) -> list[st.Page]:
    """The same view under every page URL, so a reload or a shared link keeps its path."""
    return [
        st.Page(view, title=title, url_path=spec.url_path or "home", default=spec.key == "home")  # type: ignore[arg-type]
        for spec in PAGE_SPECS
    ]


def _menu(user: User) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    hidden: list[st.Page] = []
    for spec in PAGE_SPECS:
        if PAGES[spec.key].allows(user.roles):
            page = st.Page(
                spec.file,
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path or None,
                default=spec.key == "home",
            )
            sections.setdefault(spec.section, []).append(page)
        else:
            hidden.append(_refusal(spec, user))
    sections[PAGE_SPECS[0].section].extend(hidden)
    return sections


def _refusal(spec: PageSpec, user: User) -> st.Page:
    return st.Page(
        auth_views.refused_page(spec, user),
        title=spec.title,
        icon=":material/block:",
        url_path=spec.url_path,
        visibility="hidden",
    )


def main() -> None:
    try:
        settings = context.settings()
        db = context.database()
        if not st.session_state.get(auth_views.SETUP_DONE_KEY) and users.needs_first_admin(db):
            st.navigation(
                _every_path(lambda: auth_views.first_admin_page(db), "Set up"), position="hidden"
            ).run()
            return
        st.session_state[auth_views.SETUP_DONE_KEY] = True
        authenticator = auth_views.build_authenticator(db, settings)
        auth_views.end_session_if_requested(authenticator, db)
        user = auth_views.resolve_user(authenticator, db, settings)
    except PortalError as error:
        auth_views.startup_failure(error)
        return
    if user is None:
        st.navigation(
            _every_path(auth_views.login_page(authenticator), "Log in"), position="hidden"
        ).run()
        return
    st.session_state[context.USER_KEY] = user
    auth_views.store_cookie_if_pending(authenticator)
    page = st.navigation(_menu(user))
    with st.sidebar:
        account_summary(
            user.display_name, user.username, user.roles, users.team_name(db, user.team_id)
        )
        auth_views.password_popover(db)
        st.button(
            "Log out",
            icon=":material/logout:",
            key="portal-logout",
            on_click=auth_views.request_logout,
            width="stretch",
        )
    _run_page(page)


def _run_page(page: st.Page) -> None:
    """Run the chosen page; whatever escapes it is logged and shown calmly, never a traceback."""
    try:
        page.run()
    except PortalError as error:
        show_error(error)
    except Exception:
        log.exception("page %s failed", page.title)
        st.error(
            "This page failed to load because of an error on our side. It has been logged; "
            "reload the page or tell your administrator.",
            icon=":material/error:",
        )


main()
