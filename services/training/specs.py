"""A job row and its dataset turned into the :class:`JobSpec` a backend runs."""

from __future__ import annotations

from sqlmodel import Session

from models.dataset import Dataset, DatasetVersion
from models.team import Team
from models.training import FineTuneJob
from services.config import Settings
from services.errors import NotFound
from services.training.backends.base import DatasetInput, DatasetSplit, JobSpec, TrackingTarget

EXPERIMENT_NAME = "portal-fine-tuning"


def dataset_input(session: Session, version_id: int) -> DatasetInput:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"Dataset version {version_id} no longer exists.")
    dataset = session.get(Dataset, version.dataset_id)
    assert dataset is not None and version.id is not None
    splits = {
        name: DatasetSplit(name, str(info["uri"]), str(info["sha256"]), int(info["records"]))
        for name, info in version.splits.items()
    }
    return DatasetInput(
        version_id=version.id,
        name=f"{dataset.name} v{version.number}",
        format=version.format,
        sha256=version.sha256,
        storage_uri=version.storage_uri,
        token_estimate=version.token_estimate,
        record_count=version.record_count,
        splits=splits,
    )


def job_spec(session: Session, settings: Settings, job: FineTuneJob) -> JobSpec:
    assert job.id is not None
    team = session.get(Team, job.team_id) if job.team_id else None
    tags = {"portal-job-id": str(job.id), "owner": job.owner}
    if team is not None:
        tags["team"] = team.name
    return JobSpec(
        job_id=job.id,
        name=job.name,
        idempotency_key=job.idempotency_key,
        owner=job.owner,
        team=team.name if team else None,
        base_model=job.base_model,
        recipe=job.recipe,
        customization_type=job.customization_type,
        hyperparameters=dict(job.hyperparameters),
        compute=dict(job.compute),
        max_runtime_seconds=job.max_runtime_seconds,
        dataset=dataset_input(session, job.dataset_version_id),
        tracking=TrackingTarget(settings.resolved_tracking_uri, EXPERIMENT_NAME, job.mlflow_run_id),
        tags=tags,
    )
