"""Shared fixtures: a clean ``PORTAL_*`` environment per test, and a migrated portal database
on SQLite and, when ``PORTAL_TEST_DATABASE_URL`` is set, on a real PostgreSQL too.

CI sets ``PORTAL_TEST_REQUIRE=postgres,browser`` so that a missing PostgreSQL or Chromium
fails the run instead of skipping those tests."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from models.user import Role, UserCreate
from services import users
from services.access import Actor
from services.auth import active_user
from services.config import get_settings
from services.db import Database, upgrade_schema

# Importing page modules outside a Streamlit run makes Streamlit warn once per call; the
# warning says itself that it "can be ignored", and it buries real output.
for _noisy in (
    "streamlit.runtime.scriptrunner_utils.script_run_context",
    "streamlit.runtime.caching.cache_data_api",
):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

PG_URL_VAR = "PORTAL_TEST_DATABASE_URL"
REQUIRED = {part.strip() for part in os.environ.get("PORTAL_TEST_REQUIRE", "").split(",") if part}
PASSWORD = "correct horse battery staple"


# Run in parallel (pytest-xdist, ``-n 2`` in pyproject.toml), tests that each drive a
# browser or really train a model share one worker, in file order: two of them at once on a
# 2-core machine would starve each other (a training run, a Streamlit server and Chromium each
# want a core), and the browser tests share one portal whose first test must meet it fresh.
# (A scheduler of our own: xdist's ``loadgroup`` does not see ``xdist_group`` marks under
# pytest 9, whose node ids no longer follow the ``_nodeid`` that xdist rewrites.)
SERIAL_FOLDERS = ("tests/e2e/", "tests/integration/training/")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class SerialGroupScheduling(LoadScopeScheduling):
        """Every test its own unit of work, except those under ``SERIAL_FOLDERS``: one unit,
        the largest, so it is handed out first."""

        def _split_scope(self, nodeid: str) -> str:
            return "serial" if nodeid.startswith(SERIAL_FOLDERS) else nodeid

    return SerialGroupScheduling(config, log)


def require_or_skip(what: str, reason: str) -> None:
    """Skip a test whose real component is missing here, unless CI says it is mandatory."""
    if what in REQUIRED:
        pytest.fail(f"{reason} (PORTAL_TEST_REQUIRE includes {what!r})")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the whole run: creating one costs seconds, and the app prepares
    the store of its tracking URI in the background whenever it starts."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def portal_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_tracking_uri: str
) -> Iterator[Path]:
    """Each test gets its own PORTAL_HOME and no PORTAL_* settings leaking in from outside."""
    for name in list(os.environ):
        if name.startswith("PORTAL_") and not name.startswith("PORTAL_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "portal-home"
    monkeypatch.setenv("PORTAL_HOME", str(home))
    monkeypatch.setenv("PORTAL_MLFLOW_TRACKING_URI", shared_tracking_uri)
    monkeypatch.setenv("PORTAL_BCRYPT_ROUNDS", "4")  # fast hashes in tests; 12 by default
    monkeypatch.setenv("PORTAL_START_WORKER", "false")  # tests run workers themselves
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


class PostgresSchemas:
    """One throwaway schema per test on the real PostgreSQL, dropped afterwards."""

    def __init__(self, base_url: str) -> None:
        self.base_url = make_url(base_url)
        self.admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")

    def check(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SELECT 1"))

    def create(self) -> tuple[str, str]:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = self.base_url.update_query_dict({"options": f"-csearch_path={schema}"})
        return schema, url.render_as_string(hide_password=False)

    def drop(self, schema: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresSchemas | None]:
    url = os.environ.get(PG_URL_VAR)
    if not url:
        yield None
        return
    schemas = PostgresSchemas(url)
    try:
        schemas.check()
    except Exception as exc:
        pytest.fail(f"{PG_URL_VAR} is set but PostgreSQL cannot be reached: {exc}")
    yield schemas
    schemas.admin.dispose()


def database_url(
    kind: str, tmp_path: Path, postgres: PostgresSchemas | None, request: pytest.FixtureRequest
) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.db'}"
    if postgres is None:
        require_or_skip("postgres", f"{PG_URL_VAR} is not set")
    assert postgres is not None
    schema, url = postgres.create()
    request.addfinalizer(lambda: postgres.drop(schema))
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresSchemas | None) -> str:
    """A URL to an empty database of each kind."""
    return database_url(request.param, tmp_path, postgres, request)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """The portal database at the newest migration, on SQLite and on PostgreSQL."""
    database = Database(db_url)
    upgrade_schema(database)
    yield database
    database.dispose()


@pytest.fixture
def app_db() -> Iterator[Database]:
    """The embedded-default database (in this test's PORTAL_HOME) that the app opens when a
    test runs it under AppTest."""
    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    yield db
    db.dispose()


def make_user(
    db: Database,
    username: str,
    *roles: Role | str,
    team_id: int | None = None,
    password: str = PASSWORD,
) -> Actor:
    """Create a user through the service (as the command line would) and act as them."""
    data = UserCreate(
        username=username,
        display_name=username.title(),
        team_id=team_id,
        roles=[str(r) for r in roles],
        password=password,
    )
    if users.needs_first_admin(db) and Role.ADMIN in data.roles:
        users.create_first_admin(db, data=data)
    else:
        users.create_user(db, actor=Actor.command_line(), data=data)
    user = active_user(db, username)
    assert user is not None
    return Actor.of(user)


@pytest.fixture
def admin(db: Database) -> Actor:
    return make_user(db, "root.admin", Role.ADMIN)
