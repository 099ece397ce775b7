"""Load acceptance (issue #8): 30 concurrent browser-less sessions on one real `streamlit run`
of a demo-seeded portal, rendering the busiest pages while `usage ingest` runs in another
process, finish every run they ask for with no error. The figures are printed, not asserted:
times on a shared machine are not a test (benchmarks/README.md has measured ones)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks import figures
from benchmarks.load_server import ROOT

SESSIONS = 30


def test_thirty_sessions_render_the_busiest_pages_while_an_ingest_runs() -> None:
    command = [
        sys.executable, "-m", "benchmarks.load_sessions", "--sessions", str(SESSIONS),
        "--duration", "3", "--quiet", "0", "--records", "20000", "--no-baseline", "--no-first",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = figures.parse(done.stdout)
    assert parsed is not None, "the benchmark printed no figures line"
    name, measured = parsed
    by_measure = {figure.measure: figure for figure in measured}
    assert name == "load_sessions"
    assert by_measure["errors"].value == 0, done.stdout[-3000:]
    runs = by_measure[f"runs during ingest, {SESSIONS} sessions"]
    assert runs.met, f"a session completed no run while the ingest ran: {runs}"
    assert by_measure[f"usage ingest beside {SESSIONS} sessions"].value > 0
