"""Fine-tuning page at scale: a warm rerun of the Jobs view with 5,000 jobs (the second
``run()`` of the same AppTest, which is what a user's click costs), filtered to everyone's
completed local jobs, beside the framework's floor (a page showing only a 10,000-row table),
both measured in this one run.

    python -m benchmarks.jobs_page [--jobs 5000] [--runs 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
from datetime import timedelta

from streamlit.testing.v1 import AppTest

from benchmarks.harness import (
    floor_app,
    report_page_rerun,
    signed_in_page,
    use_portal_home,
    warm_reruns,
)


def seed(count: int) -> None:
    from models.dataset import Dataset, DatasetVersion
    from models.training import Backend, FineTuneJob, JobStatus
    from models.types import utcnow
    from models.user import Role
    from services.config import get_settings
    from services.db import Database, upgrade_schema
    from tests.conftest import make_user

    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root", Role.ADMIN)
    make_user(db, "dana", Role.DATA_SCIENTIST)
    rng = random.Random(7)
    now = utcnow()
    with db.write() as session:
        dataset = Dataset(name="support-chat", created_by="dana")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id or 0,
            number=1,
            sha256="0" * 64,
            format="chat",
            source_uri="support.jsonl",
            storage_uri="/dev/null",
            size_bytes=1,
            record_count=1,
            token_estimate=1,
            created_by="dana",
        )
        session.add(version)
        session.flush()
        statuses = [s.value for s in JobStatus]
        session.add_all(
            FineTuneJob(
                idempotency_key=f"bench-{i:08d}-0000000000",
                name=f"portal-ft-bench-{i:06d}",
                owner=rng.choice(["dana", "omar", "li", "sam"]),
                backend=rng.choice([b.value for b in Backend]),
                status=rng.choice(statuses),
                base_model=rng.choice(
                    ["tiny-llama", "amazon.nova-micro-v1:0", "meta-llama/Llama-3.2-1B"]
                ),
                dataset_version_id=version.id or 0,
                recipe="causal-lm",
                hyperparameters={"epochs": 3, "learning_rate": 5e-4},
                progress_step=rng.randint(0, 150),
                progress_total=150,
                metrics={"train_loss": rng.random() * 4},
                created_at=now - timedelta(minutes=i),
            )
            for i in range(count)
        )
    db.dispose()


def jobs_app() -> AppTest:
    params = {"scope": "all", "status": "completed", "backend": "local"}
    return signed_in_page("dana", "pages/views/fine_tuning.py", params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        use_portal_home(home)
        seed(args.jobs)
        page = warm_reruns(jobs_app(), args.runs)
        from pages.components.training_jobs import cached_jobs

        uncached = warm_reruns(jobs_app(), args.runs, before_each=cached_jobs.clear)
        floor = warm_reruns(floor_app(home), args.runs)
    med, unc, flo = (statistics.median(s) * 1000 for s in (page, uncached, floor))
    print(f"{args.jobs:,} jobs; median of {args.runs} warm reruns each")
    print(
        f"Jobs view, filtered (everyone, local, completed): {med:7.1f} ms "
        f"(min {min(page) * 1000:.1f}, max {max(page) * 1000:.1f})  target < 150 ms"
    )
    print(
        f"Same, with the query cache cleared before every rerun: {unc:7.1f} ms "
        f"(min {min(uncached) * 1000:.1f}, max {max(uncached) * 1000:.1f})"
    )
    print(f"Floor: a page showing only a 10,000-row table:       {flo:7.1f} ms")
    print(f"Jobs view / floor: {med / flo:.2f}x")
    report_page_rerun(
        "jobs_page", f"warm rerun, filtered job list, {args.jobs:,} jobs", med, unc, flo
    )


if __name__ == "__main__":
    main()
