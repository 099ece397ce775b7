"""Gateway usage ingestion throughput: LiteLLM JSON lines into the portal database, beside the
floor of reading the file and ``orjson.loads`` alone, then a re-run (every record a duplicate),
on SQLite and (``full`` only, with ``--postgres`` or ``PORTAL_TEST_DATABASE_URL``)
PostgreSQL, for two kinds of record side by side:

* ``full``: the ``standard_logging_object`` as tests/samples has it, messages and all;
* ``redacted``: the same with LiteLLM's ``turn_off_message_logging`` applied as LiteLLM does it
  (``messages`` and the response's message content replaced by ``"redacted-by-litellm"``).

    python -m benchmarks.usage_ingest [--records 200000] [--postgres postgresql+psycopg://…/test]

200 users in 20 teams, 30 models (some not in LiteLLM's price map), 90 days.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from benchmarks.figures import Figure, report
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


def generate(path: Path, records: int, seed: int = 7, *, redact: bool = False) -> int:
    rng = random.Random(seed)
    base = redacted(template()) if redact else template()
    with path.open("wb") as out:
        for _ in range(records):
            user = rng.randrange(200)
            model = MODELS[rng.randrange(len(MODELS))]
            prompt, completion = rng.randrange(50, 4000), rng.randrange(10, 1000)
            failed = rng.random() < 0.02
            record = base | {
                "id": f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128))}",
                "startTime": START + rng.random() * 90 * 86_400,
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


def measure(db: Database, path: Path, records: int) -> tuple[float, float, float, int]:
    """(ingest seconds, its CPU seconds in this process and its workers, re-run seconds,
    rollup rows) for one ingest of ``path`` into a new schema, and the same file again."""
    upgrade_schema(db)
    settings = Settings(report_tz="America/Los_Angeles")
    cli = Actor.command_line()
    started, cpu = time.perf_counter(), _cpu()
    result = ingest(db, settings, actor=cli, location=str(path), source=UsageSource.LITELLM)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    assert result.ingested == records, result.summary()
    with db.read() as session:
        events = session.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
        rollups = session.execute(select(func.count()).select_from(UsageDaily)).scalar_one()
        counted = session.execute(select(func.sum(UsageDaily.requests))).scalar_one()
    assert events == counted == records
    started = time.perf_counter()
    again = ingest(db, settings, actor=cli, location=str(path), source=UsageSource.LITELLM)
    rerun = time.perf_counter() - started
    assert again.ingested == 0 and again.duplicates == records
    return seconds, cpu, rerun, rollups


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
    tmp: Path, name: str, records: int, postgres: str | None
) -> tuple[list[Row], dict[str, float]]:
    """The table's rows for one kind of record, and its records/s by measure."""
    path = tmp / f"{name}.jsonl"
    size = generate(path, records, redact=name == "redacted")
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
    targets: list[tuple[str, Database, Callable[[], None]]] = []
    targets.append(("SQLite", Database(f"sqlite:///{tmp / (name + '.db')}"), lambda: None))
    if postgres:
        targets.append(("PostgreSQL", *postgres_database(postgres)))
    for db_name, db, drop in targets:
        try:
            seconds, cpu, rerun, rollups = measure(db, path, records)
        finally:
            db.dispose()
            drop()
        row(f"{db_name}: ingest", seconds, f"CPU {cpu:.1f} s in all processes; {rollups:,} rollups")
        row(f"{db_name}: same file again (all duplicates)", rerun)
    path.unlink()
    return rows, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
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
    with tempfile.TemporaryDirectory() as tmp:
        full_rows, full = run_variant(Path(tmp), "full", args.records, args.postgres or None)
        redacted_rows, redacted = run_variant(Path(tmp), "redacted", args.records, None)
    rows = full_rows + redacted_rows  # (redacted on SQLite only: the run stays under 2 min)
    widths = {key: max(len(key), *(len(r[key]) for r in rows)) for key in rows[0]}
    print(" | ".join(key.ljust(width) for key, width in widths.items()))
    for r in rows:
        print(" | ".join(r[key].ljust(width) for key, width in widths.items()))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    report("usage_ingest", figures(full, redacted))


def figures(full: dict[str, float], redacted: dict[str, float]) -> list[Figure]:
    """The records/s figures, each ingest against the target and the floor of its run."""
    result = []
    for kind, rates in (("full", full), ("redacted", redacted)):
        result.append(
            Figure(f"{kind}: floor (read + orjson.loads)", round(rates[FLOOR]), "records/s")
        )
        for database in ("SQLite", "PostgreSQL"):
            if f"{database}: ingest" not in rates:
                continue
            rate = rates[f"{database}: ingest"]
            result.append(
                Figure(
                    f"{kind}: {database} ingest",
                    round(rate),
                    "records/s",
                    target=TARGET if database == "SQLite" else "",
                    met=rate >= TARGET_RATE if database == "SQLite" else None,
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
