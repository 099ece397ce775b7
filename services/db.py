"""The portal database: one engine per process and two kinds of unit of work.

``Database.read()`` gives a session for queries. ``Database.write()`` gives a session inside
a transaction that commits on success and rolls back on any error; it first locks the audit
chain head, which serialises writers on PostgreSQL (``SELECT ... FOR UPDATE``) just as
``BEGIN IMMEDIATE`` does on SQLite. Every change and its audit event therefore land together
or not at all, and check-then-act races (the first administrator, duplicate names) cannot
interleave.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, Engine, create_engine, event, func, or_, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from models.audit import AuditChainHead
from services.errors import DatabaseUnavailable, TransactionConflict

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_WRITE_OPTION = "portal_write"
_MIGRATION_LOCK_ID = 7_413_902  # arbitrary, identifies the portal's migration advisory lock
MIGRATION_LOCK = threading.Lock()
"""Alembic keeps its running context in module globals, so two migrations in one process
(the portal's and MLflow's own, run by its store) must never overlap."""


class Database:
    """Engine plus the read and write units of work for one database URL."""

    def __init__(self, url: str | URL, *, connect_timeout: int = 5) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _create_engine(self.url, connect_timeout)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, safe to show and log."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries. Objects stay usable after it closes."""
        with _translate_errors(self), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        with (
            _translate_errors(self),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            head = session.exec(
                select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
            ).one_or_none()
            if head is None:
                raise DatabaseUnavailable(
                    "The portal database has no audit chain yet: run `python -m services.cli init`."
                )
            session.info["audit_head"] = head
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A transaction without the audit lock, for bookkeeping that records no audit event
        (job progress, heartbeats, queue claims). On SQLite it still takes the write lock at
        BEGIN; on PostgreSQL rows are locked where the caller asks (``FOR UPDATE``)."""
        with (
            _translate_errors(self),
            Session(self._write_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` with a plain reason if the database cannot be used."""
        with _translate_errors(self), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def text_match(term: str, *columns: Any) -> ColumnElement[bool]:
    """Case-insensitive "contains" over several columns, for search boxes: the user's text is
    taken literally (``%`` and ``_`` are not wildcards) and control characters are dropped."""
    cleaned = "".join(ch for ch in term.strip().lower() if unicodedata.category(ch) != "Cc")
    return or_(*(func.lower(column).contains(cleaned, autoescape=True) for column in columns))


def _create_engine(url: URL, connect_timeout: int) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _make_sqlite_transactional(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = connect_timeout
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy emit BEGIN itself (pysqlite's own handling defers it), and take the
    write lock at BEGIN for write units of work so concurrent writers queue instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


CONFLICT_STATES = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure


@contextmanager
def _translate_errors(db: Database) -> Iterator[None]:
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning("database error on %s: %s", db.display_url, reason)
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            raise DatabaseUnavailable(
                "The portal database has no schema yet: run `python -m services.cli init`.",
                detail=reason,
            ) from exc
        if getattr(exc.orig, "sqlstate", None) in CONFLICT_STATES:
            raise TransactionConflict(
                "Another transaction in the portal database needed the same rows at the same "
                f"time and this one was stopped ({reason}); nothing was saved. Try again.",
                detail=reason,
            ) from exc
        if db.is_sqlite and "database is locked" in reason:
            raise DatabaseUnavailable(
                f"The portal database at {db.display_url} is busy: another process has held "
                "its write lock for too long (database is locked). Try again in a moment.",
                detail=reason,
            ) from exc
        raise DatabaseUnavailable(
            f"Cannot use the portal database at {db.display_url}: {reason}. "
            "Check PORTAL_DATABASE_URL and that the database server is running.",
            detail=reason,
        ) from exc


def _alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", db.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None, "migrations/versions has no revision"
    return head


def current_revision(db: Database) -> str | None:
    with _translate_errors(db), db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_schema(db: Database) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest migration. Safe to run again, and from
    several processes at once (PostgreSQL serialises them with an advisory lock).
    Returns the revision before and after."""
    config = _alembic_config(db)
    with MIGRATION_LOCK, _translate_errors(db), db.engine.begin() as conn:
        if db.url.get_backend_name() == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        before = MigrationContext.configure(conn).get_current_revision()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head_revision()
