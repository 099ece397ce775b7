"""Reading and stopping jobs: the list with its filters, one job's detail (timeline, progress,
cost so far, logs, loss curves), and the stop that only the owner or an admin may ask for."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.dataset import Dataset, DatasetVersion
from models.registry import ModelVersion
from models.team import Team
from models.training import Backend, FineTuneJob, JobEvent, JobStatus
from models.types import utcnow
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database, text_match
from services.errors import Conflict, NotFound, PermissionDenied
from services.paging import Page, clamp_page
from services.permissions import Permission, permissions_of
from services.training import pricing
from services.training.backends import backend_for
from services.training.launch import record_transition

log = logging.getLogger(__name__)

Scope = Literal["mine", "team", "all"]
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class JobQuery:
    scope: Scope = "mine"
    backend: str | None = None
    status: str | None = None
    text: str = ""


@dataclass(frozen=True)
class JobRow:
    id: int
    name: str
    owner: str
    team: str | None
    backend: str
    status: str
    status_detail: str
    base_model: str
    dataset: str
    progress_step: int
    progress_total: int
    train_loss: float | None
    estimated_cost: Decimal | None
    created_at: datetime
    finished_at: datetime | None


JobPage = Page[JobRow]


def list_jobs(
    db: Database, *, actor: Actor, query: JobQuery, page: int = 1, page_size: int = 25
) -> JobPage:
    """One page of jobs, newest first, narrowed by scope (mine, my team's, all), backend,
    status and text (job name, base model, owner)."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    with db.read() as session:
        user = require(session, actor, Permission.VIEW_JOBS)
        conditions = []
        if query.scope == "mine":
            conditions.append(col(FineTuneJob.owner) == actor.username)
        elif query.scope == "team":
            conditions.append(col(FineTuneJob.team_id) == (user.team_id if user else None))
        if query.backend:
            conditions.append(col(FineTuneJob.backend) == query.backend)
        if query.status:
            conditions.append(col(FineTuneJob.status) == query.status)
        if query.text.strip():
            conditions.append(
                text_match(query.text, FineTuneJob.name, FineTuneJob.base_model, FineTuneJob.owner)
            )
        total = session.exec(select(func.count(col(FineTuneJob.id))).where(*conditions)).one()
        page = clamp_page(page, total, page_size)
        rows = session.exec(
            select(FineTuneJob, col(Team.name), col(Dataset.name), col(DatasetVersion.number))
            .outerjoin(Team, col(Team.id) == col(FineTuneJob.team_id))
            .join(DatasetVersion, col(DatasetVersion.id) == col(FineTuneJob.dataset_version_id))
            .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
            .where(*conditions)
            .order_by(col(FineTuneJob.created_at).desc(), col(FineTuneJob.id).desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    return JobPage(
        [
            JobRow(
                id=job.id or 0,
                name=job.name,
                owner=job.owner,
                team=team,
                backend=job.backend,
                status=job.status,
                status_detail=job.status_detail,
                base_model=job.base_model,
                dataset=f"{dataset} v{number}",
                progress_step=job.progress_step,
                progress_total=job.progress_total,
                train_loss=job.metrics.get("train_loss"),
                estimated_cost=job.estimated_cost,
                created_at=job.created_at,
                finished_at=job.finished_at,
            )
            for job, team, dataset, number in rows
        ],
        total,
        page,
        page_size,
    )


@dataclass(frozen=True)
class JobDetail:
    job: FineTuneJob
    team: str | None
    dataset: str
    dataset_id: int
    events: list[JobEvent]
    can_stop: bool
    can_register: bool
    cost: pricing.Estimate  # so far, for a running or finished job; the ceiling when queued
    registered: tuple[int, int] | None = None  # (model id, version number) once registered


def _may_stop(actor: Actor, job: FineTuneJob) -> bool:
    return job.owner == actor.username or Permission.STOP_ANY_JOB in permissions_of(actor.roles)


def job_detail(db: Database, *, actor: Actor, job_id: int) -> JobDetail:
    with db.read() as session:
        require(session, actor, Permission.VIEW_JOBS)
        job = _load(session, job_id)
        version = session.get(DatasetVersion, job.dataset_version_id)
        assert version is not None
        dataset = session.get(Dataset, version.dataset_id)
        assert dataset is not None and dataset.id is not None
        team = session.get(Team, job.team_id) if job.team_id else None
        events = list(
            session.exec(
                select(JobEvent)
                .where(JobEvent.job_id == job_id)
                .order_by(col(JobEvent.at), col(JobEvent.id))
            )
        )
        cost = cost_so_far(session, job)
        registered = None
        if job.model_version_id is not None:
            version_row = session.get(ModelVersion, job.model_version_id)
            if version_row is not None:
                registered = (version_row.model_id, version_row.number)
    roles = permissions_of(actor.roles)
    return JobDetail(
        job=job,
        team=team.name if team else None,
        dataset=f"{dataset.name} v{version.number}",
        dataset_id=dataset.id,
        events=events,
        can_stop=not JobStatus(job.status).finished and _may_stop(actor, job),
        can_register=job.status == JobStatus.COMPLETED.value
        and job.model_version_id is None
        and Permission.MANAGE_REGISTRY in roles,
        cost=cost,
        registered=registered,
    )


def _load(session: Session, job_id: int) -> FineTuneJob:
    job = session.get(FineTuneJob, job_id)
    if job is None:
        raise NotFound(f"No fine-tuning job with id {job_id}.")
    return job


def cost_so_far(session: Session, job: FineTuneJob) -> pricing.Estimate:
    if job.backend != Backend.SAGEMAKER.value or job.started_at is None:
        return pricing.Estimate(job.estimated_cost, job.cost_basis)
    if job.billable_seconds is not None:
        seconds = float(job.billable_seconds)
    else:
        seconds = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    return pricing.estimate(
        session, backend=job.backend, compute=job.compute, hours=max(seconds, 0) / 3600
    )


def stop_job(db: Database, settings: Settings, *, actor: Actor, job_id: int) -> FineTuneJob:
    """Ask a job to stop. A queued local job stops at once; a running one saves a checkpoint
    and stops within the grace period; a cloud job is stopped by its service."""
    with db.write() as session:
        require(session, actor, Permission.VIEW_JOBS)
        job = _load(session, job_id)
        if not _may_stop(actor, job):
            raise PermissionDenied(f"Only {job.owner} or an administrator can stop this job.")
        if JobStatus(job.status).finished:
            raise Conflict(f"This job has already {job.status}; there is nothing to stop.")
        if job.stop_requested_at is not None:
            return job
        job.stop_requested_at = utcnow()
        session.add(job)
        audit.record(
            session,
            actor=actor.username,
            action="training.stop",
            entity_type="finetune_job",
            entity_id=job.id,
            summary=f"Asked job {job.name} to stop",
            before={"status": job.status},
        )
        queued = job.status == JobStatus.QUEUED.value
    if queued:
        return record_transition(
            db, job_id, JobStatus.STOPPED, f"stopped by {actor.username} before it started"
        )
    if job.backend != Backend.LOCAL.value and job.external_id:
        backend_for(job.backend, settings).stop(job.external_id)
    return record_transition(db, job_id, JobStatus.STOPPING, f"stop requested by {actor.username}")


def job_logs(
    db: Database, settings: Settings, *, actor: Actor, job_id: int, limit: int = 200
) -> list[str]:
    with db.read() as session:
        require(session, actor, Permission.VIEW_JOBS)
        job = _load(session, job_id)
    if job.backend == Backend.LOCAL.value:
        return backend_for(job.backend, settings).logs(str(job.id), limit)
    if not job.external_id:
        return []
    return backend_for(job.backend, settings).logs(job.external_id, limit)


def metric_history(
    db: Database, settings: Settings, *, actor: Actor, job_id: int
) -> dict[str, list[tuple[int, float]]]:
    """Each loss curve of a job as (step, value) points: from its MLflow run, or from the
    metrics files Bedrock writes."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_JOBS)
        job = _load(session, job_id)
    if job.backend == Backend.BEDROCK.value:
        if not job.external_id:
            return {}
        from services.training.backends.bedrock import BedrockBackend

        return BedrockBackend(settings).metric_history(job.external_id)
    if not job.mlflow_run_id:
        return {}
    from services.experiments.histories import load_histories

    histories = load_histories(settings.resolved_tracking_uri, [job.mlflow_run_id], CURVES)
    series = {key: histories.get(job.mlflow_run_id, key) for key in CURVES}
    return {
        key: list(zip(found.steps, found.values, strict=True))
        for key, found in series.items()
        if found.steps
    }


CURVES = ("train_loss", "eval_loss", "learning_rate")
