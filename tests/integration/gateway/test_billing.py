"""Billed cost from Cost Explorer (moto, with its result injection) beside the gateway's
estimate: daily lines by service and by the team tag, pages followed, the difference per
team, and AWS errors in plain words."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from moto.ce.models import ce_backends

from models.usage import UsageSource
from models.user import Role
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.errors import ExternalServiceError, PermissionDenied
from services.gateway import billing
from services.gateway.ingest import ingest
from tests.conftest import make_user
from tests.integration.registry.conftest import ACCOUNT
from tests.unit.gateway.support import bedrock, write_lines

START, END = date(2026, 11, 2), date(2026, 11, 3)


def day(start: str, groups: list[tuple[str, str]]) -> dict[str, Any]:
    end = date.fromisoformat(start).replace(day=date.fromisoformat(start).day + 1).isoformat()
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Total": {},
        "Groups": [
            {"Keys": [key], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
            for key, amount in groups
        ],
        "Estimated": False,
    }


def queue(*results: dict[str, Any]) -> None:
    """What Cost Explorer answers, one result per distinct request, in order."""
    ce_backends[ACCOUNT]["global"].cost_usage_results_queue.extend(results)


@pytest.fixture
def bedrock_traffic(db: Database, aws_settings: Settings, tmp_path: Path) -> Database:
    records = [
        bedrock(f"r{i}", f"2026-11-02T1{i}:00:00Z", requestMetadata={"team": team})
        for i, team in enumerate(["Payments", "Payments", "Search"])
    ]
    ingest(
        db, aws_settings, actor=Actor.command_line(), source=UsageSource.BEDROCK,
        location=str(write_lines(tmp_path / "bedrock.jsonl", records)),
    )  # fmt: skip
    return db


def test_billed_lines_follow_pages(aws_settings: Settings) -> None:
    queue(
        {"ResultsByTime": [day("2026-11-02", [("Amazon Bedrock", "1.25")])], "NextPageToken": "2"},
        {"ResultsByTime": [day("2026-11-03", [("Amazon Bedrock", "0.75"), ("AWS Lambda", "0.1")])]},
    )  # fmt: skip
    lines = billing.billed(aws_settings, start=START, end=END)
    assert [(line.day, line.group, line.amount) for line in lines] == [
        (date(2026, 11, 2), "Amazon Bedrock", Decimal("1.25")),
        (date(2026, 11, 3), "Amazon Bedrock", Decimal("0.75")),
        (date(2026, 11, 3), "AWS Lambda", Decimal("0.1")),
    ]


def test_estimate_and_bill_side_by_side_per_team(
    bedrock_traffic: Database, aws_settings: Settings, admin: Actor
) -> None:
    queue(
        {"ResultsByTime": [day("2026-11-02", [("Amazon Bedrock", "0.05")])]},
        {"ResultsByTime": [day("2026-11-02", [("team$Payments", "0.03"), ("team$", "0.01")])]},
    )  # fmt: skip
    manager = make_user(bedrock_traffic, "maria", Role.MANAGER)
    found = billing.reconcile(bedrock_traffic, aws_settings, actor=manager, start=START, end=END)
    assert found.billed_by_service == {"Amazon Bedrock": Decimal("0.05")}
    rows = {r["team"]: r for r in found.rows}
    assert set(rows) == {"Payments", "Search", "(untagged)"}
    payments = rows["Payments"]
    assert payments["billed_usd"] == Decimal("0.03")
    assert payments["difference_usd"] == payments["billed_usd"] - payments["estimated_usd"]
    assert payments["estimated_usd"] > 0  # priced from the Bedrock records' tokens
    scientist = make_user(bedrock_traffic, "dana", Role.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied):
        billing.reconcile(bedrock_traffic, aws_settings, actor=scientist, start=START, end=END)


def test_a_refusing_cost_explorer_is_named_with_its_code(aws_settings: Settings) -> None:
    from botocore.stub import Stubber

    from services import aws

    client = aws.client("ce", aws_settings)
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_cost_and_usage", "AccessDeniedException", "not authorized to perform ce:Get"
        )
        with pytest.raises(ExternalServiceError, match="Could not read billed costs") as caught:
            billing.billed(aws_settings, start=START, end=END)
    assert caught.value.code == "AccessDeniedException"
