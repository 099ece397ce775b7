"""The database layer: migrations, timestamps, and plain messages when the database is
unreachable, empty or not a database at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401  registers the tables
from models.team import TeamCreate
from services import teams, users
from services.access import Actor
from services.db import Database, current_revision, head_revision, upgrade_schema
from services.errors import DatabaseUnavailable


def test_migrations_are_idempotent_and_match_the_models(db: Database) -> None:
    assert current_revision(db) == head_revision()
    assert upgrade_schema(db) == (head_revision(), head_revision())
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_timestamps_come_back_timezone_aware_utc(db: Database, admin: Actor) -> None:
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Clock"))
    assert team.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - team.created_at).total_seconds()) < 60
    listed = teams.list_teams(db)[0]
    assert listed.created_at == team.created_at


def test_unreachable_database_gives_a_plain_message() -> None:
    db = Database("postgresql+psycopg://portal:secret@127.0.0.1:1/portal", connect_timeout=2)
    with pytest.raises(DatabaseUnavailable) as caught:
        db.ping()
    message = str(caught.value)
    assert (
        "Cannot use the portal database at postgresql+psycopg://portal:***@127.0.0.1:1/portal"
        in message
    )
    assert "secret" not in message and "PORTAL_DATABASE_URL" in message


def test_file_that_is_not_a_database_gives_a_plain_message(tmp_path: Path) -> None:
    garbage = tmp_path / "portal.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseUnavailable, match="file is not a database"):
        Database(f"sqlite:///{garbage}").ping()


def test_database_without_schema_says_to_run_init(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseUnavailable, match=r"services\.cli init"):
        users.needs_first_admin(db)
