"""Chart builders for the Experiments page: pure functions from tidy pandas frames to Altair
charts, ready for ``st.altair_chart(chart, width="stretch")``. No Streamlit, no MLflow.

Two frame shapes come in:

* a **history frame**, one row per logged point: ``run`` (display label, str), ``run_id`` (str),
  ``metric`` (str), ``step`` (int), ``value`` (float), ``timestamp`` (int, ms since the epoch)
  and optionally ``relative_seconds`` (float, seconds since the run's first point);
* a **runs frame**, one row per run: ``run`` (display label, str), optionally ``run_id``, and one
  column per parameter or metric, named as in MLflow. Parameters may be strings as MLflow stores
  them: a column whose values all parse as numbers is treated as numeric, any other as
  categorical.

Rows with a missing (NaN) value in a column a chart needs are dropped. When nothing is left to
draw a builder raises :class:`NoChartData`, whose message says why in the user's words: pages
show it with ``st.info`` instead of an empty chart. Missing columns are a programming error and
raise a plain ``ValueError``.
"""

from services.experiments.charts.common import LEGEND_MAX_RUNS, NoChartData, numeric_or_none
from services.experiments.charts.history import RAW_TRACE_MAX_RUNS, XAxis, history_chart
from services.experiments.charts.importance import importance_chart, parameter_importance
from services.experiments.charts.per_run import (
    FINAL_VALUES_MAX_BARS,
    final_values_chart,
    parallel_coordinates_chart,
    scatter_chart,
)

__all__ = [
    "FINAL_VALUES_MAX_BARS",
    "LEGEND_MAX_RUNS",
    "RAW_TRACE_MAX_RUNS",
    "NoChartData",
    "XAxis",
    "final_values_chart",
    "history_chart",
    "importance_chart",
    "numeric_or_none",
    "parallel_coordinates_chart",
    "parameter_importance",
    "scatter_chart",
]
