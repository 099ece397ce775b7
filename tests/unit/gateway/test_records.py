"""Reading one logged request: the samples as they come, and every kind of bad record the
issue names rejected with a reason an operator can act on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from models.usage import UsageSource
from services.db import Database
from services.gateway.records import (
    RecordError,
    local_day,
    parse_bedrock,
    parse_litellm,
    principal_of,
)
from tests.unit.gateway.support import SAMPLES, bedrock, litellm

UTC_ZONE = ZoneInfo("UTC")
LA = ZoneInfo("America/Los_Angeles")


def no_mapping(arn: str, model: str) -> tuple[str, str]:
    return "", ""


def sample(name: str) -> list[dict]:
    return [orjson.loads(line) for line in (SAMPLES / name).read_bytes().splitlines()]


def test_litellm_sample_success_and_failure() -> None:
    ok, failed = (
        parse_litellm(r, UTC_ZONE) for r in sample("litellm_standard_logging_payload.jsonl")
    )
    assert ok["request_id"] == "chatcmpl-eae7036c-203e-4cfb-94c1-b3225d812bfa"
    assert (ok["team"], ok["user"], ok["api_key_alias"]) == ("Payments", "alice", "payments-prod")
    assert ok["api_key_hash"] == "88dc28d0f030c5"
    assert (ok["input_tokens"], ok["output_tokens"], ok["cost"]) == (1200, 300, Decimal("0.0027"))
    assert ok["occurred_at"] == datetime.fromtimestamp(1795608208.327337, UTC)
    assert ok["tags"] == ["app:chatbot"] and ok["status"] == "success"
    assert failed["status"] == "failure" and failed["error"] == "RateLimitError"
    assert failed["provider"] == "openai" and failed["cache_hit"] is False


def test_bedrock_sample_team_from_request_metadata_else_mapping() -> None:
    records = sample("bedrock_invocation_log.jsonl")

    def mapping(arn: str, model: str) -> tuple[str, str]:
        return (
            ("payments", "")
            if model.endswith("application-inference-profile/a1b2c3d4e5f6")
            else ("", "")
        )

    search, payments, throttled = (parse_bedrock(r, UTC_ZONE, mapping) for r in records)
    assert search["team"] == "search" and search["tags"] == ["app:assistant"]
    assert search["api_key_alias"] == "arn:aws:iam::123456789012:role/team-search-app"
    assert payments["team"] == "payments"
    assert throttled["status"] == "failure" and throttled["error"] == "ThrottlingException"
    assert throttled["user"] == "dana" and throttled["team"] == ""
    assert search["occurred_at"] == datetime(2026, 11, 2, 9, 15, 27, tzinfo=UTC)


def test_litellm_cache_tokens_are_counted_apart_from_plain_input() -> None:
    record = litellm(
        "r1",
        1795608208.0,
        prompt_tokens=1000,
        metadata={"usage_object": {"prompt_tokens_details": {"cached_tokens": 600}}},
    )
    row = parse_litellm(record, UTC_ZONE)
    assert (row["input_tokens"], row["cache_read_tokens"]) == (400, 600)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (litellm("", 1795608208.0), "missing request id"),
        (litellm("r", 1795608208.0, prompt_tokens=-5), "negative token count in `prompt_tokens`"),
        (litellm("r", 1795608208.0, completion_tokens=12_000_000), "absurd token count"),
        (litellm("r", 1795608208.0, prompt_tokens="lots"), "`prompt_tokens` is not a number"),
        (litellm("r", 1795608208.0, prompt_tokens=1.5), "not a whole number"),
        (litellm("r", None), "`startTime` is missing"),
        (litellm("r", "2026-11-02T09:15:27"), "has no time zone"),
        (litellm("r", 1795608208.0, response_cost=-1.0), "`response_cost` is not a valid amount"),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_bad_litellm_records_are_rejected_with_a_reason(record: object, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_litellm(record, UTC_ZONE)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (bedrock(""), "missing request id"),
        (bedrock("r", timestamp="2026-11-02T09:15:27"), "has no time zone"),
        (bedrock("r", timestamp="yesterday"), "not an ISO 8601 time"),
        (
            bedrock("r", input={"inputTokenCount": -1}),
            "negative token count in `input.inputTokenCount`",
        ),
        (bedrock("r", output={"outputTokenCount": 10_000_001}), "absurd token count"),
        (bedrock("r", modelId=""), "missing `modelId`"),
    ],
)
def test_bad_bedrock_records_are_rejected_with_a_reason(record: object, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_bedrock(record, UTC_ZONE, no_mapping)


def test_reporting_day_follows_the_reporting_time_zone_around_midnight() -> None:
    # 07:30 UTC on 2 Nov is 23:30 on 1 Nov in Los Angeles (PST, UTC-8, since 1 Nov 2026)
    before = datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
    after = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert local_day(before, LA) == date(2026, 11, 1)
    assert local_day(after, LA) == date(2026, 11, 2)
    assert local_day(before, UTC_ZONE) == date(2026, 11, 2)
    # in summer the same boundary is an hour earlier (PDT, UTC-7)
    assert local_day(datetime(2026, 7, 2, 6, 59, tzinfo=UTC), LA) == date(2026, 7, 1)
    assert local_day(datetime(2026, 7, 2, 7, 0, tzinfo=UTC), LA) == date(2026, 7, 2)


def test_assumed_role_session_counts_as_its_role() -> None:
    assert (
        principal_of("arn:aws:sts::123456789012:assumed-role/team-search-app/session-1")
        == "arn:aws:iam::123456789012:role/team-search-app"
    )
    assert (
        principal_of("arn:aws:iam::123456789012:user/dana") == "arn:aws:iam::123456789012:user/dana"
    )


def test_nul_characters_from_callers_are_dropped_not_fatal(db: Database, tmp_path: Path) -> None:
    """PostgreSQL cannot store NUL; request metadata and tags come from callers."""
    from services.access import Actor
    from services.config import get_settings
    from services.gateway.ingest import ingest
    from tests.unit.gateway.support import events, write_lines

    record = litellm("nul-1", 1_795_608_208.0, user="ali\x00ce", request_tags=["app:\x00chat"])
    result = ingest(
        db, get_settings(), actor=Actor.command_line(), source=UsageSource.LITELLM,
        location=str(write_lines(tmp_path / "nul.jsonl", [record])),
    )  # fmt: skip
    assert result.summary() == "ingested=1 duplicates=0 rejected=0"
    stored = events(db)[0]
    assert (stored.user, stored.tags) == ("alice", ["app:chat"])
