"""Cost per model version (gateway model names linked to registry versions) and pruning raw
events without changing any report."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from models.usage import UsageEvent, UsageSource
from models.user import Role
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.gateway import reports
from services.gateway.ingest import ingest
from services.gateway.model_usage import link_gateway_model, version_usage
from services.gateway.retention import prune_events
from services.gateway.scope import UsageQuery
from tests.conftest import make_user
from tests.promotion_support import model_with_versions
from tests.unit.gateway.support import litellm, write_lines

CLI = Actor.command_line()


def noon(day: int) -> float:
    return datetime(2026, 11, day, 12, tzinfo=UTC).timestamp()


def load(db: Database, tmp_path: Path, records: list[dict[str, object]]) -> None:
    ingest(
        db, get_settings(), actor=CLI, source=UsageSource.LITELLM,
        location=str(write_lines(tmp_path / f"{len(records)}.jsonl", records)),
    )  # fmt: skip


def test_a_model_card_shows_the_cost_of_its_gateway_models(
    db: Database, admin: Actor, tmp_path: Path
) -> None:
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    _, (v1, _) = model_with_versions(db, scientist)
    link_gateway_model(db, actor=scientist, version_id=v1, gateway_model="support-assistant")
    load(db, tmp_path, [
        litellm("s1", noon(3), model="support-assistant", response_cost=0.25),
        litellm("s2", noon(4), model="support-assistant", team="Search", response_cost=0.5),
        litellm("o1", noon(4), model="gpt-4o", response_cost=9.0),
    ])  # fmt: skip
    usage = version_usage(db, actor=scientist, version_id=v1, end=date(2026, 11, 30))
    assert (usage.gateway_models, usage.requests, usage.cost) == (
        ["support-assistant"], 2, Decimal("0.75"),
    )  # fmt: skip
    assert [d for d, _, _ in usage.daily] == [date(2026, 11, 3), date(2026, 11, 4)]
    with pytest.raises(Conflict, match="already linked"):
        link_gateway_model(db, actor=scientist, version_id=v1, gateway_model="support-assistant")
    with pytest.raises(ValidationError, match="Gateway model"):
        link_gateway_model(db, actor=scientist, version_id=v1, gateway_model="has spaces")
    approver = make_user(db, "priya", Role.APPROVER)
    with pytest.raises(PermissionDenied):
        link_gateway_model(db, actor=approver, version_id=v1, gateway_model="other-name")
    manager = make_user(db, "maria", Role.MANAGER)
    with pytest.raises(PermissionDenied):
        version_usage(db, actor=manager, version_id=v1, end=date(2026, 11, 30))


def test_pruning_raw_events_leaves_every_report_unchanged(db: Database, tmp_path: Path) -> None:
    load(db, tmp_path, [litellm(f"r{d}", noon(d), response_cost=0.1 * d) for d in range(1, 11)])
    month = UsageQuery(start=date(2026, 11, 1), end=date(2026, 11, 30), group_by=("day", "model"))
    before = reports.grouped(db, actor=CLI, query=month)
    assert prune_events(db, actor=CLI, keep_days=5, today=date(2026, 11, 10)) == 4
    with db.read() as session:
        kept = sorted(e.request_id for e in session.exec(select(UsageEvent)))
    assert kept == sorted(f"r{d}" for d in range(5, 11))
    assert reports.grouped(db, actor=CLI, query=month) == before
    with pytest.raises(ValidationError, match="at least one day"):
        prune_events(db, actor=CLI, keep_days=0, today=date(2026, 11, 10))
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied):
        prune_events(db, actor=scientist, keep_days=5, today=date(2026, 11, 10))
