"""Experiments page, the charts of the selected runs: metric histories (step, relative or wall
time; smoothing; log scale), a scatter of any two columns, parallel coordinates, final values
and a simple parameter importance. One chart at a time, its settings in the URL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from pages.components.context import current_actor, database, settings
from pages.components.feedback import with_last_good
from pages.components.formatting import local_time
from services.experiments import charts, curves
from services.experiments.runs import RunRecord
from services.experiments.table import direction_of

KINDS = {
    "history": "Metric history",
    "scatter": "Scatter",
    "parallel": "Parallel coordinates",
    "final": "Final values",
    "importance": "Parameter importance",
}
X_AXES = {"step": "Step", "relative": "Relative time", "wall": "Wall time"}
AXES: dict[str, charts.XAxis] = {"step": "step", "relative": "relative", "wall": "wall"}


def _param(name: str, options: Sequence[str], default: str) -> str:
    value = st.query_params.get(name, default)
    return value if value in options else default


def runs_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """The charts' runs frame: ``run``, ``run_id`` and one column per param and metric."""
    rows = []
    for run in runs:
        row: dict[str, object] = {"run": run.name, "run_id": run.run_id}
        row.update(run.params)
        row.update({k if k not in run.params else f"metric {k}": v for k, v in run.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def render(runs: list[RunRecord], frame: pd.DataFrame) -> None:
    metrics = sorted({k for r in runs for k in r.metrics})
    params = sorted({k for r in runs for k in r.params})
    if not metrics:
        st.info(
            "These runs logged no metrics, so there is nothing to chart.",
            icon=":material/show_chart:",
        )
        return
    kind = (
        st.segmented_control(
            "Chart",
            list(KINDS),
            default=_param("chart", list(KINDS), "history"),
            format_func=KINDS.__getitem__,
            label_visibility="collapsed",
        )
        or "history"
    )
    st.query_params["chart"] = kind
    baseline = st.query_params.get("baseline")
    try:
        if kind == "history":
            _history(runs, metrics, baseline)
        elif kind == "scatter":
            _scatter(runs, params + metrics, metrics)
        elif kind == "parallel":
            _parallel(runs, params, metrics)
        elif kind == "final":
            metric = st.selectbox("Metric", metrics, index=metrics.index(_primary(metrics)))
            st.altair_chart(
                charts.final_values_chart(
                    runs_table(runs),
                    metric,
                    lower_is_better=direction_of(metric) == "min",
                    highlight_run=baseline,
                ),
                width="stretch",
            )
        else:
            _importance(runs, params, metrics)
    except charts.NoChartData as empty:
        st.info(str(empty), icon=":material/show_chart:")


def _primary(metrics: list[str]) -> str:
    for wanted in ("eval_loss", "train_loss", "accuracy"):
        if wanted in metrics:
            return wanted
    return metrics[0]


def _history(runs: list[RunRecord], metrics: list[str], baseline: str | None) -> None:
    wanted = [m for m in st.query_params.get_all("metrics") if m in metrics]
    default = wanted or [m for m in ("train_loss", "eval_loss") if m in metrics] or metrics[:1]
    cols = st.columns([3, 1.6, 1.2, 0.8], vertical_alignment="bottom")
    chosen = cols[0].multiselect("Metrics", metrics, default=default)
    x = (
        cols[1].segmented_control(
            "X axis",
            list(X_AXES),
            default=_param("x", list(X_AXES), "step"),
            format_func=X_AXES.__getitem__,
        )
        or "step"
    )
    smoothing = cols[2].slider(
        "Smoothing", 0.0, 0.99, float(st.query_params.get("smooth", 0)), step=0.01
    )
    log_scale = cols[3].toggle("Log", value=st.query_params.get("log") == "1")
    st.query_params["metrics"] = chosen
    st.query_params["x"] = x
    _keep("smooth", f"{smoothing:g}" if smoothing else "")
    _keep("log", "1" if log_scale else "")
    if not chosen:
        st.caption("Choose a metric to draw.")
        return
    loaded = _curves_or_last_good(runs, chosen)
    if loaded is None:
        return
    st.altair_chart(
        charts.history_chart(
            loaded.frame,
            x=AXES[x],
            smoothing=smoothing,
            log_scale=log_scale,
            highlight_run=baseline,
            zone=settings().zone,
        ),
        width="stretch",
    )
    notes = [f"up to {loaded.points_per_run:,} points per run and metric"]
    if loaded.hidden:
        notes.append(f"{loaded.hidden:,} NaN or infinite values hidden")
    st.caption("Drawn with " + "; ".join(notes) + ".")


def _curves_or_last_good(runs: list[RunRecord], chosen: list[str]) -> Any:
    """The runs' curves; when MLflow does not answer, the last curves drawn for the same runs
    and metrics in this session, marked with when they were fetched."""
    key = (tuple(sorted(r.run_id for r in runs)), tuple(chosen))
    loaded, fetched = with_last_good(
        "curves",
        key,
        lambda: curves.run_curves(
            database(), settings(), actor=current_actor(), runs=runs, keys=chosen
        ),
    )
    if fetched is not None:
        st.warning(
            f"Showing the curves as they were at {local_time(fetched, settings().zone)}: "
            "MLflow did not answer.",
            icon=":material/history:",
        )
    return loaded


def _keep(name: str, value: str) -> None:
    if value:
        st.query_params[name] = value
    else:
        st.query_params.pop(name, None)


def _scatter(runs: list[RunRecord], columns: list[str], metrics: list[str]) -> None:
    cols = st.columns(3)
    x = cols[0].selectbox("X", columns, index=0)
    y = cols[1].selectbox("Y", metrics, index=metrics.index(_primary(metrics)))
    colour = cols[2].selectbox("Colour", [None, *columns], format_func=lambda c: c or "—")
    st.altair_chart(charts.scatter_chart(runs_table(runs), x, y, colour), width="stretch")


def _parallel(runs: list[RunRecord], params: list[str], metrics: list[str]) -> None:
    cols = st.columns([3, 1])
    primary = _primary(metrics)
    varying = [p for p in params if len({r.params.get(p) for r in runs}) > 1]
    chosen = cols[0].multiselect("Axes", params + metrics, default=[*varying[:4], primary])
    colour = cols[1].selectbox("Colour by", metrics, index=metrics.index(primary))
    if len(chosen) < 2:
        st.caption("Choose at least two axes.")
        return
    st.altair_chart(
        charts.parallel_coordinates_chart(
            runs_table(runs), chosen, colour, lower_is_better=direction_of(colour) == "min"
        ),
        width="stretch",
    )


def _importance(runs: list[RunRecord], params: list[str], metrics: list[str]) -> None:
    metric = st.selectbox("Metric", metrics, index=metrics.index(_primary(metrics)))
    table = runs_table(runs)
    st.altair_chart(charts.importance_chart(table, metric, params), width="stretch")
    ranked = charts.parameter_importance(table, metric, params)
    st.dataframe(ranked, hide_index=True, width="stretch")
    st.caption("Rank correlation across the selected runs: a hint of what matters, not proof.")
