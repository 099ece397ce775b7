"""A finished job turned into a model version, with its full lineage: base model, dataset
version, job, MLflow run and artifact, all recorded in one transaction with the job's link to
the new version."""

from __future__ import annotations

import logging

from sqlmodel import Session, func, select

from models.registry import (
    ModelAsset,
    ModelAssetCreate,
    ModelKind,
    ModelVersion,
    ModelVersionCreate,
    Source,
)
from models.training import Backend, FineTuneJob, JobStatus
from models.user import User
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import Conflict, NotFound, PortalError, ValidationError
from services.permissions import Permission
from services.registry.assets import add_model, add_version, load_model

log = logging.getLogger(__name__)


def default_model_name(job: FineTuneJob) -> str:
    base = job.base_model.rsplit("/", 1)[-1].split(":")[0]
    return f"{base}-fine-tuned"


def _registrable(session: Session, job_id: int, *, lock: bool = False) -> FineTuneJob:
    job = session.get(FineTuneJob, job_id, with_for_update=lock)
    if job is None:
        raise NotFound(f"No fine-tuning job with id {job_id}.")
    if job.status != JobStatus.COMPLETED.value:
        raise Conflict(f"Only a completed job can be registered; this one is {job.status}.")
    if job.model_version_id is not None:
        raise Conflict("This job is already registered as a model version.")
    return job


def register_job_result(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    job_id: int,
    model_id: int | None = None,
    new_model_name: str | None = None,
) -> ModelVersion:
    """Register a completed job as the next version of ``model_id``, or as version 1 of a new
    model named ``new_model_name``. A job is registered once. A SageMaker job's model is also
    registered in the SageMaker Model Registry, pending approval."""
    with db.read() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        job = _registrable(session, job_id)
        name = _target_name(session, model_id, new_model_name)
    references = _references(job)
    if job.backend == Backend.SAGEMAKER.value and (job.artifact_uri or "").startswith("s3://"):
        references.update(_sagemaker_package(settings, job, name))
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        job = _registrable(session, job_id, lock=True)
        model = _target_model(session, actor, job, model_id, new_model_name)
        version = add_version(
            session,
            actor=actor,
            model=model,
            data=ModelVersionCreate(
                artifact_uri=job.artifact_uri,
                base_model=job.base_model,
                dataset_version_id=job.dataset_version_id,
                mlflow_run_id=job.mlflow_run_id,
                metrics={k: float(v) for k, v in job.metrics.items()},
                params={k: str(v) for k, v in job.hyperparameters.items()},
                description=f"Fine-tuned by job {job.name} ({Backend(job.backend).label}).",
            ),
            job_ref=str(job.id),
            references=references,
        )
        job.model_version_id = version.id
        job.version += 1
        session.add(job)
        return version


def _target_name(session: Session, model_id: int | None, name: str | None) -> str:
    if model_id is not None:
        return load_model(session, model_id).name
    if not (name or "").strip():
        raise ValidationError(
            "Model: choose a model or name a new one.",
            fields={"model": "choose a model or name a new one"},
        )
    return (name or "").strip()


def _target_model(
    session: Session, actor: Actor, job: FineTuneJob, model_id: int | None, name: str | None
) -> ModelAsset:
    if model_id is not None:
        return load_model(session, model_id)
    name = _target_name(session, None, name)
    return add_model(
        session,
        actor=actor,
        data=ModelAssetCreate(
            name=name,
            kind=ModelKind.CUSTOM.value,
            provider="In-house",
            description=f"Fine-tuned from {job.base_model}.",
            owner_team_id=job.team_id,
            base_model=job.base_model,
        ),
    )


def _references(job: FineTuneJob) -> dict[str, object]:
    if job.backend == Backend.BEDROCK.value and job.output_model_ref:
        return {"bedrock_custom_model_arn": job.output_model_ref}
    return {}


def _sagemaker_package(settings: Settings, job: FineTuneJob, model_name: str) -> dict[str, object]:
    from services.training.backends.sagemaker_packages import register_package

    package = register_package(
        settings,
        model_name=model_name,
        model_data_url=str(job.artifact_uri),
        description=f"Portal job {job.name}: {job.base_model} fine-tuned",
        token=f"portal-job-{job.id}",
        metadata={"portal-job-id": str(job.id), "owner": job.owner},
    )
    return {
        "sagemaker_package_arn": package.arn,
        "sagemaker_approval_status": package.approval_status,
    }


def register_automatically(db: Database, settings: Settings, job_id: int) -> None:
    """Register a job that asked for it when it completed, as its owner, into the model it
    named (created if new). Failures are logged and left for the owner to do by hand."""
    with db.read() as session:
        job = session.get(FineTuneJob, job_id)
        if job is None or job.model_version_id is not None:
            return
        name = job.register_model_name or default_model_name(job)
        model_id = session.exec(
            select(ModelAsset.id).where(
                ModelAsset.source == Source.PORTAL.value,
                func.lower(ModelAsset.name) == name.lower(),
            )
        ).first()
        owner = session.exec(select(User).where(User.username == job.owner)).first()
    if owner is None:
        log.warning("job %s: owner %s is gone; not registering", job_id, job.owner)
        return
    try:
        register_job_result(
            db,
            settings,
            actor=Actor.of(owner),
            job_id=job_id,
            model_id=model_id,
            new_model_name=None if model_id else name,
        )
    except PortalError as exc:
        log.warning("job %s: automatic registration failed: %s", job_id, exc)
