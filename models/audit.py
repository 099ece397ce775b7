"""The append-only audit log. Each event carries the hash of the one before it, and the
chain head (one row) carries the last sequence number and hash, so an edited, deleted
or truncated row is detected by ``services.audit.verify_chain``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

GENESIS_HASH = "0" * 64


class AuditEventBase(SQLModel):
    seq: int = Field(unique=True, index=True)
    occurred_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    actor: str = Field(max_length=100, index=True)
    action: str = Field(max_length=100, index=True)
    entity_type: str = Field(max_length=50, index=True)
    entity_id: str = Field(max_length=200)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditEvent(AuditEventBase, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)


class AuditEventPublic(AuditEventBase):
    id: int


class AuditChainHead(SQLModel, table=True):
    """Exactly one row (id=1). Write transactions lock it first, which also serialises them."""

    __tablename__ = "audit_chain_head"

    id: int = Field(default=1, primary_key=True)
    last_seq: int = Field(default=0)
    last_hash: str = Field(default=GENESIS_HASH, max_length=64)
