"""Login, first-run setup, session checks and the refusal page, around streamlit-authenticator.

streamlit-authenticator renders the login form, keeps the login in session state and signs
the re-authentication cookie. The portal checks passwords itself (``services.auth``), so the
lockout and disabled accounts are enforced by the service and bcrypt hashes never leave the
database layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from models.types import utcnow
from models.user import User, UserCreate
from pages.components.context import USER_KEY, current_actor
from pages.components.feedback import attempt, passwords_match
from pages.components.guard import show_refusal
from pages.components.navigation import SPECS_BY_KEY, PageSpec
from services import auth, users
from services.config import Settings
from services.db import Database
from services.errors import AuthenticationFailed, PortalError
from services.portal_home import cookie_key
from services.validation import parse

log = logging.getLogger(__name__)

SESSION_STARTED_KEY = "portal_session_started_at"
SETUP_DONE_KEY = "portal_setup_done"
LOGIN_NOTICE_KEY = "portal_login_notice"
LOGOUT_REASON_KEY = "portal_logout_reason"
LOGOUT_REQUESTED_KEY = "portal_logout_requested"
COOKIE_PENDING_KEY = "portal_cookie_pending"


def build_authenticator(db: Database, settings: Settings) -> stauth.Authenticate:
    """A fresh authenticator for this run, wired to the portal's own password check."""
    signed_in = st.session_state.get("authentication_status") and st.session_state.get("username")
    user = auth.active_user(db, signed_in) if signed_in else None
    directory = (
        {"usernames": {user.username: {"name": user.display_name, "roles": list(user.roles)}}}
        if user is not None
        else auth.login_directory(db)
    )
    authenticator = stauth.Authenticate(
        directory,
        cookie_name=settings.cookie_name,
        cookie_key=cookie_key(settings),
        cookie_expiry_days=settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,  # cookies come from st.context, so there is nothing to wait for
    )
    model = authenticator.authentication_controller.authentication_model

    def check_credentials(username: str, password: str) -> bool:
        auth.authenticate(db, username=username, password=password)  # raises when refused
        st.session_state[SESSION_STARTED_KEY] = utcnow()
        for notice in (LOGIN_NOTICE_KEY, LOGOUT_REASON_KEY):
            st.session_state.pop(notice, None)
        return True

    # The library's own check compares against hashes in its dict and counts failures in
    # memory forever; the portal's check enforces lockout and disabled accounts in the DB.
    model.check_credentials = check_credentials
    _refuse_malformed_cookies(authenticator)
    return authenticator


def _refuse_malformed_cookies(authenticator: stauth.Authenticate) -> None:
    """The library catches a bad signature but lets other token errors escape (an unsigned
    ``alg: none`` cookie raised InvalidAlgorithmError and broke the login page for whoever
    sent it); any token PyJWT refuses counts as no cookie."""
    cookie_model = authenticator.cookie_controller.cookie_model
    decode = cookie_model._token_decode

    def token_decode() -> object:
        try:
            return decode()
        except jwt.InvalidTokenError:
            return False

    cookie_model._token_decode = token_decode


def resolve_user(
    authenticator: stauth.Authenticate, db: Database, settings: Settings
) -> User | None:
    """Log in from the cookie if there is one, then load the user from the database.

    Returns None when nobody is logged in, and logs out a session whose account was disabled
    or whose password changed since the session began."""
    was_signed_in = bool(st.session_state.get("authentication_status"))
    try:
        authenticator.login(location="unrendered")
    except LoginError:  # a cookie for an account that no longer exists or is disabled
        return None
    if not st.session_state.get("authentication_status"):
        return None
    if not was_signed_in:  # just restored from the cookie
        st.session_state[SESSION_STARTED_KEY] = _cookie_issued_at(authenticator, settings)
    user = auth.active_user(db, st.session_state.get("username"))
    started: datetime | None = st.session_state.get(SESSION_STARTED_KEY)
    reason = None
    if user is None:
        reason = "Your account is disabled or no longer exists."
    elif started is None or user.password_changed_at > started:
        reason = "Your password was changed. Please log in again."
    elif user.sessions_ended_at is not None and user.sessions_ended_at >= started:
        reason = "This session has ended: you logged out. Please log in again."
    if reason is not None:
        authenticator.logout(location="unrendered")
        st.session_state.pop(USER_KEY, None)
        st.session_state[LOGOUT_REASON_KEY] = reason
        return None
    return user


def _cookie_issued_at(authenticator: stauth.Authenticate, settings: Settings) -> datetime | None:
    token = authenticator.cookie_controller.cookie_model.token
    if not isinstance(token, dict) or "exp_date" not in token:
        return None
    expires = datetime.fromtimestamp(float(token["exp_date"]), tz=UTC)
    return expires - timedelta(days=settings.cookie_expiry_days)


def login_page(authenticator: stauth.Authenticate) -> Callable[[], None]:
    def login() -> None:
        _delete_leftover_cookie(authenticator)
        _, middle, _ = st.columns([1, 1.6, 1])
        with middle:
            st.title("AI Ops Portal", anchor=False)
            st.caption("Sign in to manage your organisation's foundation models.")
            # Read, not popped: the cookie component reruns this page moments after it is drawn,
            # and the notice must survive that; a successful login clears it.
            reason = st.session_state.get(LOGOUT_REASON_KEY)
            if reason:
                st.warning(reason, icon=":material/logout:")
            notice = st.session_state.get(LOGIN_NOTICE_KEY)
            if notice:
                st.success(notice, icon=":material/check_circle:")
            try:
                authenticator.login(
                    location="main",
                    key="portal-login",
                    fields={
                        "Form name": "Log in",
                        "Username": "Username",
                        "Password": "Password",
                        "Login": "Log in",
                    },
                )
            except AuthenticationFailed as error:
                st.error(str(error), icon=":material/lock:")
            except LoginError as error:
                st.error(str(error), icon=":material/lock:")
            if st.session_state.get("authentication_status"):
                # The menu must be rebuilt for this user, which needs a rerun; the rerun would
                # cut off the cookie component rendered just now, so the next run sets it again.
                st.session_state[COOKIE_PENDING_KEY] = True
                st.rerun()

    return login


def _delete_leftover_cookie(authenticator: stauth.Authenticate) -> None:
    """A login cookie the browser still holds while the login page shows was refused (its
    session ended, its account is gone) or outlived a logout: delete it, again on every run
    until the browser's cookies (the cookie component's report) no longer hold it. The
    component that deletes it is dropped if a rerun replaces the page before it ran."""
    model = authenticator.cookie_controller.cookie_model
    if model.cookie_name in model.cookie_manager.cookies:
        authenticator.cookie_controller.delete_cookie()


def first_admin_page(db: Database) -> None:
    """First run: no administrator exists yet, so offer to create one (as Grafana and Gitea do)."""
    _, middle, _ = st.columns([1, 1.6, 1])
    with middle:
        st.title("Set up the AI Ops Portal", anchor=False)
        st.caption("No administrator exists yet. Create the first one to start.")
        with st.form("first-admin"):
            st.subheader("Create the first administrator", anchor=False)
            username = st.text_input("Username", placeholder="e.g. jane.doe")
            display_name = st.text_input("Full name")
            email = st.text_input("Email (optional)")
            password = st.text_input("Password", type="password", help="At least 12 characters.")
            confirm = st.text_input("Repeat the password", type="password")
            submitted = st.form_submit_button("Create administrator", type="primary")
        if not submitted:
            return
        if not passwords_match(password, confirm):
            return
        form = {
            "username": username,
            "display_name": display_name,
            "email": email,
            "password": password,
            "roles": ["admin"],
        }
        created = attempt(lambda: users.create_first_admin(db, data=parse(UserCreate, form)))
        if created is None:
            return
        st.session_state[LOGIN_NOTICE_KEY] = (
            f"Administrator **{created.username}** created. Log in with the password you chose."
        )
        st.rerun()


def refused_page(spec: PageSpec, user: User) -> Callable[[], None]:
    """What a user sees who opens, by URL, a page their roles do not include."""

    def refused() -> None:
        st.title(spec.title, anchor=False)
        show_refusal(spec.key, user)
        st.page_link(SPECS_BY_KEY["home"].file, label="Back to Home", icon=":material/home:")

    return refused


def request_logout() -> None:
    st.session_state[LOGOUT_REQUESTED_KEY] = True


def end_session_if_requested(authenticator: stauth.Authenticate, db: Database) -> None:
    """Log out before anything is drawn, so this very run shows the login page (no rerun that
    could drop the component deleting the cookie). The cookie is refused from now on too
    (``auth.end_sessions``): a page opened before the browser deletes it stays logged out."""
    if st.session_state.pop(LOGOUT_REQUESTED_KEY, False):
        username = st.session_state.get("username")
        if username:
            auth.end_sessions(db, username)
        authenticator.logout(location="unrendered")
        st.session_state.pop(USER_KEY, None)
        st.session_state.pop(LOGOUT_REASON_KEY, None)
        st.session_state[LOGIN_NOTICE_KEY] = "You have logged out."


def store_cookie_if_pending(authenticator: stauth.Authenticate) -> None:
    if st.session_state.pop(COOKIE_PENDING_KEY, False):
        authenticator.cookie_controller.set_cookie()


def startup_failure(error: PortalError) -> None:
    st.title("AI Ops Portal", anchor=False)
    st.error(f"The portal cannot start. {error}", icon=":material/error:")
    if error.detail:
        with st.expander("Technical detail"):
            st.code(error.detail, language=None)
    st.caption("Fix the setting named above and reload this page. The README lists every setting.")


def password_popover(db: Database) -> None:
    """Let the logged-in user change their own password from the sidebar."""
    with (
        st.popover("Change password", icon=":material/key:", width="stretch"),
        st.form("change-password", clear_on_submit=False),
    ):
        current = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password", help="At least 12 characters.")
        confirm = st.text_input("Repeat the new password", type="password")
        if st.form_submit_button("Change password", type="primary"):
            if not passwords_match(new, confirm):
                return
            changed = attempt(
                lambda: users.change_own_password(
                    db, actor=current_actor(), current_password=current, new_password=new
                )
            )
            if changed is None:
                return
            st.session_state[SESSION_STARTED_KEY] = utcnow()
            st.success("Password changed.")
