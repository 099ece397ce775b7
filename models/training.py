"""Fine-tuning jobs, their status history, and the compute price table their estimates use."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import MONEY, PRICE, UTCDateTime, utcnow


class Backend(StrEnum):
    LOCAL = "local"
    SAGEMAKER = "sagemaker"
    BEDROCK = "bedrock"

    @property
    def label(self) -> str:
        return {
            "local": "Local (this machine)",
            "sagemaker": "Amazon SageMaker",
            "bedrock": "Amazon Bedrock",
        }[self.value]


class JobStatus(StrEnum):
    QUEUED = "queued"  # local: waiting for a worker slot
    SUBMITTING = "submitting"  # being sent to the backend
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED)


ACTIVE_STATUSES = tuple(s.value for s in JobStatus if not s.finished)


class FineTuneJob(SQLModel, table=True):
    __tablename__ = "finetune_job"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_finetune_job_idempotency_key"),
        Index("ix_finetune_job_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=64)
    name: str = Field(max_length=63, index=True)  # the backend's job name
    owner: str = Field(max_length=100, index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    backend: str = Field(max_length=20, index=True)
    status: str = Field(default=JobStatus.QUEUED.value, max_length=20, index=True)
    status_detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    base_model: str = Field(max_length=300)
    base_model_id: int | None = Field(default=None, foreign_key="model_asset.id")
    dataset_version_id: int = Field(foreign_key="dataset_version.id", index=True)
    recipe: str = Field(max_length=60)
    customization_type: str | None = Field(default=None, max_length=40)
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    compute: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    max_runtime_seconds: int = 3600
    estimated_cost: Decimal | None = Field(default=None, sa_type=MONEY)
    cost_basis: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    register_on_success: bool = False
    register_model_name: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=500)  # SageMaker/Bedrock ARN
    mlflow_experiment_id: str | None = Field(default=None, max_length=40)
    mlflow_run_id: str | None = Field(default=None, max_length=64)
    artifact_uri: str | None = Field(default=None, max_length=1000)
    output_model_ref: str | None = Field(default=None, max_length=500)  # Bedrock custom model
    progress_step: int = 0
    progress_total: int = 0
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    billable_seconds: int | None = None
    worker: str | None = Field(default=None, max_length=200)  # host:pid of the local runner
    pid: int | None = None  # the training process (its group is stopped as a whole)
    stop_requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    error_code: str | None = Field(default=None, max_length=100)
    failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    model_version_id: int | None = Field(default=None, foreign_key="model_version.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    version: int = 1


class JobEvent(SQLModel, table=True):
    """The status timeline of a job: every transition, with what the backend said."""

    __tablename__ = "job_event"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="finetune_job.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    status: str = Field(max_length=20)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class ComputePrice(SQLModel, table=True):
    """Price per hour of a training instance type (or per 1,000 tokens for Bedrock), with
    where it came from; an admin's override wins over the bundled table."""

    __tablename__ = "compute_price"
    __table_args__ = (UniqueConstraint("backend", "item", name="uq_compute_price_item"),)

    id: int | None = Field(default=None, primary_key=True)
    backend: str = Field(max_length=20)
    item: str = Field(max_length=120)  # instance type, or a Bedrock base model id
    unit: str = Field(max_length=30)  # "hour" or "1k tokens"
    price: Decimal = Field(sa_type=PRICE)
    source: str = Field(max_length=300)
    as_of: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    overridden_by: str | None = Field(default=None, max_length=100)
