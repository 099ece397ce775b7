"""Showing the outcome of an action: errors in the user's words with the technical detail
tucked away, and a toast naming what changed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import TypeVar

import streamlit as st

from models.types import utcnow
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


LAST_GOOD_KEY = "last-good-results"
LAST_GOOD_PER_KIND = 8


def with_last_good(
    kind: str, key: Hashable, load: Callable[[], T]
) -> tuple[T | None, datetime | None]:
    """``load()``, remembered in the session; when a backend does not answer (an
    ``ExternalServiceError``), the last good result for the same ``kind`` and ``key`` with the
    time it was fetched, so the page shows stale data marked as such rather than nothing (the
    error itself only when there is nothing to fall back on). Returns (result, fetched_at):
    fetched_at is None when the result is fresh."""
    remembered = st.session_state.setdefault(LAST_GOOD_KEY, {}).setdefault(kind, {})
    try:
        result = load()
    except ExternalServiceError as error:
        last = remembered.get(key)
        if last is None:
            show_error(error)
            return None, None
        log.warning("showing the last good %s: %s", kind, error)
        return last[1], last[0]  # the caller marks it stale, saying the backend did not answer
    except PortalError as error:
        show_error(error)
        return None, None
    remembered.pop(key, None)
    if len(remembered) >= LAST_GOOD_PER_KIND:
        remembered.pop(next(iter(remembered)))
    remembered[key] = (utcnow(), result)
    return result, None
