"""Usage reports at 100,000 and 10,000,000 gateway requests.

Method: two throwaway SQLite portal databases are filled with synthetic LiteLLM records over
90 days (200 users in 20 teams, 30 models, two keys per user, a few tag sets): written as JSON
lines with only the fields the portal reads, in time order with random request ids as a
gateway logs them, then loaded by the real ``usage ingest`` path (events and both rollups;
its rate at 10 million is the issue's ingest target on the issue's own data set). On each
database, in the same run:

- the report the Usage page and ``usage report --group-by team,model`` run for 90 days
  (``services.gateway.reports.grouped``, which reads the team-and-model rollup), median of 5;
- the same numbers by a plain ``GROUP BY team, model`` over the raw events, once;
- a report that needs the finer rollup (group by user), median of 5.

The target: the rollup report under 1 s at 10 million, and within 2x of its time at 100,000.

    python -m benchmarks.usage_reports [--events 10000000] [--small 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
from sqlalchemy import text

from benchmarks import figures
from benchmarks.figures import Figure
from models.usage import UsageSource
from services.access import Actor
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.gateway import reports
from services.gateway.ingest import ingest
from services.gateway.scope import UsageQuery

DAYS = 90
START = date(2026, 8, 1)
TEAMS = [f"team-{t:02d}" for t in range(20)]
USERS = [(f"user-{u:03d}", TEAMS[u % 20]) for u in range(200)]
MODELS = [(f"model-{m:02d}", ("openai", "bedrock", "anthropic")[m % 3]) for m in range(30)]
PRICES = {name: Decimal(m + 1) / Decimal(1_000_000) for m, (name, _) in enumerate(MODELS)}
TAG_SETS = [["app:chat"], ["app:search", "env:prod"], ["app:batch"], []]


def write_records(
    path: Path, count: int, seed: int, *, first_day: date = START, days: float = DAYS
) -> None:
    """``count`` synthetic LiteLLM records as JSON lines (only the fields the portal reads),
    spread evenly over ``days`` days from ``first_day``, in time order as a gateway logs them."""
    rng = random.Random(seed)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()
    with path.open("wb") as out:
        lines = []
        for i in range(count):
            user, team = USERS[rng.randrange(200)]
            # Each team leans on its own handful of models, as real teams do.
            model, provider = MODELS[(TEAMS.index(team) * 3 + rng.randrange(8)) % 30]
            prompt, completion = rng.randrange(100, 4_000), rng.randrange(10, 800)
            record = {
                "id": f"chatcmpl-{uuid.UUID(int=rng.getrandbits(128))}", "status": "success",
                "startTime": start + (i + rng.random()) * days * 86_400 / count,
                "model": model, "custom_llm_provider": provider,
                "prompt_tokens": prompt, "completion_tokens": completion,
                "response_cost": float(PRICES[model] * (prompt + 4 * completion)),
                "cache_hit": False, "request_tags": TAG_SETS[rng.randrange(4)],
                "metadata": {
                    "user_api_key_alias": f"{user}-{rng.randrange(2)}",
                    "user_api_key_user_id": user, "user_api_key_team_alias": team,
                },
            }  # fmt: skip
            lines.append(orjson.dumps(record))
            if len(lines) == 100_000:
                out.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            out.write(b"\n".join(lines) + b"\n")


def fill(db: Database, folder: Path, count: int, seed: int) -> float:
    path = folder / f"records-{count}.jsonl"
    write_records(path, count, seed)
    started = time.perf_counter()
    result = ingest(
        db, get_settings(), actor=Actor.command_line(), location=str(path),
        source=UsageSource.LITELLM,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    path.unlink()
    assert result.summary() == f"ingested={count} duplicates=0 rejected=0", result.summary()
    print(f"  {count:,} records ingested in {elapsed:.1f} s ({count / elapsed:,.0f}/s)")
    return elapsed


def median_of(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(folder: Path, count: int, seed: int) -> dict[str, float]:
    db = Database(f"sqlite:///{folder / f'usage-{count}.db'}")
    upgrade_schema(db)
    print(f"Filling {count:,} events …")
    filled = fill(db, folder, count, seed)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        coarse_rows = conn.execute(text("SELECT COUNT(*) FROM usage_daily_team_model")).scalar()
        fine_rows = conn.execute(text("SELECT COUNT(*) FROM usage_daily")).scalar()
    cli = Actor.command_line()
    end = START + timedelta(days=DAYS - 1)
    by_team_model = UsageQuery(start=START, end=end, group_by=("team", "model"))
    report = median_of(lambda: reports.grouped(db, actor=cli, query=by_team_model))
    by_user = UsageQuery(start=START, end=end, group_by=("user",))
    fine = median_of(lambda: reports.grouped(db, actor=cli, query=by_user))
    started = time.perf_counter()
    with db.engine.connect() as conn:
        raw = conn.execute(
            text(
                "SELECT team, model, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost) "
                "FROM usage_event WHERE day BETWEEN :a AND :b GROUP BY team, model"
            ),
            {"a": START, "b": end},
        ).all()
    raw_time = time.perf_counter() - started
    grouped = reports.grouped(db, actor=cli, query=by_team_model)
    assert len(raw) == len(grouped), (len(raw), len(grouped))
    assert sum(r[2] for r in raw) == sum(r["requests"] for r in grouped) == count
    db.dispose()
    return {
        "fill_s": filled,
        "coarse_rows": float(coarse_rows or 0),
        "fine_rows": float(fine_rows or 0),
        "report_s": report,
        "fine_report_s": fine,
        "raw_group_by_s": raw_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small = measure(Path(folder), args.small, seed=1)
        large = measure(Path(folder), args.events, seed=2)
    print()
    print(f"{'':34}{args.small:>14,}{args.events:>14,}   ratio")
    for key, label in [
        ("coarse_rows", "team-and-model rollup rows"),
        ("fine_rows", "fine rollup rows"),
        ("report_s", "report team×model, 90 days (s)"),
        ("fine_report_s", "report by user, 90 days (s)"),
        ("raw_group_by_s", "plain GROUP BY on raw events (s)"),
        ("fill_s", "ingesting the records (s)"),
    ]:
        a, b = small[key], large[key]
        print(f"{label:34}{a:>14,.3f}{b:>14,.3f}{b / a if a else 0:>8.2f}x")
    print()
    print(
        f"At {args.events:,} events the rollup report is "
        f"{large['raw_group_by_s'] / large['report_s']:,.0f}x faster than the raw GROUP BY; "
        f"its time is {large['report_s'] / small['report_s']:.2f}x that at {args.small:,} "
        "(target: under 1 s and within 2x)."
    )
    growth = large["report_s"] / small["report_s"]
    rate_ratio = (args.events / large["fill_s"]) / (args.small / small["fill_s"])
    figures.report(
        "usage_reports",
        [
            Figure(
                f"report by team and model, 90 days, {args.events:,} requests",
                large["report_s"],
                "s",
                "< 1 s",
                large["report_s"] < 1,
                f"{large['raw_group_by_s'] / large['report_s']:,.0f}x faster than GROUP BY",
            ),
            Figure(
                f"same, time at {args.events:,} / at {args.small:,}",
                growth,
                "x",
                "<= 2x",
                growth <= 2,
            ),
            Figure(f"report by user, {args.events:,} requests", large["fine_report_s"], "s"),
            Figure(
                f"plain GROUP BY over raw events, {args.events:,}", large["raw_group_by_s"], "s"
            ),
            Figure(
                f"ingest of {args.events:,} records",
                args.events / large["fill_s"],
                "records/s",
                target="≥ 50,000/s",  # the ingest target, on its own data set
                met=args.events / large["fill_s"] >= 50_000,
                ratio=f"{rate_ratio:.2f}x the rate at {args.small:,}",
            ),
        ],
    )


if __name__ == "__main__":
    main()
