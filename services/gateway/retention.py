"""Pruning raw usage events past the retention period. Rollups are kept whole: reports,
budgets and forecasts read them, so they do not change when raw events go."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, func, select

from models.usage import UsageEvent
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import ValidationError
from services.permissions import Permission

PRUNE_BATCH = 50_000


def prune_events(db: Database, *, actor: Actor, keep_days: int, today: date) -> int:
    """Delete raw events of days before ``today - keep_days``, in batches (a short lock each).
    Returns how many were deleted."""
    if keep_days < 1:
        raise ValidationError("Keep at least one day of raw events.", fields={"keep_days": "< 1"})
    cutoff = today - timedelta(days=keep_days)
    table = UsageEvent.__table__  # type: ignore[attr-defined]
    deleted = 0
    with db.read() as session:
        require(session, actor, Permission.INGEST_USAGE)
    while True:
        with db.transaction() as session:
            ids = select(table.c.id).where(table.c.day < cutoff).limit(PRUNE_BATCH)
            result = session.connection().execute(delete(table).where(table.c.id.in_(ids)))
            done = result.rowcount
        deleted += int(done or 0)
        if not done:
            break
    with db.write() as session:
        left = session.execute(select(func.count()).select_from(table)).scalar_one()
        audit.record(
            session,
            actor=actor.username,
            action="usage.prune",
            entity_type="usage_event",
            entity_id=cutoff.isoformat(),
            summary=f"pruned {deleted:,} raw usage events before {cutoff} ({left:,} kept); "
            "rollups unchanged",
        )
    return deleted
