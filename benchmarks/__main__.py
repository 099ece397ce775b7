"""Every benchmark, one after another, each in a process of its own, then one table of their
figures (each benchmark's last line, see ``benchmarks.figures``).

    python -m benchmarks [--quick] [--only name,...] [--postgres URL] [--markdown]

``--quick`` runs smaller sizes (minutes rather than the better part of an hour); the figures
of a quick run are not comparable with the targets, which are set for the full sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks import figures

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Benchmark:
    name: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    postgres_flag: bool = False  # takes --postgres URL for a side-by-side PostgreSQL run


BENCHMARKS = (
    Benchmark("registry_page", (), ("--models", "200", "--versions", "2000", "--runs", "5")),
    Benchmark("jobs_page", (), ("--jobs", "1000", "--runs", "5")),
    Benchmark("experiments_page", (), ("--runs", "100", "--steps", "50", "--reruns", "5")),
    Benchmark("dataset_inspection", ("--mb", "100"), ("--mb", "10")),
    Benchmark("audit_log", ("--events", "20000"), ("--events", "2000"), postgres_flag=True),
    Benchmark("metric_histories", (),
              ("--runs", "20", "--steps", "200", "--naive-runs", "10", "--light-runs", "1000")),
    Benchmark("local_job_startup", (), ("--records", "100", "--steps", "20")),
    Benchmark("usage_ingest", ("--records", "200000"),
              ("--records", "50000", "--prefill", "200000"), postgres_flag=True),
    Benchmark("usage_reports", ("--events", "10000000", "--small", "100000"),
              ("--events", "1000000", "--small", "100000")),
    Benchmark("load_sessions", ("--sessions", "30", "--duration", "60", "--quiet", "30",
                                "--records", "1000000"),
              ("--sessions", "30", "--duration", "20", "--quiet", "15", "--records", "300000")),
)  # fmt: skip
BY_NAME = {b.name: b for b in BENCHMARKS}


@dataclass
class Outcome:
    name: str
    seconds: float
    returncode: int
    figures: list[figures.Figure]


def run(benchmark: Benchmark, args: argparse.Namespace) -> Outcome:
    """Run one benchmark, echoing its output line by line, and collect its figures."""
    command = [sys.executable, "-m", f"benchmarks.{benchmark.name}"]
    command += benchmark.quick if args.quick else benchmark.full
    if benchmark.postgres_flag:
        command += ["--postgres", args.postgres or ""]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    lines = []
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not line.startswith(figures.MARKER):
                print(f"[{benchmark.name}] {line}", end="", flush=True)
    seconds = time.perf_counter() - started
    print(f"[{benchmark.name}] {seconds:.0f} s, exit code {process.returncode}", flush=True)
    parsed = figures.parse("".join(lines))
    found = parsed[1] if parsed else []
    return Outcome(benchmark.name, seconds, process.returncode, found)


def _value(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def table(outcomes: list[Outcome]) -> list[list[str]]:
    rows = []
    for outcome in outcomes:
        if outcome.returncode != 0 or not outcome.figures:
            why = f"failed, exit {outcome.returncode}" if outcome.returncode else "no figures line"
            rows.append([outcome.name, f"({why})", "", "", "", "", ""])
        for f in outcome.figures:
            met = "" if f.met is None else ("yes" if f.met else "NO")
            rows.append([outcome.name, f.measure, _value(f.value), f.unit, f.target, met, f.ratio])
    return rows


def print_table(rows: list[list[str]], markdown: bool) -> None:
    header = ["benchmark", "measure", "value", "unit", "target", "met", "ratio"]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---:" if h == "value" else "---" for h in header) + "|")
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            c.rjust(w) if i == 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PORTAL_TEST_DATABASE_URL", ""),
        help="PostgreSQL URL for the benchmarks that compare with it "
        "(default: PORTAL_TEST_DATABASE_URL; '' for SQLite only)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs, "
        f"load average {load}{', quick sizes' if args.quick else ''}"
    )
    outcomes = [run(BY_NAME[name], args) for name in chosen or BY_NAME]
    print(f"\nAll benchmarks, {sum(o.seconds for o in outcomes) / 60:.1f} minutes in all:")
    print_table(table(outcomes), args.markdown)
    return 1 if any(o.returncode != 0 or not o.figures for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
