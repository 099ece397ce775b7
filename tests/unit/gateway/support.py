"""Records in the two log formats, built from the samples' shape with chosen values."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import col, select

from models.usage import UsageDaily, UsageEvent
from services.db import Database

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def litellm(request_id: str, start: float | str | None, **fields: Any) -> dict[str, Any]:
    """A LiteLLM ``standard_logging_object`` with the fields the portal reads."""
    metadata = {
        "user_api_key_hash": "88dc28d0f030c5",
        "user_api_key_alias": fields.pop("key", "payments-prod"),
        "user_api_key_user_id": fields.pop("user", "alice"),
        "user_api_key_team_id": "team-payments",
        "user_api_key_team_alias": fields.pop("team", "Payments"),
    }
    return {
        "id": request_id,
        "status": "success",
        "startTime": start,
        "model": "gpt-4o-mini",
        "custom_llm_provider": "openai",
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "response_cost": 0.01,
        "cache_hit": None,
        "request_tags": ["app:chatbot"],
        "metadata": metadata,
    } | fields


def bedrock(
    request_id: str, timestamp: str = "2026-11-02T09:15:27Z", **fields: Any
) -> dict[str, Any]:
    """A Bedrock ``ModelInvocationLog`` record."""
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": timestamp,
        "accountId": "123456789012",
        "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/team-search-app/s-1"},
        "region": "us-east-1",
        "requestId": request_id,
        "operation": "Converse",
        "modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "input": {"inputTokenCount": 1000, "cacheReadInputTokenCount": 0},
        "output": {"outputTokenCount": 100},
    } | fields


def write_lines(path: Path, records: list[Any], *, compress: bool = False) -> Path:
    data = b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def events(db: Database) -> list[UsageEvent]:
    with db.read() as session:
        return list(session.exec(select(UsageEvent).order_by(UsageEvent.request_id)))


def rollups(db: Database) -> list[UsageDaily]:
    with db.read() as session:
        return list(
            session.exec(select(UsageDaily).order_by(col(UsageDaily.day), col(UsageDaily.model)))
        )
