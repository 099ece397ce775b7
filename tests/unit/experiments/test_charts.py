"""The Experiments page's charts, read through their Vega-Lite specs: what a user would see
on the axes, in the tooltips and in the data each chart draws."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.experiments import charts
from services.experiments.charts import NoChartData
from services.experiments.charts.history import MARKED_POINTS_MAX

T0 = 1_760_000_000_000  # ms


def history(
    runs: int = 3, metrics: tuple[str, ...] = ("train_loss",), steps: int = 5
) -> pd.DataFrame:
    rows = [
        {
            "run": f"run-{r}",
            "run_id": f"{r:032x}",
            "metric": metric,
            "step": step,
            "value": 1.0 + r + 1.0 / (step + 1),
            "timestamp": T0 + r * 3_600_000 + step * 1_000,
        }
        for r in range(runs)
        for metric in metrics
        for step in range(steps)
    ]
    return pd.DataFrame(rows)


def views(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("vconcat") or spec.get("layer") or [spec]


def rows_of(spec: dict[str, Any], view: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rows one view draws (its own data, or the chart's)."""
    name = ((view or {}).get("data") or spec["data"])["name"]
    return spec["datasets"][name]


def subtitle(view: dict[str, Any]) -> str:
    return " ".join(view["title"]["subtitle"])


# --- metric history ------------------------------------------------------------------------


def test_history_draws_one_chart_per_metric_with_step_on_x() -> None:
    spec = charts.history_chart(history(metrics=("train_loss", "eval_loss"))).to_dict()
    titles = [view["title"]["text"] for view in spec["vconcat"]]
    assert titles == ["train_loss", "eval_loss"]
    for view in spec["vconcat"]:
        assert view["encoding"]["x"]["field"] == "step"
        assert view["encoding"]["x"]["title"] == "Step"
        assert view["encoding"]["color"]["field"] == "run"
        assert view["mark"]["type"] == "line"
    assert spec["params"][0]["select"]["on"] == "pointerover"


def test_sparse_runs_mark_their_points_so_a_single_value_shows() -> None:
    once = history(runs=2, metrics=("eval_loss",), steps=1)
    marked = views(charts.history_chart(once).to_dict())[0]["mark"]
    assert marked["type"] == "line" and marked["point"]["filled"] is True
    dense = history(runs=2, steps=MARKED_POINTS_MAX + 1)
    assert views(charts.history_chart(dense).to_dict())[0]["mark"].get("point") is False


def test_smoothing_is_tensorboards_debiased_ema_with_the_raw_line_faint_behind() -> None:
    values = [1.0, 2.0, 3.0, 10.0, 4.0, 4.5]
    frame = pd.DataFrame(
        {
            "run": "a",
            "run_id": "id-a",
            "metric": "loss",
            "step": [0, 1, 2, 5, 9, 10],  # irregular steps
            "value": values,
            "timestamp": T0,
        }
    )
    weight, last, expected = 0.6, 0.0, []
    for n, value in enumerate(values, start=1):
        last = last * weight + (1 - weight) * value
        expected.append(last / (1 - weight**n))

    spec = charts.history_chart(frame, smoothing=weight).to_dict()
    rows = rows_of(spec)
    smoothed = [r["y"] for r in rows if r["series"] == "smoothed"]
    raw = [r["y"] for r in rows if r["series"] == "raw"]
    assert smoothed == pytest.approx(expected, rel=1e-6)
    assert raw == pytest.approx(values)
    assert smoothed[3] < values[3]  # the spike is damped
    opacity = spec["encoding"]["opacity"]["condition"]
    assert opacity[1]["value"] < opacity[0]["value"] == 1.0  # raw fainter than smoothed
    assert "Smoothed" in subtitle(spec)


def test_smoothing_zero_draws_the_raw_values_only() -> None:
    spec = charts.history_chart(history(runs=1)).to_dict()
    assert {r["series"] for r in rows_of(spec)} == {"raw"}


def test_legend_is_shown_for_a_few_runs_and_hidden_above_the_threshold() -> None:
    few = charts.history_chart(history(runs=charts.LEGEND_MAX_RUNS)).to_dict()
    many = charts.history_chart(history(runs=charts.LEGEND_MAX_RUNS + 1)).to_dict()
    assert few["encoding"]["color"]["legend"] is not None
    assert many["encoding"]["color"]["legend"] is None
    assert "hover a line" in subtitle(many)


def test_log_scale_leaves_out_values_at_or_below_zero_and_says_so() -> None:
    frame = history(runs=2)
    frame.loc[frame.index[:2], "value"] = [0.0, -1.0]
    spec = charts.history_chart(frame, log_scale=True).to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    assert min(r["y"] for r in rows_of(spec)) > 0
    assert "2 point(s) ≤ 0 left out" in subtitle(spec)


def test_log_scale_falls_back_to_linear_when_nothing_is_positive() -> None:
    frame = history(runs=1).assign(value=-1.0)
    spec = charts.history_chart(frame, log_scale=True).to_dict()
    assert spec["encoding"]["y"]["scale"].get("type") != "log"
    assert "Log scale off" in subtitle(spec)


def test_nan_and_infinite_values_never_reach_the_chart() -> None:
    frame = history(runs=2, steps=6)
    frame.loc[[1, 4], "value"] = [np.nan, np.inf]
    spec = charts.history_chart(frame, smoothing=0.5).to_dict()
    ys = [r["y"] for r in rows_of(spec)]
    assert len(ys) == 2 * (len(frame) - 2)
    assert all(isinstance(y, float) and math.isfinite(y) for y in ys)


@pytest.mark.parametrize(
    "frame",
    [
        history().iloc[0:0],
        history().assign(value=np.nan),
    ],
    ids=["empty", "all-nan"],
)
def test_history_without_values_raises_no_chart_data(frame: pd.DataFrame) -> None:
    with pytest.raises(NoChartData, match="no values"):
        charts.history_chart(frame)


def test_baseline_by_run_id_is_drawn_thicker_and_named() -> None:
    frame = history(runs=3)
    spec = charts.history_chart(frame, highlight_run=frame["run_id"].iloc[-1]).to_dict()
    widths = spec["encoding"]["strokeWidth"]
    baseline_rule = widths["condition"][1]
    assert baseline_rule["test"] == "(datum.run === 'run-2')"
    assert baseline_rule["value"] > widths["value"]
    assert "baseline run-2" in subtitle(spec)
    assert rows_of(spec)[-1]["run"] == "run-2"  # drawn last, on top


def test_runs_sharing_a_name_stay_apart() -> None:
    frame = history(runs=2).assign(run="same name")
    runs = {r["run"] for r in rows_of(charts.history_chart(frame).to_dict())}
    assert len(runs) == 2
    assert all(run.startswith("same name (") for run in runs)


def test_wall_clock_axis_shows_the_reporting_time_zone() -> None:
    spec = charts.history_chart(history(runs=1), x="wall", zone="Europe/Paris").to_dict()
    x = spec["encoding"]["x"]
    assert (x["field"], x["type"], x["scale"]["type"]) == ("wall", "temporal", "utc")
    assert x["title"] == "Time (Europe/Paris)"
    first = rows_of(spec)[0]["wall"]
    assert first - T0 == 2 * 3_600_000  # 2025-10-09 is summer time: UTC+2 wall clock


def test_relative_axis_counts_from_each_runs_first_point() -> None:
    spec = charts.history_chart(history(runs=2), x="relative").to_dict()
    assert spec["encoding"]["x"]["title"] == "Time since run start (s)"
    starts = {r["run"]: r["relative"] for r in rows_of(spec) if r["relative"] == 0}
    assert set(starts) == {"run-0", "run-1"}


def test_metrics_at_irregular_steps_share_the_step_axis() -> None:
    train = history(runs=1, metrics=("train_loss",), steps=10)
    evals = history(runs=1, metrics=("eval_loss",), steps=10).iloc[::5]
    spec = charts.history_chart(pd.concat([train, evals])).to_dict()
    assert spec["resolve"]["scale"]["x"] == "shared"
    assert [r["step"] for r in rows_of(spec, spec["vconcat"][1])] == [0, 5]


# --- one row per run -----------------------------------------------------------------------


def runs_frame(n: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-5, -3, n)
    noise = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "run": [f"run-{i}" for i in range(n)],
            "run_id": [f"{i:032x}" for i in range(n)],
            "learning_rate": [f"{v:.2e}" for v in lr],  # MLflow keeps params as strings
            "noise": noise,
            "scheduler": rng.choice(["cosine", "linear"], n),
            "epochs": "3",
            "eval_loss": 0.5 + (np.log10(lr) + 5) * 0.4 + rng.normal(0, 0.02, n),
            "accuracy": rng.uniform(0.5, 0.9, n),
        }
    )


def test_scatter_puts_the_chosen_columns_on_the_axes_with_a_tooltip() -> None:
    spec = charts.scatter_chart(runs_frame(), "learning_rate", "eval_loss", "accuracy").to_dict()
    enc = spec["encoding"]
    assert (enc["x"]["title"], enc["x"]["type"]) == ("learning_rate (log scale)", "quantitative")
    assert enc["x"]["scale"]["type"] == "log"  # 1e-5 to 1e-3
    assert (enc["y"]["title"], enc["color"]["type"]) == ("eval_loss", "quantitative")
    assert [t["title"] for t in enc["tooltip"]] == ["Run", "learning_rate", "eval_loss", "accuracy"]
    assert isinstance(rows_of(spec)[0]["x"], float)


def test_scatter_with_a_categorical_x_spreads_points_sideways() -> None:
    spec = charts.scatter_chart(runs_frame(), "scheduler", "eval_loss", None).to_dict()
    assert spec["encoding"]["x"]["type"] == "nominal"
    assert spec["encoding"]["xOffset"]["field"] == "x_jitter"
    assert "color" not in spec["encoding"]


def test_scatter_drops_runs_without_both_values_and_says_so() -> None:
    frame = runs_frame(5)
    frame.loc[0, "eval_loss"] = np.nan
    spec = charts.scatter_chart(frame, "noise", "eval_loss").to_dict()
    assert len(rows_of(spec)) == 4
    assert "1 run(s) without these values left out" in subtitle(spec)
    with pytest.raises(NoChartData):
        charts.scatter_chart(frame.iloc[:1], "noise", "eval_loss")


def test_parallel_coordinates_fold_normalise_and_keep_original_values() -> None:
    frame = runs_frame(6)
    chart = charts.parallel_coordinates_chart(
        frame, ["learning_rate", "scheduler", "eval_loss"], "accuracy"
    )
    spec = chart.to_dict()
    lines = spec["layer"][1]
    assert lines["mark"]["type"] == "line"
    assert lines["encoding"]["x"]["sort"] == ["learning_rate", "scheduler", "eval_loss"]
    assert lines["encoding"]["color"]["field"] == "color"
    transforms = lines["transform"]
    assert transforms[0]["joinaggregate"][0]["op"] == "min"
    assert "datum.position - datum.lo" in transforms[1]["calculate"]
    rows = rows_of(spec)
    assert len(rows) == 6 * 3
    positions = {r["position"] for r in rows if r["axis"] == "scheduler"}
    assert positions <= {0.0, 1.0}  # categories at ordinal positions
    tips = [t["title"] for t in lines["encoding"]["tooltip"]]
    assert tips == ["Run", "accuracy", "learning_rate", "scheduler", "eval_loss"]
    assert {r["t1"] for r in rows} <= {"cosine", "linear"}
    assert "Log scale: learning_rate" in subtitle(spec)


def test_parallel_coordinates_leave_out_runs_lacking_a_value() -> None:
    frame = runs_frame(4)
    frame.loc[0, "noise"] = np.nan
    spec = charts.parallel_coordinates_chart(frame, ["noise", "eval_loss"], "accuracy").to_dict()
    assert len({r["run"] for r in rows_of(spec)}) == 3
    assert "1 run(s) lacking a value left out" in subtitle(spec)
    with pytest.raises(NoChartData):
        charts.parallel_coordinates_chart(frame, [], "accuracy")


@pytest.mark.parametrize("lower_is_better", [True, False])
def test_final_values_are_sorted_best_first(lower_is_better: bool) -> None:
    frame = runs_frame(10)
    spec = charts.final_values_chart(frame, "eval_loss", lower_is_better=lower_is_better).to_dict()
    values = [r["value"] for r in rows_of(spec)]
    assert values == sorted(values, reverse=not lower_is_better)
    assert spec["encoding"]["y"]["sort"] == [r["run"] for r in rows_of(spec)]
    direction = "lower is better" if lower_is_better else "higher is better"
    assert subtitle(spec) == f"All 10 runs; {direction}."


def test_final_values_keep_the_best_fifty_and_say_so() -> None:
    frame = runs_frame(120)
    spec = charts.final_values_chart(frame, "accuracy", lower_is_better=False).to_dict()
    rows = rows_of(spec)
    assert len(rows) == charts.FINAL_VALUES_MAX_BARS == 50
    assert rows[0]["value"] == frame["accuracy"].max()
    assert subtitle(spec).startswith("Best 50 of 120 runs")


def test_final_values_of_a_single_run_and_of_none() -> None:
    frame = runs_frame(1)
    assert (
        len(rows_of(charts.final_values_chart(frame, "eval_loss", lower_is_better=True).to_dict()))
        == 1
    )
    with pytest.raises(NoChartData, match="eval_loss"):
        charts.final_values_chart(frame.assign(eval_loss=np.nan), "eval_loss", lower_is_better=True)


# --- parameter importance ------------------------------------------------------------------


def test_importance_ranks_the_driving_parameter_above_a_random_one() -> None:
    table = charts.parameter_importance(
        runs_frame(40), "eval_loss", ["noise", "learning_rate", "scheduler", "epochs"]
    )
    assert list(table.columns) == [
        "param",
        "method",
        "correlation",
        "abs_correlation",
        "runs",
        "reason",
    ]
    ranked = table[table["reason"] == ""]
    assert ranked["param"].iloc[0] == "learning_rate"
    assert ranked["correlation"].iloc[0] > 0.9  # higher learning rate, higher loss
    assert set(ranked["param"]) == {"learning_rate", "noise", "scheduler"}
    assert ranked.set_index("param").loc["scheduler", "method"] == "eta"
    assert table.set_index("param").loc["epochs", "reason"] == "same value in every run"


def test_importance_leaves_out_parameters_with_too_few_runs() -> None:
    table = charts.parameter_importance(runs_frame(2), "eval_loss", ["noise"])
    assert table["reason"].iloc[0] == "only 2 run(s) with both values"
    assert math.isnan(table["correlation"].iloc[0])
    with pytest.raises(NoChartData, match="noise"):
        charts.importance_chart(runs_frame(2), "eval_loss", ["noise"])


def test_importance_chart_sorts_bars_strongest_first_and_lists_the_left_out() -> None:
    spec = charts.importance_chart(
        runs_frame(40), "eval_loss", ["noise", "learning_rate", "epochs"]
    ).to_dict()
    assert spec["encoding"]["y"]["sort"][0] == "learning_rate"
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert "Left out: epochs (same value in every run)" in subtitle(spec)
