"""What AWS actually billed, beside what the gateway logs estimate: Cost Explorer's
``GetCostAndUsage``, daily, grouped by service or by a cost allocation tag (the team tag).
Estimates that do not match the bill are users' most common complaint about gateway cost
tools, so the page shows both and the difference."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from services import aws
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.gateway.reports import grouped
from services.gateway.scope import UsageQuery
from services.permissions import Permission

BEDROCK_SERVICE = "Amazon Bedrock"
METRIC = "UnblendedCost"


@dataclass(frozen=True)
class BilledLine:
    day: date
    group: str  # the service, or the tag's value ("" when untagged)
    amount: Decimal


@dataclass(frozen=True)
class Reconciliation:
    """Per team: what the gateway logs estimate for Bedrock and what AWS billed the team tag."""

    rows: list[dict[str, Any]]  # team, estimated_usd, billed_usd, difference_usd
    billed_by_service: dict[str, Decimal]
    tag_key: str


def billed(
    settings: Settings, *, start: date, end: date, group_by_tag: str | None = None
) -> list[BilledLine]:
    """Daily billed cost from ``start`` to ``end`` (inclusive), by service or by tag value."""
    client = aws.client("ce", settings)
    group = (
        {"Type": "TAG", "Key": group_by_tag}
        if group_by_tag
        else {"Type": "DIMENSION", "Key": "SERVICE"}
    )
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": (end + timedelta(days=1)).isoformat()},
        "Granularity": "DAILY",
        "Metrics": [METRIC],
        "GroupBy": [group],
    }
    lines: list[BilledLine] = []
    with aws.aws_errors("read billed costs from AWS Cost Explorer"):
        while True:  # Cost Explorer pages with NextPageToken and has no boto3 paginator
            answer = client.get_cost_and_usage(**request)
            for period in answer.get("ResultsByTime", []):
                day = date.fromisoformat(period["TimePeriod"]["Start"])
                for item in period.get("Groups", []):
                    name = item["Keys"][0]
                    if group_by_tag:  # "team$Payments"; "team$" when untagged
                        name = name.split("$", 1)[1] if "$" in name else name
                    lines.append(BilledLine(day, name, Decimal(item["Metrics"][METRIC]["Amount"])))
            token = answer.get("NextPageToken")
            if not token:
                return lines
            request["NextPageToken"] = token


def reconcile(
    db: Database, settings: Settings, *, actor: Actor, start: date, end: date
) -> Reconciliation:
    """Gateway-estimated Bedrock cost per team next to the bill for that team's tag."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_ALL_USAGE)
    tag = settings.cost_allocation_tag
    by_service: dict[str, Decimal] = defaultdict(Decimal)
    for line in billed(settings, start=start, end=end):
        by_service[line.group] += line.amount
    by_team: dict[str, Decimal] = defaultdict(Decimal)
    for line in billed(settings, start=start, end=end, group_by_tag=tag):
        by_team[line.group] += line.amount
    estimated = {
        row["team"]: row["cost_usd"]
        for row in grouped(
            db,
            actor=actor,
            query=UsageQuery(start=start, end=end, group_by=("team",), providers=("bedrock",)),
        )
    }
    rows = []
    for team in sorted(set(estimated) | set(by_team)):
        est, bill = estimated.get(team, Decimal(0)), by_team.get(team, Decimal(0))
        rows.append(
            {
                "team": team or "(untagged)",
                "estimated_usd": est.quantize(Decimal("0.01")),
                "billed_usd": bill.quantize(Decimal("0.01")),
                "difference_usd": (bill - est).quantize(Decimal("0.01")),
            }
        )
    return Reconciliation(rows, dict(by_service), tag)
