"""Gateway usage ingestion throughput: LiteLLM JSON lines into the portal database, beside the
floor of reading the file and ``orjson.loads`` alone, then a re-run (every record a duplicate),
on SQLite and (``full`` only, with ``--postgres`` or ``PORTAL_TEST_DATABASE_URL``)
PostgreSQL, for kinds of record and of file side by side:

* ``full``: the ``standard_logging_object`` as tests/samples has it, messages and all;
* ``redacted``: the same with LiteLLM's ``turn_off_message_logging`` applied as LiteLLM does it
  (``messages`` and the response's message content replaced by ``"redacted-by-litellm"``);
* ``full, into N events``: the ``full`` file into a database that already holds ``--prefill``
  requests (compact records, logged before the file's), as the database of a gateway that has
  run for a while does;
* ``full, shuffled over 90 days``: the same records spread over 90 days in random order, a
  file no gateway writes (each record then opens rollup rows of its own): the worst case,
  printed beside the others, not held to the target.

Files are written as a gateway logs: in time order, at the issue's rate (10 million requests
over 90 days, about 1.3 a second, so 200,000 records cover 1.8 days).

    python -m benchmarks.usage_ingest [--records 200000] [--prefill 2000000]
        [--postgres postgresql+psycopg://…/test]

200 users in 20 teams, 30 models (some not in LiteLLM's price map).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from benchmarks.figures import Figure, report
from benchmarks.usage_reports import write_records
from models.usage import UsageDaily, UsageEvent, UsageSource
from services.access import Actor
from services.config import Settings
from services.db import Database, upgrade_schema
from services.gateway.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "samples" / "litellm_standard_logging_payload.jsonl"
START = 1_788_000_000.0  # 2026-08-29
MODELS = [
    "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
    "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "claude-3-5-haiku-20241022",
    "bedrock/amazon.nova-lite-v1:0",
    "bedrock/amazon.nova-pro-v1:0",
    *(f"in-house-model-{i}" for i in range(20)),  # unpriced: LiteLLM logs them at $0
]


def template() -> dict[str, Any]:
    if SAMPLE.exists():
        return dict(orjson.loads(SAMPLE.read_bytes().splitlines()[0]))
    return {"metadata": {}, "status": "success", "custom_llm_provider": "openai"}


REDACTED = "redacted-by-litellm"


def redacted(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as LiteLLM logs it with ``turn_off_message_logging`` (its
    ``_redact_standard_logging_object``: messages replaced, choices' content redacted)."""
    response = record.get("response")
    if isinstance(response, dict) and isinstance(response.get("choices"), list):
        choices = [
            choice | {"message": choice["message"] | {"content": REDACTED}}
            if isinstance(choice, dict) and isinstance(choice.get("message"), dict)
            else choice
            for choice in response["choices"]
        ]
        response = response | {"choices": choices}
    elif response is not None:
        response = {"text": REDACTED}
    return record | {"messages": [{"role": "user", "content": REDACTED}], "response": response}


ISSUE_RATE = 10_000_000 / (90 * 86_400)
"""Requests a second in the issue's traffic: 10 million over 90 days."""


def generate(
    path: Path, records: int, seed: int = 7, *, redact: bool = False, shuffled: bool = False
) -> int:
    """``records`` requests as JSON lines, as a gateway logs them (in time order, at
    ``ISSUE_RATE`` from ``START``), or ``shuffled`` over 90 days; returns the file's size."""
    rng = random.Random(seed)
    base = redacted(template()) if redact else template()
    with path.open("wb") as out:
        for i in range(records):
            if shuffled:
                started = START + rng.random() * 90 * 86_400
            else:
                started = START + (i + rng.random()) / ISSUE_RATE
            user = rng.randrange(200)
            model = MODELS[rng.randrange(len(MODELS))]
            prompt, completion = rng.randrange(50, 4000), rng.randrange(10, 1000)
            failed = rng.random() < 0.02
            record = base | {
                "id": f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128))}",
                "startTime": started,
                "model": model,
                "status": "failure" if failed else "success",
                "prompt_tokens": 0 if failed else prompt,
                "completion_tokens": 0 if failed else completion,
                "response_cost": 0.0 if failed or model.startswith("in-house") else prompt * 3e-6,
                "request_tags": [f"app:{('chat', 'search', 'batch')[user % 3]}"],
                "metadata": base.get("metadata", {})
                | {
                    "user_api_key_alias": f"key-{user}",
                    "user_api_key_hash": f"{user:014x}",
                    "user_api_key_user_id": f"user{user}",
                    "user_api_key_team_alias": f"team{user % 20}",
                },
            }
            out.write(orjson.dumps(record) + b"\n")
    return path.stat().st_size


Row = dict[str, str]
FLOOR = "floor: read + orjson.loads"
TARGET, TARGET_RATE = "≥ 50,000/s", 50_000


SETTINGS = Settings(report_tz="America/Los_Angeles")


def measure(
    db: Database, path: Path, records: int, *, already: int = 0
) -> tuple[float, float, float, int]:
    """(ingest seconds, its CPU seconds in this process and its workers, re-run seconds,
    rollup rows) for one ingest of ``path`` into ``db`` (holding ``already`` events), and the
    same file again."""
    upgrade_schema(db)
    cli = Actor.command_line()
    started, cpu = time.perf_counter(), _cpu()
    result = ingest(db, SETTINGS, actor=cli, location=str(path), source=UsageSource.LITELLM)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    assert result.ingested == records, result.summary()
    with db.read() as session:
        events = session.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
        rollups = session.execute(select(func.count()).select_from(UsageDaily)).scalar_one()
        counted = session.execute(select(func.sum(UsageDaily.requests))).scalar_one()
    assert events == counted == already + records
    started = time.perf_counter()
    again = ingest(db, SETTINGS, actor=cli, location=str(path), source=UsageSource.LITELLM)
    rerun = time.perf_counter() - started
    assert again.ingested == 0 and again.duplicates == records
    return seconds, cpu, rerun, rollups


def prefill(db: Database, folder: Path, events: int) -> float:
    """Store ``events`` compact requests (``usage_reports.write_records``: only the fields the
    portal reads, random ids, in time order at ``ISSUE_RATE``) in the days before ``START``,
    through the real ingest; returns the ingest's records/s."""
    upgrade_schema(db)
    days = events / (ISSUE_RATE * 86_400)
    first_day = datetime.fromtimestamp(START, UTC).date() - timedelta(days=math.ceil(days))
    path = folder / "prefill.jsonl"
    write_records(path, events, seed=11, first_day=first_day, days=days)
    started = time.perf_counter()
    result = ingest(
        db, SETTINGS, actor=Actor.command_line(), location=str(path), source=UsageSource.LITELLM
    )
    seconds = time.perf_counter() - started
    assert result.ingested == events, result.summary()
    path.unlink()
    return events / seconds


def _cpu() -> float:
    """CPU seconds of this process and of its ended children (the ingest's workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def floor(path: Path) -> float:
    """Seconds to read ``path`` and ``orjson.loads`` each line: no ingest can beat it."""
    started = time.perf_counter()
    with path.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
    return time.perf_counter() - started


def postgres_database(url: str) -> tuple[Database, Callable[[], None]]:
    """A Database on a new scratch schema of ``url``, and how to drop it."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return Database(make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})), drop


def run_variant(
    tmp: Path,
    name: str,
    records: int,
    *,
    postgres: str | None = None,
    prefilled: int = 0,
    redact: bool = False,
    shuffled: bool = False,
) -> tuple[list[Row], dict[str, float]]:
    """The table's rows for one kind of record and file, and its records/s by measure."""
    path = tmp / "records.jsonl"
    size = generate(path, records, redact=redact, shuffled=shuffled)
    label = f"{name} ({size / records / 1000:.1f} KB/record)"
    rows = []
    rates: dict[str, float] = {}

    def row(measure_: str, seconds: float, note: str = "") -> None:
        rates[measure_] = records / seconds
        rows.append(
            {
                "records": label,
                "measure": measure_,
                "s": f"{seconds:.1f}",
                "records/s": f"{records / seconds:,.0f}",
                "note": note,
            }
        )

    row(FLOOR, floor(path))
    targets: list[tuple[str, Database, Callable[[], None], int]] = []
    targets.append(("SQLite", Database(f"sqlite:///{tmp / (name + '.db')}"), lambda: None, 0))
    if postgres:
        targets.append(("PostgreSQL", *postgres_database(postgres), 0))
    if prefilled:
        filled = Database(f"sqlite:///{tmp / 'prefilled.db'}")
        rate = prefill(filled, tmp, prefilled)
        print(f"prefill: {prefilled:,} compact records stored at {rate:,.0f}/s")
        targets.append((f"SQLite, into {prefilled:,} events", filled, lambda: None, prefilled))
    for db_name, db, drop, already in targets:
        try:
            seconds, cpu, rerun, rollups = measure(db, path, records, already=already)
        finally:
            db.dispose()
            drop()
        row(f"{db_name}: ingest", seconds, f"CPU {cpu:.1f} s in all processes; {rollups:,} rollups")
        row(f"{db_name}: same file again (all duplicates)", rerun)
    for leftover in tmp.glob("*.db*"):
        leftover.unlink()
    path.unlink()
    return rows, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument(
        "--prefill",
        type=int,
        default=2_000_000,
        help="requests already stored before the 'into N events' ingest (0: leave it out)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PORTAL_TEST_DATABASE_URL"),
        help="PostgreSQL URL to compare with, in a scratch schema "
        "(default: PORTAL_TEST_DATABASE_URL; '' for none)",
    )
    args = parser.parse_args()
    print(
        f"{args.records:,} LiteLLM records per variant; {os.cpu_count()} CPUs; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    variants: list[tuple[str, dict[str, float], bool]] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name, options, held in (
            ("full", {"postgres": args.postgres or None, "prefilled": args.prefill}, True),
            ("redacted", {"redact": True}, True),  # SQLite only: the run stays near 2 minutes
            ("shuffled over 90 days", {"shuffled": True}, False),
        ):
            variant_rows, rates = run_variant(tmp, name, args.records, **options)
            rows += variant_rows
            variants.append((name, rates, held))
    widths = {key: max(len(key), *(len(r[key]) for r in rows)) for key in rows[0]}
    print(" | ".join(key.ljust(width) for key, width in widths.items()))
    for r in rows:
        print(" | ".join(r[key].ljust(width) for key, width in widths.items()))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    report("usage_ingest", figures(variants))


def figures(variants: list[tuple[str, dict[str, float], bool]]) -> list[Figure]:
    """The records/s figures of each variant (name, rates by measure, held to the target):
    SQLite ingests of files as a gateway logs them against the target, every ingest against
    the floor of its file."""
    result = []
    for kind, rates, held in variants:
        result.append(
            Figure(f"{kind}: floor (read + orjson.loads)", round(rates[FLOOR]), "records/s")
        )
        for measure_, rate in rates.items():
            if not measure_.endswith(": ingest"):
                continue
            database = measure_.removesuffix(": ingest")
            judged = held and database.startswith("SQLite")
            result.append(
                Figure(
                    f"{kind}: {database} ingest",
                    round(rate),
                    "records/s",
                    target=TARGET if judged else "",
                    met=rate >= TARGET_RATE if judged else None,
                    ratio=f"{rate / rates[FLOOR]:.2f}x the floor",
                )
            )
            rerun = rates[f"{database}: same file again (all duplicates)"]
            result.append(
                Figure(f"{kind}: {database} re-run, all duplicates", round(rerun), "records/s")
            )
    return result


if __name__ == "__main__":
    main()
