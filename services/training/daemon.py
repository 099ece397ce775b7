"""Running the worker as a process: ``python -m services.cli worker``, and the one the embedded
default starts alongside the app (exclusive per ``PORTAL_HOME``, ending with its parent).
Besides local training jobs it does the portal's background upkeep (``_upkeep``)."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from services.config import Settings
from services.db import Database
from services.training.cloud_status import refresh_active_cloud_jobs
from services.training.worker import Worker

log = logging.getLogger(__name__)

UPKEEP_SECONDS = 30.0


def _lock(settings: Settings) -> IO[str] | None:
    """Hold ``PORTAL_HOME/worker.lock`` for the life of the process; None if another holds it."""
    path = settings.home_dir / "worker.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(2.0):
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            log.info("the app (pid %s) has ended; the worker ends too", parent_pid)
            stop.set()


def serve(
    db: Database,
    settings: Settings,
    *,
    once: bool = False,
    exclusive: bool = False,
    parent_pid: int | None = None,
    slots: int | None = None,
) -> int:
    """Run a worker until SIGTERM/SIGINT (or, with ``once``, until the queue is empty).
    Returns 0, or 1 when ``exclusive`` and another worker already serves this home."""
    lock = _lock(settings) if exclusive else None
    if exclusive and lock is None:
        log.info("another worker already serves %s", settings.home_dir)
        return 1
    worker = Worker(db, settings, slots=slots)
    if once:
        worker.reconcile()
        worker.drain(timeout=24 * 3600)
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid, stop), daemon=True).start()
    threading.Thread(target=_upkeep, args=(db, settings, stop), daemon=True).start()
    worker.run(stop)
    return 0


def _upkeep(db: Database, settings: Settings, stop: threading.Event) -> None:
    """Every half minute: refresh cloud jobs, retry promotion side effects that are due and
    close promotion requests past their expiry."""
    from services import promotions

    tasks = (
        ("refreshing cloud jobs", lambda: refresh_active_cloud_jobs(db, settings)),
        ("retrying promotion side effects", lambda: promotions.run_due(db, settings)),
        ("expiring promotion requests", lambda: promotions.expire_due(db)),
    )
    while not stop.wait(UPKEEP_SECONDS):
        for what, task in tasks:
            try:
                task()
            except Exception:  # the loop must survive anything; the log says what went wrong
                log.exception("%s failed", what)


def start_alongside_app(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the embedded default's worker as a child process of the app. It exits at once if
    a worker already serves this home, and ends when the app ends (its jobs keep running and
    the next worker adopts them)."""
    if not settings.start_worker:
        return None
    log_path = settings.home_dir / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with Path(log_path).open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [
                sys.executable,
                "-m",
                "services.cli",
                "worker",
                "--exclusive",
                "--parent-pid",
                str(os.getpid()),
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    log.info("started the local training worker (pid %s, log %s)", process.pid, log_path)
    return process
