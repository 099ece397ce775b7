"""Shared set-up for promotion tests: a model with versions, a data scientist who requests,
approvers who decide, and a shortcut to file a request."""

from __future__ import annotations

from dataclasses import dataclass

from models.promotion import RequestCreate
from models.registry import ModelAssetCreate, ModelVersionCreate
from models.user import Role
from services import promotions
from services.access import Actor
from services.db import Database
from services.registry import assets
from tests.conftest import make_user

JUSTIFICATION = "Beats the current version on the held-out set; reviewed by the team."


@dataclass
class Cast:
    scientist: Actor
    peer: Actor
    approvers: list[Actor]
    manager: Actor
    admin: Actor


def cast(db: Database, admin: Actor, approvers: int = 3) -> Cast:
    return Cast(
        scientist=make_user(db, "dana", Role.DATA_SCIENTIST),
        peer=make_user(db, "sam", Role.DATA_SCIENTIST),
        approvers=[make_user(db, f"approver{i}", Role.APPROVER) for i in range(approvers)],
        manager=make_user(db, "mona", Role.MANAGER),
        admin=admin,
    )


def model_with_versions(
    db: Database,
    actor: Actor,
    name: str = "Support Assistant",
    metrics: list[dict[str, float]] | None = None,
) -> tuple[int, list[int]]:
    """A portal model with one version per entry of ``metrics``; returns (model id, version ids)."""
    model = assets.register_model(db, actor=actor, data=ModelAssetCreate(name=name))
    assert model.id is not None
    ids = []
    for values in metrics or [{"eval_loss": 1.3}, {"eval_loss": 1.1}]:
        version = assets.register_version(
            db, actor=actor, model_id=model.id, data=ModelVersionCreate(metrics=values)
        )
        assert version.id is not None
        ids.append(version.id)
    return model.id, ids


def file_request(db: Database, actor: Actor, version_id: int, stage: str = "production") -> int:
    request = promotions.request_promotion(
        db,
        actor=actor,
        data=RequestCreate(
            model_version_id=version_id, target_stage=stage, justification=JUSTIFICATION
        ),
    )
    assert request.id is not None
    return request.id
