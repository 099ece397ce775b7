"""Experiments: search MLflow runs across experiments, compare any number of them against a
baseline, chart their histories, open one run.

Shared links: ``?experiments=…&q=…&runs=id,id&baseline=…&metrics=…`` reproduce a comparison;
``?run=<id>`` opens a run."""

from __future__ import annotations

import streamlit as st

from pages.components import (
    experiments_charts,
    experiments_compare,
    experiments_run,
    experiments_search,
)
from pages.components.context import current_actor, settings
from pages.components.feedback import show_flash, with_last_good
from pages.components.guard import page_user

page_user("experiments")
show_flash()

if "run" in st.query_params:
    experiments_run.render(st.query_params["run"])
    st.stop()

actor = current_actor()
uri = settings().resolved_tracking_uri
experiments, _ = with_last_good(
    "experiments", uri, lambda: experiments_search.cached_experiments(uri, actor)
)
if experiments is None:
    st.stop()
if not experiments:
    st.info(
        "The MLflow tracking store has no experiments yet. Launch a fine-tuning job (Fine-tuning "
        "page) and its run appears here, or log runs to "
        f"`{uri}` from your own code.",
        icon=":material/experiment:",
    )
    st.stop()

state = experiments_search.search_form(experiments)
result, stale_since = experiments_search.run_search(state)
if stale_since is not None:
    st.warning(
        f"Showing the runs as they were at {stale_since:%H:%M:%S} UTC: MLflow did not answer.",
        icon=":material/history:",
    )
if result is not None:
    if not result.runs:
        st.info(
            "No run matches. Clear the filter, or choose other experiments.",
            icon=":material/search_off:",
        )
    else:
        experiments_search.runs_table(result)

chosen = experiments_search.selected_ids()
if chosen:
    found, stale_runs = with_last_good(
        "selected-runs",
        (uri, tuple(chosen)),
        lambda: experiments_search.cached_runs(uri, actor, tuple(chosen)),
    )
    if stale_runs is not None:
        st.warning(
            f"Comparing the runs as they were at {stale_runs:%H:%M:%S} UTC: MLflow did not answer.",
            icon=":material/history:",
        )
    if found is not None:
        selected, missing = found
        if missing:
            st.warning(
                f"{len(missing)} run(s) in this link no longer exist (deleted?): "
                + ", ".join(missing[:5])
                + ("…" if len(missing) > 5 else ""),
                icon=":material/link_off:",
            )
        if selected:
            st.markdown(f"#### Comparing {len(selected):,} runs")
            frame = experiments_compare.comparison(selected)
            if frame is not None:
                experiments_charts.render(selected, frame)
else:
    st.caption("Tick runs in the table to compare them, chart their histories and export them.")
