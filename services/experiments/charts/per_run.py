"""Charts of a runs frame, one mark per run: scatter, parallel coordinates, final values."""

from __future__ import annotations

from typing import Literal

import altair as alt
import numpy as np
import pandas as pd

from services.experiments.charts.common import (
    BAR_LABELS,
    FIT_WIDTH,
    LEGEND_MAX_RUNS,
    NEUTRAL,
    NoChartData,
    _baseline_label,
    _hover,
    _is_numeric,
    _run_labels,
    _run_values,
    _title,
)

FINAL_VALUES_MAX_BARS = 50


def _spans_decades(values: pd.Series) -> bool:
    return bool(values.min() > 0 and values.max() >= 20 * values.min())


def _position(channel: Literal["x", "y"], values: pd.Series, title: str) -> alt.X | alt.Y:
    kind = alt.X if channel == "x" else alt.Y
    if not _is_numeric(values):
        axis = alt.Axis(labelLimit=160, labelAngle=0)
        return kind(f"{channel}:N", title=title, sort="ascending", axis=axis)
    if _spans_decades(values):  # learning rates, diverged losses
        return kind(f"{channel}:Q", title=f"{title} (log scale)", scale=alt.Scale(type="log"))
    return kind(f"{channel}:Q", title=title, scale=alt.Scale(zero=False))


def scatter_chart(frame: pd.DataFrame, x: str, y: str, color: str | None = None) -> alt.Chart:
    """One point per run of a **runs frame**: column ``x`` against column ``y``, coloured by
    ``color`` (numeric: a gradient; otherwise one colour per value). A positive numeric axis
    whose largest value is 20 times its smallest (learning rates) is logarithmic; a
    categorical one spreads its points a little sideways so they do not hide each other.
    Hovering a point enlarges it and fades the others. Raises :class:`NoChartData` when no
    run has both values."""
    data, dropped = _run_values(frame, [x, y] + ([color] if color else []))
    if data.empty:
        raise NoChartData(f"No selected run has both {x} and {y}. Pick other columns.")
    plotted = pd.DataFrame({"run": data["run"], "x": data[x], "y": data[y]})
    encoding: dict = {"x": _position("x", plotted["x"], x), "y": _position("y", plotted["y"], y)}
    jitter = np.random.default_rng(0).uniform(-0.35, 0.35, len(plotted))
    for channel, offset in (("x", alt.XOffset), ("y", alt.YOffset)):
        if not _is_numeric(plotted[channel]):
            plotted[f"{channel}_jitter"] = jitter
            encoding[f"{channel}Offset"] = offset(
                f"{channel}_jitter:Q", scale=alt.Scale(domain=[-1, 1])
            )
    tooltip = [alt.Tooltip("run:N", title="Run"), _tip("x", plotted, x), _tip("y", plotted, y)]
    if color:
        plotted["color"] = data[color]
        numeric = _is_numeric(plotted["color"])
        legend: alt.Legend | None = alt.Legend(orient="bottom", title=color, labelLimit=200)
        if not numeric and plotted["color"].nunique() > LEGEND_MAX_RUNS:
            legend = None
        encoding["color"] = alt.Color("color:Q" if numeric else "color:N", legend=legend)
        tooltip.append(_tip("color", plotted, color))
    hover = _hover()
    notes = [f"{dropped} run(s) without these values left out."] if dropped else []
    return (
        alt.Chart(plotted)
        .mark_circle(stroke=NEUTRAL, strokeWidth=0.5)
        .encode(
            **encoding,
            size=alt.when(hover, empty=False).then(alt.value(220)).otherwise(alt.value(70)),
            opacity=alt.when(hover).then(alt.value(0.9)).otherwise(alt.value(0.25)),
            tooltip=tooltip,
        )
        .add_params(hover)
        .properties(title=_title(f"{y} by {x}", notes), height=360, autosize=FIT_WIDTH)
    )


def _tip(field: str, data: pd.DataFrame, title: str) -> alt.Tooltip:
    if _is_numeric(data[field]):
        return alt.Tooltip(f"{field}:Q", title=title, format=".4~g")
    return alt.Tooltip(f"{field}:N", title=title)


def parallel_coordinates_chart(
    frame: pd.DataFrame, columns: list[str], color_metric: str, *, lower_is_better: bool = False
) -> alt.LayerChart:
    """One line per run of a **runs frame** across one vertical axis per column, coloured by
    ``color_metric`` (``lower_is_better`` flips the gradient so the best runs keep one colour).
    Altair's parallel-coordinates recipe: the columns are folded into (``axis``, ``position``)
    rows and each axis is scaled from its own minimum to maximum by Vega-Lite transforms.
    Categorical columns are placed at ordinal positions in alphabetical order, and a positive
    numeric column spanning 20 times its smallest value on a log scale; each axis shows
    its minimum and maximum (every category when there are at most 12), and a line's tooltip
    shows the run's original values. Runs lacking a value are left out (the subtitle says how
    many). Raises :class:`NoChartData` when no run has every value."""
    if not columns:
        raise NoChartData("Pick the parameters and metrics to compare.")
    data, dropped = _run_values(frame, [*columns, color_metric])
    if data.empty:
        raise NoChartData("No selected run has a value in every chosen column.")
    tips = [
        alt.Tooltip("run:N", title="Run"),
        _tip("color", data.assign(color=data[color_metric]), color_metric),
    ]
    long = []
    logged = []
    for index, column in enumerate(columns):
        values = data[column]
        if _is_numeric(values):
            position, shown, label_all = values, values.map("{:.4g}".format), False
            if _spans_decades(values):
                position = np.log10(values)
                logged.append(column)
        else:
            order = {value: code for code, value in enumerate(sorted(values.unique()))}
            position, shown, label_all = values.map(order).astype(float), values, len(order) <= 12
        long.append(
            pd.DataFrame(
                {"axis": column, "position": position, "shown": shown, "label_all": label_all}
            )
        )
        tips.append(alt.Tooltip(f"t{index}:N", title=column))
    wide = pd.DataFrame({f"t{i}": data[c].map(_shown) for i, c in enumerate(columns)})
    wide = wide.assign(run=data["run"], color=data[color_metric])
    rows = pd.concat(long).join(wide)
    base = (
        alt.Chart(rows)
        .transform_joinaggregate(lo="min(position)", hi="max(position)", groupby=["axis"])
        .transform_calculate(
            norm="datum.hi === datum.lo ? 0.5 : (datum.position - datum.lo) / (datum.hi - datum.lo)"
        )
    )
    x = alt.X(
        "axis:N",
        sort=columns,
        title=None,
        axis=alt.Axis(labelAngle=0, orient="top", labelLimit=140),
    )
    y = alt.Y("norm:Q", axis=None, scale=alt.Scale(domain=[0, 1]))
    numeric_color = _is_numeric(data[color_metric])
    color = alt.Color(
        "color:Q" if numeric_color else "color:N",
        title=color_metric,
        scale=alt.Scale(reverse=lower_is_better) if numeric_color else alt.Undefined,
        legend=alt.Legend(orient="bottom"),
    )
    hover = _hover()
    lines = (
        base.mark_line(strokeWidth=1.4)
        .encode(
            x=x,
            y=y,
            detail="run:N",
            color=color,
            opacity=alt.when(hover).then(alt.value(0.7)).otherwise(alt.value(0.06)),
            tooltip=tips,
        )
        .add_params(hover)
    )
    rules = (
        base.transform_aggregate(n="count()", groupby=["axis"]).mark_rule(color=NEUTRAL).encode(x=x)
    )
    labels = (
        base.transform_filter(
            "datum.label_all || datum.norm === 0 || datum.norm === 1 || datum.hi === datum.lo"
        )
        .transform_aggregate(n="count()", groupby=["axis", "norm", "shown"])
        .mark_text(align="left", dx=4, fontSize=10, color=NEUTRAL, tooltip=None)
        .encode(x=x, y=y, text="shown:N")
    )
    notes = ["Each axis runs from its lowest to its highest value."]
    if logged:
        notes.append(f"Log scale: {', '.join(logged)}.")
    if dropped:
        notes.append(f"{dropped} run(s) lacking a value left out.")
    title = _title(f"{len(data)} runs coloured by {color_metric}", notes)
    return alt.LayerChart(layer=[rules, lines, labels], title=title, height=380, autosize=FIT_WIDTH)


def _shown(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def final_values_chart(
    frame: pd.DataFrame, metric: str, *, lower_is_better: bool, highlight_run: str | None = None
) -> alt.Chart:
    """Each run's final ``metric`` from a **runs frame** as a horizontal bar, best first
    (``lower_is_better`` says which way is best), at most ``FINAL_VALUES_MAX_BARS`` bars: the
    subtitle says when the rest are left out. ``highlight_run`` (run id or label) stands out
    in a second colour. Raises :class:`NoChartData` when no run has a numeric value."""
    data, _ = _run_values(frame, [metric])
    if data.empty or not _is_numeric(data[metric]):
        raise NoChartData(f"No selected run has a numeric {metric}. Pick another metric.")
    data = data.sort_values(metric, ascending=lower_is_better, kind="stable")
    best = data.head(FINAL_VALUES_MAX_BARS)
    baseline = _baseline_label(_run_labels(frame)[1], highlight_run)
    bars = pd.DataFrame(
        {
            "run": best["run"],
            "value": best[metric],
            "rank": range(1, len(best) + 1),
            "role": np.where(best["run"] == baseline, "baseline", "run"),
        }
    )
    direction = "lower is better" if lower_is_better else "higher is better"
    shown = (
        f"Best {len(best)} of {len(data)} runs"
        if len(data) > len(best)
        else f"All {len(data)} runs"
    )
    return (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=metric),
            y=alt.Y("run:N", sort=bars["run"].tolist(), title=None, axis=BAR_LABELS),
            color=alt.Color("role:N", scale=alt.Scale(domain=["run", "baseline"]), legend=None),
            tooltip=[
                alt.Tooltip("rank:Q", title="Rank"),
                alt.Tooltip("run:N", title="Run"),
                alt.Tooltip("value:Q", title=metric, format=".4~g"),
            ],
        )
        .properties(
            title=_title(f"Final {metric}", [f"{shown}; {direction}."]),
            height=20 * len(bars),
            autosize=FIT_WIDTH,
        )
    )
