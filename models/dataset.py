"""Datasets for fine-tuning and their content-addressed versions, with what validation and
the PII scan found."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.registry import clean_tags
from models.types import UTCDateTime, reject_control_characters, utcnow


class PiiStatus(StrEnum):
    CLEAN = "clean"
    FLAGGED = "flagged"  # findings; fine-tuning refuses it until an exception is recorded
    EXCEPTED = "excepted"  # an approver or admin accepted the findings, with a reason


class DatasetBase(SQLModel):
    name: str = Field(min_length=2, max_length=120)
    description: str = Field(default="", max_length=5000)
    owner_team_id: int | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name", "description", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return reject_control_characters(value.strip()) if isinstance(value, str) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: object) -> object:
        return clean_tags(value)


class Dataset(DatasetBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    owner_team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    tags: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class DatasetCreate(DatasetBase):
    pass


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number", name="uq_dataset_version_number"),
        UniqueConstraint("dataset_id", "sha256", name="uq_dataset_version_sha256"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    sha256: str = Field(max_length=64, index=True)
    format: str = Field(max_length=40)
    source_uri: str = Field(max_length=1000)  # what the user gave: a file name or s3:// URI
    storage_uri: str = Field(max_length=1000)  # where the portal keeps the checked copy
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    record_count: int = Field(sa_column=Column(BigInteger, nullable=False))
    token_estimate: int = Field(sa_column=Column(BigInteger, nullable=False))
    pii_status: str = Field(default=PiiStatus.CLEAN.value, max_length=20, index=True)
    pii_findings: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    pii_exception_reason: str | None = Field(default=None, sa_column=Column(Text))
    pii_exception_by: str | None = Field(default=None, max_length=100)
    pii_exception_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    split_seed: int = 0
    stratify_field: str | None = Field(default=None, max_length=100)
    splits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
