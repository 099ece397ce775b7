"""Which parameters go with a metric, over the runs of a runs frame: a table and its chart."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from services.experiments.charts.common import (
    BAR_LABELS,
    FIT_WIDTH,
    NoChartData,
    _require,
    _title,
    numeric_or_none,
)


def parameter_importance(frame: pd.DataFrame, metric: str, params: list[str]) -> pd.DataFrame:
    """How strongly each parameter of a **runs frame** goes with ``metric``.

    Numeric parameters: Spearman's rank correlation ρ (signed; ``abs_correlation`` = |ρ|).
    Categorical parameters: the correlation ratio η of the metric's ranks across the
    categories (0 = the categories do not matter, 1 = they decide the metric); it has no sign,
    so ``correlation`` = ``abs_correlation`` = η. Using ranks for both keeps them comparable and
    robust to a diverging run. Runs lacking either value are ignored pair by pair.

    Returns one row per parameter with ``param``, ``method`` ("spearman" or "eta"),
    ``correlation``, ``abs_correlation``, ``runs`` (runs with both values) and ``reason``:
    ranked parameters first, strongest first, with an empty reason; then the left-out ones
    (fewer than 3 runs, one value in every run, a constant metric, or a categorical parameter
    with more than half as many values as runs) with NaN correlations and the reason."""
    _require(frame, [metric, *params])
    target = numeric_or_none(frame[metric])
    rows = []
    for param in params:
        numbers = numeric_or_none(frame[param])
        values = numbers if numbers is not None else frame[param].astype("string")
        pair = pd.DataFrame({"x": values, "y": target if target is not None else np.nan})
        pair = pair[pair["x"].notna() & np.isfinite(pair["y"])]
        method = "spearman" if numbers is not None else "eta"
        distinct = pair["x"].nunique()
        reason = ""
        if target is None:
            reason = f"{metric} is not numeric"
        elif len(pair) < 3:
            reason = f"only {len(pair)} run(s) with both values"
        elif distinct < 2:
            reason = "same value in every run"
        elif pair["y"].nunique() < 2:
            reason = f"{metric} is the same in every run"
        elif method == "eta" and distinct > len(pair) / 2:
            reason = f"{distinct} distinct values for {len(pair)} runs"
        correlation = np.nan
        if not reason:
            ranks = pair["y"].rank()
            if method == "spearman":
                correlation = float(pair["x"].rank().corr(ranks))
            else:
                means = ranks.groupby(pair["x"]).agg(["mean", "size"])
                between = float((means["size"] * (means["mean"] - ranks.mean()) ** 2).sum())
                correlation = float(np.sqrt(between / ((ranks - ranks.mean()) ** 2).sum()))
        rows.append((param, method, correlation, abs(correlation), len(pair), reason))
    columns = ["param", "method", "correlation", "abs_correlation", "runs", "reason"]
    table = pd.DataFrame(rows, columns=columns)
    table["ranked"] = table["reason"] == ""
    table = table.sort_values(["ranked", "abs_correlation"], ascending=False, kind="stable")
    return table.drop(columns="ranked").reset_index(drop=True)


def importance_chart(frame: pd.DataFrame, metric: str, params: list[str]) -> alt.Chart:
    """Horizontal bars of :func:`parameter_importance` for a **runs frame**, strongest first,
    coloured by direction (higher value → higher or lower metric, or categorical); the left-out
    parameters and why are in the subtitle. Raises :class:`NoChartData` when none can be
    ranked, with the reasons."""
    table = parameter_importance(frame, metric, params)
    ranked, left_out = table[table["reason"] == ""], table[table["reason"] != ""]
    skipped = "; ".join(f"{r.param} ({r.reason})" for r in left_out.itertuples())
    if ranked.empty:
        raise NoChartData(
            f"No parameter can be ranked against {metric}: {skipped or 'none chosen'}."
        )
    effect = np.select(
        [ranked["method"] == "eta", ranked["correlation"] >= 0],
        ["depends on the category", f"higher value → higher {metric}"],
        f"higher value → lower {metric}",
    )
    bars = ranked.assign(effect=effect)
    notes = ["|Spearman ρ| for numeric parameters, correlation ratio η for categorical ones."]
    if skipped:
        notes.append(f"Left out: {skipped}.")
    return (
        alt.Chart(bars)
        .mark_bar()
        .encode(
            x=alt.X("abs_correlation:Q", title="Importance", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("param:N", sort=bars["param"].tolist(), title=None, axis=BAR_LABELS),
            color=alt.Color(
                "effect:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=320)
            ),
            tooltip=[
                alt.Tooltip("param:N", title="Parameter"),
                alt.Tooltip("correlation:Q", title="Correlation", format="+.2f"),
                alt.Tooltip("method:N", title="Method"),
                alt.Tooltip("runs:Q", title="Runs"),
            ],
        )
        .properties(
            title=_title(f"What goes with {metric}", notes),
            height=26 * len(bars),
            autosize=FIT_WIDTH,
        )
    )
