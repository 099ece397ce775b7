"""What every model catalog source returns, and the protocol the registry sync reads through.

A source fetches a read-only snapshot of the models it knows as plain, frozen dataclasses; the
sync upserts them into the portal database. Nothing here imports boto3 or MLflow: each source
imports its SDK itself, and :func:`sources_for` imports the sources only when called.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from services.config import Settings

SourceName = Literal["bedrock", "sagemaker", "mlflow"]
ModelKind = Literal["foundation", "custom"]

# ``ExternalVersion.stage_hint`` values: only what a source states outright.
STAGE_PRODUCTION = "production"  # MLflow alias "production"/"prod" (or legacy stage)
STAGE_STAGING = "staging"  # MLflow alias "staging"/"stage" (or legacy stage)
STAGE_APPROVED = "approved"  # SageMaker ModelApprovalStatus "Approved"


@dataclass(frozen=True)
class ExternalVersion:
    """One version of a model as its source describes it."""

    version: str  # MLflow "3", SageMaker package version "2", Bedrock model id or name
    source_ref: str  # ARN, or "models:/name/3" for MLflow
    artifact_uri: str | None = None
    created_at: datetime | None = None  # timezone-aware UTC
    created_by: str | None = None
    description: str | None = None
    stage_hint: str | None = None  # one of the STAGE_* values, or None
    approval_status: str | None = None  # SageMaker ModelApprovalStatus, verbatim
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    base_model_ref: str | None = None  # e.g. the Bedrock foundation model ARN it was tuned from
    run_id: str | None = None  # MLflow source run
    mlflow_model_name: str | None = None
    mlflow_model_version: str | None = None
    mlflow_aliases: tuple[str, ...] = ()
    job_ref: str | None = None  # Bedrock customization job ARN, SageMaker GeneratedBy


@dataclass(frozen=True)
class ExternalModel:
    """A model (foundation or custom) with its versions, as its source describes it."""

    source: SourceName
    kind: ModelKind
    provider: str  # "Anthropic", "Meta", … for foundation models; the source name for custom
    name: str
    source_ref: str  # stable and unique within the source
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    modalities: tuple[str, ...] = ()  # input and output modalities, e.g. TEXT, IMAGE
    customizations: tuple[str, ...] = ()  # e.g. FINE_TUNING, CONTINUED_PRE_TRAINING
    lifecycle: str | None = None  # e.g. Bedrock ACTIVE / LEGACY
    versions: tuple[ExternalVersion, ...] = ()


class RegistrySource(Protocol):
    """A catalog of models the portal can read. ``fetch`` raises ``ConfigurationError`` when
    the source is not configured and ``ExternalServiceError`` when it fails."""

    name: str
    label: str

    def unavailable_reason(self) -> str | None:
        """Why this source cannot be used, in words a user can act on; None when it can."""
        ...

    def fetch(self) -> list[ExternalModel]:
        """Every model the source holds, with all their versions."""
        ...


def sources_for(settings: Settings) -> dict[str, RegistrySource]:
    """The three sources under ``settings``, by name. Builds no client and opens no connection."""
    from services.registry.sources.bedrock import BedrockSource
    from services.registry.sources.mlflow_registry import MlflowRegistrySource
    from services.registry.sources.sagemaker import SageMakerSource

    sources: list[RegistrySource] = [
        BedrockSource.from_settings(settings),
        SageMakerSource.from_settings(settings),
        MlflowRegistrySource.from_settings(settings),
    ]
    return {source.name: source for source in sources}


def as_utc(value: datetime | None) -> datetime | None:
    """A timezone-aware UTC datetime; naive values (as some emulators send) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def pages(
    client: Any, operation: str, page_size: int | None = None, **params: Any
) -> Iterator[Any]:
    """Every response page of a boto3 list ``operation``: through its paginator when botocore
    has one, else the single response. Call inside ``services.aws.aws_errors``."""
    if not client.can_paginate(operation):
        yield getattr(client, operation)(**params)
        return
    config = {"PageSize": page_size} if page_size else {}
    yield from client.get_paginator(operation).paginate(**params, PaginationConfig=config)


def string_map(pairs: Any, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """``[{"Key": k, "Value": v}, …]`` (AWS tag lists) as a dict."""
    return {str(item[key]): str(item[value]) for item in pairs or ()}
