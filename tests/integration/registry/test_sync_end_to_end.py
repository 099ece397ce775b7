"""Registry sync from real sources into the portal database: a real MLflow store and moto's
SageMaker, on SQLite and PostgreSQL. Running it twice changes nothing."""

from __future__ import annotations

from models.user import Role
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.registry import cards, catalog
from services.registry.sources.mlflow_registry import MlflowRegistrySource
from services.registry.sources.sagemaker import SageMakerSource
from services.registry.sync import sync_source, sync_status
from tests.conftest import make_user
from tests.integration.registry.conftest import Store
from tests.integration.registry.test_sources_sagemaker import populate


def only(db: Database, actor: Actor, text: str) -> catalog.ModelRow:
    page = catalog.search_models(db, actor=actor, query=catalog.ModelQuery(text=text))
    assert page.total == 1, [r.name for r in page.rows]
    return page.rows[0]


def test_mlflow_registry_syncs_with_aliases_as_stages(
    db: Database, admin: Actor, store: Store
) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    source = MlflowRegistrySource(store.uri)
    first = sync_source(db, actor=dana, source=source)
    assert first.error is None and first.models_seen == 3
    support = only(db, dana, "support-bot")
    assert (support.version_count, support.production_version, support.staging_version) == (3, 2, 3)
    card = cards.version_card(db, actor=dana, model_id=support.id, number=2)
    assert card.version.mlflow_run_id == store.runs["second"]
    assert card.version.metrics == {"eval_loss": 0.31} and card.version.params["lr"] == "1e-5"
    assert set(card.version.mlflow_aliases) == {"production", "champion"}
    again = sync_source(db, actor=dana, source=source)
    assert (again.models_changed, again.versions_changed) == (0, 0)
    assert sync_status(db, actor=dana)["mlflow"].last_error is None


def test_sagemaker_packages_sync_with_approval_status(
    db: Database, admin: Actor, aws_settings: Settings
) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    populate(aws_settings)
    source = SageMakerSource.from_settings(aws_settings)
    result = sync_source(db, actor=dana, source=source)
    assert result.error is None and result.models_seen == 2 and result.versions_seen == 5
    page = catalog.search_models(db, actor=dana, query=catalog.ModelQuery())
    statuses = set()
    for row in page.rows:
        detail = cards.model_detail(db, actor=dana, model_id=row.id)
        statuses |= {v.sagemaker_approval_status for v in detail.versions}
        assert all(v.sagemaker_package_arn for v in detail.versions)
        assert all(v.stage == "development" for v in detail.versions)  # approval is not a stage
    assert statuses == {"Approved", "Rejected", "PendingManualApproval"}
    assert sync_source(db, actor=dana, source=source).versions_changed == 0
