"""The local training worker: takes queued local jobs from the database, runs each recipe in
its own process group, reports progress, stops jobs on request and after their maximum
runtime, and reconciles what it finds when it (re)starts.

Any number of workers on any number of hosts can share one PostgreSQL queue: a job is claimed
with ``SELECT … FOR UPDATE SKIP LOCKED`` (SQLite serialises claims with ``BEGIN IMMEDIATE``).
A worker that restarts adopts the training processes still running on its host, so jobs
outlive the worker, the Streamlit process and the browser."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from models.training import Backend, FineTuneJob, JobStatus
from models.types import utcnow
from services.config import Settings
from services.db import Database
from services.errors import PortalError
from services.tracking import finished_run_summary, open_job_run
from services.training.backends.local import (
    EXIT_BAD_INPUT,
    EXIT_STOPPED,
    JobFiles,
    job_files,
    read_progress,
    start_process,
    state_from_progress,
    tail,
)
from services.training.launch import record_transition
from services.training.specs import EXPERIMENT_NAME, job_spec

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(minutes=2)  # another host's job without a heartbeat this long is lost


@dataclass
class LocalRun:
    job_id: int
    files: JobFiles
    pid: int
    process: subprocess.Popen[bytes] | None  # None: adopted after a worker restart
    started: float = field(default_factory=time.monotonic)
    max_runtime: float = 0.0
    term_sent: float | None = None
    stop_cause: str = ""  # "on request" or "at its maximum runtime", once a stop is sent

    @property
    def stopping(self) -> str:
        return f"stopping {self.stop_cause}: saving a checkpoint"

    last_report: tuple[object, ...] = ()
    last_beat: float = 0.0

    def exit_code(self) -> int | None:
        """The process's exit code once it has ended (a negative number: killed by a signal)."""
        if self.process is not None:
            return self.process.poll()
        if _alive(self.pid, self.files.folder):
            return None
        status = read_progress(self.files).get("status")
        return {"completed": 0, "stopped": EXIT_STOPPED}.get(str(status), 1)


def _alive(pid: int, folder: Path) -> bool:
    """Whether ``pid`` is still this job's recipe (not a process that reused the number)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return str(folder) in cmdline.read_bytes().decode(errors="replace")
        except OSError:
            return False
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the recipe leads its own process group


class Worker:
    def __init__(
        self, db: Database, settings: Settings, *, slots: int | None = None, poll: float = 0.5
    ) -> None:
        self.db, self.settings = db, settings
        self.slots = slots or settings.max_local_jobs
        self.poll = poll
        self.host = socket.gethostname()
        self.name = f"{self.host}:{os.getpid()}"
        self.runs: dict[int, LocalRun] = {}

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set. Training processes keep running after the worker ends;
        the next worker on this host adopts them."""
        log.info("worker %s started with %d slot(s)", self.name, self.slots)
        self.reconcile()
        while not stop.is_set():
            try:
                self.tick()
            except PortalError as exc:  # the database went away: say so, keep trying
                log.warning("worker tick failed: %s", exc)
            stop.wait(self.poll)
        log.info("worker %s stopped; %d job(s) left running", self.name, len(self.runs))

    def tick(self) -> None:
        for run in list(self.runs.values()):
            self._watch(run)
        self._honour_stop_requests()
        while len(self.runs) < self.slots and self._start_next():
            pass

    def drain(self, timeout: float) -> bool:
        """Tick until no job of this worker runs and none is queued (tests, the CLI's --once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if not self.runs and not self._queued():
                return True
            time.sleep(self.poll)
        return False

    def _queued(self) -> bool:
        with self.db.read() as session:
            return (
                session.exec(
                    select(FineTuneJob.id).where(
                        FineTuneJob.backend == Backend.LOCAL.value,
                        FineTuneJob.status == JobStatus.QUEUED.value,
                    )
                ).first()
                is not None
            )

    # -- claiming and starting ----------------------------------------------------------

    def _claim(self) -> FineTuneJob | None:
        with self.db.transaction() as session:
            job = session.exec(
                select(FineTuneJob)
                .where(
                    FineTuneJob.backend == Backend.LOCAL.value,
                    FineTuneJob.status == JobStatus.QUEUED.value,
                )
                .order_by(col(FineTuneJob.created_at), col(FineTuneJob.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            job.status, job.worker, job.heartbeat_at = JobStatus.STARTING.value, self.name, utcnow()
            job.version += 1
            session.add(job)
            return job

    def _start_next(self) -> bool:
        job = self._claim()
        if job is None:
            return False
        assert job.id is not None
        job_id: int = job.id
        try:
            if job.mlflow_run_id is None:
                experiment_id, run_id = open_job_run(
                    self.settings,
                    experiment_name=EXPERIMENT_NAME,
                    run_name=job.name,
                    tags={
                        "portal.job_id": str(job_id),
                        "portal.owner": job.owner,
                        "portal.backend": job.backend,
                        "portal.base_model": job.base_model,
                    },
                )
                job = record_transition(
                    self.db,
                    job_id,
                    JobStatus.STARTING,
                    "starting the training process",
                    mlflow_experiment_id=experiment_id,
                    mlflow_run_id=run_id,
                )
            with self.db.read() as session:
                spec = job_spec(session, self.settings, job)
            files = job_files(self.settings, job_id)
            process = start_process(spec, files)
        except PortalError as exc:
            record_transition(
                self.db,
                job_id,
                JobStatus.FAILED,
                str(exc),
                failure_reason=str(exc),
                error_code=type(exc).__name__,
            )
            return True
        record_transition(
            self.db,
            job_id,
            JobStatus.STARTING,
            f"training process {process.pid} started on {self.host}",
            pid=process.pid,
            heartbeat_at=utcnow(),
        )
        self.runs[job_id] = LocalRun(
            job_id, files, process.pid, process, max_runtime=float(job.max_runtime_seconds)
        )
        log.info("job %s started as process %s", job_id, process.pid)
        return True

    # -- watching -----------------------------------------------------------------------

    def _watch(self, run: LocalRun) -> None:
        code = run.exit_code()
        if code is not None:
            self._finish(run, code)
            return
        now = time.monotonic()
        if run.term_sent is None and run.max_runtime and now - run.started > run.max_runtime:
            self._send_stop(run, "at its maximum runtime")
        if run.term_sent is not None and now - run.term_sent > self.settings.stop_grace_seconds:
            log.warning(
                "job %s ignored SIGTERM for %.0fs: SIGKILL",
                run.job_id,
                self.settings.stop_grace_seconds,
            )
            _signal_group(run.pid, signal.SIGKILL)
        state = state_from_progress(read_progress(run.files))
        report = (state.progress_step, state.progress_total, state.detail)
        if report == run.last_report and now - run.last_beat < HEARTBEAT_SECONDS:
            return
        if run.term_sent is not None:
            status = JobStatus.STOPPING
        elif state.status is JobStatus.STARTING:
            status = JobStatus.STARTING
        else:  # the process has not exited yet, whatever its last report said
            status = JobStatus.RUNNING
        detail = run.stopping if run.term_sent is not None else state.detail
        changes: dict[str, object] = {"heartbeat_at": utcnow()}
        if state.progress_step is not None:
            changes["progress_step"] = state.progress_step
            changes["progress_total"] = state.progress_total or 0
            changes["metrics"] = state.metrics
        record_transition(self.db, run.job_id, status, detail, **changes)
        run.last_report, run.last_beat = report, now

    def _honour_stop_requests(self) -> None:
        if not self.runs:
            return
        with self.db.read() as session:
            asked = session.exec(
                select(FineTuneJob.id).where(
                    col(FineTuneJob.id).in_(list(self.runs)),
                    col(FineTuneJob.stop_requested_at).is_not(None),
                )
            ).all()
        for job_id in asked:
            run = self.runs[job_id or 0]
            if run.term_sent is None:
                self._send_stop(run, "on request")

    def _send_stop(self, run: LocalRun, cause: str) -> None:
        run.term_sent, run.stop_cause = time.monotonic(), cause
        log.info("job %s: %s (SIGTERM to group %s)", run.job_id, run.stopping, run.pid)
        _signal_group(run.pid, signal.SIGTERM)
        record_transition(self.db, run.job_id, JobStatus.STOPPING, run.stopping)

    def _finish(self, run: LocalRun, code: int) -> None:
        self.runs.pop(run.job_id, None)
        progress = read_progress(run.files)
        step = progress.get("step")
        with self.db.read() as session:
            job = session.get(FineTuneJob, run.job_id)
        assert job is not None
        changes: dict[str, object] = {"pid": None, "heartbeat_at": utcnow()}
        if isinstance(step, int):
            changes["progress_step"] = step
        if job.mlflow_run_id:
            try:
                metrics, artifacts, _ = finished_run_summary(self.settings, job.mlflow_run_id)
                changes["metrics"] = metrics
                if code == 0:
                    changes["artifact_uri"] = f"{artifacts}/model"
            except PortalError as exc:
                log.warning("job %s: %s", run.job_id, exc)
        if code == 0:
            status, detail = JobStatus.COMPLETED, "training finished"
        elif code == EXIT_STOPPED or (run.term_sent is not None and code < 0):
            status = JobStatus.STOPPED
            at_step = f"at step {step}" if isinstance(step, int) else ""
            detail = " ".join(part for part in ("stopped", run.stop_cause, at_step) if part)
            if code < 0:
                detail += f"; killed after {self.settings.stop_grace_seconds:.0f}s without exiting"
        else:
            status = JobStatus.FAILED
            detail = _failure(run, code, progress)
            changes["failure_reason"] = detail
            changes["error_code"] = "BadInput" if code == EXIT_BAD_INPUT else f"exit {code}"
        record_transition(self.db, run.job_id, status, detail, **changes)
        log.info("job %s ended: %s (%s)", run.job_id, status.value, detail)
        if status is JobStatus.COMPLETED and job.register_on_success:
            from services.training.registration import register_automatically

            register_automatically(self.db, self.settings, run.job_id)

    # -- reconciling --------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Adopt this host's training processes that outlived a worker, fail jobs whose process
        died unwatched or whose host went silent. Returns what it did, one line per job."""
        done: list[str] = []
        stale_before = utcnow() - STALE_AFTER
        with self.db.read() as session:
            active = session.exec(
                select(FineTuneJob).where(
                    FineTuneJob.backend == Backend.LOCAL.value,
                    col(FineTuneJob.status).in_(
                        [
                            JobStatus.STARTING.value,
                            JobStatus.RUNNING.value,
                            JobStatus.STOPPING.value,
                        ]
                    ),
                )
            ).all()
        for job in active:
            assert job.id is not None
            if job.id in self.runs:
                continue
            mine = (job.worker or "").split(":")[0] == self.host
            files = job_files(self.settings, job.id)
            if mine and job.pid and _alive(job.pid, files.folder):
                self.runs[job.id] = LocalRun(
                    job.id, files, job.pid, None, max_runtime=float(job.max_runtime_seconds)
                )
                done.append(f"job {job.id}: adopted running process {job.pid}")
            elif mine or job.heartbeat_at is None or job.heartbeat_at < stale_before:
                run = LocalRun(job.id, files, job.pid or 0, None)
                if read_progress(files).get("status") in ("completed", "stopped"):
                    self._finish(run, run.exit_code() or 0)
                    done.append(f"job {job.id}: finished while no worker watched it")
                    continue
                reason = (
                    f"the training process ({job.pid or 'not started'}) ended while no worker "
                    "was watching it (the worker or the machine restarted)"
                    if mine
                    else f"its worker {job.worker} stopped sending heartbeats"
                )
                record_transition(
                    self.db,
                    job.id,
                    JobStatus.FAILED,
                    reason,
                    failure_reason=reason,
                    error_code="Lost",
                    pid=None,
                )
                done.append(f"job {job.id}: marked failed: {reason}")
        for line in done:
            log.info("reconcile: %s", line)
        return done


def _failure(run: LocalRun, code: int, progress: dict[str, object]) -> str:
    message = str(progress.get("message") or "").strip()
    if not message:
        lines = [line for line in tail(run.files.log, 40) if line.strip()]
        message = lines[-1].strip() if lines else ""
    how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return f"{message} ({how})" if message else f"the training process ended with {how}"
