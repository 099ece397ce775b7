"""AppTest helpers: run app.py headless against the test's PORTAL_HOME, signed in as a user."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from models.types import utcnow
from pages.components.auth_views import SESSION_STARTED_KEY

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=30)


def signed_in(username: str) -> AppTest:
    """An app whose session is already logged in as ``username`` (as after a cookie login)."""
    at = new_app()
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    at.session_state["logout"] = None
    at.session_state[SESSION_STARTED_KEY] = utcnow()
    return at


def texts(at: AppTest) -> str:
    """Everything the page wrote, as one string, for assertions on what a user reads."""
    parts = [e.value for e in (*at.title, *at.markdown, *at.caption, *at.subheader)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)
