"""Experiments page with 500 selected runs: a warm rerun of the comparison with its metric
history chart (the second ``run()`` of the same AppTest, what a user's click costs), beside
the framework's floor, both in this run. Target: under 500 ms.

    python -m benchmarks.experiments_page [--runs 500] [--steps 100] [--reruns 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from benchmarks import figures
from benchmarks.figures import Figure
from benchmarks.harness import floor_app, signed_in_page, use_portal_home, warm_reruns


def seed(runs: int, steps: int) -> tuple[str, list[str]]:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from models.user import Role
    from services.config import get_settings
    from services.db import Database, upgrade_schema
    from services.tracking import ensure_tracking_store
    from tests.conftest import make_user

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root", Role.ADMIN)
    make_user(db, "dana", Role.DATA_SCIENTIST)
    db.dispose()
    client = MlflowClient(ensure_tracking_store(settings))
    experiment = client.create_experiment(
        "bench-sweep", artifact_location=(settings.artifact_root / "bench").as_uri()
    )
    rng = random.Random(7)
    ids = []
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"run-{i:03d}")
        lr, rank = rng.choice(["1e-4", "3e-4", "1e-3"]), rng.choice(["8", "16", "32"])
        floor = rng.uniform(0.3, 0.9)
        metrics = [
            Metric(key, floor + 3.0 / (s + 1) + (0.1 if key == "eval_loss" else 0), s * 1000, s)
            for s in range(steps)
            for key in ("train_loss", "eval_loss")
        ]
        metrics.append(Metric("accuracy", 1 - floor / 2, steps * 1000, steps))
        for start in range(0, len(metrics), 1000):
            client.log_batch(
                run.info.run_id,
                metrics=metrics[start : start + 1000],
                params=[Param("learning_rate", lr), Param("lora_r", rank)] if not start else [],
            )
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return experiment, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--reruns", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        use_portal_home(home)
        started = time.perf_counter()
        experiment, ids = seed(args.runs, args.steps)
        seeded = time.perf_counter() - started
        params = {
            "experiments": experiment,
            "runs": ",".join(ids),
            "baseline": ids[0],
            "chart": "history",
            "metrics": "train_loss",
        }
        page = warm_reruns(
            signed_in_page("dana", "pages/views/experiments.py", params), args.reruns
        )
        floor = warm_reruns(floor_app(home), args.reruns)
    med, flo = statistics.median(page) * 1000, statistics.median(floor) * 1000
    print(f"{args.runs} runs × 2 metrics × {args.steps} steps seeded in {seeded:.0f} s")
    print(
        f"Experiments page, {args.runs} runs selected, history chart: {med:7.1f} ms "
        f"(min {min(page) * 1000:.1f}, max {max(page) * 1000:.1f})  target < 500 ms"
    )
    print(f"Floor: a page showing only a 10,000-row table:          {flo:7.1f} ms")
    print(f"Experiments page / floor: {med / flo:.2f}x")
    figures.report(
        "experiments_page",
        [
            Figure(
                f"warm rerun, {args.runs} runs compared, history chart",
                med,
                "ms",
                "< 500 ms",
                med < 500,
                f"{med / flo:.1f}x the floor",
            ),
            Figure("floor: page with only a 10,000-row table", flo, "ms"),
        ],
    )


if __name__ == "__main__":
    main()
