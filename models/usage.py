"""LLM gateway usage: raw request events, their daily rollups, the price overrides and identity
mappings admins keep, and a ledger of ingested files.

Text dimensions are ``""`` when unknown, never NULL: the rollup's unique key (and the upsert
that relies on it) treats NULLs as all different. A request's cost is ``None`` with
``priced=False`` when no price is known for its model, never a silent 0.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import PRICE, UTCDateTime, utcnow

EVENT_KEY = ("occurred_at", "source", "request_id")
"""What makes a logged request the same one again: its request id, source and time. The
time leads, so that storing events as they are logged (in time order) adds to the end of
this index: keyed by the request id alone, every insert landed on a random page of it, and
once the index outgrew the page cache each transaction rewrote most of it."""

ROLLUP_KEY = ("day", "team", "user", "api_key_alias", "model", "provider", "tags")
"""The dimensions of one ``UsageDaily`` row, in the order of its unique constraint."""


class UsageSource(StrEnum):
    LITELLM = "litellm"
    BEDROCK = "bedrock"


class PriceUnit(StrEnum):
    PER_1K = "1k"
    PER_1M = "1m"

    @property
    def tokens(self) -> int:
        return 1_000 if self is PriceUnit.PER_1K else 1_000_000


class UsageEvent(SQLModel, table=True):
    """One request through the gateway (or straight to Bedrock), as logged."""

    __tablename__ = "usage_event"
    __table_args__ = (
        UniqueConstraint(*EVENT_KEY, name="uq_usage_event_record"),
        # Drill-down and pruning select by day. Few distinct days, each growing at its end as
        # events arrive: indexing ``day`` costs an ingest a fifth of what indexing the exact
        # time did, whose every insert landed somewhere new in the index.
        Index("ix_usage_event_day", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=10)
    request_id: str = Field(max_length=200)
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    day: date  # occurred_at's date in the reporting time zone (PORTAL_REPORT_TZ) at ingest
    team: str = Field(default="", max_length=100)
    user: str = Field(default="", max_length=200)
    api_key_alias: str = Field(default="", max_length=300)  # or the IAM principal for Bedrock
    api_key_hash: str = Field(default="", max_length=128)  # LiteLLM's hash, never the key
    model: str = Field(max_length=300)
    provider: str = Field(default="", max_length=50)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=10)  # success | failure
    error: str | None = Field(default=None, max_length=300)
    cache_hit: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal | None = Field(default=None, sa_type=PRICE)
    priced: bool = True


class UsageDaily(SQLModel, table=True):
    """Totals per reporting-timezone day and dimension, maintained in the same transaction as
    the events they count. ``tags`` is the request's tag set, sorted and comma-joined, so the
    rows of a day add up to the day's totals exactly once."""

    __tablename__ = "usage_daily"
    __table_args__ = (UniqueConstraint(*ROLLUP_KEY, name="uq_usage_daily_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    team: str = Field(default="", max_length=100)
    user: str = Field(default="", max_length=200)
    api_key_alias: str = Field(default="", max_length=300)
    model: str = Field(default="", max_length=300)
    provider: str = Field(default="", max_length=50)
    tags: str = Field(default="", max_length=500)
    requests: int = Field(default=0, sa_type=BigInteger)
    errors: int = Field(default=0, sa_type=BigInteger)
    cache_hits: int = Field(default=0, sa_type=BigInteger)
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_write_tokens: int = Field(default=0, sa_type=BigInteger)
    cost: Decimal = Field(default=Decimal(0), sa_type=PRICE)  # priced requests only
    unpriced_requests: int = Field(default=0, sa_type=BigInteger)


TEAM_MODEL_KEY = ("day", "team", "model", "provider")
"""The dimensions of one ``UsageDailyTeamModel`` row."""


class UsageDailyTeamModel(SQLModel, table=True):
    """The same totals per day, team, model and provider only: at most days × teams × models
    rows however many requests there are, so reports that need no finer dimension (spend by
    team and model, budgets, forecasts) read a table whose size does not grow with traffic."""

    __tablename__ = "usage_daily_team_model"
    __table_args__ = (UniqueConstraint(*TEAM_MODEL_KEY, name="uq_usage_daily_team_model_key"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    team: str = Field(default="", max_length=100)
    model: str = Field(default="", max_length=300)
    provider: str = Field(default="", max_length=50)
    requests: int = Field(default=0, sa_type=BigInteger)
    errors: int = Field(default=0, sa_type=BigInteger)
    cache_hits: int = Field(default=0, sa_type=BigInteger)
    input_tokens: int = Field(default=0, sa_type=BigInteger)
    output_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=BigInteger)
    cache_write_tokens: int = Field(default=0, sa_type=BigInteger)
    cost: Decimal = Field(default=Decimal(0), sa_type=PRICE)
    unpriced_requests: int = Field(default=0, sa_type=BigInteger)


class PriceOverride(SQLModel, table=True):
    """An admin's price for a model (a negotiated discount, or a model LiteLLM's map lacks).
    It wins over the bundled price; cache prices fall back to the input price."""

    __tablename__ = "price_override"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=300, unique=True)
    unit: str = Field(default=PriceUnit.PER_1M.value, max_length=4)
    input_price: Decimal = Field(sa_type=PRICE)
    output_price: Decimal = Field(sa_type=PRICE)
    cache_read_price: Decimal | None = Field(default=None, sa_type=PRICE)
    cache_write_price: Decimal | None = Field(default=None, sa_type=PRICE)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_by: str = Field(max_length=100)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class IdentityMapping(SQLModel, table=True):
    """Whose Bedrock traffic this is: an IAM role or user ARN, or an application inference
    profile ARN, mapped to a team (and optionally a user)."""

    __tablename__ = "identity_mapping"

    id: int | None = Field(default=None, primary_key=True)
    arn: str = Field(max_length=500, unique=True)
    team: str = Field(max_length=100)
    user: str = Field(default="", max_length=200)
    updated_by: str = Field(max_length=100)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class IngestedFile(SQLModel, table=True):
    """Progress of one file or S3 object through ingestion, updated with every committed batch.
    ``finished_at`` is None while a file is being read or after a run stopped part-way."""

    __tablename__ = "ingested_file"
    __table_args__ = (UniqueConstraint("source", "uri", name="uq_ingested_file_uri"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=10)
    uri: str = Field(max_length=1000)
    fingerprint: str = Field(default="", max_length=200)  # size + mtime or ETag
    lines_committed: int = Field(default=0, sa_type=BigInteger)
    ingested: int = Field(default=0, sa_type=BigInteger)
    duplicates: int = Field(default=0, sa_type=BigInteger)
    rejected: int = Field(default=0, sa_type=BigInteger)
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class Budget(SQLModel, table=True):
    """A team's budget for a custom period (a quarter, a project), beside the monthly budget
    kept on the team itself. ``warn_at`` are the percentages that raise a warning."""

    __tablename__ = "usage_budget"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_usage_budget_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    name: str = Field(max_length=100)
    start: date
    end: date
    amount: Decimal = Field(sa_type=PRICE)
    warn_at: list[int] = Field(
        default_factory=lambda: [80, 90, 100], sa_column=Column(JSON, nullable=False)
    )
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class GatewayModelLink(SQLModel, table=True):
    """Which registry model version serves a gateway model name (``support-assistant`` in
    the LiteLLM config, say), so its model card shows what it is used for and costs."""

    __tablename__ = "gateway_model_link"

    id: int | None = Field(default=None, primary_key=True)
    gateway_model: str = Field(max_length=300, unique=True)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    linked_by: str = Field(max_length=100)
    linked_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class BudgetAlert(SQLModel, table=True):
    """A warning level of a team's budget that its spend crossed, told to the budget alert
    webhook once (``PORTAL_BUDGET_WEBHOOK_URL``). One row per team, period and level: the
    unique key is what makes a level alert once however many checks run at the same time.
    ``status`` is pending (not yet delivered), sending (a check is telling the webhook, since
    ``claimed_at``), sent, failed (tried again by the next check) or superseded (a higher
    level was crossed at the same check and told instead)."""

    __tablename__ = "usage_budget_alert"
    __table_args__ = (
        UniqueConstraint(
            "team", "period", "period_start", "period_end", "level", name="uq_budget_alert_level"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=100)
    period: str = Field(max_length=100)
    period_start: date
    period_end: date
    level: int
    amount: Decimal = Field(sa_type=PRICE)
    spent: Decimal = Field(sa_type=PRICE)
    forecast: Decimal = Field(sa_type=PRICE)
    status: str = Field(default="pending", max_length=12)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    crossed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
