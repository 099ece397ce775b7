"""Process-wide handles (settings, database) and the logged-in user of this session.

The one place that uses ``st.cache_resource``: the engine is shared by every session of the
process, the user is not."""

from __future__ import annotations

import logging
import subprocess

import streamlit as st

from models.user import User
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database, upgrade_schema
from services.portal_home import prepare_runtime
from services.tracking import TrackingStoreWarmup

log = logging.getLogger(__name__)

USER_KEY = "portal_user"


@st.cache_resource(show_spinner="Opening the portal database…")
def _open_database(url: str) -> Database:
    db = Database(url)
    db.ping()
    before, after = upgrade_schema(db)
    if before != after:
        log.info("portal database %s migrated from %s to %s", db.display_url, before, after)
    return db


@st.cache_resource(show_spinner=False)
def _tracking_warmup(uri: str) -> TrackingStoreWarmup:
    return TrackingStoreWarmup(settings())


@st.cache_resource(show_spinner=False)
def _training_worker(home: str) -> subprocess.Popen[bytes] | None:
    from services.training.daemon import start_alongside_app

    return start_alongside_app(settings())


def tracking_store_state() -> str:
    """How the MLflow tracking store is doing (prepared in the background at start-up)."""
    return _tracking_warmup(settings().resolved_tracking_uri).state


def settings() -> Settings:
    return get_settings()


def database() -> Database:
    """The portal database, created or upgraded to the newest schema on first use."""
    current = settings()
    prepare_runtime(current)
    db = _open_database(current.resolved_database_url)
    _tracking_warmup(current.resolved_tracking_uri)
    _training_worker(str(current.home_dir))
    return db


def current_user() -> User:
    """The logged-in user, as loaded from the database at the start of this run."""
    user: User | None = st.session_state.get(USER_KEY)
    if user is None:
        raise RuntimeError("no logged-in user: pages run only after app.py has authenticated")
    return user


def current_actor() -> Actor:
    return Actor.of(current_user())
