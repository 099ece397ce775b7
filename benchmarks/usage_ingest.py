"""Gateway usage ingestion throughput: LiteLLM JSON lines into the portal database, beside the
floor of reading the file and ``orjson.loads`` alone, then a re-run (every record a duplicate).

    python -m benchmarks.usage_ingest [--records 200000] [--postgres postgresql+psycopg://…/test]

Records are shaped like ../shared/samples (the full ``standard_logging_object``, messages and
all): 200 users in 20 teams, 30 models (some not in LiteLLM's price map), 90 days.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from models.usage import UsageDaily, UsageEvent, UsageSource
from services.access import Actor
from services.config import Settings
from services.db import Database, upgrade_schema
from services.gateway.ingest import ingest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "samples" / "litellm_standard_logging_payload.jsonl"
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


def generate(path: Path, records: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    base = template()
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


def measure(label: str, db: Database, path: Path, records: int) -> float:
    upgrade_schema(db)
    settings = Settings(report_tz="America/Los_Angeles")
    cli = Actor.command_line()
    started, cpu = time.perf_counter(), time.process_time()
    result = ingest(db, settings, actor=cli, location=str(path), source=UsageSource.LITELLM)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
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
    print(
        f"{label:<11} ingest {seconds:6.2f}s = {records / seconds:>9,.0f} records/s "
        f"(CPU {cpu:.2f}s; {rollups:,} rollup rows) | re-run, all duplicates {rerun:6.2f}s "
        f"= {records / rerun:>9,.0f} records/s"
    )
    return records / seconds


def floor(path: Path, records: int) -> None:
    started = time.perf_counter()
    with path.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
    seconds = time.perf_counter() - started
    rate = records / seconds
    print(f"{'floor':<11} read + orjson.loads {seconds:6.2f}s = {rate:>9,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--postgres", help="PostgreSQL URL to compare with (a scratch schema)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "litellm.jsonl"
        size = generate(path, args.records)
        print(f"{args.records:,} LiteLLM records, {size / 1e6:,.0f} MB of JSON lines")
        floor(path, args.records)
        measure("SQLite", Database(f"sqlite:///{Path(tmp) / 'bench.db'}"), path, args.records)
        if not args.postgres:
            return
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(args.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
            measure("PostgreSQL", Database(url), path, args.records)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
