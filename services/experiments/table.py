"""The runs table: parameters, latest metrics and tags as columns, a "differences only"
view, a transposed view, and every run's deltas against a pinned baseline, judged better or
worse by each metric's direction."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd

from services.experiments.runs import RunRecord

Direction = Literal["min", "max"]
LOWER_IS_BETTER = re.compile(
    r"loss|perplexity|error|err$|wer|cer|mae|mse|rmse|latency|time|seconds|cost|diverge", re.I
)
FIXED = ["Run", "Experiment", "Status", "Started", "Minutes"]


def direction_of(metric: str, overrides: Mapping[str, Direction] | None = None) -> Direction:
    """Lower is better for losses, errors, perplexity, latency and cost; higher for the rest
    (accuracy, F1, BLEU, ROUGE, AUC…), unless the user said otherwise."""
    if overrides and metric in overrides:
        return overrides[metric]
    return "min" if LOWER_IS_BETTER.search(metric) else "max"


def column_names(runs: Sequence[RunRecord]) -> tuple[list[str], list[str], list[str]]:
    """Every param, metric and tag key that occurs, sorted."""
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    tags = sorted({k for r in runs for k in r.tags})
    return params, metrics, tags


def runs_frame(runs: Sequence[RunRecord], *, differences_only: bool = False) -> pd.DataFrame:
    """One row per run, indexed by run id: the fixed columns, then ``params.*`` (text),
    ``metrics.*`` (numbers; a missing or non-finite value is empty) and ``tags.*``. With
    ``differences_only``, a param, metric or tag column that is the same for every run goes."""
    params, metrics, tags = column_names(runs)
    data: dict[str, list[object]] = {
        "Run": [r.name for r in runs],
        "Experiment": [r.experiment for r in runs],
        "Status": [r.status.capitalize() for r in runs],
        "Started": [r.start_time for r in runs],
        "Minutes": [_minutes(r) for r in runs],
    }
    for key in params:
        data[f"params.{key}"] = [r.params.get(key) for r in runs]
    for key in metrics:
        data[f"metrics.{key}"] = [_finite(r.metrics.get(key)) for r in runs]
    for key in tags:
        data[f"tags.{key}"] = [r.tags.get(key) for r in runs]
    frame = pd.DataFrame(data, index=pd.Index([r.run_id for r in runs], name="run_id"))
    if differences_only and len(runs) > 1:
        same = [
            column
            for column in frame.columns
            if column not in FIXED and frame[column].astype("string").nunique(dropna=False) <= 1
        ]
        frame = frame.drop(columns=same)
    return frame


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _minutes(run: RunRecord) -> float | None:
    if run.start_time is None or run.end_time is None:
        return None
    return round((run.end_time - run.start_time).total_seconds() / 60, 1)


def baseline_deltas(
    frame: pd.DataFrame, baseline: str, overrides: Mapping[str, Direction] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each run's metric minus the baseline's, and a frame of the same shape saying whether
    that is ``better``, ``worse`` or ``same`` by the metric's direction (empty where either
    value is missing). Raises ``KeyError`` when the baseline is not in the frame."""
    metric_columns = [c for c in frame.columns if c.startswith("metrics.")]
    values = frame[metric_columns].apply(pd.to_numeric, errors="coerce")
    base = values.loc[baseline]
    deltas = values - base
    verdicts = pd.DataFrame("", index=frame.index, columns=metric_columns)
    for column in metric_columns:
        sign = -1.0 if direction_of(column.removeprefix("metrics."), overrides) == "min" else 1.0
        scored = deltas[column] * sign
        verdicts[column] = scored.map(
            lambda d: "" if pd.isna(d) else ("better" if d > 0 else "worse" if d < 0 else "same")
        )
    return deltas, verdicts


def transposed(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs as columns and fields as rows, for comparing many runs field by field. Every cell
    becomes text (a column of mixed numbers and words cannot be typed), built in one pass."""
    labels = [
        f"{name} ({run_id[:6]})" for run_id, name in zip(frame.index, frame["Run"], strict=True)
    ]
    body = frame.drop(columns=["Run"])
    cells = [[_cell(value) for value in body[column]] for column in body.columns]
    return pd.DataFrame(cells, index=body.columns, columns=pd.Index(labels), dtype="string")


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def best_run(
    frame: pd.DataFrame, metric: str, overrides: Mapping[str, Direction] | None = None
) -> str | None:
    """The run id with the best value of ``metric`` (None when no run has it)."""
    column = f"metrics.{metric}"
    if column not in frame:
        return None
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    if values.empty:
        return None
    return str(values.idxmin() if direction_of(metric, overrides) == "min" else values.idxmax())
