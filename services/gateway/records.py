"""Turning one logged request into a ``usage_event`` row, or a reason to reject it.

Two formats: LiteLLM's ``standard_logging_object`` (what its callbacks receive and its ``s3``
logger writes) and Amazon Bedrock's model invocation log (``ModelInvocationLog``). A row is a
plain dict keyed by ``UsageEvent`` column names, ready for a bulk insert. ``input_tokens``
counts the input billed at the plain input rate: cache reads and writes are counted apart,
as Bedrock reports them (LiteLLM's ``prompt_tokens`` includes them, so they are taken off).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from models.usage import UsageSource
from services.gateway.fields import (
    EARLIEST,
    LATEST,
    MAX_TOKENS,
    RecordError,
    local_day,
)
from services.gateway.fields import cost as _cost
from services.gateway.fields import epoch as _epoch
from services.gateway.fields import iso as _iso
from services.gateway.fields import mapping as _mapping
from services.gateway.fields import text as _text
from services.gateway.fields import tokens as _tokens

__all__ = [
    "EARLIEST",
    "FIELDS",
    "LATEST",
    "MAX_TOKENS",
    "RecordError",
    "Row",
    "TeamResolver",
    "Values",
    "bedrock_values",
    "litellm_values",
    "local_day",
    "parse_bedrock",
    "parse_litellm",
    "principal_of",
]


FIELDS = (
    "source",
    "request_id",
    "occurred_at",
    "day",
    "team",
    "user",
    "api_key_alias",
    "api_key_hash",
    "model",
    "provider",
    "tags",
    "status",
    "error",
    "cache_hit",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost",
    "priced",
)
"""A usage row's values in ``usage_event`` column order (what ``*_values`` return)."""

Row = dict[str, Any]
Values = list[Any]
"""A usage row as a list in ``FIELDS`` order: what the bulk path carries (no dict per row)."""
TeamResolver = Callable[[str, str], tuple[str, str]]
"""(identity ARN, model id) -> (team, user) from the admins' identity mappings."""


def _litellm_cache_tokens(
    record: Mapping[str, Any], metadata: Mapping[str, Any]
) -> tuple[int, int]:
    usage = metadata.get("usage_object")
    if not usage or not isinstance(usage, dict):
        usage = _mapping(_mapping(record.get("response")).get("usage"))
        if not usage:
            return 0, 0
    details = _mapping(usage.get("prompt_tokens_details"))
    read = usage.get("cache_read_input_tokens") or details.get("cached_tokens")
    write = usage.get("cache_creation_input_tokens")
    if read is None and write is None:
        return 0, 0
    return _tokens(read, "cache_read_input_tokens"), _tokens(write, "cache_creation_input_tokens")


def parse_litellm(record: Any, zone: ZoneInfo) -> Row:
    """A LiteLLM ``standard_logging_object`` as a usage row; its ``response_cost`` is kept
    (``cost`` None when LiteLLM could not price the request)."""
    return dict(zip(FIELDS, litellm_values(record, zone), strict=True))


def litellm_values(record: Any, zone: ZoneInfo) -> Values:
    """``parse_litellm`` as a list in ``FIELDS`` order."""
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    get = record.get
    request_id = _text(get("id") or get("litellm_call_id"), 1000)
    if not request_id:
        raise RecordError("missing request id (`id`)")
    if len(request_id) > 200:
        raise RecordError("request id longer than 200 characters")
    occurred = _epoch(get("startTime"), "startTime")
    metadata = _mapping(get("metadata"))
    meta = metadata.get
    prompt = _tokens(get("prompt_tokens"), "prompt_tokens")
    cache_read, cache_write = _litellm_cache_tokens(record, metadata)
    error = None
    if get("status") == "failure":
        status = "failure"
        info = _mapping(get("error_information"))
        error = _text(info.get("error_class") or info.get("error_code"), 300) or _text(
            get("error_str"), 300
        )
    else:
        status = "success"
    tags = get("request_tags")
    cost = _cost(get("response_cost"))
    if get("response_cost_failure_debug_info"):
        cost = None  # LiteLLM says it could not price this: its 0 is not a price
    return [
        "litellm",
        request_id,
        occurred,
        local_day(occurred, zone),
        _text(meta("user_api_key_team_alias") or meta("user_api_key_team_id"), 100),
        _text(meta("user_api_key_user_id") or get("end_user"), 200),
        _text(meta("user_api_key_alias"), 300),
        _text(meta("user_api_key_hash"), 128),
        _text(get("model"), 300),
        _text(get("custom_llm_provider"), 50),
        [_text(t, 100) for t in tags] if isinstance(tags, list) else [],
        status,
        error or None,
        get("cache_hit") is True,
        max(prompt - cache_read - cache_write, 0),
        _tokens(get("completion_tokens"), "completion_tokens"),
        cache_read,
        cache_write,
        cost,
        cost is not None,
    ]


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
    return dict(zip(FIELDS, bedrock_values(record, zone, resolve), strict=True))


def bedrock_values(record: Any, zone: ZoneInfo, resolve: TeamResolver) -> Values:
    """``parse_bedrock`` as a list in ``FIELDS`` order."""
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
    return [
        UsageSource.BEDROCK.value,
        request_id,
        occurred,
        local_day(occurred, zone),
        team,
        user,
        principal_of(arn)[:300],
        "",
        model,
        "bedrock",
        sorted(f"{k}:{v}"[:100] for k, v in metadata.items() if k not in ("team", "user")),
        "failure" if error else "success",
        error or None,
        False,
        _tokens(inputs.get("inputTokenCount"), "input.inputTokenCount"),
        _tokens(outputs.get("outputTokenCount"), "output.outputTokenCount"),
        _tokens(inputs.get("cacheReadInputTokenCount"), "input.cacheReadInputTokenCount"),
        _tokens(inputs.get("cacheWriteInputTokenCount"), "input.cacheWriteInputTokenCount"),
        None,
        False,
    ]
