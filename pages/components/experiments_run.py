"""Experiments page, one run: params, metrics and tags, its artifacts to download, where it came
from (job, dataset) and what it became (model versions), and what to do with it next."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.formatting import local_time
from pages.components.layout import internal_link
from services.experiments import detail, register
from services.experiments.detail import Artifact, RunDetail
from services.permissions import Permission, permissions_of

REGISTER_FORM = "register-run"


def render(run_id: str) -> None:
    if st.button("Back to the comparison", icon=":material/arrow_back:", type="tertiary"):
        st.query_params.pop("run", None)
        st.rerun()
    found = attempt(
        lambda: detail.run_detail(database(), settings(), actor=current_actor(), run_id=run_id)
    )
    if found is None:
        return
    run = found.run
    st.subheader(run.name, anchor=False)
    zone = settings().zone
    st.caption(
        f"{run.experiment} · {run.status.capitalize()} · started "
        f"{local_time(run.start_time, zone)} · run id `{run.run_id}`"
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Metrics** (latest values)")
        _pairs(run.metrics, "Metric")
        st.markdown("**Parameters**")
        _pairs(run.params, "Parameter")
    with right:
        _lineage(found)
        st.markdown("**Tags**")
        _pairs(run.tags, "Tag")
    _artifacts(found)


def _pairs(values: Mapping[str, object], what: str) -> None:
    if not values:
        st.caption(f"No {what.lower()}s logged.")
        return
    st.dataframe(
        pd.DataFrame({what: list(values), "Value": [str(v) for v in values.values()]}),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(values), 360),
    )


def _lineage(found: RunDetail) -> None:
    st.markdown("**Lineage**")
    lineage = found.lineage
    if lineage.job_id is not None:
        internal_link(
            f"/fine-tuning?job={lineage.job_id}",
            f"Job {lineage.job_name}",
            ":material/model_training:",
        )
    if lineage.dataset_id is not None:
        internal_link(
            f"/registry?dataset={lineage.dataset_id}",
            f"Dataset {lineage.dataset}",
            ":material/dataset:",
        )
    may_request = Permission.REQUEST_PROMOTION in permissions_of(current_actor().roles)
    for model_id, name, number, stage, version_id in lineage.versions:
        internal_link(
            f"/registry?model={model_id}&version={number}",
            f"{name} version {number} ({stage})",
            ":material/inventory_2:",
        )
        if may_request:
            internal_link(
                f"/promotions?version={version_id}",
                f"Request promotion of {name} version {number}",
                ":material/verified:",
            )
    if lineage.job_id is None and not lineage.versions:
        st.caption("This run was not made by a portal job and is not a registered version.")
    if lineage.job_id is None and Permission.MANAGE_REGISTRY in permissions_of(
        current_actor().roles
    ):
        _register_form(found.run.run_id)
    if lineage.job_id is not None and not lineage.versions:
        st.caption(
            "Register it as a model version from its job's page; then request its promotion."
        )


def _register_form(run_id: str) -> None:
    """Make a run from outside the portal's jobs a model version (a job's run is registered
    from its job, which records more lineage)."""
    models = attempt(lambda: register.registrable_models(database(), actor=current_actor()))
    if models is None:
        return
    names = dict(models)
    with st.popover("Register as model version", icon=":material/inventory_2:"):
        with st.form(form_key(REGISTER_FORM)):
            model_id = st.selectbox(
                "Model",
                list(names),
                index=None,
                format_func=names.__getitem__,
                placeholder="Choose a model, or name a new one below",
            )
            new_name = st.text_input("New model name", disabled=False)
            if not st.form_submit_button("Register version", type="primary"):
                return
            version = attempt(
                lambda: register.register_run(
                    database(),
                    settings(),
                    actor=current_actor(),
                    run_id=run_id,
                    model_id=model_id,
                    new_model_name=None if model_id is not None else new_name,
                )
            )
        if version is not None:
            renew_form(REGISTER_FORM)
            flash(f"Registered this run as version {version.number}.")
            st.rerun()


def _artifacts(found: RunDetail) -> None:
    st.markdown("**Artifacts**")
    files = [a for a in found.artifacts if a.size is not None]
    if not files:
        st.caption("This run logged no artifacts.")
        return
    st.dataframe(
        pd.DataFrame(
            {"File": [a.path for a in files], "KB": [round((a.size or 0) / 1024, 1) for a in files]}
        ),
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(files), 300),
    )
    if found.artifacts_truncated:
        st.caption(f"Only the first {len(found.artifacts)} entries are listed.")
    labels = {a.path: a for a in files}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("File to download", list(labels))
    if right.button("Prepare download", width="stretch"):
        _download(found, labels[chosen])


def _download(found: RunDetail, artifact: Artifact) -> None:
    content = attempt(
        lambda: detail.download_artifact(
            database(),
            settings(),
            actor=current_actor(),
            run_id=found.run.run_id,
            path=artifact.path,
            size=artifact.size,
        )
    )
    if content is not None:
        st.download_button(
            f"Download {artifact.path.rsplit('/', 1)[-1]}",
            content,
            file_name=artifact.path.rsplit("/", 1)[-1],
            icon=":material/download:",
        )
