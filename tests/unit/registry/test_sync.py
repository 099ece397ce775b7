"""The registry sync's upsert rules, with a stand-in source (the real adapters have their own
tests against moto and MLflow): idempotent, never deletes, keeps the portal's stages, records
failures per source. On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from sqlmodel import func, select

from models.audit import AuditEvent
from models.registry import ModelAsset, ModelVersion, Stage
from models.user import Role
from services.access import Actor
from services.db import Database
from services.errors import ExternalServiceError, PermissionDenied
from services.registry import cards, catalog
from services.registry.sources.base import ExternalModel, ExternalVersion
from services.registry.sync import sync_source, sync_status
from tests.conftest import make_user
from tests.unit.registry.test_catalog import promote


@dataclass
class StandInSource:
    """Implements the RegistrySource protocol with a snapshot the test controls."""

    snapshot: list[ExternalModel] = field(default_factory=list)
    failure: Exception | None = None
    reason: str | None = None
    name: str = "mlflow"
    label: str = "MLflow"

    def unavailable_reason(self) -> str | None:
        return self.reason

    def fetch(self) -> list[ExternalModel]:
        if self.failure:
            raise self.failure
        return list(self.snapshot)


def snapshot() -> list[ExternalModel]:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    versions = tuple(
        ExternalVersion(
            version=str(n),
            source_ref=f"models:/support-bot/{n}",
            created_at=when,
            metrics={"eval_loss": 2.0 - n / 10},
            params={"lr": "1e-4"},
            run_id=f"run{n}",
            mlflow_model_name="support-bot",
            mlflow_model_version=str(n),
            stage_hint="production" if n == 2 else None,
            mlflow_aliases=("production",) if n == 2 else (),
        )
        for n in (1, 2, 3)
    )
    return [
        ExternalModel(
            source="mlflow",
            kind="custom",
            provider="mlflow",
            name="support-bot",
            source_ref="support-bot",
            tags={"team": "care"},
            versions=versions,
        ),
        ExternalModel(
            source="mlflow",
            kind="custom",
            provider="mlflow",
            name="router",
            source_ref="router",
            versions=(ExternalVersion("1", "models:/router/1"),),
        ),
    ]


@pytest.fixture
def scientist(db: Database, admin: Actor) -> Actor:
    return make_user(db, "dana", Role.DATA_SCIENTIST)


def counts(db: Database) -> tuple[int, int, int]:
    with db.read() as session:
        return (
            session.exec(select(func.count()).select_from(ModelAsset)).one(),
            session.exec(select(func.count()).select_from(ModelVersion)).one(),
            session.exec(select(func.count()).select_from(AuditEvent)).one(),
        )


def test_sync_creates_then_a_second_run_changes_nothing(db: Database, scientist: Actor) -> None:
    source = StandInSource(snapshot())
    first = sync_source(db, actor=scientist, source=source)
    assert (first.models_seen, first.models_changed, first.versions_changed) == (2, 2, 4)
    after_first = counts(db)
    second = sync_source(db, actor=scientist, source=source)
    assert (second.models_changed, second.versions_changed, second.error) == (0, 0, None)
    assert counts(db) == after_first  # not even an audit event
    page = catalog.search_models(db, actor=scientist, query=catalog.ModelQuery(text="support"))
    row = page.rows[0]
    assert (row.version_count, row.production_version, row.latest_version) == (3, 2, 3)
    card = cards.version_card(db, actor=scientist, model_id=row.id, number=1)
    assert card.version.mlflow_run_id == "run1" and card.version.metrics == {"eval_loss": 1.9}


def test_changed_source_updates_but_keeps_the_portal_stage(db: Database, scientist: Actor) -> None:
    source = StandInSource(snapshot())
    sync_source(db, actor=scientist, source=source)
    support = catalog.search_models(db, actor=scientist, query=catalog.ModelQuery(text="support"))
    model_id = support.rows[0].id
    promote(db, model_id, 3, Stage.STAGING, by="priya")
    changed = [
        replace(
            snapshot()[0],
            description="Answers tickets",
            versions=tuple(
                replace(v, metrics={"eval_loss": 0.5}) if v.version == "3" else v
                for v in snapshot()[0].versions
            ),
        )
    ]
    result = sync_source(db, actor=scientist, source=StandInSource(changed))
    assert (result.models_changed, result.versions_changed) == (1, 1)
    detail = cards.model_detail(db, actor=scientist, model_id=model_id)
    v3 = next(v for v in detail.versions if v.number == 3)
    assert v3.metrics == {"eval_loss": 0.5} and v3.stage == "staging"
    assert detail.model.description == "Answers tickets"
    # "router" is missing from this snapshot, and is kept.
    assert (
        catalog.search_models(db, actor=scientist, query=catalog.ModelQuery(text="router")).total
        == 1
    )


def test_failing_source_records_its_error_and_writes_nothing(
    db: Database, scientist: Actor
) -> None:
    sync_source(db, actor=scientist, source=StandInSource(snapshot()))
    before = counts(db)
    failing = StandInSource(
        failure=ExternalServiceError(
            "Could not read the MLflow Model Registry: connection refused", code="Unreachable"
        )
    )
    result = sync_source(db, actor=scientist, source=failing)
    assert result.error and "connection refused" in result.error
    assert counts(db) == before
    status = sync_status(db, actor=scientist)["mlflow"]
    assert status.last_error == result.error and status.last_success_at is not None
    assert status.models_seen == 2  # the last good sync's figures stay


def test_unconfigured_source_says_so(db: Database, scientist: Actor) -> None:
    result = sync_source(
        db,
        actor=scientist,
        source=StandInSource(
            reason="AWS is not configured: set PORTAL_AWS_REGION (and credentials) to use it.",
            name="bedrock",
            label="Amazon Bedrock",
        ),
    )
    assert result.error is not None and "PORTAL_AWS_REGION" in result.error
    assert sync_status(db, actor=scientist)["bedrock"].last_success_at is None


def test_only_data_scientists_and_admins_may_sync(db: Database, admin: Actor) -> None:
    for role in (Role.APPROVER, Role.MANAGER):
        actor = make_user(db, f"x-{role.value}".replace("_", ""), role)
        with pytest.raises(PermissionDenied):
            sync_source(db, actor=actor, source=StandInSource(snapshot()))
    assert sync_source(db, actor=admin, source=StandInSource(snapshot())).models_changed == 2
