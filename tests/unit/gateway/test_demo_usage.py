"""The demo's gateway traffic tells the story the demo promises: through the real ingest,
three months with quiet weekends, Search over its budget, Customer Care past its warning,
an unpriced model shown as such, and the support assistant's cost on its model card."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from models.registry import ModelVersion
from models.usage import GatewayModelLink
from models.user import Role
from services import demo
from services.access import Actor
from services.auth import active_user
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.gateway import budgets, reports
from services.gateway.model_usage import version_usage
from services.gateway.scope import UsageQuery
from tests.conftest import make_user

NOW = datetime(2026, 11, 26, 18, tzinfo=UTC)  # a Thursday evening


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Database:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'portal.db'}")
    upgrade_schema(db)
    make_user(db, "root.admin", Role.ADMIN)
    demo.seed(db)
    from services.gateway.demo import seed_usage

    assert "gateway requests over 91 days" in seed_usage(db, get_settings(), now=NOW)
    assert seed_usage(db, get_settings(), now=NOW) == "gateway usage already present"
    return db


def test_three_months_with_quiet_weekends(seeded: Database) -> None:
    cli = Actor.command_line()
    query = UsageQuery(start=date(2026, 8, 27), end=date(2026, 11, 26), group_by=("day",))
    per_day = {r["day"]: r["requests"] for r in reports.grouped(seeded, actor=cli, query=query)}
    assert len(per_day) == 92
    saturday, monday = date(2026, 11, 21), date(2026, 11, 23)
    assert per_day[saturday] < per_day[monday] / 2
    models = {
        r["model"]: r
        for r in reports.grouped(seeded, actor=cli, query=UsageQuery(
            start=date(2026, 8, 27), end=date(2026, 11, 26), group_by=("model",)))
    }  # fmt: skip
    router = models["inhouse-router-7b"]
    free = router["errors"] + router["cache_hits"]  # refused or answered from cache: no cost
    assert router["unpriced_requests"] == router["requests"] - free > 1_000
    assert router["errors"] > 0 and router["cache_hits"] > 0


def test_one_team_overspends_and_one_is_warned(seeded: Database) -> None:
    statuses = {
        s.team: s
        for s in budgets.team_budgets(
            seeded, get_settings(), actor=Actor.command_line(), today=NOW.date()
        )
    }
    assert statuses["Search"].forecast > statuses["Search"].amount
    assert statuses["Customer Care"].at_risk
    assert not statuses["Payments"].at_risk


def test_the_support_assistant_card_shows_its_cost(seeded: Database) -> None:
    user = active_user(seeded, "dana")
    assert user is not None
    with seeded.read() as session:
        link = session.exec(select(GatewayModelLink)).one()
        version = session.get(ModelVersion, link.model_version_id)
    assert version is not None and version.stage == "production"
    usage = version_usage(
        seeded, actor=Actor.of(user), version_id=link.model_version_id, end=NOW.date()
    )
    assert usage.gateway_models == ["support-assistant"] and usage.requests > 1_000
    assert usage.cost > 0 and usage.unpriced_requests == 0  # the negotiated price applies
