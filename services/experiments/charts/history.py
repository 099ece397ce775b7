"""The metric-history chart: one line per run for each metric of a history frame."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

import altair as alt
import numpy as np
import pandas as pd

from services.experiments.charts.common import (
    FIT_WIDTH,
    LEGEND_MAX_RUNS,
    NoChartData,
    _baseline_label,
    _categorical,
    _hover,
    _hover_select,
    _require,
    _run_labels,
    _title,
)

RAW_TRACE_MAX_RUNS = 50  # more runs than this: the faint raw lines behind smoothing are noise
MARKED_POINTS_MAX = 30  # a run's line with this many points or fewer also marks each point
HISTORY_HEIGHT = 220  # of each metric's plot; heights never include titles, axes or legends

XAxis = Literal["step", "relative", "wall"]


def _smoothed(frame: pd.DataFrame, weight: float) -> pd.Series:
    """TensorBoard's debiased exponential moving average per run and metric, over points in
    step order. With ``adjust=True`` pandas computes exactly TensorBoard's
    ``last = w * last + (1 - w) * x; smoothed = last / (1 - w ** n)``."""
    grouped = frame.groupby(["run", "metric"], sort=False, observed=True)["value"]
    ema = grouped.ewm(alpha=1.0 - weight, adjust=True).mean()
    return ema.reset_index(level=[0, 1], drop=True).reindex(frame.index)


def _time_axes(frame: pd.DataFrame, x: XAxis, zone: ZoneInfo) -> tuple[pd.DataFrame, str, alt.X]:
    """The frame with the x field the user chose, its name and its encoding."""
    if x == "step":
        return frame, "step", alt.X("step:Q", title="Step")
    if x == "relative":
        seconds = frame.get("relative_seconds")
        if seconds is None or seconds.isna().any():
            first = frame.groupby("run", observed=True)["timestamp"].transform("min")
            seconds = (frame["timestamp"] - first) / 1000.0
        span = float(seconds.max())
        unit, divisor = ("h", 3600.0) if span > 7200 else ("min", 60.0) if span > 120 else ("s", 1)
        frame = frame.assign(relative=(seconds / divisor).astype("float32"))
        return frame, "relative", alt.X("relative:Q", title=f"Time since run start ({unit})")
    # Vega-Lite knows only local time and UTC: shift to the zone's wall clock and show it as UTC.
    instants = pd.to_datetime(frame["timestamp"], unit="ms", utc=True).dt.tz_convert(zone)
    wall = (instants.dt.tz_localize(None) - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)
    axis = alt.Axis(format="%b %d %H:%M", labelAngle=0)
    scale = alt.Scale(type="utc")
    return (
        frame.assign(wall=wall.astype(float)),
        "wall",
        alt.X("wall:T", title=f"Time ({zone.key})", scale=scale, axis=axis),
    )


def _history_rows(frame: pd.DataFrame, smoothing: float, with_raw: bool) -> pd.DataFrame:
    """Long rows: one ``series`` per run and point: "smoothed" (or "raw" alone without
    smoothing), plus "raw" behind it when ``with_raw``."""
    finals = frame.groupby(["run", "metric"], sort=False, observed=True)[
        ["step", "value"]
    ].transform("last")
    frame = frame.assign(last_step=finals["step"], last_value=finals["value"])
    kinds = pd.CategoricalDtype(["raw", "smoothed"])
    raw = frame.assign(series=pd.Series("raw", index=frame.index, dtype=kinds), y=frame["value"])
    if smoothing <= 0:
        return raw
    smooth = frame.assign(
        series=pd.Series("smoothed", index=frame.index, dtype=kinds),
        y=_smoothed(frame, smoothing),
    )
    return pd.concat([raw, smooth], ignore_index=True) if with_raw else smooth


def _compact(rows: pd.DataFrame) -> pd.DataFrame:
    """Half the bytes sent to the browser: float32 values, int32 steps, no index."""
    narrow = {"y": "float32", "last_value": "float32", "last_step": "int32"}
    if "step" in rows.columns:
        narrow["step"] = "int32"
    return rows.drop(columns="metric").astype(narrow).reset_index(drop=True)


def history_chart(
    frame: pd.DataFrame,
    *,
    x: XAxis = "step",
    smoothing: float = 0.0,
    log_scale: bool = False,
    highlight_run: str | None = None,
    zone: ZoneInfo | str = "UTC",
) -> alt.Chart | alt.VConcatChart:
    """One line per run for each metric in a **history frame**, one small chart per metric
    stacked vertically (all share the run colours and the hover highlight).

    ``x``: "step", "relative" (time since each run's first point, from ``relative_seconds`` or
    ``timestamp``) or "wall" (``timestamp`` in ``zone``, the reporting time zone).
    ``smoothing`` (0-0.99): TensorBoard's debiased EMA per run and metric, over points in step
    order; the raw line stays faint behind it for up to ``RAW_TRACE_MAX_RUNS`` runs.
    ``log_scale``: points <= 0 are left out and the subtitle says how many; a metric with no
    positive value stays linear. ``highlight_run`` (run id or label) is drawn thicker.
    Above ``LEGEND_MAX_RUNS`` runs the legend is hidden: hovering a line names it and fades the
    others. Raises :class:`NoChartData` when no finite value is left.
    """
    _require(frame, ["run", "metric", "step", "value", "timestamp"])
    if not 0.0 <= smoothing < 1.0:
        raise ValueError("Smoothing must be between 0 and 0.99.")
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    labels, by_id = _run_labels(frame)
    data = frame.assign(
        run=labels,
        metric=_categorical(frame["metric"]),
        value=pd.to_numeric(frame["value"], errors="coerce"),
    )
    data = data[np.isfinite(data["value"])].dropna(subset=["step", "timestamp"])
    if data.empty:
        raise NoChartData("The selected runs logged no values for these metrics.")
    data = data.sort_values(["metric", "run", "step", "timestamp"], kind="stable")
    runs = data["run"].unique().tolist()
    baseline = _baseline_label(by_id, highlight_run)
    if baseline not in runs:
        baseline = None
    else:  # drawn last, so on top
        data = pd.concat([data[data["run"] != baseline], data[data["run"] == baseline]])

    with_raw = smoothing > 0 and len(runs) <= RAW_TRACE_MAX_RUNS
    data = _history_rows(data, smoothing, with_raw)
    data, x_field, x_encoding = _time_axes(data, x, zone)
    data = data[["metric", "run", "series", "y", "last_value", "last_step", x_field]]
    notes = _history_notes(len(runs), smoothing, with_raw, baseline)
    legend = None
    if len(runs) <= LEGEND_MAX_RUNS:
        legend = alt.Legend(orient="bottom", columns=3, title=None, labelLimit=260)
    hover = _hover()
    views = []
    by_metric = dict(list(data.groupby("metric", observed=True)))
    for index, metric in enumerate(m for m in pd.unique(frame["metric"]) if m in by_metric):
        rows = by_metric[metric]
        metric_notes: list[str] = []
        scale = alt.Scale(zero=False)
        if log_scale:
            rows, scale, metric_notes = _log_rows(rows, smoothing)
        view = _history_view(_compact(rows), x_encoding, scale, legend, hover, baseline)
        title = _title(str(metric), (notes if index == 0 else []) + metric_notes)
        views.append(view.properties(title=title, name=f"history_{index}"))
    if len(views) == 1:
        return views[0].add_params(hover).properties(autosize=FIT_WIDTH)
    names = [f"history_{i}" for i in range(len(views))]
    top = alt.TopLevelSelectionParameter(name="hover", select=_hover_select(), views=names)
    chart = alt.VConcatChart(vconcat=views, params=[top], autosize=FIT_WIDTH)
    return chart.resolve_scale(x="shared")


def _log_rows(rows: pd.DataFrame, smoothing: float) -> tuple[pd.DataFrame, alt.Scale, list[str]]:
    positive = rows["y"] > 0
    if not positive.any():
        return rows, alt.Scale(zero=False), ["Log scale off: no value above 0."]
    if positive.all():
        return rows, alt.Scale(type="log"), []
    counted = rows["series"] == ("smoothed" if smoothing > 0 else "raw")
    dropped = int((~positive & counted).sum())
    return rows[positive], alt.Scale(type="log"), [f"{dropped} point(s) ≤ 0 left out (log scale)."]


def _history_notes(runs: int, smoothing: float, with_raw: bool, baseline: str | None) -> list[str]:
    notes = []
    if smoothing > 0:
        behind = (
            "raw values faint behind"
            if with_raw
            else f"raw values hidden above {RAW_TRACE_MAX_RUNS} runs"
        )
        notes.append(f"Smoothed (EMA {smoothing:.2f}); {behind}.")
    if runs > LEGEND_MAX_RUNS:
        notes.append(f"{runs} runs: hover a line to see its run.")
    if baseline is not None:
        notes.append(f"Thick line: baseline {baseline}.")
    return notes


def _history_view(
    rows: pd.DataFrame,
    x_encoding: alt.X,
    scale: alt.Scale,
    legend: alt.Legend | None,
    hover: alt.Parameter,
    baseline: str | None,
) -> alt.Chart:
    smoothed = bool((rows["series"] == "smoothed").any())
    opacity = (
        alt.when(hover, alt.datum.series == "smoothed")
        .then(alt.value(1.0))
        .when(hover)
        .then(alt.value(0.25 if smoothed else 1.0))
        .otherwise(alt.value(0.08))
    )
    thick = (
        alt.when(alt.datum.series != ("smoothed" if smoothed else "raw"))
        .then(alt.value(1.2))  # the faint raw line behind a smoothed one
        .when(alt.datum.run == baseline)
        .then(alt.value(3.0))
        .otherwise(alt.value(1.6))
    )
    # A run with a single value (an evaluation logged once) draws no line: mark sparse points.
    sparse = bool(rows.groupby(["run", "series"], observed=True).size().max() <= MARKED_POINTS_MAX)
    return (
        alt.Chart(rows)
        .mark_line(point=alt.OverlayMarkDef(filled=True, size=28) if sparse else False)
        .encode(
            x=x_encoding,
            y=alt.Y("y:Q", title=None, scale=scale),
            color=alt.Color("run:N", legend=legend, sort=None),
            detail="series:N",
            opacity=opacity,
            strokeWidth=thick,
            tooltip=[
                alt.Tooltip("run:N", title="Run"),
                alt.Tooltip("last_value:Q", title="Last value", format=".4~g"),
                alt.Tooltip("last_step:Q", title="Last step", format=","),
            ],
        )
        .properties(height=HISTORY_HEIGHT)
    )
