"""Keeping SageMaker and Bedrock jobs current: ask the service how each unfinished job is
doing, record what changed on its timeline, and register what a finished job produced. The
worker's daemon does this every half minute; ``jobs reconcile`` does it on demand."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import col, select

from models.training import Backend, FineTuneJob, JobStatus
from models.types import utcnow
from services.config import Settings
from services.db import Database
from services.errors import NotFound, PortalError
from services.training.backends import backend_for
from services.training.launch import record_transition, submit

log = logging.getLogger(__name__)

SUBMIT_GRACE = timedelta(minutes=2)  # longer than any answer to a submission takes


def refresh(db: Database, settings: Settings, job_id: int) -> FineTuneJob:
    """Ask a cloud backend how a job is doing and record it (the worker does this for local
    jobs). Errors from the service leave the job as it was and are raised to the caller."""
    with db.read() as session:
        job = session.get(FineTuneJob, job_id)
    if job is None:
        raise NotFound(f"No fine-tuning job with id {job_id}.")
    if job.backend == Backend.LOCAL.value or not job.external_id or JobStatus(job.status).finished:
        return job
    state = backend_for(job.backend, settings).describe(job.external_id)
    changes: dict[str, object] = {"metrics": {**job.metrics, **state.metrics}}
    for key in (
        "billable_seconds",
        "artifact_uri",
        "output_model_ref",
        "error_code",
        "failure_reason",
    ):
        value = getattr(state, key)
        if value is not None:
            changes[key] = value
    if state.progress_step is not None:
        changes["progress_step"] = state.progress_step
        changes["progress_total"] = state.progress_total or 0
    job = record_transition(db, job_id, state.status, state.detail or state.status.value, **changes)
    if state.status is JobStatus.COMPLETED and (job.register_on_success or job.output_model_ref):
        from services.training.registration import register_automatically

        register_automatically(db, settings, job_id)
    return job


def refresh_active_cloud_jobs(db: Database, settings: Settings) -> int:
    """Refresh every unfinished cloud job; returns how many answered."""
    with db.read() as session:
        ids = session.exec(
            select(FineTuneJob.id).where(
                col(FineTuneJob.backend) != Backend.LOCAL.value,
                col(FineTuneJob.status).in_(
                    [s.value for s in JobStatus if not s.finished and s is not JobStatus.QUEUED]
                ),
                col(FineTuneJob.external_id).is_not(None),
            )
        ).all()
    done = 0
    for job_id in ids:
        try:
            refresh(db, settings, job_id or 0)
            done += 1
        except PortalError as exc:
            log.warning("refreshing job %s failed: %s", job_id, exc)
    resubmit_interrupted(db, settings)
    return done


def resubmit_interrupted(
    db: Database, settings: Settings, *, older_than: timedelta = SUBMIT_GRACE
) -> list[int]:
    """Send again the cloud jobs whose submission was cut short (the portal stopped between
    recording the job and hearing back from AWS). The job name and Bedrock's client token come
    from the idempotency key, so a job AWS did create is found, not started twice."""
    with db.read() as session:
        stuck = session.exec(
            select(FineTuneJob).where(
                col(FineTuneJob.backend) != Backend.LOCAL.value,
                FineTuneJob.status == JobStatus.SUBMITTING.value,
                col(FineTuneJob.external_id).is_(None),
                col(FineTuneJob.created_at) < utcnow() - older_than,
            )
        ).all()
    for job in stuck:
        log.info("job %s: submission was interrupted; sending it again", job.id)
        submit(db, settings, job)
    return [job.id or 0 for job in stuck]
