"""Ingesting Bedrock invocation logs and LiteLLM logs from S3 prefixes (moto): gzip objects,
more than one page of listing, a truncated object, and a bucket that is not there."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from models.usage import UsageSource
from services import aws
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.errors import ExternalServiceError
from services.gateway.ingest import ingest
from tests.unit.gateway.support import bedrock, events, litellm, rollups

BUCKET = "gateway-logs"
PREFIX = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/02/"


def gz_lines(records: list[dict]) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_bedrock_prefix_with_more_than_a_page_of_gzip_objects(
    db: Database, aws_settings: Settings
) -> None:
    s3 = aws.client("s3", aws_settings)
    s3.create_bucket(Bucket=BUCKET)
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    objects = 1_050  # list_objects_v2 returns at most 1,000 keys a page
    for i in range(objects):
        moment = (start + timedelta(seconds=i)).isoformat()
        body = gz_lines([bedrock(f"req-{i}-a", moment), bedrock(f"req-{i}-b", moment)])
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{i:05}.json.gz", Body=body)
    s3.put_object(Bucket=BUCKET, Key="elsewhere/x.json.gz", Body=gz_lines([bedrock("other")]))

    uri = f"s3://{BUCKET}/{PREFIX}"
    first = ingest(
        db, aws_settings, actor=Actor.command_line(), location=uri, source=UsageSource.BEDROCK
    )
    assert first.files == objects
    assert first.summary() == f"ingested={2 * objects} duplicates=0 rejected=0"
    again = ingest(
        db, aws_settings, actor=Actor.command_line(), location=uri, source=UsageSource.BEDROCK
    )
    assert again.summary() == f"ingested=0 duplicates={2 * objects} rejected=0"
    (daily,) = rollups(db)
    assert daily.requests == 2 * objects and daily.input_tokens == 2 * objects * 1000


def test_truncated_object_is_rejected_and_the_others_are_read(
    db: Database, aws_settings: Settings
) -> None:
    s3 = aws.client("s3", aws_settings)
    s3.create_bucket(Bucket=BUCKET)
    whole = gz_lines([litellm(f"r{i}", 1795608208.0 + i) for i in range(500)])
    s3.put_object(Bucket=BUCKET, Key="litellm/1.json.gz", Body=whole[: len(whole) - 40])
    s3.put_object(
        Bucket=BUCKET, Key="litellm/2.json", Body=orjson.dumps(litellm("single", 1795608208.0))
    )
    result = ingest(
        db,
        aws_settings,
        actor=Actor.command_line(),
        location=f"s3://{BUCKET}/litellm/",
        source=UsageSource.LITELLM,
    )
    (rejection,) = result.rejections
    assert rejection.uri == f"s3://{BUCKET}/litellm/1.json.gz"
    assert "truncated or corrupt gzip" in rejection.reason
    assert "single" in {e.request_id for e in events(db)}
    assert result.ingested == len(events(db)) >= 2


def test_missing_bucket_is_a_clear_error(db: Database, aws_settings: Settings) -> None:
    with pytest.raises(
        ExternalServiceError, match="Could not list s3://no-such-bucket/x: not found"
    ):
        ingest(
            db,
            aws_settings,
            actor=Actor.command_line(),
            location="s3://no-such-bucket/x",
            source=UsageSource.BEDROCK,
        )
