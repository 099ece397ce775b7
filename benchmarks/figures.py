"""The one line each benchmark prints last, so that ``python -m benchmarks`` can gather every
benchmark's figures into one table: ``BENCHMARK-FIGURES {json}``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

MARKER = "BENCHMARK-FIGURES "


@dataclass(frozen=True)
class Figure:
    """One measured figure: what, how much, in which unit, the target it must meet (as
    text, e.g. "< 1 s"), whether it met it (None when there is no target), and a ratio
    against the reference measured beside it in the same run (e.g. "4.3x the naive loop")."""

    measure: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    ratio: str = ""


def report(benchmark: str, figures: list[Figure]) -> None:
    """Print the machine-readable line that closes a benchmark's output."""
    print(MARKER + json.dumps({"benchmark": benchmark, "figures": [asdict(f) for f in figures]}))


def parse(output: str) -> tuple[str, list[Figure]] | None:
    """The figures a benchmark printed, or None when it printed none."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return data["benchmark"], [Figure(**f) for f in data["figures"]]
    return None
