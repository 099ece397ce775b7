"""One run in full: its params, metrics, tags and artifacts, where it came from (the portal's
fine-tuning job and dataset) and what it became (model versions in the registry)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import col, select

from models.dataset import Dataset, DatasetVersion
from models.registry import ModelAsset, ModelVersion
from models.training import FineTuneJob
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import NotFound, ValidationError
from services.experiments.runs import RunRecord, get_runs, tracking_client, tracking_errors
from services.permissions import Permission

MAX_ARTIFACTS = 500
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    path: str
    size: int | None  # None for a folder


@dataclass(frozen=True)
class Lineage:
    job_id: int | None = None
    job_name: str | None = None
    dataset_id: int | None = None
    dataset: str | None = None
    versions: list[tuple[int, str, int, str, int]] = field(default_factory=list)
    """(model id, model name, version number, stage, version id) of each version made from
    this run."""


@dataclass(frozen=True)
class RunDetail:
    run: RunRecord
    artifacts: list[Artifact]
    artifacts_truncated: bool
    lineage: Lineage


def run_detail(db: Database, settings: Settings, *, actor: Actor, run_id: str) -> RunDetail:
    found, missing = get_runs(db, settings, actor=actor, run_ids=[run_id])
    if missing or not found:
        raise NotFound(f"Run {run_id} does not exist any more (it may have been deleted).")
    artifacts, truncated = _artifacts(settings, run_id)
    return RunDetail(found[0], artifacts, truncated, _lineage(db, run_id))


def _artifacts(settings: Settings, run_id: str) -> tuple[list[Artifact], bool]:
    client = tracking_client(settings)
    found: list[Artifact] = []
    folders = [""]
    with tracking_errors(settings, "list the run's artifacts"):
        while folders and len(found) < MAX_ARTIFACTS:
            folder = folders.pop(0)
            for entry in client.list_artifacts(run_id, folder or None):
                found.append(Artifact(entry.path, None if entry.is_dir else entry.file_size))
                if entry.is_dir:
                    folders.append(entry.path)
    return found[:MAX_ARTIFACTS], len(found) > MAX_ARTIFACTS or bool(folders)


def _lineage(db: Database, run_id: str) -> Lineage:
    with db.read() as session:
        job = session.exec(select(FineTuneJob).where(FineTuneJob.mlflow_run_id == run_id)).first()
        versions = session.exec(
            select(ModelVersion, ModelAsset.name)
            .join(ModelAsset, col(ModelAsset.id) == col(ModelVersion.model_id))
            .where(ModelVersion.mlflow_run_id == run_id)
        ).all()
        dataset_version_id = (
            job.dataset_version_id
            if job
            else next((v.dataset_version_id for v, _ in versions if v.dataset_version_id), None)
        )
        dataset = None
        dataset_id = None
        if dataset_version_id is not None:
            row = session.exec(
                select(DatasetVersion, Dataset.name)
                .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
                .where(DatasetVersion.id == dataset_version_id)
            ).first()
            if row is not None:
                dataset, dataset_id = f"{row[1]} v{row[0].number}", row[0].dataset_id
    return Lineage(
        job_id=job.id if job else None,
        job_name=job.name if job else None,
        dataset_id=dataset_id,
        dataset=dataset,
        versions=[(v.model_id, name, v.number, v.stage, v.id or 0) for v, name in versions],
    )


def download_artifact(
    db: Database, settings: Settings, *, actor: Actor, run_id: str, path: str, size: int | None
) -> bytes:
    """One artifact file's bytes, for a download button (at most 50 MB)."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_EXPERIMENTS)
    if size is not None and size > MAX_DOWNLOAD_BYTES:
        raise ValidationError(
            f"{path} is {size / (1 << 20):,.0f} MB; download files over 50 MB with the MLflow "
            "client instead."
        )
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory() as folder, tracking_errors(settings, "download"):
        local = download_artifacts(
            run_id=run_id,
            artifact_path=path,
            dst_path=folder,
            tracking_uri=settings.resolved_tracking_uri,
        )
        return Path(local).read_bytes()
