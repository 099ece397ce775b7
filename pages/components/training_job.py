"""Fine-tuning page, one job: status and progress (live while it runs), loss curves from
MLflow, the log tail, its status timeline and settings, and the Stop and Register actions."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from models.training import Backend, FineTuneJob, JobStatus
from models.types import utcnow
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash
from pages.components.formatting import local_time, money
from pages.components.layout import internal_link
from pages.components.training_jobs import cached_jobs, status_text
from services.registry import catalog
from services.registry.catalog import ModelQuery
from services.training import jobs, registration
from services.training.jobs import JobDetail

BADGE_COLOURS = {
    "completed": "green",
    "failed": "red",
    "stopped": "gray",
    "stopping": "orange",
    "running": "blue",
    "starting": "blue",
    "queued": "violet",
    "submitting": "violet",
}
AUTOMATIC_REGISTRATION_WAIT = timedelta(minutes=1)
CURVE_LABELS = {"train_loss": "Training loss", "eval_loss": "Validation loss"}


def _back() -> None:
    if st.button("All jobs", icon=":material/arrow_back:", type="tertiary"):
        st.query_params.pop("job", None)
        st.rerun()


def render(job_id: int) -> None:
    _back()
    actor = current_actor()
    first = attempt(lambda: jobs.job_detail(database(), actor=actor, job_id=job_id))
    if first is None:
        return
    running = _changing(first.job)

    @st.fragment(run_every=timedelta(seconds=2) if running else None)
    def live() -> None:
        detail = attempt(lambda: jobs.job_detail(database(), actor=actor, job_id=job_id))
        if detail is None:
            return
        _summary(detail)
        if running and not _changing(detail.job):
            cached_jobs.clear()
            st.rerun(scope="app")  # stop refreshing; show the finished job's actions
        _tabs(detail)

    live()
    _actions(first)


def _changing(job: FineTuneJob) -> bool:
    """Whether the page must keep refreshing: the job runs, or it has just completed and the
    worker is registering it as a model version, as asked at launch (a moment later; one that
    has not happened after a minute failed and is left to the owner's Register form)."""
    if not JobStatus(job.status).finished:
        return True
    return (
        job.status == JobStatus.COMPLETED.value
        and job.register_on_success
        and job.model_version_id is None
        and job.finished_at is not None
        and utcnow() - job.finished_at < AUTOMATIC_REGISTRATION_WAIT
    )


def _summary(detail: JobDetail) -> None:
    job = detail.job
    colour = BADGE_COLOURS.get(job.status, "gray")
    st.subheader(job.name, anchor=False)
    st.markdown(
        f":{colour}-badge[{status_text(job.status)}] · {Backend(job.backend).label} · "
        f"by **{job.owner}**{f' ({detail.team})' if detail.team else ''} · "
        f"created {local_time(job.created_at, settings().zone)}"
    )
    if job.status == JobStatus.FAILED.value:
        code = f" (`{job.error_code}`)" if job.error_code else ""
        st.error(f"{job.failure_reason or job.status_detail}{code}", icon=":material/error:")
    elif job.status_detail and job.status_detail.lower() != job.status:  # not the badge again
        st.caption(job.status_detail)
    if job.progress_total:
        fraction = min(job.progress_step / job.progress_total, 1.0)
        st.progress(fraction, text=f"Step {job.progress_step:,} of {job.progress_total:,}")
    elif not JobStatus(job.status).finished:
        st.progress(0.0, text="Waiting for the first training step…")
    cols = st.columns(4)
    metrics = job.metrics
    cols[0].metric("Training loss", _num(metrics.get("train_loss")))
    cols[1].metric("Validation loss", _num(metrics.get("eval_loss")))
    cols[2].metric("Perplexity", _num(metrics.get("eval_perplexity")))
    label = "Cost so far" if job.started_at and job.backend == "sagemaker" else "Estimated cost"
    cols[3].metric(
        label,
        money(detail.cost.amount) if detail.cost.amount is not None else "—",
        help=detail.cost.basis,
    )


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _tabs(detail: JobDetail) -> None:
    curves, logs, timeline, setup = st.tabs(["Loss curves", "Log", "Timeline", "Settings"])
    with curves:
        _curves(detail)
    with logs:
        lines = attempt(
            lambda: jobs.job_logs(
                database(), settings(), actor=current_actor(), job_id=detail.job.id or 0, limit=200
            )
        )
        if lines:
            st.code("\n".join(lines[-200:]), language=None, height=360)
        elif lines is not None:
            st.caption("No log lines yet.")
    with timeline:
        zone = settings().zone
        st.dataframe(
            pd.DataFrame(
                {
                    "When": [local_time(e.at, zone) for e in detail.events],
                    "Status": [status_text(e.status) for e in detail.events],
                    "Detail": [e.detail for e in detail.events],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with setup:
        _settings(detail)


def _curves(detail: JobDetail) -> None:
    job = detail.job
    if job.status in (JobStatus.QUEUED.value, JobStatus.SUBMITTING.value):
        st.caption("Curves appear once training logs its first step.")
        return
    history = attempt(
        lambda: jobs.metric_history(
            database(), settings(), actor=current_actor(), job_id=job.id or 0
        )
    )
    if history is None:
        return
    points = [
        {"step": step, "value": value, "curve": CURVE_LABELS[key]}
        for key, series in history.items()
        if key in CURVE_LABELS
        for step, value in series
    ]
    if not points:
        st.caption("No loss logged yet.")
        return
    chart = (
        alt.Chart(pd.DataFrame(points))
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("step:Q", title="Step"),
            y=alt.Y("value:Q", title="Loss", scale=alt.Scale(zero=False)),
            color=alt.Color("curve:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["curve", "step", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=320)
        .interactive(bind_y=False)
    )
    st.altair_chart(chart, width="stretch")


def _settings(detail: JobDetail) -> None:
    job = detail.job
    left, right = st.columns(2)
    with left:
        st.markdown("**Hyperparameters**")
        st.dataframe(
            pd.DataFrame(
                {
                    "Name": list(job.hyperparameters),
                    "Value": [str(v) for v in job.hyperparameters.values()],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with right:
        st.markdown("**Lineage**")
        st.markdown(f"Base model: `{job.base_model}`")
        internal_link(
            f"/registry?dataset={detail.dataset_id}",
            f"Dataset: {detail.dataset}",
            ":material/dataset:",
        )
        if job.mlflow_run_id:
            st.markdown(f"MLflow run: `{job.mlflow_run_id}`")
        if job.external_id:
            st.markdown(f"{Backend(job.backend).label} job: `{job.external_id}`")
        if job.artifact_uri:
            st.markdown(f"Artifact: `{job.artifact_uri}`")
        if job.compute:
            st.markdown(
                "Compute: "
                + ", ".join(f"{k} = {v}" for k, v in job.compute.items() if v is not None)
            )
        st.markdown(f"Max runtime: {job.max_runtime_seconds // 60:,} min")
        st.caption(detail.cost.basis)


def _actions(detail: JobDetail) -> None:
    job = detail.job
    if detail.registered is not None:
        model_id, number = detail.registered
        st.success(f"This job is registered as version {number}.", icon=":material/check_circle:")
        internal_link(
            f"/registry?model={model_id}&version={number}",
            "Open its model card",
            ":material/inventory_2:",
        )
    if detail.can_stop:
        with st.popover("Stop job", icon=":material/stop_circle:"):
            st.write(
                "The job saves a checkpoint at its next step and stops. This cannot be "
                "undone, but a stopped local job can be launched again."
            )
            if st.button("Stop it", type="primary", key="confirm-stop"):
                stopped = attempt(
                    lambda: jobs.stop_job(
                        database(), settings(), actor=current_actor(), job_id=job.id or 0
                    )
                )
                if stopped is not None:
                    cached_jobs.clear()
                    flash(f"Asked {job.name} to stop.")
                    st.rerun()
    if detail.can_register and _changing(job):
        st.info("Registering the result as a model version…", icon=":material/hourglass_top:")
    elif detail.can_register:
        _register_form(detail)


def _register_form(detail: JobDetail) -> None:
    job = detail.job
    actor = current_actor()
    with st.expander("Register as model version", icon=":material/add_box:", expanded=True):
        page = attempt(
            lambda: catalog.search_models(
                database(), actor=actor, query=ModelQuery(kinds=("custom",)), page=1, page_size=200
            )
        )
        models = {row.id: row.name for row in (page.rows if page else [])}
        new = "__new__"
        choice = st.selectbox(
            "Model",
            [new, *models],
            format_func=lambda m: "A new model…" if m == new else models[int(m)],
        )
        name = ""
        if choice == new:
            name = st.text_input("New model name", value=registration.default_model_name(job))
        if st.button("Register", type="primary"):
            version = attempt(
                lambda: registration.register_job_result(
                    database(),
                    settings(),
                    actor=actor,
                    job_id=job.id or 0,
                    model_id=None if choice == new else int(str(choice)),
                    new_model_name=name,
                )
            )
            if version is not None:
                cached_jobs.clear()
                flash(f"Registered as version {version.number}.")
                st.switch_page(
                    "pages/views/registry.py",
                    query_params={"model": str(version.model_id), "version": str(version.number)},
                )
