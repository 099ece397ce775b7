"""Registry page, one model: its versions, a version's model card with lineage and stage
history, a side-by-side comparison, and the form to register a version."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from models.registry import ModelKind, ModelVersionCardUpdate, ModelVersionCreate, Source
from pages.components import promotions_version, registry_usage
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash, form_key, renew_form
from pages.components.formatting import local_time, parse_pairs, table_height
from pages.components.layout import internal_link, job_link, portal_job
from pages.components.registry_models import forget_cached_catalog, int_param
from services.registry import assets, cards, dataset_catalog, lineage
from services.registry.cards import ModelDetail, VersionCard
from services.validation import parse

STAGE_BADGES = {
    "development": ":gray-badge[development]",
    "staging": ":orange-badge[staging]",
    "production": ":green-badge[production]",
    "archived": ":violet-badge[archived]",
}


def back_to_catalog() -> None:
    if st.button("All models", icon=":material/arrow_back:", type="tertiary"):
        for name in ("model", "version", "compare"):
            st.query_params.pop(name, None)
        st.rerun()


def render(model_id: int, can_edit: bool) -> None:
    back_to_catalog()
    detail = attempt(
        lambda: cards.model_detail(database(), actor=current_actor(), model_id=model_id)
    )
    if detail is None:
        return
    _header(detail)
    if not detail.versions:
        st.info(
            "This model has no versions yet." + (" Register one below." if can_edit else ""),
            icon=":material/inbox:",
        )
    else:
        number = _versions_table(detail)
        if number is not None:
            _card(model_id, number, can_edit)
        _compare(detail)
    if can_edit:
        _register_version_form(model_id)


def _header(detail: ModelDetail) -> None:
    model = detail.model
    st.subheader(model.name, anchor=False)
    kind = ModelKind(model.kind).label if model.kind in {k.value for k in ModelKind} else model.kind
    source = (
        Source(model.source).label if model.source in {s.value for s in Source} else model.source
    )
    st.caption(
        f"{kind} · {model.provider or 'no provider'} · owner: {detail.owner_team or 'no team'}"
        f" · from {source}"
    )
    if model.description:
        st.markdown(model.description)
    facts = {
        "Source reference": model.source_ref,
        "Base model": model.base_model or "—",
        "Modalities": ", ".join(model.modalities) or "—",
        "Customizations": ", ".join(model.customizations) or "—",
        "Tags": ", ".join(f"{k}={v}" for k, v in model.tags.items()) or "—",
    }
    with st.expander("Details"):
        st.table(pd.DataFrame({"": list(facts), "Value": list(facts.values())}).set_index(""))
    if detail.production_timeline:
        zone = settings().zone
        spells = " → ".join(
            f"v{s.version} ({local_time(s.since, zone, with_zone=False)} – "
            f"{local_time(s.until, zone, with_zone=False) if s.until else 'now'})"
            for s in detail.production_timeline
        )
        st.caption(f"In production over time: {spells}")


def _versions_table(detail: ModelDetail) -> int | None:
    zone = settings().zone
    versions = detail.versions
    frame = pd.DataFrame(
        {
            "Version": [v.number for v in versions],
            "Stage": [v.stage for v in versions],
            "Created": [local_time(v.created_at, zone) for v in versions],
            "By": [v.created_by for v in versions],
            "Base model": [v.base_model or "—" for v in versions],
            "MLflow run": [(v.mlflow_run_id or "—")[:12] for v in versions],
            "Metrics": [
                ", ".join(f"{k}={m:.4g}" for k, m in list(v.metrics.items())[:3]) or "—"
                for v in versions
            ],
        }
    )
    wanted = int_param("version", 0)
    default = [i for i, v in enumerate(versions) if v.number == wanted]
    event = st.dataframe(
        frame,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"versions-{detail.model.id}-{wanted}",
        height=table_height(len(versions)),
        selection_default={"selection": {"rows": default, "columns": []}} if default else None,
        column_config={"Version": st.column_config.NumberColumn(format="v%d", width="small")},
    )
    rows = event.selection.rows if event is not None else []
    if not rows:
        if default:
            del st.query_params["version"]
        st.caption("Select a version to open its model card.")
        return None
    number = versions[rows[0]].number
    st.query_params["version"] = str(number)
    return number


def _card(model_id: int, number: int, can_edit: bool) -> None:
    card = attempt(
        lambda: cards.version_card(
            database(), actor=current_actor(), model_id=model_id, number=number
        )
    )
    if card is None:
        return
    version = card.version
    st.markdown(f"### Version {version.number} {STAGE_BADGES.get(version.stage, version.stage)}")
    zone = settings().zone
    st.caption(
        f"Registered by {version.created_by} on {local_time(version.created_at, zone)}; "
        f"in {version.stage} since {local_time(version.stage_changed_at, zone)}"
    )
    promotions_version.request_link(version.id or 0)
    overview, data, history, usage = st.tabs(
        ["Model card", "Lineage", "Stage history", "Gateway usage"]
    )
    with overview:
        _card_body(card, can_edit)
    with usage:
        registry_usage.render(version.id or 0)
    with data:
        graph = attempt(
            lambda: lineage.version_lineage(
                database(), actor=current_actor(), model_id=model_id, number=number
            )
        )
        if graph is not None:
            st.graphviz_chart(graph.to_dot(), width="stretch")
            with st.container(horizontal=True):
                for node in graph.nodes:
                    if node.link and node.kind != "version":
                        internal_link(
                            node.link, node.label.splitlines()[0], icon=":material/open_in_new:"
                        )
    with history:
        st.dataframe(
            pd.DataFrame(
                {
                    "When": [local_time(c.changed_at, zone) for c in card.stage_history],
                    "From": [c.from_stage or "—" for c in card.stage_history],
                    "To": [c.to_stage for c in card.stage_history],
                    "By": [c.changed_by for c in card.stage_history],
                    "Why": [c.reason for c in card.stage_history],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        promotions_version.requests_table(version.id or 0)


def _card_body(card: VersionCard, can_edit: bool) -> None:
    version = card.version
    left, right = st.columns([3, 2], gap="large")
    with left:
        if can_edit:
            _card_form(card)
        else:
            st.markdown(f"**Description**  \n{version.description or '—'}")
            st.markdown(f"**Intended use**  \n{version.intended_use or '—'}")
            st.markdown(f"**Limitations**  \n{version.limitations or '—'}")
    with right:
        st.markdown("**Evaluation metrics**")
        if version.metrics:
            st.dataframe(
                pd.DataFrame(
                    {"Metric": list(version.metrics), "Value": list(version.metrics.values())}
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No metrics recorded for this version.")
        st.markdown("**Training data**")
        data = card.training_data
        if data is None:
            st.caption("No dataset version recorded.")
        else:
            internal_link(
                f"/registry?dataset={data.dataset_id}&dataset_version={data.number}",
                f"{data.dataset_name} v{data.number}",
                icon=":material/dataset:",
            )
            st.caption(f"{data.records:,} records · PII {data.pii_status}")
        refs = {
            "Artifact": version.artifact_uri,
            "MLflow run": version.mlflow_run_id,
            "MLflow model": f"{version.mlflow_model_name} v{version.mlflow_model_version}"
            if version.mlflow_model_name
            else None,
            "MLflow aliases": ", ".join(version.mlflow_aliases) or None,
            "SageMaker package": version.sagemaker_package_arn,
            "SageMaker approval": version.sagemaker_approval_status,
            "Bedrock custom model": version.bedrock_custom_model_arn,
            "Job": None if portal_job(version.job_ref) else version.job_ref,
        }
        shown = {k: v for k, v in refs.items() if v}
        if shown:
            st.markdown("**References**")
            st.markdown("\n".join(f"- {k}: `{v}`" for k, v in shown.items()))
        if portal_job(version.job_ref):
            job_link(str(version.job_ref))
        if version.params:
            with st.expander(f"Parameters ({len(version.params)})"):
                st.dataframe(
                    pd.DataFrame(
                        {"Parameter": list(version.params), "Value": list(version.params.values())}
                    ),
                    hide_index=True,
                    width="stretch",
                )


def _card_form(card: VersionCard) -> None:
    version = card.version
    with st.form(f"card-{version.id}-{version.version}"):
        description = st.text_area("Description", value=version.description, height=80)
        intended = st.text_area("Intended use", value=version.intended_use, height=80)
        limits = st.text_area("Limitations", value=version.limitations, height=80)
        if not st.form_submit_button("Save model card", type="primary"):
            return
        saved = attempt(
            lambda: assets.update_card(
                database(),
                actor=current_actor(),
                version_id=version.id or 0,
                card=parse(
                    ModelVersionCardUpdate,
                    {"description": description, "intended_use": intended, "limitations": limits},
                ),
                expected_version=version.version,
            )
        )
    if saved is not None:
        flash(f"Saved the model card of version {version.number}.")
        st.rerun()


def _compare(detail: ModelDetail) -> None:
    numbers = [v.number for v in detail.versions]
    if len(numbers) < 2:
        return
    with st.expander(
        "Compare two versions",
        icon=":material/compare_arrows:",
        expanded="compare" in st.query_params,
    ):
        left, right = st.columns(2)
        a = left.selectbox(
            "Version",
            numbers,
            index=min(1, len(numbers) - 1),
            format_func=lambda n: f"v{n}",
            key="compare-a",
        )
        b = right.selectbox(
            "with version", numbers, index=0, format_func=lambda n: f"v{n}", key="compare-b"
        )
        rows = attempt(
            lambda: cards.compare_versions(
                database(), actor=current_actor(), model_id=detail.model.id or 0, left=a, right=b
            )
        )
        if not rows:
            return
        only_diff = st.toggle("Differences only", value=True, key="compare-diff")
        shown = [r for r in rows if r.differs or not only_diff]
        if not shown:
            st.success("These versions do not differ in data, parameters or metrics.")
            return
        frame = pd.DataFrame(
            {
                "Section": [r.section for r in shown],
                "Item": [r.item for r in shown],
                f"v{a}": [r.left for r in shown],
                f"v{b}": [r.right for r in shown],
            }
        )
        differs = [r.differs for r in shown]
        styled = frame.style.apply(
            lambda row: [
                "background-color: rgba(245, 158, 11, 0.18)" if differs[row.name] else ""
                for _ in row
            ],
            axis=1,
        )
        st.dataframe(styled, hide_index=True, width="stretch")


def _register_version_form(model_id: int) -> None:
    with (
        st.expander("Register a version", icon=":material/add_box:"),
        st.form(form_key("register-version")),
    ):
        left, right = st.columns(2)
        run_id = left.text_input("MLflow run id", placeholder="optional")
        artifact = right.text_input("Artifact URI", placeholder="s3://… or models:/…")
        base = left.text_input("Base model", placeholder="inherits the model's when empty")
        choices = dict(dataset_catalog.version_choices(database(), actor=current_actor()))
        dataset_version = right.selectbox(
            "Training data", [0, *choices], format_func=lambda i: choices.get(i, "— none —")
        )
        metrics = st.text_input("Metrics", placeholder="eval_loss=1.23, accuracy=0.81")
        params = st.text_input("Parameters", placeholder="learning_rate=1e-4, epochs=3")
        if not st.form_submit_button("Register version", type="primary"):
            return
        form = {
            "mlflow_run_id": run_id,
            "artifact_uri": artifact,
            "base_model": base,
            "dataset_version_id": int(dataset_version) or None,
            "metrics": parse_pairs(metrics),
            "params": parse_pairs(params),
        }
        created = attempt(
            lambda: assets.register_version(
                database(),
                actor=current_actor(),
                model_id=model_id,
                data=parse(ModelVersionCreate, form),
            )
        )
    if created is not None:
        renew_form("register-version")
        forget_cached_catalog()
        flash(f"Registered version {created.number}.")
        st.query_params["version"] = str(created.number)
        st.rerun()
