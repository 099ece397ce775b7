"""The load benchmark's processes: a demo-seeded portal home, ``streamlit run app.py`` on a
loopback port with that home, and ``usage ingest`` runs in processes of their own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.portal_sessions import PortalSession, login_cookie
from services.config import Settings
from tests.processes import free_port, stop_group, streamlit_healthy

ROOT = Path(__file__).resolve().parents[1]
COOKIE_NAME: str = Settings.model_fields["cookie_name"].default
STARTUP_TIMEOUT_S = 90

SEED = """
import sys
from services.cli import main
sys.exit(main(["init"]) or main(["demo", "seed"]))
"""
# The ingest as `python -m services.cli usage ingest` runs it, in a process that has done its
# imports and waits for a line on stdin before it starts the clock and the ingest.
INGEST = """
import sys, time
import services.gateway.ingest
from services.cli import main
print("READY", flush=True)
sys.stdin.readline()
started = time.perf_counter()
code = main(["usage", "ingest", sys.argv[1], "--format", "litellm"])
print(f"INGEST-SECONDS {time.perf_counter() - started:.3f}")
sys.exit(code)
"""


def portal_env(home: Path, cookie_key: str) -> dict[str, str]:
    """This process's environment without PORTAL_* settings, pointed at ``home`` (SQLite and
    MLflow stores there), with the given cookie key and no training worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_HOME=str(home),
        PORTAL_COOKIE_KEY=cookie_key,
        PORTAL_BCRYPT_ROUNDS="4",
        PORTAL_START_WORKER="false",  # the demo's queued job would train on the same cores
        PYTHONUNBUFFERED="1",
    )
    return env


async def seed_demo(env: dict[str, str]) -> None:
    """``init`` then ``demo seed`` (teams, users, catalog, jobs, promotions, three months of
    gateway usage, MLflow sweeps) in the home of ``env``, as an administrator would run them."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SEED, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"demo seed failed:\n{out.decode()[-3000:]}")


def largest_experiment(home: Path) -> tuple[str, list[str]]:
    """The id of the demo experiment with the most runs, and its runs' ids."""
    with contextlib.closing(sqlite3.connect(home / "mlflow.db")) as conn:
        rows = conn.execute(
            "SELECT experiment_id, run_uuid FROM runs WHERE lifecycle_stage = 'active'"
        ).fetchall()
    by_experiment: dict[str, list[str]] = {}
    for experiment, run in rows:
        by_experiment.setdefault(str(experiment), []).append(run)
    experiment = max(by_experiment, key=lambda e: len(by_experiment[e]))
    return experiment, sorted(by_experiment[experiment])


@dataclass
class IngestRun:
    seconds: float
    summary: str
    problem: str | None


class IngestProcess:
    """``usage ingest PATH --format litellm`` in a process of its own, started ahead (imports
    done) so that ``run()`` times only the ingest."""

    def __init__(self, env: dict[str, str], path: Path) -> None:
        self.env, self.path = env, path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", INGEST, str(self.path), cwd=ROOT, env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        ready = await self.process.stdout.readline()
        if ready.strip() != b"READY":
            await self.process.wait()
            raise RuntimeError(f"the ingest process did not start: {ready!r}")

    async def run(self) -> IngestRun:
        assert self.process is not None, "start() first"
        out, err = await self.process.communicate(b"go\n")
        lines = out.decode().splitlines()
        seconds = next((float(x.split()[1]) for x in lines if x.startswith("INGEST-SECONDS")), 0)
        summary = next((x for x in lines if x.startswith("ingested=")), "")
        problem = None
        if self.process.returncode != 0 or not summary.endswith("duplicates=0 rejected=0"):
            problem = f"ingest exited {self.process.returncode}: {summary} {err.decode()[-500:]}"
        return IngestRun(seconds, summary, problem)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    cookie_key: str

    async def started(self) -> None:
        """Wait until the server answers its health check."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not await asyncio.to_thread(streamlit_healthy, self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.25)

    async def first_run(self) -> None:
        """A fresh server knows its pages only after a first run: a deep link as its very first
        request gets "page not found", so Home goes first, as in the browser tests."""
        first = PortalSession(self.url, COOKIE_NAME, login_cookie("lee", self.cookie_key))
        await first.open()
        await first.run_page("")
        await first.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the streamlit process (all its threads) so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> tuple[float, float]:
        """(resident, peak resident) memory of the streamlit process, in MB."""
        status = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

    def log_errors(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


@contextlib.asynccontextmanager
async def running_portal(env: dict[str, str], home: Path) -> AsyncIterator[Server]:
    """``streamlit run app.py`` on a free loopback port (see ``Server.started``)."""
    port = free_port()
    log = home.parent / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]  # fmt: skip (the rest comes from .streamlit/config.toml, as in a deployment)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield Server(f"http://127.0.0.1:{port}", process, log, env["PORTAL_COOKIE_KEY"])
    finally:
        stop_group(process)
