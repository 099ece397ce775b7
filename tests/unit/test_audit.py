"""The audit chain: every change writes one event in the same transaction, and any edited,
deleted or truncated event is found. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlmodel import select

from models.audit import AuditEvent
from models.team import TeamCreate
from models.user import Role
from services import audit, teams
from services.access import Actor
from services.db import Database
from services.errors import PermissionDenied
from tests.conftest import make_user

CLI = Actor.command_line()


def seeded(db: Database, admin: Actor, count: int = 5) -> None:
    for i in range(count):
        teams.create_team(db, actor=admin, data=TeamCreate(name=f"Team {i}"))


def test_intact_chain_verifies(db: Database, admin: Actor) -> None:
    seeded(db, admin)
    report = audit.verify_chain(db, actor=CLI)
    assert report.ok and report.checked == 6  # first admin + five teams
    assert "6 events" in report.describe()


def test_edited_event_is_named(db: Database, admin: Actor) -> None:
    seeded(db, admin)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET summary = 'nothing to see' WHERE seq = 3"))
    report = audit.verify_chain(db, actor=CLI)
    assert not report.ok and report.first_bad_seq == 3
    assert "event #3 (team.create by root.admin" in report.describe()
    assert "altered" in report.reason


def test_event_deleted_from_the_middle_is_found(db: Database, admin: Actor) -> None:
    seeded(db, admin)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    report = audit.verify_chain(db, actor=CLI)
    assert not report.ok and report.first_bad_seq == 4 and "deleted" in report.reason


def test_events_deleted_from_the_end_are_found(db: Database, admin: Actor) -> None:
    seeded(db, admin)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq >= 5"))
    report = audit.verify_chain(db, actor=CLI)
    assert not report.ok and report.first_bad_seq == 5 and "deleted from the end" in report.reason


def test_rewritten_event_with_recomputed_hash_breaks_the_next_link(
    db: Database, admin: Actor
) -> None:
    seeded(db, admin)
    with db.write() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.seq == 2)).one()
        event.actor = "somebody-else"
        event.hash = audit.event_hash(event)
        session.add(event)
    report = audit.verify_chain(db, actor=CLI)
    assert not report.ok and report.first_bad_seq == 3 and "does not link" in report.reason


def test_a_failed_change_leaves_neither_change_nor_event(db: Database, admin: Actor) -> None:
    seeded(db, admin, 1)
    with pytest.raises(RuntimeError), db.write() as session:
        audit.record(
            session,
            actor="x",
            action="test.boom",
            entity_type="team",
            entity_id=1,
            summary="never committed",
        )
        raise RuntimeError("boom")
    with db.read() as session:
        assert (
            session.exec(select(AuditEvent).where(AuditEvent.action == "test.boom")).first() is None
        )
    assert audit.verify_chain(db, actor=CLI).ok


def test_concurrent_writers_keep_one_unbroken_chain(db: Database, admin: Actor) -> None:
    errors: list[BaseException] = []

    def create(worker: int) -> None:
        try:
            for i in range(5):
                teams.create_team(db, actor=admin, data=TeamCreate(name=f"W{worker} T{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = audit.verify_chain(db, actor=CLI)
    assert report.ok and report.checked == 1 + 8 * 5


def test_only_admins_browse_or_verify_the_log(db: Database, admin: Actor) -> None:
    for role in (Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER):
        someone = make_user(db, f"user.{role.value}", role)
        with pytest.raises(PermissionDenied):
            audit.verify_chain(db, actor=someone)
        with pytest.raises(PermissionDenied):
            audit.search_events(db, actor=someone, query=audit.AuditFilter(), limit=10, offset=0)


def test_search_filters_and_pages_newest_first(db: Database, admin: Actor) -> None:
    seeded(db, admin, 12)
    events, total = audit.search_events(
        db, actor=admin, query=audit.AuditFilter(action_prefix="team."), limit=5, offset=5
    )
    assert total == 12 and len(events) == 5
    assert [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    found, total = audit.search_events(
        db, actor=admin, query=audit.AuditFilter(text="TEAM 11"), limit=10, offset=0
    )
    assert total == 1 and "Team 11" in found[0].summary


def test_search_text_is_literal_and_survives_odd_characters(db: Database, admin: Actor) -> None:
    teams.create_team(db, actor=admin, data=TeamCreate(name="Growth_100"))
    teams.create_team(db, actor=admin, data=TeamCreate(name="Growth 1000"))

    def hits(text: str) -> int:
        query = audit.AuditFilter(text=text)
        return audit.search_events(db, actor=admin, query=query, limit=10, offset=0)[1]

    assert hits("wth_1") == 1  # "_" is literal, not a one-character wildcard
    assert hits("100%") == 0  # "%" is literal too
    assert hits("'; DROP TABLE audit_event; --") == 0
    assert hits("\x00growth") == 2  # control characters are dropped, not sent to the database
    assert audit.verify_chain(db, actor=CLI).ok
