"""Fine-tuning page, Jobs view: filters mirrored into the URL, the job table with progress,
loss and cost, pages, and a refresh every few seconds while a job in view is running."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from models.training import Backend, JobStatus
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt
from pages.components.formatting import local_time, money, table_height
from pages.components.layout import page_footer
from pages.components.registry_models import int_param
from services.access import Actor
from services.training import jobs
from services.training.jobs import JobPage, JobQuery, Scope

PAGE_SIZE = 25
SCOPES: dict[Scope, str] = {"mine": "Mine", "team": "My team", "all": "Everyone"}


@st.cache_data(ttl=3, show_spinner=False, max_entries=256)
def cached_jobs(db_url: str, actor: Actor, query: JobQuery, page: int) -> JobPage:
    """Jobs move every second while they run: a short cache spares a click, not the news."""
    return jobs.list_jobs(database(), actor=actor, query=query, page=page, page_size=PAGE_SIZE)


def status_text(status: str) -> str:
    return status.capitalize()


def _filters(default_scope: Scope) -> JobQuery:
    cols = st.columns([1.6, 1.2, 1.2, 2])
    wanted = st.query_params.get("scope", default_scope)
    scope = cols[0].segmented_control(
        "Whose jobs",
        list(SCOPES),
        format_func=SCOPES.__getitem__,
        default=wanted if wanted in SCOPES else default_scope,
    )
    backends = [None, *(b.value for b in Backend)]
    backend = cols[1].selectbox(
        "Backend",
        backends,
        index=backends.index(st.query_params.get("backend"))
        if st.query_params.get("backend") in backends
        else 0,
        format_func=lambda b: "Any backend" if b is None else Backend(b).label,
    )
    statuses = [None, *(s.value for s in JobStatus)]
    status = cols[2].selectbox(
        "Status",
        statuses,
        index=statuses.index(st.query_params.get("status"))
        if st.query_params.get("status") in statuses
        else 0,
        format_func=lambda s: "Any status" if s is None else status_text(s),
    )
    text = cols[3].text_input(
        "Search", value=st.query_params.get("q", ""), placeholder="Job name, base model or owner"
    )
    query = JobQuery(
        scope=scope or default_scope, backend=backend, status=status, text=text.strip()
    )
    values: dict[str, Any] = {
        "scope": query.scope if query.scope != default_scope else "",
        "backend": query.backend or "",
        "status": query.status or "",
        "q": query.text,
    }
    for name, value in values.items():
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]
    return query


def _table(result: JobPage) -> int | None:
    zone = settings().zone
    frame = pd.DataFrame(
        {
            "Job": [r.name for r in result.rows],
            "Status": [status_text(r.status) for r in result.rows],
            "Progress": [
                (r.progress_step / r.progress_total) if r.progress_total else 0.0
                for r in result.rows
            ],
            "Train loss": [r.train_loss for r in result.rows],
            "Backend": [Backend(r.backend).label for r in result.rows],
            "Base model": [r.base_model for r in result.rows],
            "Dataset": [r.dataset for r in result.rows],
            "Owner": [r.owner for r in result.rows],
            "Team": [r.team or "—" for r in result.rows],
            "Est. cost": [money(r.estimated_cost) for r in result.rows],
            "Created": [local_time(r.created_at, zone) for r in result.rows],
        }
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"jobs-{result.page}",
        height=table_height(len(result.rows), max_rows=25),
        column_config={
            "Job": st.column_config.TextColumn(width="medium"),
            "Progress": st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format="percent"
            ),
            "Train loss": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    rows = event.selection.rows if event is not None else []
    return result.rows[rows[0]].id if rows else None


def render(can_launch: bool, default_scope: Scope) -> None:
    query = _filters(default_scope)
    _listing(query, int_param("page", 1), can_launch)


def _listing(query: JobQuery, page: int, can_launch: bool) -> None:
    actor = current_actor()
    result = attempt(lambda: cached_jobs(settings().resolved_database_url, actor, query, page))
    if result is None:
        return
    active = any(not JobStatus(r.status).finished for r in result.rows)

    @st.fragment(run_every=timedelta(seconds=5) if active else None)
    def live() -> None:
        current = cached_jobs(settings().resolved_database_url, actor, query, page)
        _show(current, query, can_launch)

    live()


def _show(result: JobPage, query: JobQuery, can_launch: bool) -> None:
    if result.total == 0:
        filtered = (query.backend, query.status, query.text) != (None, None, "")
        if filtered:
            message = "No job matches these filters. Clear a filter to see more."
        elif query.scope == "mine":
            message = (
                "You have not launched a fine-tuning job yet. Open **Launch** to start one: "
                "the local backend trains a small model on this machine in under a minute."
                if can_launch
                else "You have no fine-tuning jobs."
            )
        else:
            message = "No fine-tuning jobs yet."
        st.info(message, icon=":material/model_training:")
        return
    chosen = _table(result)
    page_footer(result.total, "job", result.page, result.pages)
    if chosen is not None:
        st.query_params.clear()
        st.query_params["job"] = str(chosen)
        st.rerun(scope="app")
