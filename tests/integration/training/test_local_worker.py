"""The local backend for real: the worker takes a queued job, runs the recipe in its own
process group, reports progress into the database, stops it on request, survives its own
restart and fails jobs whose process died, with the reason. Real training of a tiny model,
real MLflow store; nothing mocked."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from models.dataset import DatasetVersion
from models.registry import ModelVersion
from models.training import FineTuneJob, JobStatus
from models.user import Role
from services.access import Actor
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.training import jobs
from services.training.backends.local import job_files
from services.training.launch import record_transition
from services.training.worker import Worker
from tests.conftest import make_user
from tests.training_support import launch_local, register_chat_dataset

LONG = {"max_steps": 3000, "batch_size": 4}


@pytest.fixture
def portal_db() -> Iterator[Database]:
    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    yield db
    db.dispose()


@pytest.fixture
def scientist(portal_db: Database) -> Actor:
    make_user(portal_db, "root.admin", Role.ADMIN)
    return make_user(portal_db, "dana", Role.DATA_SCIENTIST)


@pytest.fixture
def dataset(portal_db: Database, scientist: Actor) -> int:
    return register_chat_dataset(portal_db, scientist, count=160)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers made by a test; any training process they leave is killed afterwards."""
    made: list[Worker] = []
    yield made
    for worker in made:
        for run in worker.runs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)


def new_worker(db: Database, workers: list[Worker], slots: int = 1) -> Worker:
    worker = Worker(db, get_settings(), slots=slots, poll=0.2)
    workers.append(worker)
    return worker


def load(db: Database, job_id: int | None) -> FineTuneJob:
    with db.read() as session:
        job = session.get(FineTuneJob, job_id)
    assert job is not None
    return job


def tick_until(
    worker: Worker,
    db: Database,
    job_id: int | None,
    done: Callable[[FineTuneJob], bool],
    timeout: float = 120,
) -> FineTuneJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.tick()
        job = load(db, job_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not get there in {timeout}s: {load(db, job_id)}")


def finished(job: FineTuneJob) -> bool:
    return JobStatus(job.status).finished


def test_a_local_job_trains_logs_to_mlflow_and_registers_itself(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(
        portal_db,
        scientist,
        dataset,
        register_on_success=True,
        register_model_name="Support tiny",
        hyperparameters={"max_steps": 40},
    ).job
    worker = new_worker(portal_db, workers)
    started = time.monotonic()
    done = tick_until(worker, portal_db, job.id, finished, timeout=180)
    print(f"queued to completed in {time.monotonic() - started:.1f}s")
    assert done.status == JobStatus.COMPLETED.value, done.failure_reason
    assert (done.progress_step, done.progress_total) == (40, 40)
    assert done.metrics["eval_loss"] > 0 and "eval_perplexity" in done.metrics
    history = MlflowClient(get_settings().resolved_tracking_uri).get_metric_history(
        done.mlflow_run_id or "", "train_loss"
    )
    losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    print(f"train_loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps")
    assert len(losses) >= 30 and sum(losses[-5:]) / 5 < 0.75 * losses[0]
    detail = jobs.job_detail(portal_db, actor=scientist, job_id=job.id or 0)
    assert detail.events[0].status == "queued"
    assert detail.events[-1].status == "completed"
    with portal_db.read() as session:
        version = session.get(ModelVersion, done.model_version_id)
    assert version is not None and detail.registered == (version.model_id, 1)
    assert version.dataset_version_id == dataset and version.mlflow_run_id == done.mlflow_run_id
    assert version.job_ref == str(job.id) and version.artifact_uri == done.artifact_uri
    assert version.params["max_steps"] == "40"
    log = jobs.job_logs(portal_db, get_settings(), actor=scientist, job_id=job.id or 0)
    assert any("step 40/40" in line for line in log)


def test_stop_mid_run_saves_a_checkpoint_and_reports_stopped(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(portal_db, scientist, dataset, hyperparameters=LONG).job
    worker = new_worker(portal_db, workers)
    tick_until(worker, portal_db, job.id, lambda j: j.progress_step >= 3)
    jobs.stop_job(portal_db, get_settings(), actor=scientist, job_id=job.id or 0)
    assert load(portal_db, job.id).status == JobStatus.STOPPING.value
    done = tick_until(worker, portal_db, job.id, finished)
    assert done.status == JobStatus.STOPPED.value
    assert "stopped on request at step" in done.status_detail
    assert 3 <= done.progress_step < 3000
    output = job_files(get_settings(), job.id or 0).output
    assert list(output.glob("checkpoint-*")), "a stopped job keeps a checkpoint to resume from"
    run = MlflowClient(get_settings().resolved_tracking_uri).get_run(done.mlflow_run_id or "")
    assert run.info.status == "KILLED"


def test_a_killed_training_process_fails_the_job_with_the_reason(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(portal_db, scientist, dataset, hyperparameters=LONG).job
    worker = new_worker(portal_db, workers)
    running = tick_until(worker, portal_db, job.id, lambda j: j.pid is not None)
    os.killpg(running.pid or 0, signal.SIGKILL)
    done = tick_until(worker, portal_db, job.id, finished)
    assert done.status == JobStatus.FAILED.value
    assert "killed by signal 9" in (done.failure_reason or "")


def test_a_restarted_worker_adopts_its_running_job_and_can_still_stop_it(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(portal_db, scientist, dataset, hyperparameters=LONG).job
    first = new_worker(portal_db, workers)
    tick_until(first, portal_db, job.id, lambda j: j.progress_step >= 2)
    first.runs.clear()  # the worker ends; its training process does not
    second = new_worker(portal_db, workers)
    assert second.reconcile() == [
        f"job {job.id}: adopted running process {load(portal_db, job.id).pid}"
    ]
    step = load(portal_db, job.id).progress_step
    tick_until(second, portal_db, job.id, lambda j: j.progress_step > step)
    jobs.stop_job(portal_db, get_settings(), actor=scientist, job_id=job.id or 0)
    assert tick_until(second, portal_db, job.id, finished).status == JobStatus.STOPPED.value


def test_reconcile_fails_a_job_whose_process_died_while_no_worker_watched(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(portal_db, scientist, dataset).job
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    worker = new_worker(portal_db, workers)
    record_transition(
        portal_db, job.id, JobStatus.RUNNING, "training", pid=gone.pid, worker=f"{worker.host}:1"
    )
    lines = worker.reconcile()
    assert lines and "marked failed" in lines[0]
    failed = load(portal_db, job.id)
    assert failed.status == JobStatus.FAILED.value and failed.error_code == "Lost"
    assert "ended while no worker was watching it" in (failed.failure_reason or "")


def test_a_second_job_waits_for_a_free_slot(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    first = launch_local(portal_db, scientist, dataset, hyperparameters=LONG).job
    second = launch_local(portal_db, scientist, dataset, hyperparameters={"max_steps": 5}).job
    worker = new_worker(portal_db, workers, slots=1)
    tick_until(worker, portal_db, first.id, lambda j: j.pid is not None)
    for _ in range(5):
        worker.tick()
    assert load(portal_db, second.id).status == JobStatus.QUEUED.value
    jobs.stop_job(portal_db, get_settings(), actor=scientist, job_id=first.id or 0)
    tick_until(worker, portal_db, first.id, finished)
    assert tick_until(worker, portal_db, second.id, finished).status == "completed"


def test_a_dataset_that_disappeared_fails_the_job_clearly(
    portal_db: Database, scientist: Actor, dataset: int, workers: list[Worker]
) -> None:
    job = launch_local(portal_db, scientist, dataset).job
    with portal_db.read() as session:
        version = session.get(DatasetVersion, dataset)
    assert version is not None
    shutil.rmtree(Path(version.storage_uri).parent)
    worker = new_worker(portal_db, workers)
    done = tick_until(worker, portal_db, job.id, finished, timeout=30)
    assert done.status == JobStatus.FAILED.value
    assert "is gone from the portal's storage" in (done.failure_reason or "")


def test_two_workers_never_claim_the_same_job(db: Database, workers: list[Worker]) -> None:
    make_user(db, "root.admin", Role.ADMIN)
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    dataset = register_chat_dataset(db, scientist, count=30)
    queued = {launch_local(db, scientist, dataset).job.id or 0 for _ in range(12)}
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def drain(index: int) -> None:
        worker = Worker(db, get_settings())
        start.wait()
        while (job := worker._claim()) is not None:
            claimed[index].append(job.id or 0)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"worker A claimed {len(claimed[0])}, worker B {len(claimed[1])}")
    assert sorted(claimed[0] + claimed[1]) == sorted(queued)  # each exactly once
