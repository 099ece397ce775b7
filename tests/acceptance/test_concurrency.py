"""Issue #8, concurrency: twenty approvers on one request, twenty submissions of one launch
form, eight ingests of overlapping log files, all at once, on SQLite and PostgreSQL. Each has
exactly the effects one of them would have, and prints what it tried."""

from __future__ import annotations

import io
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from models.audit import AuditEvent
from models.promotion import ApprovalDecision, PromotionSideEffect, SideEffectStatus
from models.registry import ModelVersion
from models.training import FineTuneJob, JobEvent
from models.usage import IngestedFile, UsageDaily, UsageDailyTeamModel, UsageEvent, UsageSource
from models.user import Role
from services import promotions
from services.access import Actor
from services.cli import main
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.gateway.ingest import IngestResult, ingest
from tests.conftest import PostgresSchemas, database_url, make_user
from tests.processes import free_port
from tests.promotion_support import Cast, file_request, model_with_versions
from tests.training_support import launch_local, new_key, register_chat_dataset
from tests.unit.gateway.support import SAMPLES, litellm, write_lines
from tests.unit.promotions.test_cli_sync import SECRET
from tests.webhook_receiver import serve_receiver

T = TypeVar("T")
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


def simultaneously(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run each call in its own thread, all released at once; what each returned or raised."""
    start = threading.Barrier(len(calls))
    outcomes: list[T | Exception] = [RuntimeError("did not finish")] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # every outcome is reported and asserted on by the caller
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.exec(select(func.count()).select_from(table).where(*where)).one())


def audited(db: Database, action: str) -> int:
    return count(db, AuditEvent, col(AuditEvent.action) == action)


# ---------------------------------------------------------------- promotions


def test_twenty_approvers_at_once_count_exactly_the_approvals_needed(
    db: Database, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    settings = get_settings()
    people = Cast(
        scientist=make_user(db, "dana", Role.DATA_SCIENTIST),
        peer=make_user(db, "sam", Role.DATA_SCIENTIST),
        approvers=[make_user(db, f"approver{i:02d}", Role.APPROVER) for i in range(20)],
        manager=make_user(db, "mona", Role.MANAGER),
        admin=admin,
    )
    _, (_, v2) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v2)
    with serve_receiver("/", port=port) as hook:
        outcomes = simultaneously(
            [
                lambda a=a: promotions.approve(db, settings, actor=a, request_id=request_id)  # type: ignore[misc]
                for a in people.approvers
            ]
        )
    refusals = [str(o) for o in outcomes if isinstance(o, Exception)]
    with db.read() as session:
        effects = session.exec(select(PromotionSideEffect)).all()
    request = promotions.request_detail(db, actor=people.scientist, request_id=request_id).row
    print(
        f"20 approvers at once ({db.engine.dialect.name}): {20 - len(refusals)} approvals, "
        f"{len(refusals)} refused {set(refusals)}; decisions {count(db, ApprovalDecision)}, "
        f"audit events approve={audited(db, 'promotion.approve')} "
        f"apply={audited(db, 'promotion.apply')}; request {request.request.status} with "
        f"{request.request.approvals} approvals; outbox {[(e.kind, e.status) for e in effects]}, "
        f"webhook deliveries {len(hook.deliveries)}"
    )
    already = f"Request #{request_id} is already approved; nothing was changed."
    assert len(refusals) == 18 and set(refusals) == {already}
    assert count(db, ApprovalDecision) == 2
    assert (audited(db, "promotion.approve"), audited(db, "promotion.apply")) == (2, 1)
    assert request.request.status == "approved" and request.request.approvals == 2
    with db.read() as session:
        stages = {v.number: v.stage for v in session.exec(select(ModelVersion))}
    assert stages[2] == "production" and list(stages.values()).count("production") == 1
    assert [(e.kind, e.status) for e in effects] == [("webhook", SideEffectStatus.DONE.value)]
    (delivery,) = hook.deliveries
    assert b'"event":"promotion.approved"' in delivery.body


# ---------------------------------------------------------------- fine-tuning launches


def test_twenty_simultaneous_submissions_of_one_form_make_one_job(
    db: Database, admin: Actor
) -> None:
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    dataset = register_chat_dataset(db, scientist, count=60)
    key = new_key()
    outcomes = simultaneously([lambda: launch_local(db, scientist, dataset, key=key)] * 20)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    launched = [o for o in outcomes if not isinstance(o, Exception)]
    jobs = {o.job.id for o in launched}
    created = sum(o.created for o in launched)
    print(
        f"20 submissions of one launch form at once ({db.engine.dialect.name}): "
        f"{created} created, {len(launched) - created} answered with the same job {jobs}, "
        f"errors {[str(e) for e in errors]}; job rows {count(db, FineTuneJob)}, "
        f"timeline events {count(db, JobEvent)}, audit events {audited(db, 'training.launch')}"
    )
    assert not errors
    assert created == 1 and len(jobs) == 1
    assert count(db, FineTuneJob) == 1 and count(db, JobEvent) == 1
    assert audited(db, "training.launch") == 1


# ---------------------------------------------------------------- gateway ingest

FILES, WINDOW, STEP, POOL = 8, 900, 300, 2_400
"""Eight files of 900 of 2,400 requests, each window 300 further on (wrapping round): every
request is in three files, and the two sample records are in all eight."""
THREAD_BATCH = 150
"""Records per transaction for the threads, so that their transactions interleave (the command
line's batches are larger than these files: one transaction per file)."""
MODELS = ("gpt-4o-mini", "gpt-4o", "bedrock/anthropic.claude-haiku-4-5-20251001-v1:0")
SAMPLE_RECORDS = [
    orjson.loads(line)
    for line in (SAMPLES / "litellm_standard_logging_payload.jsonl").read_bytes().splitlines()
    if line.strip()
]


def request_record(i: int) -> dict[str, Any]:
    """Request ``i``, the same in every file it is in: over five days, three models, four
    users, two teams, with some failures."""
    return litellm(
        f"req-{i:05d}",
        NOV_2 + (i % 5) * 86_400 + i,
        model=MODELS[i % 3],
        user=f"user{i % 4}",
        team=("Payments", "Search")[i % 2],
        response_cost=round(0.001 * (i % 7 + 1), 4),
        prompt_tokens=100 + i,
        completion_tokens=10 + i % 50,
        status="failure" if i % 11 == 0 else "success",
    )


def overlapping_logs(folder: Path) -> tuple[list[Path], Path]:
    """The eight files (every other one in reverse order), and their union with each request
    once, written apart from them."""
    (folder / "logs").mkdir()
    files = []
    for k in range(FILES):
        ids = [(k * STEP + j) % POOL for j in range(WINDOW)]
        if k % 2:
            ids.reverse()
        records = [*map(request_record, ids), *SAMPLE_RECORDS]
        files.append(write_lines(folder / "logs" / f"gateway-{k}.jsonl", records))
    union = [*map(request_record, range(POOL)), *SAMPLE_RECORDS]
    return files, write_lines(folder / "union.jsonl", union)


def migrated(url: str, request: pytest.FixtureRequest) -> Database:
    database = Database(url)
    upgrade_schema(database)
    request.addfinalizer(database.dispose)
    return database


def ingest_with_own_engine(url: str, path: Path, **kw: Any) -> IngestResult:
    """One ingest as a separate command-line process would run it: its own engine."""
    own = Database(url)
    try:
        return ingest(
            own,
            get_settings(),
            actor=Actor.command_line(),
            location=str(path),
            source=UsageSource.LITELLM,
            **kw,
        )
    finally:
        own.dispose()


def usage_state(db: Database) -> tuple[list[str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Stored request ids, and both rollups' rows as plain tuples, in a stable order."""
    with db.read() as session:
        ids = list(session.exec(select(UsageEvent.request_id)))
        daily, coarse = (
            sorted(tuple(r.model_dump(exclude={"id"}).values()) for r in session.exec(select(t)))
            for t in (UsageDaily, UsageDailyTeamModel)
        )
    return ids, daily, coarse


def totals(db: Database) -> str:
    measures = [func.sum(getattr(UsageDaily, c)) for c in ("requests", "input_tokens", "cost")]
    with db.read() as session:
        requests, tokens, cost = session.exec(select(*measures)).one()
    return f"{requests:,} requests, {tokens:,} input tokens, ${cost:.4f}"


def check_eight_ingests(
    db: Database,
    reference: Database,
    counts: Sequence[tuple[int, int, int]],
    errors: dict[int, Exception],
    how: str,
) -> None:
    """Print what was tried, then check that every request is stored once and both rollups
    equal those of one ingest of the union; re-raise a crash only after those checks, then
    check the counts the runs reported."""
    lines = FILES * (WINDOW + len(SAMPLE_RECORDS))
    distinct = POOL + len(SAMPLE_RECORDS)
    ids, daily, coarse = usage_state(db)
    expected_ids, expected_daily, expected_coarse = usage_state(reference)
    ingested, duplicates, rejected = (sum(c[i] for c in counts) for i in range(3))
    same = (daily, coarse) == (expected_daily, expected_coarse)
    kinds = sorted({f"{type(e).__name__}: {e}" for e in errors.values()})
    crashed = (
        f"files {list(errors)} crashed with {kinds}, then were ingested again one by one"
        if errors
        else "no crash"
    )
    print(
        f"{FILES} ingests at once of overlapping LiteLLM files on {db.engine.dialect.name} "
        f"({how}): {lines:,} lines of {distinct:,} distinct requests; "
        f"ingested {'+'.join(str(c[0]) for c in counts)} = {ingested:,}, "
        f"duplicates {duplicates:,}, rejected {rejected}; {crashed}; "
        f"stored {len(ids):,} events, {len(set(ids)):,} distinct; rollups {totals(db)} "
        f"in {len(daily)} daily and {len(coarse)} team-model rows; "
        f"one ingest of the union: {totals(reference)} in {len(expected_daily)} and "
        f"{len(expected_coarse)} rows; equal: {same}"
    )
    assert len(ids) == len(set(ids)) == distinct
    assert sorted(ids) == sorted(expected_ids)
    assert daily == expected_daily
    assert coarse == expected_coarse
    if errors:
        raise next(iter(errors.values()))
    assert (ingested, duplicates, rejected) == (distinct, lines - distinct, 0)
    finished = count(db, IngestedFile, col(IngestedFile.finished_at).is_not(None))
    assert finished == FILES and audited(db, "usage.ingest") == FILES


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def test_eight_simultaneous_ingests_of_overlapping_files_store_each_request_once(
    kind: str, tmp_path: Path, postgres: PostgresSchemas | None, request: pytest.FixtureRequest
) -> None:
    url = database_url(kind, tmp_path, postgres, request)
    db = migrated(url, request)
    reference = migrated(database_url(kind, tmp_path / "reference", postgres, request), request)
    files, union = overlapping_logs(tmp_path)
    ingest_with_own_engine(reference.url.render_as_string(hide_password=False), union)

    outcomes = simultaneously(
        [lambda p=p: ingest_with_own_engine(url, p, batch_size=THREAD_BATCH) for p in files]  # type: ignore[misc]
    )
    errors = {i: o for i, o in enumerate(outcomes) if isinstance(o, Exception)}
    for i in errors:  # as whoever ran them would: once more, after the others
        outcomes[i] = ingest_with_own_engine(url, files[i], batch_size=THREAD_BATCH)
    counts = [
        (o.ingested, o.duplicates, o.rejected) for o in outcomes if isinstance(o, IngestResult)
    ]
    how = f"threads with their own engines, {THREAD_BATCH} records a transaction"
    check_eight_ingests(db, reference, counts, errors, how)


def cli_ingest(path: Path, start: Any, results: Any) -> None:
    """In a forked process: ``python -m services.cli usage ingest PATH --format litellm``,
    once every process is ready; puts (path, exit code, stdout, stderr) on ``results``."""
    out, err = io.StringIO(), io.StringIO()
    start.wait()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["usage", "ingest", str(path), "--format", "litellm"])
    except BaseException as exc:  # a traceback the command line would print
        code, err = 1, io.StringIO(f"{type(exc).__name__}: {exc}")
    results.put((path, code, out.getvalue(), err.getvalue()))


def test_eight_command_line_ingests_at_once_store_each_request_once(
    tmp_path: Path,
    postgres: PostgresSchemas | None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Separate processes running the command line's ``usage ingest``, on SQLite: the embedded
    default, where a cron job and an operator may well ingest at the same moment. They are
    forked from this one, as 8 fresh interpreters take half a minute to start on two cores."""
    url = database_url("sqlite", tmp_path, postgres, request)
    db = migrated(url, request)
    reference = migrated(database_url("sqlite", tmp_path / "reference", postgres, request), request)
    files, union = overlapping_logs(tmp_path)
    ingest_with_own_engine(reference.url.render_as_string(hide_password=False), union)
    monkeypatch.setenv("PORTAL_DATABASE_URL", url)
    get_settings.cache_clear()
    db.dispose()  # no pooled connection is inherited by the children
    fork = multiprocessing.get_context("fork")
    start, results = fork.Barrier(FILES), fork.Queue()
    processes = [fork.Process(target=cli_ingest, args=(p, start, results)) for p in files]
    began = time.monotonic()
    for process in processes:
        process.start()
    finished = {path: rest for path, *rest in (results.get(timeout=120) for _ in files)}
    for process in processes:
        process.join(timeout=30)
    elapsed = time.monotonic() - began
    errors: dict[int, Exception] = {
        i: RuntimeError(f"exit {finished[p][0]}: {finished[p][2].strip()}")
        for i, p in enumerate(files)
        if finished[p][0] != 0
    }
    counts = [
        (ingested, duplicates, rejected)
        for p in files
        if finished[p][0] == 0
        for ingested, duplicates, rejected in [summary_counts(finished[p][1])]
    ]
    how = f"8 forked processes running `services.cli usage ingest`, {elapsed:.1f} s"
    check_eight_ingests(db, reference, counts, errors, how)


def summary_counts(stdout: str) -> tuple[int, int, int]:
    """(ingested, duplicates, rejected) from the command's last line of output."""
    fields = dict(part.split("=") for part in stdout.strip().splitlines()[-1].split())
    return int(fields["ingested"]), int(fields["duplicates"]), int(fields["rejected"])


def blocked_by(db: Database, pid: int) -> bool:
    """Whether some PostgreSQL backend waits for a lock that backend ``pid`` holds."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    with db.engine.connect() as conn:
        return bool(conn.execute(query, {"pid": pid}).scalar())


def stored_event(request_id: str) -> UsageEvent:
    moment = datetime.fromtimestamp(NOV_2, UTC)
    return UsageEvent(
        source=UsageSource.LITELLM.value,
        request_id=request_id,
        occurred_at=moment,
        day=moment.date(),
        model="gpt-4o-mini",
        status="success",
    )


@pytest.mark.postgres
def test_an_ingest_in_a_deadlock_with_another_ingest_tries_its_batch_again(
    tmp_path: Path,
    postgres: PostgresSchemas | None,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deadlock made deterministic: another ingest's open transaction has stored request
    "b"; the ingest of a file [a, b] stores "a" and waits for "b"; the other then stores "a"
    too. PostgreSQL fails the first of the two whose ``deadlock_timeout`` runs out once both
    wait: the ingest's (3 s, long enough for the other to start waiting however busy the
    machine) before the other's (60 s). The ingest rolls its batch back and tries it again,
    so the file is stored whole."""
    caplog.set_level(logging.INFO, logger="services.gateway.ingest")
    url = database_url("postgresql", tmp_path, postgres, request)
    db = migrated(url, request)
    path = write_lines(tmp_path / "a-then-b.jsonl", [litellm("a", NOV_2), litellm("b", NOV_2)])
    options = make_url(url).query.get("options", "")
    ingest_url = make_url(url).update_query_dict({"options": f"{options} -cdeadlock_timeout=3s"})
    ingest_url_text = ingest_url.render_as_string(hide_password=False)
    outcome: list[IngestResult | Exception] = []
    with Session(db.engine) as other:
        other.connection().exec_driver_sql("SET deadlock_timeout = '60s'")
        other.add(stored_event("b"))
        other.flush()
        pid = int(other.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        ingesting = threading.Thread(
            target=lambda: outcome.extend(
                simultaneously([lambda: ingest_with_own_engine(ingest_url_text, path)])
            )
        )
        ingesting.start()
        deadline = time.monotonic() + 30
        while not blocked_by(db, pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        other.add(stored_event("a"))
        other.flush()  # waits for the ingest's "a" until PostgreSQL breaks the deadlock
        other.rollback()
    ingesting.join(timeout=60)
    (result,) = outcome
    print(
        'an ingest of a file [a, b] while another transaction holds "b", then asks for "a" '
        f"(PostgreSQL): {type(result).__name__}: {result}"
    )
    if isinstance(result, Exception):
        raise result
    assert result.summary() == "ingested=2 duplicates=0 rejected=0"
    retries = [r for r in caplog.records if "a batch met another ingest" in r.getMessage()]
    assert len(retries) == 1, "the ingest was not the one PostgreSQL failed"
