"""What the load benchmark measured, and how it is printed: script-run times per page and
phase, runs per second and the server's CPU per run, errors, and the ingest's throughput with
and without the sessions."""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.figures import Figure
from benchmarks.load_server import IngestRun

PHASES = ("first", "quiet", "ingest", "after ingest")


@dataclass(frozen=True)
class Sample:
    """One script run: which page, which session, in which phase, how long, what went wrong.
    Phases: ``first`` (each session's first run), ``quiet`` (no ingest), ``ingest`` (asked for
    while the ingest ran), ``after ingest`` (asked for after it ended, within the duration)."""

    page: str
    session: int
    phase: str
    seconds: float
    problems: list[str] = field(default_factory=list)
    server_seconds: float | None = None  # see portal_sessions.RunResult


@dataclass
class Outcome:
    samples: list[Sample] = field(default_factory=list)
    alone: IngestRun | None = None  # the ingest with no sessions, into a copy of the database
    beside: IngestRun | None = None  # the ingest while the sessions ran
    phase_seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)  # server, clients
    server_errors: list[str] = field(default_factory=list)
    server_memory: tuple[float, float] | None = None  # MB resident at the end, and its peak

    def of(self, phase: str, page: str | None = None) -> list[Sample]:
        return [s for s in self.samples if s.phase == phase and page in (None, s.page)]

    def errors(self) -> list[str]:
        found = [p for s in self.samples for p in s.problems]
        found += [f"server log: {line}" for line in self.server_errors]
        found += [r.problem for r in (self.alone, self.beside) if r and r.problem]
        return found

    def runs_served(self, phase: str) -> int:
        """Runs the server did in ``phase``'s seconds (the ingest phase's include the runs
        asked for after the ingest ended, which its seconds cover too)."""
        return len(self.of(phase)) + (len(self.of("after ingest")) if phase == "ingest" else 0)

    def runs_per_session(self, phase: str) -> Counter[int]:
        return Counter(s.session for s in self.of(phase))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan


def stats(samples: list[Sample]) -> tuple[int, float, float, float]:
    """Runs, p50, p95 and max in milliseconds."""
    ms = [s.seconds * 1000 for s in samples]
    return len(ms), percentile(ms, 50), percentile(ms, 95), max(ms, default=math.nan)


def print_report(args: argparse.Namespace, outcome: Outcome, load: tuple[float, ...]) -> None:
    pages = list(dict.fromkeys(s.page for s in outcome.samples))
    phases = [p for p in PHASES if outcome.of(p)]
    averages = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{args.sessions} websocket sessions on one `streamlit run`, {os.cpu_count()} CPUs, "
        f"load average before {' '.join(f'{x:.1f}' for x in load)}, after {averages}"
    )
    profiled = any(s.server_seconds is not None for s in outcome.samples)
    extra = f"{'server p50':>12}{'p95':>8}" if profiled else ""
    print(f"{'script run, ms':<18}{'phase':<14}{'runs':>6}{'p50':>8}{'p95':>8}{'max':>8}{extra}")
    for page in [*pages, None]:
        for phase in phases:
            if chosen := outcome.of(phase, page):
                runs, p50, p95, top = stats(chosen)
                label = page or "all pages"
                line = f"{label:<18}{phase:<14}{runs:>6}{p50:>8.0f}{p95:>8.0f}{top:>8.0f}"
                if profiled:
                    own = [s.server_seconds * 1000 for s in chosen if s.server_seconds is not None]
                    line += f"{percentile(own, 50):>12.0f}{percentile(own, 95):>8.0f}"
                print(line)
    for phase, seconds in outcome.phase_seconds.items():
        runs = outcome.runs_served(phase)
        server, clients = outcome.cpu[phase]
        per_session = outcome.runs_per_session(phase).values()
        print(
            f"{phase}: {seconds:.1f} s, {runs / seconds:.2f} runs/s, runs per session "
            f"{min(per_session, default=0)}-{max(per_session, default=0)}; CPU: streamlit "
            f"{server:.1f} s ({server / seconds:.2f} cores, {server / runs * 1000:.0f} ms a run), "
            f"clients {clients:.1f} s"
        )
    for label, run in (("alone", outcome.alone), ("beside the sessions", outcome.beside)):
        if run is not None:
            speed = args.records / run.seconds
            idle = outcome.cpu.get("alone", (0.0, 0.0))[0] if label == "alone" else None
            note = "" if idle is None else f" (the idle streamlit server used {idle:.1f} s of CPU)"
            print(f"usage ingest {label}: {run.seconds:.1f} s, {speed:,.0f} records/s{note}")
    if outcome.server_memory is not None:
        resident, peak = outcome.server_memory
        print(f"streamlit memory: {resident:,.0f} MB resident at the end, peak {peak:,.0f} MB")
    found = outcome.errors()
    print(f"errors: {len(found)}")
    for problem, count in Counter(found).most_common(10):
        print(f"  {count} x {problem}")


def report_figures(args: argparse.Namespace, outcome: Outcome) -> list[Figure]:
    loaded, quiet = outcome.of("ingest"), outcome.of("quiet")
    runs, p50, p95, top = stats(loaded)
    _, q50, q95, _ = stats(quiet)
    result = [
        Figure("script run p50, all pages, during ingest", p50, "ms",
               ratio=f"{p50 / q50:.2f}x without ingest" if quiet else ""),
        Figure("script run p95, all pages, during ingest", p95, "ms",
               ratio=f"{p95 / q95:.2f}x without ingest" if quiet else ""),
        Figure("script run max, during ingest", top, "ms"),
    ]  # fmt: skip
    if quiet:
        result += [
            Figure("script run p50, all pages, no ingest", q50, "ms"),
            Figure("script run p95, all pages, no ingest", q95, "ms"),
        ]
    for page in dict.fromkeys(s.page for s in loaded):
        _, page50, page95, _ = stats(outcome.of("ingest", page))
        result.append(
            Figure(f"{page} p50, during ingest", page50, "ms", ratio=f"p95 {page95:,.0f} ms")
        )
    if "ingest" in outcome.phase_seconds:
        seconds = outcome.phase_seconds["ingest"]
        result.append(
            Figure("page runs served per second, during ingest", runs / seconds, "runs/s")
        )
    per_session = outcome.runs_per_session("ingest").values()
    fewest = min(per_session, default=0)
    result.append(Figure(
        f"runs during ingest, {args.sessions} sessions", runs, "runs",
        target="every session runs", met=len(per_session) == args.sessions and fewest > 0,
        ratio=f"min {fewest} per session",
    ))  # fmt: skip
    found = outcome.errors()
    result.append(Figure("errors", len(found), "errors", target="0", met=not found))
    for phase in ("quiet", "ingest"):
        if phase in outcome.phase_seconds and (ran := outcome.runs_served(phase)):
            server_cpu = outcome.cpu[phase][0]
            result.append(Figure(f"server CPU a run, {phase}", server_cpu / ran * 1000, "ms"))
    if outcome.server_memory is not None:
        resident, peak = outcome.server_memory
        result.append(
            Figure("server memory at the end", resident, "MB", ratio=f"peak {peak:,.0f} MB")
        )
    if outcome.alone is not None:
        result.append(
            Figure("usage ingest alone", args.records / outcome.alone.seconds, "records/s")
        )
    if outcome.beside is not None:
        ratio = (
            f"{outcome.alone.seconds / outcome.beside.seconds:.2f}x alone" if outcome.alone else ""
        )
        result.append(Figure(
            f"usage ingest beside {args.sessions} sessions",
            args.records / outcome.beside.seconds, "records/s", ratio=ratio,
        ))  # fmt: skip
    return result
