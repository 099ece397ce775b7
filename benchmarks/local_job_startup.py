"""Launch to first metric for the local sample job, with the breakdown a user waits through:
the worker claiming the job and opening its MLflow run, the training process starting, reading
the data plus importing torch/transformers/MLflow, building the tokenizer and model, the first
optimiser step, and the first loss reaching MLflow; then the whole sample job to completion.
The imports are also timed alone, in a fresh interpreter, in the same run.

    python -m benchmarks.local_job_startup [--records 400] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import figures
from benchmarks.figures import Figure
from benchmarks.harness import use_portal_home

IMPORTS = (
    "import torch, mlflow; from datasets import Dataset; "
    "from transformers import Trainer, TrainingArguments, LlamaForCausalLM; import peft"
)


def timed_subprocess(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


class ProgressWatcher(threading.Thread):
    """Notes when each stage first shows in the job's progress file (polled every 10 ms)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.done = path, threading.Event()
        self.seen: dict[str, float] = {}

    def run(self) -> None:
        while not self.done.is_set():
            try:
                data = json.loads(self.path.read_text())
            except (FileNotFoundError, ValueError):
                data = {}
            now = time.perf_counter()
            if data.get("message"):
                self.seen.setdefault(str(data["message"]), now)
            if isinstance(data.get("step"), int) and data["step"] >= 1:
                self.seen.setdefault("first step", now)
            if data.get("status") in ("completed", "failed", "stopped"):
                self.seen.setdefault("finished", now)
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    interpreter = timed_subprocess("pass")
    imports = timed_subprocess(IMPORTS)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        use_portal_home(home)
        from mlflow.tracking import MlflowClient

        from models.user import Role
        from services.config import get_settings
        from services.db import Database, upgrade_schema
        from services.tracking import ensure_tracking_store
        from services.training.backends.local import job_files
        from services.training.worker import Worker
        from tests.conftest import make_user
        from tests.training_support import launch_local, register_chat_dataset

        settings = get_settings()
        db = Database(settings.resolved_database_url)
        upgrade_schema(db)
        ensure_tracking_store(settings)  # the app prepares it at start-up, not per job
        make_user(db, "root", Role.ADMIN)
        dana = make_user(db, "dana", Role.DATA_SCIENTIST)
        dataset = register_chat_dataset(db, dana, count=args.records)
        worker = Worker(db, settings, poll=0.02)
        launched = time.perf_counter()
        job = launch_local(db, dana, dataset, hyperparameters={"max_steps": args.steps}).job
        watcher = ProgressWatcher(job_files(settings, job.id or 0).progress)
        watcher.start()
        worker.tick()  # claims the job, opens its MLflow run, starts the process
        spawned = time.perf_counter()
        run_id = _run_id(db, job.id or 0)
        client = MlflowClient(settings.resolved_tracking_uri)
        first_metric = None
        while worker.runs:
            worker.tick()
            if (
                first_metric is None
                and "first step" in watcher.seen
                and client.get_metric_history(run_id, "train_loss")
            ):
                first_metric = time.perf_counter()
            time.sleep(0.02)
        finished = time.perf_counter()
        watcher.done.set()
        seen = watcher.seen
    marks = [
        ("worker claims the job and opens its MLflow run", launched, spawned),
        ("process start (interpreter, config)", spawned, seen.get("reading the data")),
        (
            "data load + imports (torch, transformers, MLflow)",
            seen.get("reading the data"),
            seen.get("loading the model"),
        ),
        (
            "tokenizer trained + model built + Trainer set up",
            seen.get("loading the model"),
            seen.get("training"),
        ),
        ("first optimiser step", seen.get("training"), seen.get("first step")),
        ("first loss visible in MLflow", seen.get("first step"), first_metric),
    ]
    print(f"Local sample job: tiny-llama, {args.records} chat records, {args.steps} steps")
    for label, start, end in marks:
        figure = f"{end - start:6.2f} s" if start and end else "   n/a"
        print(f"  {label:<52} {figure}")
    if first_metric:
        print(f"  {'launch to first metric':<52} {first_metric - launched:6.2f} s")
    print(f"  {'launch to completed':<52} {finished - launched:6.2f} s  (target < 60 s)")
    print(
        f"Alone, in a fresh interpreter: python start {interpreter:.2f} s; "
        f"the training imports {imports:.2f} s"
    )
    total = finished - launched
    first = [Figure("launch to first metric", first_metric - launched, "s")] if first_metric else []
    figures.report(
        "local_job_startup",
        [
            *first,
            Figure(f"launch to completed, {args.steps} steps", total, "s", "< 60 s", total < 60),
            Figure("training imports alone, fresh interpreter", imports, "s"),
        ],
    )


def _run_id(db: object, job_id: int) -> str:
    from models.training import FineTuneJob
    from services.db import Database

    assert isinstance(db, Database)
    with db.read() as session:
        job = session.get(FineTuneJob, job_id)
    assert job is not None and job.mlflow_run_id
    return job.mlflow_run_id


if __name__ == "__main__":
    main()
