"""Ingesting log files into the portal database: counted once however often it runs, bad
lines listed and skipped, rollups on the reporting time zone's days, and a run that died
half-way completed by the next one without double counting."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlmodel import select

from models.audit import AuditEvent
from models.usage import IngestedFile, UsageSource
from models.user import Role
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import PermissionDenied
from services.gateway import ingest as ingest_module
from services.gateway.admin import set_identity_mapping
from services.gateway.ingest import IngestResult, ingest
from tests.conftest import make_user
from tests.unit.gateway.support import SAMPLES, bedrock, events, litellm, rollups, write_lines

CLI = Actor.command_line()
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


def run(
    db: Database, location: Path | str, source: UsageSource = UsageSource.LITELLM, **kw
) -> IngestResult:
    return ingest(db, get_settings(), actor=CLI, location=str(location), source=source, **kw)


def test_samples_ingest_once_however_often_they_run(db: Database) -> None:
    first = run(db, SAMPLES / "litellm_standard_logging_payload.jsonl")
    assert first.summary() == "ingested=2 duplicates=0 rejected=0"
    again = run(db, SAMPLES / "litellm_standard_logging_payload.jsonl")
    assert again.summary() == "ingested=0 duplicates=2 rejected=0"
    bedrock_run = run(db, SAMPLES / "bedrock_invocation_log.jsonl", UsageSource.BEDROCK)
    assert bedrock_run.summary() == "ingested=3 duplicates=0 rejected=0"
    assert len(events(db)) == 5
    assert sum(r.requests for r in rollups(db)) == 5
    with db.read() as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "usage.ingest")).all()
    assert len(audited) == 3 and "ingested=0 duplicates=2" in audited[1].summary


def test_bad_lines_are_listed_with_file_and_line_and_the_rest_is_ingested(
    db: Database, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [
            litellm("ok-1", NOV_2),
            b"{not json",
            litellm("neg", NOV_2, prompt_tokens=-3),
            litellm("huge", NOV_2, completion_tokens=50_000_000),
            litellm("naive", "2026-11-02T10:00:00"),
            litellm("", NOV_2),
            litellm("ok-2", NOV_2),
        ],
    )
    result = run(db, path)
    assert result.summary() == "ingested=2 duplicates=0 rejected=5"
    described = [r.describe() for r in result.rejections]
    assert described[0].startswith(f"{path}:2: not valid JSON")
    assert described[1] == f"{path}:3: negative token count in `prompt_tokens` (-3)"
    assert described[2].startswith(f"{path}:4: absurd token count in `completion_tokens`")
    assert "has no time zone" in described[3] and described[3].startswith(f"{path}:5:")
    assert described[4] == f"{path}:6: missing request id (`id`)"
    assert [e.request_id for e in events(db)] == ["ok-1", "ok-2"]


def test_rollups_fall_on_the_reporting_time_zones_days(
    db: Database, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PORTAL_REPORT_TZ", "America/Los_Angeles")
    get_settings.cache_clear()
    late_evening = datetime(2026, 11, 2, 7, 59, tzinfo=UTC).timestamp()  # 23:59 on 1 Nov in LA
    midnight = datetime(2026, 11, 2, 8, 0, tzinfo=UTC).timestamp()  # 00:00 on 2 Nov in LA
    path = write_lines(
        tmp_path / "day.jsonl",
        [
            litellm("a", late_evening, response_cost=0.25),
            litellm("b", late_evening, response_cost=0.5),
            litellm("c", midnight, response_cost=1.0, status="failure"),
        ],
    )
    run(db, path)
    days = {(r.day, r.requests, r.errors, r.cost) for r in rollups(db)}
    assert days == {
        (date(2026, 11, 1), 2, 0, Decimal("0.75")),
        (date(2026, 11, 2), 1, 1, Decimal("1.00")),
    }


def test_rollups_split_by_every_dimension_and_count_unpriced_requests(
    db: Database, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "dims.jsonl",
        [
            litellm("a", NOV_2, team="Payments", user="alice", request_tags=["b", "a"]),
            litellm("b", NOV_2, team="Payments", user="alice", request_tags=["a", "b"]),
            litellm("c", NOV_2, team="Search", user="bob", key="search-key"),
            litellm("d", NOV_2, model="in-house/llm", response_cost=0.0),
        ],
    )
    run(db, path)
    rows = {(r.team, r.user, r.api_key_alias, r.model, r.tags): r for r in rollups(db)}
    assert rows[("Payments", "alice", "payments-prod", "gpt-4o-mini", "a,b")].requests == 2
    assert rows[("Search", "bob", "search-key", "gpt-4o-mini", "app:chatbot")].requests == 1
    unpriced = rows[("Payments", "alice", "payments-prod", "in-house/llm", "app:chatbot")]
    assert (unpriced.unpriced_requests, unpriced.cost) == (1, 0)
    assert [e.priced for e in events(db) if e.request_id == "d"] == [False]


def test_bedrock_team_comes_from_the_admins_identity_mapping(
    db: Database, admin: Actor, tmp_path: Path
) -> None:
    set_identity_mapping(
        db, actor=admin, arn="arn:aws:iam::123456789012:role/team-search-app", team="search"
    )
    path = write_lines(tmp_path / "b.jsonl", [bedrock("r1")])
    run(db, path, UsageSource.BEDROCK)
    (event,) = events(db)
    assert event.team == "search" and event.priced and event.cost == Decimal("0.0045")


def test_duplicates_inside_one_file_count_once(db: Database, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "dup.jsonl", [litellm("same", NOV_2), litellm("same", NOV_2)])
    assert run(db, path).summary() == "ingested=1 duplicates=1 rejected=0"
    assert [r.requests for r in rollups(db)] == [1]


def test_truncated_gzip_is_a_rejection_of_the_file_not_a_crash(
    db: Database, tmp_path: Path
) -> None:
    lines = b"".join(orjson.dumps(litellm(f"r{i}", NOV_2)) + b"\n" for i in range(2000))
    whole = gzip.compress(lines)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a-cut.gz").write_bytes(whole[: len(whole) // 2])
    write_lines(tmp_path / "logs" / "b-fine.jsonl", [litellm("fine", NOV_2)], compress=True)
    result = run(db, tmp_path / "logs")
    assert result.files == 2 and result.rejected == 1
    (rejection,) = result.rejections
    assert rejection.uri.endswith("a-cut.gz") and "truncated or corrupt gzip" in rejection.reason
    read = rejection.line - 1
    assert 0 < read < 2000 and f"{read:,} lines were read" in rejection.reason
    assert result.ingested == read + 1  # every whole line before the cut, and the other file


def test_one_pretty_printed_json_document_per_file(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "object.json"
    path.write_bytes(orjson.dumps(litellm("pretty", NOV_2), option=orjson.OPT_INDENT_2))
    assert run(db, path).summary() == "ingested=1 duplicates=0 rejected=0"


def test_a_run_that_dies_half_way_is_completed_by_the_next_without_double_counting(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [litellm(f"r{i:03}", NOV_2 + i, response_cost=0.01) for i in range(250)]
    path = write_lines(tmp_path / "big.jsonl", records)
    real_commit = ingest_module.commit_batch
    calls = []

    def dies_after_first_batch(*args, **kwargs) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real_commit(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "commit_batch", dies_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        run(db, path, batch_size=100)
    assert len(events(db)) == 100 and sum(r.requests for r in rollups(db)) == 100
    with db.read() as session:
        ledger = session.exec(select(IngestedFile)).one()
    assert ledger.finished_at is None and ledger.lines_committed == 100

    monkeypatch.setattr(ingest_module, "commit_batch", real_commit)
    result = run(db, path, batch_size=100)
    assert result.summary() == "ingested=150 duplicates=100 rejected=0"
    (daily,) = rollups(db)
    assert (daily.requests, daily.cost, daily.input_tokens) == (250, Decimal("2.50"), 250_000)
    with db.read() as session:
        ledger = session.exec(select(IngestedFile)).one()
    assert ledger.finished_at is not None and ledger.lines_committed == 250


def test_ingest_needs_an_admin_or_the_command_line(db: Database, admin: Actor) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    with pytest.raises(PermissionDenied, match="admin"):
        ingest(db, get_settings(), actor=dana, location=str(SAMPLES), source=UsageSource.LITELLM)
    result = ingest(
        db,
        get_settings(),
        actor=admin,
        location=str(SAMPLES / "litellm_standard_logging_payload.jsonl"),
        source=UsageSource.LITELLM,
    )
    assert result.ingested == 2


def test_the_team_and_model_rollup_adds_up_to_the_fine_one(db: Database, tmp_path: Path) -> None:
    from sqlalchemy import func

    from models.usage import UsageDaily, UsageDailyTeamModel

    lines = [
        litellm(f"r{i}", NOV_2 + i * 3_600, user=f"u{i % 3}", key=f"k{i % 2}", model=m)
        for i, m in enumerate(["gpt-4o-mini", "gpt-4o", "gpt-4o-mini", "gpt-4o"] * 5)
    ]
    run(db, write_lines(tmp_path / "day.jsonl", lines))
    run(db, write_lines(tmp_path / "again.jsonl", lines[:7]))  # duplicates add nothing

    def totals(table: Any) -> list[tuple[Any, ...]]:
        with db.read() as session:
            return sorted(
                session.exec(
                    select(  # type: ignore[call-overload]
                        table.day,
                        table.team,
                        table.model,
                        func.sum(table.requests),
                        func.sum(table.input_tokens),
                        func.sum(table.cost),
                    ).group_by(table.day, table.team, table.model)
                ).all()
            )

    coarse = totals(UsageDailyTeamModel)
    assert coarse == totals(UsageDaily)
    assert sum(row[3] for row in coarse) == 20
    with db.read() as session:  # one row per day, team and model, however many users and keys
        assert len(session.exec(select(UsageDailyTeamModel)).all()) == len(coarse)
