"""Registering an MLflow run that no portal job made (a notebook, a pipeline elsewhere) as a
model version: its final metrics, parameters and artifacts become the version's, and the
version's lineage points back at the run."""

from __future__ import annotations

import math

from sqlmodel import col, select

from models.registry import (
    ModelAsset,
    ModelAssetCreate,
    ModelKind,
    ModelVersion,
    ModelVersionCreate,
    Source,
)
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import Conflict, NotFound, ValidationError
from services.experiments.runs import get_runs, tracking_client, tracking_errors
from services.permissions import Permission
from services.registry.assets import add_model, add_version, load_model

BASE_MODEL_PARAMS = ("base_model", "model_name_or_path", "base_model_id", "model_id")
MAX_PARAM_LENGTH = 500


def registrable_models(db: Database, *, actor: Actor) -> list[tuple[int, str]]:
    """The portal's own models a run can become a version of, by name."""
    with db.read() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        rows = session.exec(
            select(ModelAsset.id, ModelAsset.name)
            .where(ModelAsset.source == Source.PORTAL.value)
            .order_by(col(ModelAsset.name))
        ).all()
        return [(int(i or 0), name) for i, name in rows]


def register_run(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    run_id: str,
    model_id: int | None = None,
    new_model_name: str | None = None,
) -> ModelVersion:
    """Make the run the next version of a portal model (or of a new one named here)."""
    if model_id is None and not (new_model_name or "").strip():
        raise ValidationError(
            "Model: choose a model or name a new one.", fields={"model": "required"}
        )
    found, missing = get_runs(db, settings, actor=actor, run_ids=[run_id])
    if missing or not found:
        raise NotFound(f"Run {run_id} does not exist any more (it may have been deleted).")
    run = found[0]
    with tracking_errors(settings, "read the run's artifact location"):
        artifact_uri = tracking_client(settings).get_run(run_id).info.artifact_uri
    params = {k: str(v)[:MAX_PARAM_LENGTH] for k, v in run.params.items()}
    base_model = next((params[p] for p in BASE_MODEL_PARAMS if params.get(p)), None)
    data = ModelVersionCreate(
        artifact_uri=artifact_uri,
        base_model=base_model,
        mlflow_run_id=run_id,
        metrics={k: float(v) for k, v in run.metrics.items() if math.isfinite(v)},
        params=params,
        description=f"Registered from MLflow run {run.name} in experiment {run.experiment}.",
    )
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        if model_id is not None:
            model = load_model(session, model_id)
        else:
            model = add_model(
                session,
                actor=actor,
                data=ModelAssetCreate(
                    name=(new_model_name or "").strip(),
                    kind=ModelKind.CUSTOM.value,
                    provider="In-house",
                    base_model=base_model,
                ),
            )
        taken = session.exec(
            select(ModelVersion.number).where(
                ModelVersion.model_id == model.id, ModelVersion.mlflow_run_id == run_id
            )
        ).first()
        if taken is not None:
            raise Conflict(f"This run is already {model.name} version {taken}.")
        return add_version(session, actor=actor, model=model, data=data)
