"""Experiments page, the search: experiments and MLflow filter in one form mirrored into the
URL, the matching runs in pages of a table with a "Compare" tick per run, and the selection
kept in the URL (``runs=id,id,…``) so a copied link reopens the same comparison."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import streamlit as st

from models.types import utcnow
from pages.components.context import current_actor, database, settings
from pages.components.feedback import show_error
from pages.components.formatting import local_time, table_height
from pages.components.layout import page_footer
from pages.components.registry_models import int_param
from services.access import Actor
from services.errors import ExternalServiceError, PortalError, ValidationError
from services.experiments import runs
from services.experiments.runs import ExperimentInfo, RunRecord, RunSearch
from services.experiments.table import runs_frame

PAGE_SIZE = 200
MAX_SELECTED = 500
SELECTED_KEY = "experiments-selected"
STALE_KEY = "experiments-last-good"


@dataclass(frozen=True)
class SearchState:
    experiment_ids: tuple[str, ...]
    filter_string: str
    order_by: str | None


@st.cache_data(ttl=30, show_spinner=False, max_entries=32)
def cached_experiments(uri: str, actor: Actor) -> list[ExperimentInfo]:
    return runs.list_experiments(database(), settings(), actor=actor)


@st.cache_data(ttl=30, show_spinner="Searching runs…", max_entries=64)
def cached_search(uri: str, actor: Actor, state: SearchState) -> RunSearch:
    return runs.search_runs(
        database(),
        settings(),
        actor=actor,
        experiment_ids=state.experiment_ids,
        filter_string=state.filter_string,
        order_by=state.order_by,
    )


@st.cache_data(ttl=30, show_spinner="Reading the selected runs…", max_entries=64)
def cached_runs(
    uri: str, actor: Actor, run_ids: tuple[str, ...]
) -> tuple[list[RunRecord], list[str]]:
    return runs.get_runs(database(), settings(), actor=actor, run_ids=run_ids)


def selected_ids() -> list[str]:
    """The runs ticked for comparison, in the order they were ticked (from the URL first)."""
    if SELECTED_KEY not in st.session_state:
        raw = st.query_params.get("runs", "")
        st.session_state[SELECTED_KEY] = [r for r in raw.split(",") if r][:MAX_SELECTED]
    chosen: list[str] = st.session_state[SELECTED_KEY]
    return chosen


def set_selected(run_ids: list[str]) -> None:
    st.session_state[SELECTED_KEY] = run_ids[:MAX_SELECTED]
    st.session_state["experiments-table-generation"] = (
        st.session_state.get("experiments-table-generation", 0) + 1
    )
    if run_ids:
        st.query_params["runs"] = ",".join(run_ids[:MAX_SELECTED])
    else:
        st.query_params.pop("runs", None)


def search_form(experiments: list[ExperimentInfo]) -> SearchState:
    names = {e.id: e.name for e in experiments}
    wanted = [e for e in st.query_params.get_all("experiments") if e in names]
    if not wanted and experiments:
        wanted = [experiments[0].id]
    with st.form("experiments-search", border=False):
        cols = st.columns([2.2, 3, 1.4, 0.8], vertical_alignment="bottom")
        chosen = cols[0].multiselect(
            "Experiments", list(names), default=wanted, format_func=names.__getitem__
        )
        text = cols[1].text_input(
            "Filter",
            value=st.query_params.get("q", ""),
            placeholder=runs.FILTER_EXAMPLE,
            help="MLflow's search syntax: metrics.*, params.*, tags.*, attributes.*; "
            "combine with `and`. Text values in quotes.",
        )
        order = cols[2].text_input(
            "Order by",
            value=st.query_params.get("sort", ""),
            placeholder="metrics.eval_loss ASC",
            help="Any column, e.g. metrics.accuracy DESC or attributes.start_time DESC.",
        )
        submitted = cols[3].form_submit_button("Search", type="primary", width="stretch")
    if submitted:
        _mirror({"experiments": chosen, "q": text.strip(), "sort": order.strip()})
        st.query_params.pop("page", None)
    return SearchState(tuple(chosen), text.strip(), order.strip() or None)


def _mirror(values: dict[str, object]) -> None:
    for name, value in values.items():
        if value:
            st.query_params[name] = value  # type: ignore[assignment]
        else:
            st.query_params.pop(name, None)


def run_search(state: SearchState) -> tuple[RunSearch | None, datetime | None]:
    """The runs for this search; when MLflow does not answer, the last good result of the same
    search (with the time it was fetched) instead of an empty page."""
    actor = current_actor()
    uri = settings().resolved_tracking_uri
    try:
        result = cached_search(uri, actor, state)
    except ValidationError as error:
        st.error(str(error), icon=":material/filter_alt_off:")
        return None, None
    except ExternalServiceError as error:
        show_error(error)
        stale = st.session_state.get(STALE_KEY, {}).get(state)
        if stale is None:
            return None, None
        return stale[1], stale[0]
    except PortalError as error:
        show_error(error)
        return None, None
    st.session_state.setdefault(STALE_KEY, {})[state] = (utcnow(), result)
    return result, None


def runs_table(result: RunSearch) -> None:
    """A page of the matching runs with a "Compare" tick each; ticking updates the selection."""
    total = len(result.runs)
    pages = max(1, -(-total // PAGE_SIZE))
    page = max(1, min(int_param("page", 1), pages))
    shown = result.runs[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    chosen = selected_ids()
    frame = runs_frame(shown)
    zone = settings().zone
    frame["Started"] = [local_time(r.start_time, zone, with_zone=False) for r in shown]
    frame.insert(0, "Compare", [r.run_id in chosen for r in shown])
    generation = st.session_state.get("experiments-table-generation", 0)
    edited = st.data_editor(
        frame.reset_index(drop=True),
        hide_index=True,
        disabled=[c for c in frame.columns if c != "Compare"],
        key=f"runs-{page}-{hash(tuple(r.run_id for r in shown))}-{generation}",
        height=table_height(len(shown), max_rows=14),
        column_config={
            "Compare": st.column_config.CheckboxColumn(width=70, pinned=True),
            "Run": st.column_config.TextColumn(width="medium", pinned=True),
            "Minutes": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    ticked = {r.run_id for r, on in zip(shown, edited["Compare"], strict=True) if on}
    on_page = {r.run_id for r in shown}
    updated = [r for r in chosen if r not in on_page or r in ticked]
    updated += [r.run_id for r in shown if r.run_id in ticked and r.run_id not in chosen]
    if updated != chosen:
        st.session_state[SELECTED_KEY] = updated[:MAX_SELECTED]
        _mirror({"runs": ",".join(updated[:MAX_SELECTED])})
        st.rerun()
    page_footer(total, "run", page, pages)
    if result.truncated:
        st.caption(f"Only the first {total:,} matching runs are listed; narrow the filter.")
    left, middle, _ = st.columns([1.2, 1, 3])
    if left.button(f"Compare the first {min(total, MAX_SELECTED):,}", disabled=not total):
        set_selected([r.run_id for r in result.runs[:MAX_SELECTED]])
        st.rerun()
    if middle.button("Clear selection", disabled=not chosen):
        set_selected([])
        st.rerun()
