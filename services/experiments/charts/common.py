"""What the chart builders share: the error for an empty chart, frame checks, run labels,
the hover highlight, titles, numeric detection and the layout constants."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

LEGEND_MAX_RUNS = 12  # more series than this: no legend, tooltip and hover highlight instead
NEUTRAL = "#7C8799"  # annotations that must read on light and dark backgrounds
# Stretch to the container's width; the height stays the plot's (fit would squeeze the plot).
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")
# Every bar keeps its name: Streamlit's theme would otherwise hide every other crowded label.
BAR_LABELS = alt.Axis(labelLimit=240, labelOverlap=False, labelFlush=False)


class NoChartData(ValueError):
    """Nothing is left to draw; the message tells the user why and what to do."""


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The chart frame lacks the column(s) {', '.join(missing)}.")


def numeric_or_none(column: pd.Series) -> pd.Series | None:
    """The column as floats when every present value is a number (MLflow keeps params as
    strings), else None: the column is categorical."""
    if pd.api.types.is_bool_dtype(column):
        return None
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    present = column.dropna()
    converted = pd.to_numeric(present, errors="coerce")
    if present.empty or converted.isna().any():
        return None
    return pd.to_numeric(column, errors="coerce").astype(float)


def _categorical(column: pd.Series) -> pd.Series:
    return column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")


def _run_labels(frame: pd.DataFrame) -> tuple[pd.Series, dict[str, str]]:
    """Run labels made unique (two runs with one name get a short id suffix), as a categorical
    (a history frame repeats them a million times), and each run id's label."""
    if "run_id" not in frame.columns:
        labels = _categorical(frame["run"].astype(str))
        return labels, {}
    ids = _categorical(frame["run_id"])
    first = frame["run"].groupby(ids, observed=True, sort=False).first()
    id_text = pd.Series(first.index.astype(str), index=first.index)
    first = first.astype("string").fillna(id_text).astype(str)
    clash = first.duplicated(keep=False)
    named = first.where(~clash, first + " (" + id_text.str[:8] + ")")
    named = named.where(~named.duplicated(keep=False), first + " (" + id_text + ")")
    by_id = dict(zip(id_text, named, strict=True))
    labels = ids.cat.rename_categories([by_id.get(str(c), str(c)) for c in ids.cat.categories])
    return labels, by_id


def _hover_select() -> alt.PointSelectionConfig:
    return alt.PointSelectionConfig(
        type="point", on="pointerover", clear="pointerout", fields=["run"], nearest=False
    )


def _hover() -> alt.Parameter:
    """Hovering a run's mark selects the run: it stays opaque and the others fade."""
    return alt.param(name="hover", select=_hover_select())


def _title(text: str, notes: list[str]) -> alt.TitleParams:
    return alt.TitleParams(text=text, subtitle=notes or [""], anchor="start")


def _baseline_label(by_id: dict[str, str], wanted: str | None) -> str | None:
    return None if wanted is None else by_id.get(wanted, wanted)


def _run_values(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """``run`` plus each column, numeric where it can be, as strings otherwise, and without
    the runs that lack one of them. Also returns how many runs were left out."""
    _require(frame, ["run", *columns])
    data = pd.DataFrame({"run": _run_labels(frame)[0].astype(str)}, index=frame.index)
    for column in dict.fromkeys(columns):
        numbers = numeric_or_none(frame[column])
        if numbers is not None:
            data[column] = numbers.where(np.isfinite(numbers))
        else:
            data[column] = frame[column].astype("string")
    complete = data.dropna()
    return complete, len(data) - len(complete)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(column)
