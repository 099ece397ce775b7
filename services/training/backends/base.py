"""What every training backend is given and what it reports, and the protocol they share.

A backend turns a resolved, validated :class:`JobSpec` into a running job and reports on it as
plain frozen dataclasses; the job service records what it says in the portal database. Backends
raise :class:`~services.errors.ExternalServiceError` (with the AWS error code) when the service
behind them refuses or fails, and :class:`~services.errors.ValidationError` for input that the
backend's own rules reject before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from models.training import Backend, JobStatus


@dataclass(frozen=True)
class DatasetSplit:
    name: str  # "train", "validation", "test"
    uri: str  # a local path or s3:// URI
    sha256: str
    records: int


@dataclass(frozen=True)
class DatasetInput:
    """The dataset version a job trains on, as stored by the registry."""

    version_id: int
    name: str  # "<dataset name> v<number>"
    format: str  # services.registry.formats.DatasetFormat value
    sha256: str
    storage_uri: str  # the whole checked file
    token_estimate: int
    record_count: int
    splits: dict[str, DatasetSplit] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingTarget:
    """Where the job logs its MLflow run (the run may already exist, created by the portal)."""

    tracking_uri: str
    experiment_name: str
    run_id: str | None = None


@dataclass(frozen=True)
class JobSpec:
    job_id: int
    name: str  # unique per backend (and per AWS account and region): derived from the key
    idempotency_key: str  # also Bedrock's clientRequestToken
    owner: str
    team: str | None
    base_model: str  # HF id or local path, Bedrock model id/ARN, or "tiny-llama" (from config)
    recipe: str
    customization_type: str | None  # Bedrock: FINE_TUNING, CONTINUED_PRE_TRAINING, DISTILLATION
    hyperparameters: dict[str, Any]
    compute: dict[str, Any]  # instance_type, instance_count, spot, max_wait_seconds
    max_runtime_seconds: int
    dataset: DatasetInput
    tracking: TrackingTarget | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submitted:
    external_id: str  # the backend's handle: an ARN, or the local job's id
    status: JobStatus
    detail: str = ""
    output_uri: str | None = None


@dataclass(frozen=True)
class Transition:
    at: datetime | None
    status: str
    detail: str = ""


@dataclass(frozen=True)
class JobState:
    """What the backend says about a job now."""

    status: JobStatus
    detail: str = ""
    transitions: tuple[Transition, ...] = ()  # e.g. SageMaker's secondary status history
    metrics: dict[str, float] = field(default_factory=dict)
    progress_step: int | None = None
    progress_total: int | None = None
    billable_seconds: int | None = None
    artifact_uri: str | None = None  # the trained model or adapter
    output_model_ref: str | None = None  # e.g. the Bedrock custom model ARN
    error_code: str | None = None
    failure_reason: str | None = None


class JobBackend(Protocol):
    name: Backend

    def unavailable_reason(self) -> str | None:
        """Why this backend cannot be used with the current settings, in words a user can act
        on; None when it can."""

    def submit(self, spec: JobSpec) -> Submitted:
        """Start the job. Submitting the same spec twice (same name/key) starts one job."""

    def describe(self, external_id: str) -> JobState: ...

    def stop(self, external_id: str) -> None:
        """Ask the job to stop; it reports STOPPED (or finishes) later."""

    def logs(self, external_id: str, limit: int = 200) -> list[str]:
        """The last ``limit`` lines of the job's log, oldest first."""
