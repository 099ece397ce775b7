"""Experiments page, the comparison: the selected runs side by side (or transposed), with a
pinned baseline and every other run's deltas coloured better or worse by each metric's
direction, a "differences only" switch, and the table as CSV."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from pages.components.context import settings
from pages.components.formatting import BAD, GOOD, local_time
from services.experiments.runs import RunRecord
from services.experiments.table import (
    Direction,
    baseline_deltas,
    direction_of,
    runs_frame,
    transposed,
)

BETTER, WORSE = GOOD, BAD


def direction_overrides(metrics: list[str]) -> dict[str, Direction]:
    """Which metrics are better when higher, as the user set them (URL ``higher=a,b``)."""
    default = [m for m in metrics if direction_of(m) == "max"]
    raw = st.query_params.get("higher")
    wanted = [m for m in raw.split(",") if m in metrics] if raw is not None else default
    chosen = st.multiselect(
        "Higher is better for",
        metrics,
        default=wanted,
        help="Losses, errors, perplexity, latency and cost are better lower; the rest higher. "
        "Change it here for your metrics.",
    )
    if sorted(chosen) != sorted(default):
        st.query_params["higher"] = ",".join(chosen)
    else:
        st.query_params.pop("higher", None)
    return {m: ("max" if m in chosen else "min") for m in metrics}


def baseline_choice(runs: list[RunRecord]) -> str:
    labels = {r.run_id: f"{r.name} · {r.experiment}" for r in runs}
    wanted = st.query_params.get("baseline", "")
    ids = list(labels)
    baseline = st.selectbox(
        "Baseline",
        ids,
        index=ids.index(wanted) if wanted in labels else 0,
        format_func=labels.__getitem__,
        help="Every other run's metrics are shown as differences from this run.",
    )
    st.query_params["baseline"] = baseline
    return str(baseline)


def comparison(runs: list[RunRecord]) -> pd.DataFrame | None:
    """Draw the comparison of ``runs``; returns the frame shown (for export and charts)."""
    metrics = sorted({k for r in runs for k in r.metrics})
    top = st.columns([2, 3, 1.2, 1.2], vertical_alignment="bottom")
    with top[0]:
        baseline = baseline_choice(runs)
    with top[1]:
        overrides = direction_overrides(metrics)
    differences = top[2].toggle("Differences only", value=st.query_params.get("diff") == "1")
    layout = st.query_params.get("layout", "transposed" if len(runs) > 50 else "rows")
    flip = top[3].toggle("Transposed", value=layout == "transposed")
    _flag("diff", "1" if differences else "")
    st.query_params["layout"] = "transposed" if flip else "rows"
    frame = runs_frame(runs, differences_only=differences)
    deltas, verdicts = baseline_deltas(frame, baseline, overrides)
    shown = _with_deltas(frame, deltas, baseline)
    if flip:
        st.dataframe(
            transposed(shown), width="stretch", height=min(38 + 35 * len(shown.columns), 640)
        )
    else:
        numbers = pd.Index([c for c in shown.columns if c.startswith(("metrics.", "Δ "))])
        styled = shown.style.apply(lambda _: _colours(verdicts, shown), axis=None).format(
            "{:.4g}", subset=numbers, na_rep=""
        )
        st.dataframe(
            styled,
            hide_index=True,
            width="stretch",
            height=min(38 + 35 * len(shown), 640),
            column_config={
                "Run": st.column_config.TextColumn(pinned=True),
                "Minutes": st.column_config.NumberColumn(format="%.1f"),
            },
        )
    st.download_button(
        "Download as CSV",
        shown.to_csv(index=True).encode(),
        file_name="run-comparison.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    st.caption(
        f"{len(runs):,} runs compared against **{_name(runs, baseline)}**; green is better "
        "than the baseline, red worse. This page's address reproduces the comparison."
    )
    return frame


def _name(runs: list[RunRecord], run_id: str) -> str:
    return next((r.name for r in runs if r.run_id == run_id), run_id)


def _flag(name: str, value: str) -> None:
    if value and value != "rows":
        st.query_params[name] = value
    else:
        st.query_params.pop(name, None)


def _with_deltas(frame: pd.DataFrame, deltas: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Run and experiment, then each metric followed by its difference from the baseline
    ("Δ metric"), then params and tags, then status and times."""
    out = frame[["Run", "Experiment"]].copy()
    for column in map(str, deltas.columns):
        out[column] = frame[column]
        out[f"Δ {column.removeprefix('metrics.')}"] = deltas[column].where(frame.index != baseline)
    rest = [c for c in frame.columns if c.startswith(("params.", "tags."))]
    out[rest] = frame[rest]
    zone = settings().zone
    out["Status"] = frame["Status"]
    out["Started"] = [
        local_time(t, zone, with_zone=False) if pd.notna(t) else "—" for t in frame["Started"]
    ]
    out["Minutes"] = frame["Minutes"]
    return out


def _colours(verdicts: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
    styles = pd.DataFrame("", index=shown.index, columns=shown.columns)
    for column in map(str, verdicts.columns):
        target = f"Δ {column.removeprefix('metrics.')}"
        styles[target] = (
            verdicts[column]
            .map({"better": f"color: {BETTER}", "worse": f"color: {WORSE}"})
            .fillna("")
        )
    return styles


def directions(metrics: list[str], overrides: Mapping[str, Direction]) -> dict[str, bool]:
    """metric -> lower is better."""
    return {m: direction_of(m, overrides) == "min" for m in metrics}
