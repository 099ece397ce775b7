"""Audit log at scale: how fast the chain verifies and how fast the Admin page's filtered,
paged query answers, on SQLite and PostgreSQL side by side in one run.

    python -m benchmarks.audit_log --events 100000 [--postgres postgresql+psycopg://…/test]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import figures
from benchmarks.figures import Figure
from services import audit
from services.access import Actor
from services.db import Database, upgrade_schema

BATCH = 2_000
FIGURES = (
    ("events_per_sec", "chain verification", "events/s"),
    ("newest_page_ms", "newest page of 50", "ms"),
    ("filtered_page_ms", "actor + action filter", "ms"),
    ("text_search_ms", "text search", "ms"),
)
ACTIONS = ("user.update", "team.create", "auth.login", "auth.login_failed", "user.disable")


def seed(db: Database, events: int) -> float:
    started = time.perf_counter()
    for start in range(0, events, BATCH):
        with db.write() as session:
            for i in range(start, min(start + BATCH, events)):
                audit.record(
                    session,
                    actor=f"user{i % 50}",
                    action=ACTIONS[i % len(ACTIONS)],
                    entity_type="user",
                    entity_id=i % 500,
                    summary=f"benchmark event {i}",
                    after={"n": i},
                )
    return time.perf_counter() - started


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(label: str, db: Database, events: int) -> dict[str, float]:
    upgrade_schema(db)
    cli = Actor.command_line()
    seconds_seed = seed(db, events)
    report = audit.verify_chain(db, actor=cli)
    assert report.ok and report.checked == events, report.describe()
    verify = timed(lambda: audit.verify_chain(db, actor=cli), repeat=3)
    newest = timed(
        lambda: audit.search_events(db, actor=cli, query=audit.AuditFilter(), limit=50, offset=0)
    )
    filtered = timed(
        lambda: audit.search_events(
            db,
            actor=cli,
            query=audit.AuditFilter(actor="user7", action_prefix="auth."),
            limit=50,
            offset=0,
        )
    )
    text_search = timed(
        lambda: audit.search_events(
            db, actor=cli, query=audit.AuditFilter(text="event 4242"), limit=50, offset=0
        )
    )
    row = {
        "seed_s": seconds_seed,
        "verify_s": verify,
        "events_per_sec": events / verify,
        "newest_page_ms": newest * 1000,
        "filtered_page_ms": filtered * 1000,
        "text_search_ms": text_search * 1000,
    }
    print(
        f"{label:<11} seed {seconds_seed:6.1f}s | verify {verify:6.2f}s "
        f"({events / verify:>9,.0f} events/s) | newest page {newest * 1000:6.1f} ms | "
        f"actor+action page {filtered * 1000:6.1f} ms | text search {text_search * 1000:6.1f} ms"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--postgres", help="PostgreSQL URL to compare with (a scratch schema is used)"
    )
    args = parser.parse_args()
    print(f"Audit log with {args.events:,} events (median of repeated runs)")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = measure("SQLite", Database(f"sqlite:///{Path(tmp) / 'bench.db'}"), args.events)
    pg = measure_postgres(args.postgres, args.events) if args.postgres else None
    if pg is not None:
        print(
            "PostgreSQL / SQLite time ratios: "
            + ", ".join(
                f"{k} {pg[k] / sqlite[k]:.2f}x" for k in sqlite if k.endswith(("_s", "_ms"))
            )
        )
    report = []
    for name, row in [("SQLite", sqlite), *([("PostgreSQL", pg)] if pg else [])]:
        for key, label, unit in FIGURES:
            ratio = f"{row[key] / sqlite[key]:.2f}x SQLite's" if name == "PostgreSQL" else ""
            report.append(Figure(f"{label}, {name}", row[key], unit, ratio=ratio))
    figures.report("audit_log", report)


def measure_postgres(url: str, events: int) -> dict[str, float]:
    """The same measures in a scratch schema of ``url``, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scratch = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        return measure("PostgreSQL", Database(scratch), events)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
