"""Turning one logged request into a ``usage_event`` row, or a reason to reject it.

Two formats: LiteLLM's ``standard_logging_object`` (what its callbacks receive and its ``s3``
logger writes) and Amazon Bedrock's model invocation log (``ModelInvocationLog``). A row is a
plain dict keyed by ``UsageEvent`` column names, ready for a bulk insert. ``input_tokens``
counts the input billed at the plain input rate: cache reads and writes are counted apart,
as Bedrock reports them (LiteLLM's ``prompt_tokens`` includes them, so they are taken off).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from models.usage import UsageSource

MAX_TOKENS = 10_000_000
"""More tokens than this in one request is a corrupt record, not a real request."""
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

Row = dict[str, Any]
TeamResolver = Callable[[str, str], tuple[str, str]]
"""(identity ARN, model id) -> (team, user) from the admins' identity mappings."""


class RecordError(ValueError):
    """Why a record cannot be ingested, in words for the operator."""


def _text(value: Any, limit: int) -> str:
    if value.__class__ is str:
        return value.strip()[:limit]
    return "" if value is None else str(value).strip()[:limit]


@lru_cache(maxsize=65_536)
def _quarter_hour_day(quarter: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(quarter * 900, UTC).astimezone(zone).date()


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """``moment``'s date in ``zone``. Every zone's offset is a whole number of quarter hours,
    so the date is the same for a whole UTC quarter hour and can be cached per quarter."""
    return _quarter_hour_day(int(moment.timestamp() // 900), zone)


def _tokens(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"`{name}` is not a number ({value!r})")
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(f"`{name}` is not a whole number ({value!r})")
        value = int(value)
    if value < 0:
        raise RecordError(f"negative token count in `{name}` ({value})")
    if value > MAX_TOKENS:
        raise RecordError(f"absurd token count in `{name}` ({value:,} > {MAX_TOKENS:,})")
    return value


def _epoch(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        return _iso(value, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"`{name}` is missing or not a time ({value!r})")
    if not EARLIEST.timestamp() <= value < LATEST.timestamp():
        raise RecordError(f"`{name}` is out of range ({value!r})")
    return datetime.fromtimestamp(value, UTC)


def _iso(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise RecordError(f"`{name}` is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"`{name}` is not an ISO 8601 time ({value!r})") from None
    if moment.tzinfo is None:
        raise RecordError(f"`{name}` has no time zone ({value!r}); cannot tell when it happened")
    if not EARLIEST <= moment < LATEST:
        raise RecordError(f"`{name}` is out of range ({value!r})")
    return moment.astimezone(UTC)


def _cost(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        raise RecordError(f"`response_cost` is not a valid amount ({value!r})")
    return Decimal(repr(value))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _litellm_cache_tokens(record: Mapping[str, Any]) -> tuple[int, int]:
    metadata = _mapping(record.get("metadata"))
    usage = _mapping(metadata.get("usage_object")) or _mapping(
        _mapping(record.get("response")).get("usage")
    )
    details = _mapping(usage.get("prompt_tokens_details"))
    read = usage.get("cache_read_input_tokens") or details.get("cached_tokens")
    write = usage.get("cache_creation_input_tokens")
    return _tokens(read, "cache_read_input_tokens"), _tokens(write, "cache_creation_input_tokens")


def parse_litellm(record: Any, zone: ZoneInfo) -> Row:
    """A LiteLLM ``standard_logging_object`` as a usage row; its ``response_cost`` is kept
    (``cost`` None when LiteLLM could not price the request)."""
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    request_id = _text(record.get("id") or record.get("litellm_call_id"), 1000)
    if not request_id:
        raise RecordError("missing request id (`id`)")
    if len(request_id) > 200:
        raise RecordError("request id longer than 200 characters")
    occurred = _epoch(record.get("startTime"), "startTime")
    metadata = _mapping(record.get("metadata"))
    prompt = _tokens(record.get("prompt_tokens"), "prompt_tokens")
    cache_read, cache_write = _litellm_cache_tokens(record)
    status = "failure" if record.get("status") == "failure" else "success"
    error = None
    if status == "failure":
        info = _mapping(record.get("error_information"))
        error = _text(info.get("error_class") or info.get("error_code"), 300) or _text(
            record.get("error_str"), 300
        )
    tags = record.get("request_tags")
    cost = _cost(record.get("response_cost"))
    if record.get("response_cost_failure_debug_info"):
        cost = None  # LiteLLM says it could not price this: its 0 is not a price
    return {
        "source": UsageSource.LITELLM.value,
        "request_id": request_id,
        "occurred_at": occurred,
        "day": local_day(occurred, zone),
        "team": _text(
            metadata.get("user_api_key_team_alias") or metadata.get("user_api_key_team_id"), 100
        ),
        "user": _text(metadata.get("user_api_key_user_id") or record.get("end_user"), 200),
        "api_key_alias": _text(metadata.get("user_api_key_alias"), 300),
        "api_key_hash": _text(metadata.get("user_api_key_hash"), 128),
        "model": _text(record.get("model"), 300),
        "provider": _text(record.get("custom_llm_provider"), 50),
        "tags": [str(t)[:100] for t in tags] if isinstance(tags, list) else [],
        "status": status,
        "error": error or None,
        "cache_hit": record.get("cache_hit") is True,
        "input_tokens": max(prompt - cache_read - cache_write, 0),
        "output_tokens": _tokens(record.get("completion_tokens"), "completion_tokens"),
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "cost": cost,
        "priced": cost is not None,
    }


def principal_of(arn: str) -> str:
    """The IAM role behind an assumed-role session ARN (the role is what admins map);
    any other ARN as it is."""
    if ":sts::" in arn and ":assumed-role/" in arn:
        head, _, rest = arn.partition(":assumed-role/")
        return head.replace(":sts::", ":iam::") + ":role/" + rest.split("/", 1)[0]
    return arn


def parse_bedrock(record: Any, zone: ZoneInfo, resolve: TeamResolver) -> Row:
    """A Bedrock ``ModelInvocationLog`` record as a usage row (``cost`` None: Bedrock logs carry
    no price). Team and user come from ``requestMetadata``, else from ``resolve``."""
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    request_id = _text(record.get("requestId"), 1000)
    if not request_id:
        raise RecordError("missing request id (`requestId`)")
    if len(request_id) > 200:
        raise RecordError("request id longer than 200 characters")
    occurred = _iso(record.get("timestamp"), "timestamp")
    model = _text(record.get("modelId"), 300)
    if not model:
        raise RecordError("missing `modelId`")
    arn = _text(_mapping(record.get("identity")).get("arn"), 500)
    inputs, outputs = _mapping(record.get("input")), _mapping(record.get("output"))
    metadata = _mapping(record.get("requestMetadata"))
    team, user = _text(metadata.get("team"), 100), _text(metadata.get("user"), 200)
    if not team or not user:
        mapped_team, mapped_user = resolve(arn, model)
        team, user = team or mapped_team, user or mapped_user
    if not user and ":user/" in arn:
        user = arn.rsplit("/", 1)[-1][:200]
    error = _text(record.get("errorCode"), 300)
    return {
        "source": UsageSource.BEDROCK.value,
        "request_id": request_id,
        "occurred_at": occurred,
        "day": local_day(occurred, zone),
        "team": team,
        "user": user,
        "api_key_alias": principal_of(arn)[:300],
        "api_key_hash": "",
        "model": model,
        "provider": "bedrock",
        "tags": sorted(f"{k}:{v}"[:100] for k, v in metadata.items() if k not in ("team", "user")),
        "status": "failure" if error else "success",
        "error": error or None,
        "cache_hit": False,
        "input_tokens": _tokens(inputs.get("inputTokenCount"), "input.inputTokenCount"),
        "output_tokens": _tokens(outputs.get("outputTokenCount"), "output.outputTokenCount"),
        "cache_read_tokens": _tokens(
            inputs.get("cacheReadInputTokenCount"), "input.cacheReadInputTokenCount"
        ),
        "cache_write_tokens": _tokens(
            inputs.get("cacheWriteInputTokenCount"), "input.cacheWriteInputTokenCount"
        ),
        "cost": None,
        "priced": False,
    }
