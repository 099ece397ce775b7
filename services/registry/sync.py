"""Sync external catalogs (Bedrock, SageMaker, MLflow) into the registry.

A sync fetches a source's snapshot first and only then writes, in one transaction, so an
unreachable or failing source changes nothing but its sync record. It is idempotent: a second
run with the same snapshot changes no row. Nothing is ever deleted because a source did not
list it; the portal's own stage of a version is never overwritten by a re-sync."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from models.registry import ModelAsset, ModelVersion, RegistrySync, Stage
from models.types import utcnow
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import ConfigurationError, ExternalServiceError
from services.permissions import Permission
from services.registry.assets import next_version_number, record_stage
from services.registry.sources.base import (
    STAGE_PRODUCTION,
    STAGE_STAGING,
    ExternalModel,
    ExternalVersion,
    RegistrySource,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    source: str
    models_seen: int = 0
    models_changed: int = 0
    versions_seen: int = 0
    versions_changed: int = 0
    error: str | None = None

    def describe(self) -> str:
        if self.error:
            return f"{self.source}: {self.error}"
        return (
            f"{self.source}: {self.models_seen} models ({self.models_changed} new or changed), "
            f"{self.versions_seen} versions ({self.versions_changed} new or changed)"
        )


def _model_fields(ext: ExternalModel) -> dict[str, Any]:
    base = next((v.base_model_ref for v in ext.versions if v.base_model_ref), None)
    return {
        "name": ext.name[:200],
        "kind": ext.kind,
        "provider": ext.provider[:60],
        "description": ext.description or "",
        "tags": dict(ext.tags),
        "modalities": list(ext.modalities),
        "customizations": list(ext.customizations),
        "lifecycle": ext.lifecycle,
        "base_model": base[:300] if base else None,
    }


def _version_fields(ext_model: ExternalModel, ext: ExternalVersion) -> dict[str, Any]:
    custom_bedrock = ext_model.source == "bedrock" and ext_model.kind == "custom"
    return {
        "artifact_uri": ext.artifact_uri,
        "description": ext.description or "",
        "metrics": {k: float(v) for k, v in ext.metrics.items()},
        "params": dict(ext.params),
        "tags": dict(ext.tags),
        "base_model": ext.base_model_ref,
        "mlflow_run_id": ext.run_id,
        "mlflow_model_name": ext.mlflow_model_name,
        "mlflow_model_version": ext.mlflow_model_version,
        "mlflow_aliases": list(ext.mlflow_aliases),
        "job_ref": ext.job_ref,
        "sagemaker_package_arn": ext.source_ref if ext_model.source == "sagemaker" else None,
        "sagemaker_approval_status": ext.approval_status,
        "bedrock_custom_model_arn": ext.source_ref if custom_bedrock else None,
    }


def _apply(row: Any, fields: dict[str, Any]) -> bool:
    changed = False
    for key, value in fields.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _initial_stage(session: Session, model_id: int, hint: str | None) -> Stage:
    """A new version enters at the stage its source states, if that stage is still free."""
    wanted = {STAGE_PRODUCTION: Stage.PRODUCTION, STAGE_STAGING: Stage.STAGING}.get(hint or "")
    if wanted is None:
        return Stage.DEVELOPMENT
    taken = session.exec(
        select(ModelVersion.id).where(
            ModelVersion.model_id == model_id, ModelVersion.stage == wanted.value
        )
    ).first()
    return Stage.DEVELOPMENT if taken is not None else wanted


def _source_order(ext: ExternalVersion) -> tuple[int, str]:
    """Numbered versions in their order, then the rest by creation time: the portal numbers
    versions in the order the source made them, keeping the source's number when it can."""
    number = int(ext.version) if ext.version.isdigit() else 10**9
    return number, ext.created_at.isoformat() if ext.created_at else ext.version


def _upsert_versions(
    session: Session, model: ModelAsset, ext_model: ExternalModel, by: str
) -> tuple[int, int]:
    assert model.id is not None
    existing = {
        v.source_version: v
        for v in session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)).all()
    }
    changed = 0
    ordered = sorted(ext_model.versions, key=_source_order)
    for ext in ordered:
        fields = _version_fields(ext_model, ext)
        row = existing.get(ext.version)
        if row is None:
            taken = {v.number for v in existing.values()}
            wanted = int(ext.version) if ext.version.isdigit() else 0
            number = (
                wanted
                if wanted > 0 and wanted not in taken
                else next_version_number(session, model.id)
            )
            row = ModelVersion(
                model_id=model.id,
                number=number,
                source_version=ext.version[:300],
                created_by=(ext.created_by or by)[:100],
                created_at=ext.created_at or utcnow(),
                synced_at=utcnow(),
                **fields,
            )
            record_stage(
                session,
                row,
                _initial_stage(session, model.id, ext.stage_hint),
                by=by,
                reason=f"synced from {ext_model.source}",
            )
            existing[ext.version] = row
            changed += 1
        elif _apply(row, fields):
            row.synced_at = utcnow()
            row.version += 1
            session.add(row)
            changed += 1
    return len(ordered), changed


def upsert_snapshot(
    session: Session, source: str, snapshot: list[ExternalModel], *, by: str
) -> SyncResult:
    """Write one source's snapshot; returns what it saw and what it changed."""
    models_changed = versions_seen = versions_changed = 0
    for ext in snapshot:
        fields = _model_fields(ext)
        model = session.exec(
            select(ModelAsset).where(
                ModelAsset.source == source, ModelAsset.source_ref == ext.source_ref[:500]
            )
        ).first()
        if model is None:
            model = ModelAsset(
                source=source,
                source_ref=ext.source_ref[:500],
                created_by=by,
                synced_at=utcnow(),
                **fields,
            )
            session.add(model)
            session.flush()
            models_changed += 1
        elif _apply(model, fields):
            model.updated_at = model.synced_at = utcnow()
            model.version += 1
            session.add(model)
            models_changed += 1
        seen, changed = _upsert_versions(session, model, ext, by)
        versions_seen += seen
        versions_changed += changed
        if changed and model.id is not None:
            model.updated_at = utcnow()
            session.add(model)
    return SyncResult(source, len(snapshot), models_changed, versions_seen, versions_changed)


def _record(session: Session, result: SyncResult, started: Any) -> None:
    row = session.get(RegistrySync, result.source) or RegistrySync(source=result.source)
    row.last_started_at, row.last_finished_at = started, utcnow()
    row.last_error = result.error
    if result.error is None:
        row.last_success_at = row.last_finished_at
        row.models_seen, row.models_changed = result.models_seen, result.models_changed
        row.versions_seen, row.versions_changed = result.versions_seen, result.versions_changed
    session.add(row)


def sync_source(db: Database, *, actor: Actor, source: RegistrySource) -> SyncResult:
    """Fetch one source and upsert its models. Failures are recorded, not raised."""
    with db.read() as session:
        require(session, actor, Permission.SYNC_REGISTRY)
    started = utcnow()
    reason = source.unavailable_reason()
    snapshot: list[ExternalModel] = []
    error: str | None = reason
    if reason is None:
        try:
            snapshot = source.fetch()
        except (ExternalServiceError, ConfigurationError) as exc:
            error = str(exc)
            log.warning("registry sync of %s failed: %s", source.name, exc)
    with db.write() as session:
        if error is not None:
            result = SyncResult(source.name, error=error)
        else:
            result = upsert_snapshot(session, source.name, snapshot, by=actor.username)
        _record(session, result, started)
        if result.error is None and (result.models_changed or result.versions_changed):
            audit.record(
                session,
                actor=actor.username,
                action="registry.sync",
                entity_type="registry_source",
                entity_id=source.name,
                summary=f"Synced {result.describe()}",
                after={
                    "models_changed": result.models_changed,
                    "versions_changed": result.versions_changed,
                },
            )
    return result


def sync_status(db: Database, *, actor: Actor) -> dict[str, RegistrySync]:
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        return {row.source: row for row in session.exec(select(RegistrySync)).all()}
