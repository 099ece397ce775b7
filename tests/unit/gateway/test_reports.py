"""Reports from the rollups: grouped totals that match what was ingested, KPIs, spend over
time with the long tail folded into "other", tags split, unpriced requests counted apart, and
who may see what."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from models.team import TeamCreate
from models.usage import UsageSource
from models.user import Role
from services import teams
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import PermissionDenied, ValidationError
from services.gateway import reports
from services.gateway.export import report_text
from services.gateway.ingest import ingest
from services.gateway.scope import UsageQuery
from tests.conftest import make_user
from tests.unit.gateway.support import litellm, write_lines

CLI = Actor.command_line()
DAY = date(2026, 11, 2)
NOON = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()


@pytest.fixture
def traffic(db: Database, tmp_path: Path) -> Database:
    """Payments: alice 3 × gpt-4o-mini ($0.01 each, one failed), bob 1 × gpt-4o ($0.05);
    Search: carol 2 × an unpriced in-house model; spread over two days."""
    records = [
        litellm("a1", NOON, user="alice", request_tags=["app:chat", "env:prod"]),
        litellm("a2", NOON + 60, user="alice", request_tags=["app:chat"]),
        litellm("a3", NOON + 86_400, user="alice", status="failure", response_cost=0.0,
                prompt_tokens=0, completion_tokens=0),
        litellm("b1", NOON, user="bob", key="bob-key", model="gpt-4o", response_cost=0.05),
        litellm("c1", NOON, user="carol", team="Search", key="search", model="inhouse-7b",
                custom_llm_provider="hosted_vllm", response_cost=None),
        litellm("c2", NOON + 86_400, user="carol", team="Search", key="search",
                model="inhouse-7b", custom_llm_provider="hosted_vllm", response_cost=None),
    ]  # fmt: skip
    result = ingest(
        db, get_settings(), actor=CLI, location=str(write_lines(tmp_path / "t.jsonl", records)),
        source=UsageSource.LITELLM,
    )  # fmt: skip
    assert result.summary() == "ingested=6 duplicates=0 rejected=0"
    return db


def query(**kw: object) -> UsageQuery:
    return UsageQuery(start=DAY, end=date(2026, 11, 3), **kw)  # type: ignore[arg-type]


def test_grouped_by_team_and_model_adds_up(traffic: Database) -> None:
    rows = reports.grouped(traffic, actor=CLI, query=query(group_by=("team", "model")))
    table = {(r["team"], r["model"]): r for r in rows}
    assert set(table) == {
        ("Payments", "gpt-4o-mini"), ("Payments", "gpt-4o"), ("Search", "inhouse-7b"),
    }  # fmt: skip
    mini = table[("Payments", "gpt-4o-mini")]
    assert (mini["requests"], mini["errors"], mini["cost_usd"]) == (3, 1, Decimal("0.02"))
    unpriced = table[("Search", "inhouse-7b")]
    assert (unpriced["requests"], unpriced["unpriced_requests"]) == (2, 2)
    assert unpriced["cost_usd"] == 0  # counted apart, never as if it cost $0
    assert reports.rollup_for(query(group_by=("team", "model"))).name == "usage_daily_team_model"
    assert reports.rollup_for(query(group_by=("user",))).name == "usage_daily"


def test_kpis_and_the_csv_agree(traffic: Database) -> None:
    kpis = reports.kpis(traffic, actor=CLI, query=query())
    assert (kpis.requests, kpis.errors, kpis.unpriced_requests) == (6, 1, 2)
    assert kpis.spend == Decimal("0.07")
    assert kpis.cost_per_request == Decimal("0.07") / 4  # priced requests only
    csv_text = report_text(traffic, actor=CLI, query=query(group_by=("team",)), fmt="csv")
    assert csv_text.splitlines() == [
        "team,requests,input_tokens,output_tokens,cost_usd,unpriced_requests",
        "Payments,4,3000,300,0.070000,0",
        "Search,2,2000,200,0.000000,2",
    ]


def test_tags_are_split_and_match_whole_tags(traffic: Database) -> None:
    rows = reports.grouped(traffic, actor=CLI, query=query(group_by=("tag",)))
    assert {r["tag"]: r["requests"] for r in rows} == {
        "app:chatbot": 4, "app:chat": 2, "env:prod": 1,
    }  # fmt: skip
    chat = reports.kpis(traffic, actor=CLI, query=query(tags=("app:chat",)))
    assert chat.requests == 2  # "app:chat" is not "app:chatbot"
    raw = reports.raw_requests(traffic, actor=CLI, query=query(tags=("env:prod",)))
    assert [e.request_id for e in raw.rows] == ["a1"]


def test_spend_over_time_folds_the_tail_into_other(traffic: Database) -> None:
    series = reports.spend_over_time(traffic, actor=CLI, query=query(), by="model", top=1)
    assert {(r["day"], r["model"]) for r in series} == {
        (DAY, "gpt-4o"), (DAY, "other"), (date(2026, 11, 3), "other"),
    }  # fmt: skip
    assert sum(r["cost_usd"] for r in series) == Decimal("0.07")


def test_drill_down_lists_the_requests_behind_a_number(traffic: Database) -> None:
    page = reports.raw_requests(
        traffic, actor=CLI, query=query(teams=("Payments",), models=("gpt-4o-mini",))
    )
    assert page.total == 3 and [e.request_id for e in page.rows] == ["a3", "a2", "a1"]


def test_none_rows_drill_into_the_requests_without_one(traffic: Database, tmp_path: Path) -> None:
    loose = litellm("n1", NOON, user=None, team=None, key=None, request_tags=[])
    loose["metadata"]["user_api_key_team_id"] = None  # no team at all
    location = str(write_lines(tmp_path / "n.jsonl", [loose]))
    ingest(traffic, get_settings(), actor=CLI, location=location, source=UsageSource.LITELLM)
    by_team = reports.grouped(traffic, actor=CLI, query=query(group_by=("team", "tag")))
    assert {(r["team"], r["tag"]): r["requests"] for r in by_team}[("", "")] == 1  # "(none)"
    for narrowed in (query(teams=("",)), query(tags=("",)), query(users=("",), keys=("",))):
        raw = reports.raw_requests(traffic, actor=CLI, query=narrowed)
        assert [e.request_id for e in raw.rows] == ["n1"], narrowed
        assert reports.kpis(traffic, actor=CLI, query=narrowed).requests == 1
    both = reports.kpis(traffic, actor=CLI, query=query(teams=("Search", "")))
    assert both.requests == 3  # carol's two and the one without a team


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"start": date(2026, 11, 5), "end": DAY}, "ends"),
        ({"start": date(2025, 1, 1), "end": DAY}, "at most 400 days"),
        ({"start": DAY, "end": DAY, "group_by": ("colour",)}, "Cannot group by colour"),
    ],
)
def test_bad_queries_are_named(traffic: Database, bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        reports.grouped(traffic, actor=CLI, query=UsageQuery(**bad))  # type: ignore[arg-type]


def test_who_sees_what(traffic: Database, admin: Actor) -> None:
    payments = teams.create_team(traffic, actor=admin, data=TeamCreate(name="Payments"))
    alice = make_user(traffic, "alice", Role.DATA_SCIENTIST, team_id=payments.id)
    loner = make_user(traffic, "dora", Role.DATA_SCIENTIST)
    manager = make_user(traffic, "maria", Role.MANAGER)
    approver = make_user(traffic, "priya", Role.APPROVER)
    everyone = query(group_by=("team",))

    for sees_all in (manager, admin):
        assert len(reports.grouped(traffic, actor=sees_all, query=everyone)) == 2
    own = reports.grouped(traffic, actor=alice, query=query(group_by=("user", "model")))
    assert {(r["user"], r["requests"]) for r in own} == {("alice", 3)}
    team = reports.grouped(traffic, actor=alice, query=query(group_by=("team",), team_totals=True))
    assert [(r["team"], r["requests"]) for r in team] == [("Payments", 4)]
    with pytest.raises(PermissionDenied, match="not how they split by person"):
        reports.grouped(traffic, actor=alice, query=query(group_by=("user",), team_totals=True))
    with pytest.raises(PermissionDenied, match="no team"):
        reports.kpis(traffic, actor=loner, query=query(team_totals=True))
    assert reports.kpis(traffic, actor=approver, query=everyone).requests == 0  # only their own
    drill = reports.raw_requests(traffic, actor=alice, query=query(teams=("Search",)))
    assert drill.total == 0  # another team's requests stay out of reach
    with pytest.raises(PermissionDenied, match="not how they split by person"):
        reports.raw_requests(traffic, actor=alice, query=query(team_totals=True))
