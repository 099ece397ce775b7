"""Showing the outcome of an action: errors in the user's words with the technical detail
tucked away, and a toast naming what changed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from services.errors import ExternalServiceError, PortalError

log = logging.getLogger(__name__)

T = TypeVar("T")


def show_error(error: PortalError) -> None:
    st.error(str(error), icon=":material/error:")
    detail = error.detail
    if isinstance(error, ExternalServiceError) and error.code:
        detail = f"Error code: {error.code}\n\n{detail or ''}"
    if detail:
        with st.expander("Technical detail"):
            st.code(detail, language=None)


def attempt(action: Callable[[], T], *, success: str | None = None) -> T | None:
    """Run a service call; show a toast on success or the error on failure (never a traceback).

    Returns the call's result, or None when it failed."""
    try:
        result = action()
    except PortalError as error:
        show_error(error)
        return None
    except Exception:
        log.exception("unexpected error in a page action")
        st.error(
            "Something went wrong on our side and nothing was changed. "
            "The error has been logged; try again or tell your administrator.",
            icon=":material/error:",
        )
        return None
    if success:
        st.toast(success, icon=":material/check_circle:")
    return result


def passwords_match(password: str, repeated: str) -> bool:
    """Say so when the two password fields differ (the form keeps the rest of its input)."""
    if password != repeated:
        st.error("The two passwords do not match.", icon=":material/error:")
        return False
    return True


FLASH_KEY = "portal_flash"


def flash(message: str) -> None:
    """Queue a confirmation to show after the rerun that follows a change."""
    st.session_state[FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.toast(message, icon=":material/check_circle:")


def form_key(name: str) -> str:
    """The key of a create-form; ``renew_form`` changes it so the next run draws it empty."""
    return f"{name}-{st.session_state.get(f'{name}-generation', 0)}"


def renew_form(name: str) -> None:
    """After a successful create, start the next one from blank fields (on errors the form
    keeps its input, because its key stays the same)."""
    st.session_state[f"{name}-generation"] = st.session_state.get(f"{name}-generation", 0) + 1
