"""Append-only, hash-chained audit log.

``record`` is called by every service that changes state, inside the same write transaction
(``Database.write``), so a change and its event commit together or not at all. Each event's
hash covers its contents and the previous event's hash; the chain head row keeps the last
sequence number and hash, so ``verify_chain`` finds an edited row, a deleted row and a
truncated tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from models.audit import GENESIS_HASH, AuditChainHead, AuditEvent, AuditEventPublic
from models.types import utcnow
from services.access import Actor, require
from services.db import Database, text_match
from services.permissions import Permission

VERIFY_BATCH = 2_000


def _canonical(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: Any) -> str:
    """SHA-256 over the event's contents and the previous hash, in a fixed layout."""
    payload = {
        "seq": event.seq,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "summary": event.summary,
        "before": event.before,
        "after": event.after,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()  # type: ignore[union-attr]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    summary: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside ``Database.write()``."""
    head: AuditChainHead | None = session.info.get("audit_head")
    if head is None:
        raise RuntimeError("audit.record needs the session of a Database.write() block")
    event = AuditEvent(
        seq=head.last_seq + 1,
        occurred_at=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        summary=summary,
        before=_canonical(before),
        after=_canonical(after),
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = event_hash(event)
    head.last_seq, head.last_hash = event.seq, event.hash
    session.add(event)
    session.add(head)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_event: AuditEventPublic | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"Audit chain verified: {self.checked} events, none altered or missing."
        where = f"event #{self.first_bad_seq}"
        if self.first_bad_event is not None:
            ev = self.first_bad_event
            where += f" ({ev.action} by {ev.actor} at {ev.occurred_at:%Y-%m-%d %H:%M:%S} UTC)"
        return f"Audit chain BROKEN at {where}: {self.reason}"


_CHAIN_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.entity_type,
    AuditEvent.entity_id,
    AuditEvent.summary,
    AuditEvent.before,
    AuditEvent.after,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _events_in_order(session: Session) -> Iterator[Any]:
    """Plain rows in sequence order, in batches (no ORM objects: verification reads millions)."""
    last = 0
    while True:
        batch: Sequence[Any] = session.exec(
            select(*_CHAIN_COLUMNS)  # type: ignore[call-overload]
            .where(AuditEvent.seq > last)
            .order_by(col(AuditEvent.seq))
            .limit(VERIFY_BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


def _problem(event: Any, expected_seq: int, prev_hash: str) -> str | None:
    if event.seq != expected_seq:
        return f"the event is missing (deleted); the log jumps to #{event.seq}"
    if event.prev_hash != prev_hash:
        return "it does not link to the event before it (an earlier event was altered or removed)"
    if event_hash(event) != event.hash:
        return "its contents do not match its hash (the row was altered)"
    return None


def verify_chain(db: Database, *, actor: Actor) -> ChainReport:
    """Walk the whole chain and report the first event that does not check out."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    with db.read() as session:
        require(session, actor, Permission.VIEW_AUDIT)
        head = session.get(AuditChainHead, 1)
        for event in _events_in_order(session):
            problem = _problem(event, expected_seq, prev_hash)
            if problem is not None:
                shown = None
                if event.seq == expected_seq:
                    row = session.exec(select(AuditEvent).where(AuditEvent.seq == event.seq)).one()
                    shown = AuditEventPublic.model_validate(row)
                return ChainReport(False, checked, expected_seq, shown, problem)
            expected_seq, prev_hash, checked = expected_seq + 1, event.hash, checked + 1
    if head is None:
        return ChainReport(False, checked, None, None, "the chain head row is missing")
    if head.last_seq != checked or head.last_hash != prev_hash:
        return ChainReport(
            False,
            checked,
            checked + 1,
            None,
            f"the log ends at #{checked} but the chain head records "
            f"#{head.last_seq} (events were deleted from the end)",
        )
    return ChainReport(True, checked)


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action_prefix: str | None = None
    entity_type: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def search_events(
    db: Database, *, actor: Actor, query: AuditFilter, limit: int, offset: int
) -> tuple[list[AuditEventPublic], int]:
    """Newest first. Returns one page of events and the number that match in all."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_AUDIT)
        return _search(session, query, limit=limit, offset=offset)


def _search(
    session: Session, query: AuditFilter, *, limit: int, offset: int
) -> tuple[list[AuditEventPublic], int]:
    stmt = select(AuditEvent)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.action_prefix:
        stmt = stmt.where(col(AuditEvent.action).startswith(query.action_prefix))
    if query.entity_type:
        stmt = stmt.where(AuditEvent.entity_type == query.entity_type)
    if query.text:
        stmt = stmt.where(text_match(query.text, AuditEvent.summary, AuditEvent.entity_id))
    if query.since:
        stmt = stmt.where(col(AuditEvent.occurred_at) >= query.since)
    if query.until:
        stmt = stmt.where(col(AuditEvent.occurred_at) < query.until)
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(AuditEvent.seq).desc()).limit(limit).offset(offset)).all()
    return [AuditEventPublic.model_validate(r) for r in rows], total


def filter_choices(db: Database, *, actor: Actor) -> tuple[list[str], list[str], list[str]]:
    """Actors, actions and entity types that occur, for the filter pickers."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_AUDIT)
        return _distinct_values(session)


def _distinct_values(session: Session) -> tuple[list[str], list[str], list[str]]:
    actors = session.exec(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor)).all()
    actions = session.exec(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).all()
    types = session.exec(
        select(AuditEvent.entity_type).distinct().order_by(AuditEvent.entity_type)
    ).all()
    return list(actors), list(actions), list(types)
