"""Registering models and versions in the portal, and editing what people write about them.
Every change is permission-checked and audited in its own transaction."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from models.dataset import DatasetVersion
from models.registry import (
    ModelAsset,
    ModelAssetCreate,
    ModelVersion,
    ModelVersionCardUpdate,
    ModelVersionCreate,
    Source,
    Stage,
    StageChange,
)
from models.team import Team
from models.types import utcnow
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import Conflict, NotFound, ValidationError
from services.permissions import Permission


def portal_ref(name: str) -> str:
    """The stable reference of a model registered in the portal itself."""
    return "portal:" + re.sub(r"\s+", "-", name.strip().lower())


def load_model(session: Session, model_id: int) -> ModelAsset:
    model = session.get(ModelAsset, model_id)
    if model is None:
        raise NotFound(f"No model with id {model_id}.")
    return model


def load_version(session: Session, model_id: int, number: int) -> ModelVersion:
    version = session.exec(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.number == number)
    ).first()
    if version is None:
        raise NotFound(f"Model {model_id} has no version {number}.")
    return version


def next_version_number(session: Session, model_id: int) -> int:
    highest = session.exec(
        select(func.max(ModelVersion.number)).where(ModelVersion.model_id == model_id)
    ).one()
    return int(highest or 0) + 1


def record_stage(
    session: Session, version: ModelVersion, to_stage: Stage, *, by: str, reason: str
) -> None:
    """Move a version to ``to_stage`` and remember it in the stage history."""
    previous = None if version.id is None else version.stage
    version.stage = to_stage.value
    version.stage_changed_at = utcnow()
    session.add(version)
    session.flush()
    assert version.id is not None
    session.add(
        StageChange(
            model_version_id=version.id,
            from_stage=previous,
            to_stage=to_stage.value,
            changed_by=by,
            reason=reason,
        )
    )


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationError(
            "Owner team: does not exist.", fields={"owner_team_id": "does not exist"}
        )


def register_model(db: Database, *, actor: Actor, data: ModelAssetCreate) -> ModelAsset:
    """Add a model the portal itself knows about (not synced from a source)."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        return add_model(session, actor=actor, data=data)


def add_model(session: Session, *, actor: Actor, data: ModelAssetCreate) -> ModelAsset:
    """``register_model`` inside the caller's transaction (the caller checks permissions)."""
    _check_team(session, data.owner_team_id)
    ref = data.reference or portal_ref(data.name)
    taken = session.exec(
        select(ModelAsset.name).where(
            ModelAsset.source == Source.PORTAL.value,
            or_(
                func.lower(ModelAsset.name) == data.name.lower(),
                col(ModelAsset.source_ref) == ref,
            ),
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"{taken!r} is already registered in the portal under this name or reference."
        )
    model = ModelAsset.model_validate(
        data.model_dump(exclude={"reference"}),
        update={"source": Source.PORTAL.value, "source_ref": ref, "created_by": actor.username},
    )
    session.add(model)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="registry.model_register",
        entity_type="model",
        entity_id=model.id,
        summary=f"Registered model {model.name} ({model.kind})",
        after={"name": model.name, "kind": model.kind, "provider": model.provider},
    )
    return model


def register_version(
    db: Database,
    *,
    actor: Actor,
    model_id: int,
    data: ModelVersionCreate,
    job_ref: str | None = None,
) -> ModelVersion:
    """Add the next version of a model, in development, with its lineage references."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        return add_version(
            session, actor=actor, model=load_model(session, model_id), data=data, job_ref=job_ref
        )


def add_version(
    session: Session,
    *,
    actor: Actor,
    model: ModelAsset,
    data: ModelVersionCreate,
    job_ref: str | None = None,
    references: dict[str, Any] | None = None,
) -> ModelVersion:
    """``register_version`` inside the caller's transaction; ``references`` sets external
    references (``bedrock_custom_model_arn``, ``sagemaker_package_arn``, …) as well."""
    assert model.id is not None
    if (
        data.dataset_version_id is not None
        and session.get(DatasetVersion, data.dataset_version_id) is None
    ):
        raise ValidationError(
            "Training data: no such dataset version.",
            fields={"dataset_version_id": "does not exist"},
        )
    version = ModelVersion.model_validate(
        data,
        update={
            "model_id": model.id,
            "number": next_version_number(session, model.id),
            "created_by": actor.username,
            "job_ref": job_ref,
            "base_model": data.base_model or model.base_model,
            **(references or {}),
        },
    )
    record_stage(session, version, Stage.DEVELOPMENT, by=actor.username, reason="registered")
    model.updated_at = utcnow()
    session.add(model)
    audit.record(
        session,
        actor=actor.username,
        action="registry.version_register",
        entity_type="model_version",
        entity_id=version.id,
        summary=f"Registered {model.name} version {version.number}",
        after={
            "model": model.name,
            "number": version.number,
            "run": version.mlflow_run_id,
            "dataset_version": version.dataset_version_id,
            "job": job_ref,
        },
    )
    return version


def update_card(
    db: Database,
    *,
    actor: Actor,
    version_id: int,
    card: ModelVersionCardUpdate,
    expected_version: int,
) -> ModelVersion:
    """Save the written parts of a model card (description, intended use, limitations)."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        version = session.get(ModelVersion, version_id)
        if version is None:
            raise NotFound(f"No model version with id {version_id}.")
        if version.version != expected_version:
            raise Conflict(
                "Someone else changed this model card since you opened it. "
                "Reload the page to see their text, then make your change again."
            )
        before: dict[str, Any] = {
            k: getattr(version, k) for k in ModelVersionCardUpdate.model_fields
        }
        after = card.model_dump()
        if before == after:
            return version
        for key, value in after.items():
            setattr(version, key, value)
        version.version += 1
        session.add(version)
        changed = sorted(k for k in after if after[k] != before[k])
        audit.record(
            session,
            actor=actor.username,
            action="registry.card_update",
            entity_type="model_version",
            entity_id=version.id,
            summary=f"Edited {', '.join(changed)} of version {version.number}",
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
        return version


def model_numbers(session: Session, model_id: int) -> list[int]:
    return list(
        session.exec(
            select(ModelVersion.number)
            .where(ModelVersion.model_id == model_id)
            .order_by(col(ModelVersion.number).desc())
        ).all()
    )
