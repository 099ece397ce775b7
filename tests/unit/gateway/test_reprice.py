"""A price set for a model that had none costs its stored requests, and every report moves
with them: the unpriced count falls, the spend rises, both rollups agree."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from models.usage import PriceUnit, UsageSource
from models.user import Role
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import PermissionDenied
from services.gateway import reports
from services.gateway.admin import set_price_override
from services.gateway.ingest import ingest
from services.gateway.reprice import reprice_unpriced
from services.gateway.scope import UsageQuery
from tests.conftest import make_user
from tests.unit.gateway.support import litellm, write_lines

CLI = Actor.command_line()
NOON = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()
MONTH = UsageQuery(start=date(2026, 11, 1), end=date(2026, 11, 30))


def test_a_new_price_costs_the_stored_unpriced_requests(db: Database, tmp_path: Path) -> None:
    records = [
        litellm(f"u{i}", NOON + i, model="inhouse-7b", custom_llm_provider="hosted_vllm",
                response_cost=None, user=f"user{i % 2}", prompt_tokens=1_000_000,
                completion_tokens=100_000)
        for i in range(3)
    ] + [litellm("p1", NOON, response_cost=0.5)]  # fmt: skip
    ingest(
        db, get_settings(), actor=CLI, source=UsageSource.LITELLM,
        location=str(write_lines(tmp_path / "mixed.jsonl", records)),
    )  # fmt: skip
    before = reports.kpis(db, actor=CLI, query=MONTH)
    assert (before.unpriced_requests, before.spend) == (3, Decimal("0.5"))
    assert reprice_unpriced(db, actor=CLI, model="inhouse-7b") == 0  # still no price

    set_price_override(
        db, actor=CLI, model="inhouse-7b", unit=PriceUnit.PER_1M,
        input_price=Decimal("0.20"), output_price=Decimal("1.00"),
    )  # fmt: skip
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied):
        reprice_unpriced(db, actor=scientist, model="inhouse-7b")
    assert reprice_unpriced(db, actor=CLI, model="inhouse-7b") == 3
    after = reports.kpis(db, actor=CLI, query=MONTH)
    assert after.unpriced_requests == 0
    assert after.spend == Decimal("0.5") + 3 * (Decimal("0.20") + Decimal("0.10"))
    by_team_model = UsageQuery(start=MONTH.start, end=MONTH.end, group_by=("team", "model"))
    by_user = UsageQuery(start=MONTH.start, end=MONTH.end, group_by=("user", "model"))
    coarse = sum(r["cost_usd"] for r in reports.grouped(db, actor=CLI, query=by_team_model))
    fine = sum(r["cost_usd"] for r in reports.grouped(db, actor=CLI, query=by_user))
    assert coarse == fine == after.spend
    assert reprice_unpriced(db, actor=CLI, model="inhouse-7b") == 0  # nothing left to price
