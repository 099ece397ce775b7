"""Launching a fine-tuning job: one validated request, one job row, however many times the
form is submitted.

Each form render carries an idempotency key. The first submission with a key creates the job;
every later one (a double click, a second tab, a retry after a timeout) gets that same job
back. Cloud jobs are then submitted outside the database transaction under a name derived from
the key (SageMaker job names are unique per account and region; Bedrock also gets the key as
``clientRequestToken``), so a retried submission cannot start a second cloud job either."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models.dataset import Dataset, DatasetVersion
from models.team import Team
from models.training import Backend, FineTuneJob, JobEvent, JobStatus
from models.types import reject_control_characters, utcnow
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import ConfigurationError, ExternalServiceError, ValidationError
from services.permissions import Permission
from services.registry.datasets import ensure_trainable
from services.training import pricing
from services.training.backends import backend_for
from services.training.catalog import check_compatible, checked_hyperparameters
from services.training.specs import job_spec
from services.validation import parse

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[A-Za-z0-9-]{16,64}$")


class LaunchRequest(BaseModel):
    backend: Backend = Backend.LOCAL
    base_model: str = Field(min_length=1, max_length=300)
    dataset_version_id: int
    recipe: str = Field(default="causal-lm", max_length=60)
    customization_type: str | None = Field(default=None, max_length=40)
    hyperparameters: dict[str, object] = Field(default_factory=dict)
    instance_type: str | None = Field(default=None, max_length=60)
    instance_count: int = Field(default=1, ge=1, le=16)
    spot: bool = False
    max_runtime_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    register_on_success: bool = False
    register_model_name: str | None = Field(default=None, max_length=200)
    idempotency_key: str

    @field_validator("base_model", "register_model_name", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if isinstance(value, str):
            return reject_control_characters(value.strip()) or None
        return value

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_PATTERN.match(value):
            raise ValueError("must be 16-64 letters, digits or dashes")
        return value

    @property
    def compute(self) -> dict[str, object]:
        if self.backend is Backend.SAGEMAKER:
            return {
                "instance_type": self.instance_type or "ml.g5.xlarge",
                "instance_count": self.instance_count,
                "spot": self.spot,
                "max_wait_seconds": self.max_runtime_minutes * 60 * 2 if self.spot else None,
            }
        return {}


@dataclass(frozen=True)
class LaunchOutcome:
    job: FineTuneJob
    created: bool  # False: this submission was a repeat of an earlier one


def job_name(key: str, base_model: str, dataset: str) -> str:
    """A readable backend job name, unique through the idempotency key it ends with, and valid
    for SageMaker and Bedrock alike (letters, digits and dashes, at most 63 characters)."""

    def slug(text: str, limit: int) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")

    model = slug(base_model.rsplit("/", 1)[-1].split(":")[0], 22)
    return "-".join(part for part in (model, slug(dataset, 22), key.lower()[:16]) if part)


def launch(
    db: Database, settings: Settings, *, actor: Actor, data: dict[str, object]
) -> LaunchOutcome:
    """Create the job (queued for a local worker, or submitted to SageMaker or Bedrock)."""
    request = parse(LaunchRequest, data)
    reason = backend_for(request.backend, settings).unavailable_reason()
    if reason:
        raise ConfigurationError(reason)
    try:
        outcome = _create(db, actor, request)
    except IntegrityError:  # the same key won a race in another session: that job is this one
        with db.read() as session:
            job = _by_key(session, request.idempotency_key)
        assert job is not None
        return LaunchOutcome(job, created=False)
    if outcome.created and request.backend is not Backend.LOCAL:
        return LaunchOutcome(submit(db, settings, outcome.job), created=True)
    return outcome


def _by_key(session: Session, key: str) -> FineTuneJob | None:
    return session.exec(select(FineTuneJob).where(FineTuneJob.idempotency_key == key)).first()


def _create(db: Database, actor: Actor, request: LaunchRequest) -> LaunchOutcome:
    with db.write() as session:
        user = require(session, actor, Permission.LAUNCH_JOBS)
        existing = _by_key(session, request.idempotency_key)
        if existing is not None:
            return LaunchOutcome(existing, created=False)
        dataset = ensure_trainable(session, request.dataset_version_id)
        base_model_id = check_compatible(session, request, dataset)
        hyperparameters = checked_hyperparameters(request)
        epochs = int(hyperparameters.get("epochs", hyperparameters.get("epochCount", 1)))
        cost = pricing.estimate(
            session,
            backend=request.backend.value,
            compute=request.compute,
            hours=request.max_runtime_minutes / 60,
            tokens=dataset.token_estimate,
            epochs=epochs,
            base_model=request.base_model,
        )
        team_id = user.team_id if user is not None else None
        local = request.backend is Backend.LOCAL
        job = FineTuneJob(
            idempotency_key=request.idempotency_key,
            name=job_name(
                request.idempotency_key, request.base_model, _dataset_name(session, dataset)
            ),
            owner=actor.username,
            team_id=team_id,
            backend=request.backend.value,
            status=(JobStatus.QUEUED if local else JobStatus.SUBMITTING).value,
            status_detail="waiting for a worker"
            if local
            else "sending to " + request.backend.label,
            base_model=request.base_model,
            base_model_id=base_model_id,
            dataset_version_id=request.dataset_version_id,
            recipe=request.recipe,
            customization_type=request.customization_type,
            hyperparameters=hyperparameters,
            compute=request.compute,
            max_runtime_seconds=request.max_runtime_minutes * 60,
            estimated_cost=cost.amount,
            cost_basis=cost.basis,
            register_on_success=request.register_on_success,
            register_model_name=request.register_model_name,
        )
        session.add(job)
        session.flush()
        assert job.id is not None
        session.add(JobEvent(job_id=job.id, status=job.status, detail=job.status_detail))
        team = session.get(Team, team_id) if team_id else None
        audit.record(
            session,
            actor=actor.username,
            action="training.launch",
            entity_type="finetune_job",
            entity_id=job.id,
            summary=f"Launched {request.backend.label} fine-tuning of {request.base_model}",
            after={
                "backend": job.backend,
                "base_model": job.base_model,
                "dataset_version": job.dataset_version_id,
                "team": team.name if team else None,
                "estimated_cost": None if cost.amount is None else str(cost.amount),
            },
        )
        return LaunchOutcome(job, created=True)


def _dataset_name(session: Session, version: DatasetVersion) -> str:
    dataset = session.get(Dataset, version.dataset_id)
    return dataset.name if dataset else "dataset"


def submit(db: Database, settings: Settings, job: FineTuneJob) -> FineTuneJob:
    """Send a SUBMITTING cloud job to its backend and record what happened. A refusal is
    recorded as a failed job with the service's error code, never left submitting."""
    backend = backend_for(job.backend, settings)
    with db.read() as session:
        spec = job_spec(session, settings, job)
    try:
        submitted = backend.submit(spec)
    except (ExternalServiceError, ValidationError, ConfigurationError) as exc:
        code = getattr(exc, "code", None) or type(exc).__name__
        log.warning("submitting job %s failed: %s", job.id, exc)
        return record_transition(
            db, job.id, JobStatus.FAILED, str(exc), error_code=code, failure_reason=str(exc)
        )
    return record_transition(
        db,
        job.id,
        submitted.status,
        submitted.detail or "submitted",
        external_id=submitted.external_id,
        artifact_uri=submitted.output_uri,
    )


def record_transition(
    db: Database, job_id: int | None, status: JobStatus, detail: str, **changes: object
) -> FineTuneJob:
    """Move a job to ``status`` (with any other column changes) and add it to its timeline."""
    with db.transaction() as session:
        job = session.get(FineTuneJob, job_id, with_for_update=True)
        assert job is not None
        changed = job.status != status.value or job.status_detail != detail
        job.status, job.status_detail = status.value, detail
        for key, value in changes.items():
            setattr(job, key, value)
        now = utcnow()
        if status in (JobStatus.STARTING, JobStatus.RUNNING) and job.started_at is None:
            job.started_at = now
        if status.finished and job.finished_at is None:
            job.finished_at = now
        job.version += 1
        session.add(job)
        if changed:
            assert job.id is not None
            session.add(JobEvent(job_id=job.id, at=now, status=status.value, detail=detail))
        return job


def preview_cost(db: Database, *, actor: Actor, data: dict[str, object]) -> pricing.Estimate:
    """The estimate the form shows before launch, for what is typed in so far."""
    request = parse(LaunchRequest, data)
    with db.read() as session:
        require(session, actor, Permission.LAUNCH_JOBS)
        tokens = 0
        if request.dataset_version_id:
            version = session.get(DatasetVersion, request.dataset_version_id)
            tokens = version.token_estimate if version else 0
        values = request.hyperparameters
        epochs = values.get("epochs", values.get("epochCount", 1))
        return pricing.estimate(
            session,
            backend=request.backend.value,
            compute=request.compute,
            hours=request.max_runtime_minutes / 60,
            tokens=tokens,
            epochs=int(str(epochs)) if str(epochs).isdigit() else 1,
            base_model=request.base_model,
        )
