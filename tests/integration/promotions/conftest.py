"""Fixtures for the side effects of promotion decisions, against real components: the
session's sqlite MLflow store, moto for SageMaker, and a local HTTP receiver for the
deployment webhook. Nothing reaches real AWS or the internet."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from models.promotion import PromotionSideEffect
from models.registry import ModelAsset, ModelAssetCreate, ModelVersion, ModelVersionCreate
from services import promotions
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database
from services.promotions import RequestFilter
from services.registry import assets
from tests.integration.registry.conftest import REGION, aws_settings, offline_sdks
from tests.promotion_support import Cast, cast
from tests.webhook_receiver import Delivery, Receiver, serve_receiver

# The registry suite's fixtures: fake AWS credentials, no profile files, no MLflow
# telemetry; settings whose every boto3 call moto answers.
__all__ = ["REGION", "Delivery", "Receiver", "aws_settings", "offline_sdks"]

WEBHOOK_SECRET = "s3cret-shared-with-the-deployment-pipeline-0123"


@pytest.fixture
def people(db: Database, admin: Actor) -> Cast:
    return cast(db, admin)


@pytest.fixture
def settings() -> Settings:
    """The portal's settings: MLflow at the session's sqlite store, no AWS, no webhook."""
    return get_settings()


@pytest.fixture
def unique() -> str:
    """A suffix for names in the MLflow store, which every test (and database kind) shares."""
    return uuid.uuid4().hex[:10]


def portal_version(
    db: Database, actor: Actor, model: str, *, references: dict[str, Any] | None = None, **data: Any
) -> int:
    """Register the next version of portal model ``model`` (created on first use); external
    references (``sagemaker_package_arn``, ``mlflow_model_name`` …) are set on the row as a
    source sync would."""
    with db.read() as session:
        existing = session.exec(select(ModelAsset).where(ModelAsset.name == model)).first()
    if existing is None:
        existing = assets.register_model(db, actor=actor, data=ModelAssetCreate(name=model))
    assert existing.id is not None
    version = assets.register_version(
        db, actor=actor, model_id=existing.id, data=ModelVersionCreate(**data)
    )
    if references:
        with db.transaction() as session:
            row = session.get(ModelVersion, version.id)
            assert row is not None
            for name, value in references.items():
                setattr(row, name, value)
            session.add(row)
    assert version.id is not None
    return version.id


def version_row(db: Database, version_id: int) -> ModelVersion:
    with db.read() as session:
        row = session.get(ModelVersion, version_id)
        assert row is not None
        return row


def effects(db: Database, request_id: int) -> dict[str, PromotionSideEffect]:
    """A request's side effects by kind."""
    with db.read() as session:
        rows = session.exec(
            select(PromotionSideEffect).where(PromotionSideEffect.request_id == request_id)
        ).all()
        return {row.kind: row for row in rows}


def status_label(db: Database, people: Cast, request_id: int) -> str:
    """What the Promotions page's history shows for the request."""
    page = promotions.list_requests(db, actor=people.scientist, query=RequestFilter())
    return next(r.status_label for r in page.rows if r.request.id == request_id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The deployment pipeline's webhook endpoint."""
    with serve_receiver("/hooks/promotion") as hook:
        yield hook


def webhook_settings(monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_URL", url)
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_SECRET", WEBHOOK_SECRET)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def hook_settings(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Settings:
    """Settings with the deployment webhook pointing at ``receiver``."""
    return webhook_settings(monkeypatch, receiver.url)
