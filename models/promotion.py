"""Promotions: versioned policies per target stage, requests with the evidence they were
judged on, each approver's decision, and the side effects an approval must carry out."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, field_validator, model_validator
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, reject_control_characters, utcnow
from models.user import Role

TARGET_STAGES = ("staging", "production")
GATE_OPERATORS = ("<", "<=", ">", ">=")
APPROVER_ROLES = (Role.APPROVER.value, Role.DATA_SCIENTIST.value)
"""Roles a policy may ask to approve: approvers, or (peer review) other data scientists.
Either way the requester never approves their own request."""
METRIC_NAME = re.compile(r"^[A-Za-z0-9_./:-]{1,250}$")


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class SideEffectKind(StrEnum):
    MLFLOW_ALIAS = "mlflow_alias"
    SAGEMAKER_APPROVAL = "sagemaker_approval"
    WEBHOOK = "webhook"

    @property
    def label(self) -> str:
        return {
            "mlflow_alias": "MLflow alias and tags",
            "sagemaker_approval": "SageMaker approval status",
            "webhook": "Deployment webhook",
        }[self.value]


class SideEffectStatus(StrEnum):
    PENDING = "pending"  # not tried yet, or failed and due for another try
    DONE = "done"


class MetricGate(BaseModel):
    """``metric op threshold``, e.g. ``eval_loss < 1.2``. A missing metric fails the gate."""

    metric: str
    op: str
    threshold: float

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        value = value.strip()
        if not METRIC_NAME.match(value):
            raise ValueError("a metric name is 1-250 letters, digits or _ . / : -")
        return value

    @field_validator("op")
    @classmethod
    def _op(cls, value: str) -> str:
        if value not in GATE_OPERATORS:
            raise ValueError(f"must be one of {' '.join(GATE_OPERATORS)}")
        return value

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def passes(self, value: float | None) -> bool:
        if value is None or value != value:
            return False
        return {
            "<": value < self.threshold,
            "<=": value <= self.threshold,
            ">": value > self.threshold,
            ">=": value >= self.threshold,
        }[self.op]


class PolicyUpdate(BaseModel):
    """What an admin edits; each save becomes a new revision of the stage's policy."""

    required_approvals: int = Field(default=1, ge=1, le=10)
    approver_role: str = Role.APPROVER.value
    metric_gates: list[MetricGate] = Field(default_factory=list)
    block_pii: bool = True
    expiry_days: int | None = Field(default=None, ge=1, le=365)

    @field_validator("approver_role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in APPROVER_ROLES:
            raise ValueError(f"must be one of {', '.join(APPROVER_ROLES)}")
        return value

    @model_validator(mode="after")
    def _distinct_gates(self) -> PolicyUpdate:
        seen = {(g.metric, g.op) for g in self.metric_gates}
        if len(seen) != len(self.metric_gates):
            raise ValueError("each metric and operator may appear in one gate only")
        return self


class PromotionPolicy(SQLModel, table=True):
    """One revision of a target stage's policy. Rows are never edited: a change adds a row."""

    __tablename__ = "promotion_policy"
    __table_args__ = (
        UniqueConstraint("target_stage", "revision", name="uq_promotion_policy_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_stage: str = Field(max_length=20, index=True)
    revision: int
    required_approvals: int = 1
    approver_role: str = Field(default=Role.APPROVER.value, max_length=30)
    metric_gates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    block_pii: bool = True
    expiry_days: int | None = None
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    def gates(self) -> list[MetricGate]:
        return [MetricGate.model_validate(g) for g in self.metric_gates]


class PromotionRequest(SQLModel, table=True):
    __tablename__ = "promotion_request"
    __table_args__ = (
        # One open request per version and target stage: a double click cannot file two.
        Index(
            "uq_promotion_request_open",
            "model_version_id",
            "target_stage",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_promotion_request_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model_asset.id", index=True)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    target_stage: str = Field(max_length=20)
    policy_id: int = Field(foreign_key="promotion_policy.id")
    status: str = Field(default=RequestStatus.PENDING.value, max_length=20)
    requested_by: str = Field(max_length=100, index=True)
    justification: str = Field(sa_column=Column(Text, nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    approvals: int = 0
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    closing_comment: str | None = Field(default=None, sa_column=Column(Text))
    revision: int = 1
    """Bumped on every change, so a page can tell the request moved on since it was shown."""


class ApprovalDecision(SQLModel, table=True):
    __tablename__ = "approval_decision"
    __table_args__ = (
        # Approvals come from distinct people, whatever the timing.
        UniqueConstraint("request_id", "decided_by", name="uq_approval_decision_person"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="promotion_request.id", index=True)
    decided_by: str = Field(max_length=100)
    decision: str = Field(max_length=10)
    comment: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decided_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class PromotionSideEffect(SQLModel, table=True):
    """An outbox row: written with the decision, carried out afterwards, retried until done."""

    __tablename__ = "promotion_side_effect"
    __table_args__ = (
        UniqueConstraint("request_id", "kind", name="uq_promotion_side_effect_kind"),
        Index("ix_promotion_side_effect_status", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="promotion_request.id", index=True)
    kind: str = Field(max_length=30)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=SideEffectStatus.PENDING.value, max_length=20)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class RequestCreate(BaseModel):
    model_version_id: int
    target_stage: str
    justification: str = Field(min_length=10, max_length=5000)

    @field_validator("target_stage")
    @classmethod
    def _stage(cls, value: str) -> str:
        if value not in TARGET_STAGES:
            raise ValueError(f"must be one of {', '.join(TARGET_STAGES)}")
        return value

    @field_validator("justification", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if isinstance(value, str):
            return reject_control_characters(value.strip())
        return value
