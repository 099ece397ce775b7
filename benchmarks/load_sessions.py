"""Concurrent sessions under load: 30 browser-less sessions (websocket clients speaking
Streamlit's protocol, see ``benchmarks.portal_sessions``) sharing one real ``streamlit run``
of a demo-seeded portal, each rerunning one of the busiest pages (Usage & costs as a manager,
Registry, Experiments with runs selected, the approver's Promotions queue, Home) for a fixed
time while ``usage ingest`` of a generated LiteLLM JSON-lines file runs in another process
into the same database. In the same run, side by side: the sessions with no ingest (``quiet``)
and the same ingest of the same file into a copy of the same database with no sessions.

    python -m benchmarks.load_sessions [--sessions 30] [--duration 60] [--quiet 30]
        [--records 1000000]

A run's time is what the client waits: from its rerun request to the server's
``script_finished``. With ``STREAMLIT_BROWSER_GATHER_USAGE_STATS=true`` in the environment the
server also reports each script's own time, printed beside it. Errors: a traceback or error
box on a page, the wrong page (e.g. the login page), a page not found, a timeout, a lost
connection, an error in the server's log, a failed ingest; there must be none. The ingest runs
for as long as it needs: the sessions go on until both it and ``--duration`` are over.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import figures, load_server
from benchmarks.load_report import Outcome, Sample, print_report, report_figures
from benchmarks.load_server import IngestProcess
from benchmarks.portal_sessions import PortalSession, login_cookie
from benchmarks.usage_reports import write_records


@dataclass(frozen=True)
class Plan:
    """What one session does: which page, as whom, with which query strings (in turn)."""

    label: str
    path: str
    users: tuple[str, ...]
    queries: tuple[str, ...]


def plans(home: Path) -> list[Plan]:
    today = datetime.now(UTC).date()
    experiment, run_ids = load_server.largest_experiment(home)
    comparison = f"experiments={experiment}&runs={','.join(run_ids)}&chart=history"
    return [
        Plan("Usage & costs", "usage", ("maria",),
             ("", f"from={today - timedelta(days=89)}&group=team&group=model")),
        Plan("Registry", "registry", ("dana", "sam"), ("", "provider=Amazon&sort=updated")),
        Plan("Experiments", "experiments", ("dana", "sam"),
             (comparison, f"{comparison}&baseline={run_ids[-1]}")),
        Plan("Promotions queue", "promotions", ("priya", "omar"), ("",)),
        Plan("Home", "", ("maria", "priya", "dana", "lee"), ("",)),
    ]  # fmt: skip


class Load:
    """The sessions, what they measured, and the phase they are in."""

    def __init__(self, url: str, cookie_key: str, plans: list[Plan], sessions: int) -> None:
        self.samples: list[Sample] = []
        self.phase = "first"
        self.ingest_running = False
        self.assigned = []
        for i in range(sessions):
            plan = plans[i % len(plans)]
            user = plan.users[(i // len(plans)) % len(plan.users)]
            cookie = login_cookie(user, cookie_key)
            self.assigned.append((plan, PortalSession(url, load_server.COOKIE_NAME, cookie)))

    async def open(self) -> None:
        await asyncio.gather(*(session.open() for _, session in self.assigned))

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for _, session in self.assigned))

    async def run(self, phase: str, stop: Callable[[], bool]) -> None:
        """Every session reruns its page until ``stop()``; a run under way is finished."""
        self.phase = phase
        await asyncio.gather(*(self._drive(i, stop) for i in range(len(self.assigned))))

    async def _drive(self, index: int, stop: Callable[[], bool]) -> None:
        plan, session = self.assigned[index]
        turn = 0
        while not stop():
            during_ingest = self.ingest_running
            result = await session.run_page(plan.path, plan.queries[turn % len(plan.queries)])
            turn += 1
            phase = self.phase if during_ingest or self.phase != "ingest" else "after ingest"
            self.samples.append(
                Sample(
                    plan.label, index, phase, result.seconds, result.problems, result.server_seconds
                )
            )
            if self.phase == "first":
                return


async def measure(args: argparse.Namespace, home: Path, ingest_file: Path) -> Outcome:
    cookie_key = secrets.token_urlsafe(48)
    env = load_server.portal_env(home, cookie_key)
    outcome = Outcome()
    ingest = IngestProcess(env, ingest_file)
    async with load_server.running_portal(env, home) as server:
        # The three start at once: nothing touches the database before the first session.
        started = time.perf_counter()
        await asyncio.gather(load_server.seed_demo(env), server.started(), ingest.start())
        print(f"Demo seeded, server and ingest started in {time.perf_counter() - started:.0f} s")
        if args.baseline:  # into a copy of the database, while the server has no session
            baseline_home = home.parent / "baseline-home"
            shutil.copytree(home, baseline_home)
            alone = IngestProcess(load_server.portal_env(baseline_home, cookie_key), ingest_file)
            await alone.start()
            idle = server.cpu_seconds()
            outcome.alone = await alone.run()
            outcome.cpu["alone"] = server.cpu_seconds() - idle, 0.0
            shutil.rmtree(baseline_home)
        await server.first_run()
        load = Load(server.url, cookie_key, plans(home), args.sessions)
        await load.open()
        if args.first:
            await load.run("first", lambda: False)

        async def phase(name: str, stop: Callable[[], bool]) -> None:
            cpu, started = (server.cpu_seconds(), time.process_time()), time.monotonic()
            await load.run(name, stop)
            outcome.phase_seconds[name] = time.monotonic() - started
            outcome.cpu[name] = server.cpu_seconds() - cpu[0], time.process_time() - cpu[1]

        if args.quiet:
            ends = time.monotonic() + args.quiet
            await phase("quiet", lambda: time.monotonic() >= ends)
        ends = time.monotonic() + args.duration
        load.ingest_running = True
        running = asyncio.create_task(ingest.run())
        running.add_done_callback(lambda _: setattr(load, "ingest_running", False))
        await phase("ingest", lambda: time.monotonic() >= ends and running.done())
        outcome.beside = await running
        await load.close()
        outcome.samples = load.samples
        outcome.server_errors = server.log_errors()
        outcome.server_memory = server.memory_mb()
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds with the ingest")
    parser.add_argument("--quiet", type=float, default=30.0, help="seconds without it first")
    parser.add_argument("--records", type=int, default=1_000_000, help="records to ingest")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the same ingest with no sessions (into a copy of the database)",
    )
    parser.add_argument(
        "--no-first",
        dest="first",
        action="store_false",
        help="no separate round of first (cold) runs: they fall in the first phase (quicker)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        home = Path(tmp) / "portal-home"
        ingest_file = Path(tmp) / "gateway.jsonl"
        today = datetime.now(UTC).date()
        write_records(ingest_file, args.records, seed=11, first_day=today - timedelta(29), days=30)
        size = ingest_file.stat().st_size / 1e6
        print(f"{args.records:,} LiteLLM records to ingest ({size:,.0f} MB), the last 30 days")
        outcome = asyncio.run(measure(args, home, ingest_file))
    print_report(args, outcome, load_before)
    figures.report("load_sessions", report_figures(args, outcome))


if __name__ == "__main__":
    main()
