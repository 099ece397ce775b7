"""The history frame the charts draw, for the selected runs: a permission-checked read of their
metric histories, thinned to what a chart can show, as one tidy table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.experiments.histories import load_histories
from services.experiments.runs import RunRecord
from services.permissions import Permission

POINT_BUDGET = 40_000  # points in one chart: past this, a browser draws slowly
MIN_POINTS, MAX_POINTS = 20, 1000


@dataclass(frozen=True)
class Curves:
    frame: pd.DataFrame  # run, run_id, metric, step, value, timestamp (ms)
    points_per_run: int
    hidden: int  # NaN and infinite values left out
    missing_runs: tuple[str, ...]


def points_per_run(runs: int, metrics: int) -> int:
    """How finely each run's curve is drawn so that the chart stays fast."""
    share = POINT_BUDGET // max(1, runs * metrics)
    return max(MIN_POINTS, min(MAX_POINTS, share))


def run_curves(
    db: Database,
    settings: Settings,
    *,
    actor: Actor,
    runs: Sequence[RunRecord],
    keys: Sequence[str],
) -> Curves:
    with db.read() as session:
        require(session, actor, Permission.VIEW_EXPERIMENTS)
    budget = points_per_run(len(runs), len(keys))
    versions = {
        r.run_id: int(r.end_time.timestamp() * 1000)
        for r in runs
        if r.finished and r.end_time is not None
    }
    histories = load_histories(
        settings.resolved_tracking_uri,
        [r.run_id for r in runs],
        list(keys),
        max_points=budget,
        versions=versions,
    )
    columns: dict[str, list[object]] = {
        "run": [],
        "run_id": [],
        "metric": [],
        "step": [],
        "value": [],
        "timestamp": [],
    }
    hidden = 0
    for run in runs:
        for key in keys:
            series = histories.get(run.run_id, key)
            hidden += series.hidden_nan + series.hidden_inf
            count = len(series.steps)
            columns["run"] += [run.name] * count
            columns["run_id"] += [run.run_id] * count
            columns["metric"] += [key] * count
            columns["step"] += list(series.steps)
            columns["value"] += list(series.values)
            columns["timestamp"] += list(series.timestamps_ms)
    return Curves(pd.DataFrame(columns), budget, hidden, tuple(histories.missing_runs))
