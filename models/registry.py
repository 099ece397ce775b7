"""The AI registry's models: model assets, their versions and stage history, and the last
sync of each external catalog."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, reject_control_characters, utcnow


class ModelKind(StrEnum):
    FOUNDATION = "foundation"
    CUSTOM = "custom"
    IMPORTED = "imported"

    @property
    def label(self) -> str:
        return {
            "foundation": "Foundation",
            "custom": "Fine-tuned / custom",
            "imported": "Imported",
        }[self.value]


class Stage(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class Source(StrEnum):
    """Where a model's record comes from: registered in the portal, or synced."""

    PORTAL = "portal"
    BEDROCK = "bedrock"
    SAGEMAKER = "sagemaker"
    MLFLOW = "mlflow"

    @property
    def label(self) -> str:
        return {
            "portal": "Portal",
            "bedrock": "Amazon Bedrock",
            "sagemaker": "SageMaker",
            "mlflow": "MLflow",
        }[self.value]


TAG_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")


def clean_tags(value: object) -> object:
    """Tags are ``key -> value`` strings; keys use a small safe alphabet."""
    if not isinstance(value, dict):
        return value
    cleaned: dict[str, str] = {}
    for key, item in value.items():
        key = str(key).strip()
        if not TAG_PATTERN.match(key):
            raise ValueError(f"tag {key!r} must be 1-64 letters, digits or _ . : / -")
        cleaned[key] = reject_control_characters(str(item).strip())[:256]
    return cleaned


class ModelAssetBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = ModelKind.CUSTOM.value
    provider: str = Field(default="", max_length=60)
    description: str = Field(default="", max_length=5000)
    owner_team_id: int | None = None
    base_model: str | None = Field(default=None, max_length=300)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "provider", "description", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return reject_control_characters(value.strip()) if isinstance(value, str) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> object:
        return clean_tags(value)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in {k.value for k in ModelKind}:
            raise ValueError(f"must be one of {', '.join(k.value for k in ModelKind)}")
        return value


class ModelAsset(ModelAssetBase, table=True):
    __tablename__ = "model_asset"
    __table_args__ = (UniqueConstraint("source", "source_ref", name="uq_model_asset_source_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    kind: str = Field(default=ModelKind.CUSTOM.value, max_length=20, index=True)
    provider: str = Field(default="", max_length=60, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    owner_team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    base_model: str | None = Field(default=None, max_length=300, index=True)
    tags: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(default=Source.PORTAL.value, max_length=20, index=True)
    source_ref: str = Field(max_length=500)
    modalities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    customizations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    lifecycle: str | None = Field(default=None, max_length=40)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    synced_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    version: int = Field(default=1)


class ModelAssetCreate(ModelAssetBase):
    reference: str | None = Field(default=None, max_length=500)
    """Where the model lives: a Hugging Face id, an ARN or a URI (optional)."""

    @field_validator("reference", mode="before")
    @classmethod
    def _reference(cls, value: object) -> object:
        if isinstance(value, str):
            return reject_control_characters(value.strip()) or None
        return value


class ModelVersionBase(SQLModel):
    artifact_uri: str | None = Field(default=None, max_length=1000)
    base_model: str | None = Field(default=None, max_length=300)
    dataset_version_id: int | None = None
    mlflow_run_id: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=5000)
    intended_use: str = Field(default="", max_length=5000)
    limitations: str = Field(default="", max_length=5000)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)

    @field_validator("artifact_uri", "base_model", "mlflow_run_id", mode="before")
    @classmethod
    def _optional_text(cls, value: object) -> object:
        if isinstance(value, str):
            return reject_control_characters(value.strip()) or None
        return value

    @field_validator("description", "intended_use", "limitations", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return reject_control_characters(value.strip()) if isinstance(value, str) else value


class ModelVersion(ModelVersionBase, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_model_version_number"),
        UniqueConstraint("model_id", "source_version", name="uq_model_version_source_version"),
        Index("ix_model_version_model_stage", "model_id", "stage"),
        # The database itself holds "one version of a model in production (and in staging)".
        *(
            Index(
                f"uq_model_version_one_{stage}",
                "model_id",
                unique=True,
                sqlite_where=text(f"stage = '{stage}'"),
                postgresql_where=text(f"stage = '{stage}'"),
            )
            for stage in ("production", "staging")
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model_asset.id", index=True)
    number: int
    source_version: str | None = Field(default=None, max_length=300)
    stage: str = Field(default=Stage.DEVELOPMENT.value, max_length=20, index=True)
    dataset_version_id: int | None = Field(default=None, foreign_key="dataset_version.id")
    job_ref: str | None = Field(default=None, max_length=500)
    mlflow_model_name: str | None = Field(default=None, max_length=300)
    mlflow_model_version: str | None = Field(default=None, max_length=40)
    mlflow_aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sagemaker_package_arn: str | None = Field(default=None, max_length=500)
    sagemaker_approval_status: str | None = Field(default=None, max_length=40)
    bedrock_custom_model_arn: str | None = Field(default=None, max_length=500)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    intended_use: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    limitations: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    params: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tags: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    stage_changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    synced_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    version: int = Field(default=1)


class ModelVersionCreate(ModelVersionBase):
    pass


class ModelVersionCardUpdate(SQLModel):
    """The parts of a model card people write (the rest comes from runs and sources)."""

    description: str = Field(default="", max_length=5000)
    intended_use: str = Field(default="", max_length=5000)
    limitations: str = Field(default="", max_length=5000)

    @field_validator("description", "intended_use", "limitations", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return reject_control_characters(value.strip()) if isinstance(value, str) else value


class StageChange(SQLModel, table=True):
    """Every stage a version has been in, and when: "which version was in production when"."""

    __tablename__ = "stage_change"

    id: int | None = Field(default=None, primary_key=True)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    from_stage: str | None = Field(default=None, max_length=20)
    to_stage: str = Field(max_length=20)
    changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    changed_by: str = Field(max_length=100)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RegistrySync(SQLModel, table=True):
    """The last sync of one external catalog: when, what it saw and changed, what failed."""

    __tablename__ = "registry_sync"

    source: str = Field(primary_key=True, max_length=20)
    last_started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    models_seen: int = 0
    models_changed: int = 0
    versions_seen: int = 0
    versions_changed: int = 0
