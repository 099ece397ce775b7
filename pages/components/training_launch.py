"""Fine-tuning page, Launch view: backend, base model, dataset, recipe preset and
hyperparameters, compute and runtime, with the cost estimate shown before anything starts.

The form's idempotency key lives in the URL (``?view=launch&key=…``): a double click, a
duplicated tab or a retry after a timeout submits the same key, and the service hands back the
job the first submission created instead of starting another."""

from __future__ import annotations

import secrets
from typing import Any

import streamlit as st

from models.training import Backend
from pages.components.context import current_actor, database, settings
from pages.components.feedback import attempt, flash
from pages.components.training_jobs import cached_jobs
from services.registry.formats import DatasetFormat
from services.training import catalog, launch
from services.training.bedrock_models import CustomizationType
from services.training.catalog import LaunchOptions
from services.training.hyperparameters import LOCAL_PRESETS

RUNTIME_CHOICES = [15, 30, 60, 120, 240, 480, 1440]


def _key() -> str:
    key = st.query_params.get("key", "")
    if not launch.KEY_PATTERN.match(key):
        key = secrets.token_hex(12)
        st.query_params["key"] = key
    return key


def render() -> None:
    key = _key()
    backend = Backend(
        st.segmented_control(
            "Where to train",
            [b.value for b in Backend],
            default=Backend.LOCAL.value,
            format_func=lambda b: Backend(b).label,
            key="launch-backend",
        )
        or Backend.LOCAL.value
    )
    actor = current_actor()
    first = attempt(
        lambda: catalog.backend_choices(database(), settings(), actor=actor, backend=backend)
    )
    if first is None:
        return
    if first.unavailable:
        st.warning(first.unavailable, icon=":material/cloud_off:")
    if not first.base_models:
        st.info("No base model can be customised on this backend.", icon=":material/inbox:")
        return
    left, right = st.columns(2)
    labels = {m.ref: m.label for m in first.base_models}
    base_model = left.selectbox(
        "Base model",
        list(labels),
        format_func=labels.__getitem__,
        key=f"launch-base-{backend.value}",
    )
    chosen = next(m for m in first.base_models if m.ref == base_model)
    customization = None
    if backend is Backend.BEDROCK:
        customization = right.selectbox(
            "Customization",
            list(chosen.customization_types),
            format_func=lambda c: CustomizationType(c).label.capitalize(),
            key=f"launch-type-{base_model}",
        )
    options = attempt(
        lambda: catalog.launch_options(
            database(),
            actor=actor,
            backend=backend,
            base_model=base_model,
            customization_type=customization,
        )
    )
    if options is None:
        return
    dataset = _dataset(options, right if backend is not Backend.BEDROCK else left)
    values = _hyperparameters(options, backend, base_model, customization)
    compute = _compute(options, backend)
    register, model_name = _registration()
    form: dict[str, Any] = {
        "backend": backend.value,
        "base_model": base_model,
        "dataset_version_id": dataset,
        "customization_type": customization,
        "hyperparameters": values,
        "register_on_success": register,
        "register_model_name": model_name or None,
        "idempotency_key": key,
        **compute,
    }
    _estimate(form, dataset)
    disabled = bool(first.unavailable) or dataset is None
    if st.button("Launch job", type="primary", icon=":material/rocket_launch:", disabled=disabled):
        outcome = attempt(lambda: launch.launch(database(), settings(), actor=actor, data=form))
        if outcome is not None:
            cached_jobs.clear()
            job = outcome.job
            flash(
                f"Launched {job.name}."
                if outcome.created
                else f"{job.name} was already launched from this form; here it is."
            )
            st.query_params.clear()
            st.query_params["job"] = str(job.id)
            st.rerun()


def _dataset(options: LaunchOptions, column: Any) -> int | None:
    usable = {d.version_id: d.label for d in options.datasets if d.usable}
    if not usable:
        column.selectbox("Dataset version", ["No usable dataset"], disabled=True)
    refused = [d for d in options.datasets if not d.usable]
    if refused:
        column.caption(
            f"{len(refused)} other version(s) cannot be used here: "
            + "; ".join(f"{d.label.split(' · ')[0]} ({d.reason})" for d in refused[:4])
            + ("…" if len(refused) > 4 else "")
        )
    if not usable:
        wanted = ", ".join(DatasetFormat(f).label for f in sorted(options.formats))
        st.info(
            f"Register a dataset version in a format this job reads ({wanted or 'none'}) "
            "under Registry → Datasets.",
            icon=":material/dataset:",
        )
        return None
    return int(
        column.selectbox(
            "Dataset version", list(usable), format_func=usable.__getitem__, key="launch-dataset"
        )
    )


def _hyperparameters(
    options: LaunchOptions, backend: Backend, base_model: str, customization: str | None
) -> dict[str, object]:
    st.markdown("**Hyperparameters**")
    preset: dict[str, int | float | str] = {}
    scope = f"{backend.value}-{base_model}-{customization}"
    if backend is not Backend.BEDROCK:
        name = st.columns(2)[0].selectbox(
            "Preset", list(LOCAL_PRESETS), index=1, help="A starting point; change any value below."
        )
        preset, scope = LOCAL_PRESETS[name], f"{scope}-{name}"
    values: dict[str, object] = {}
    specs = list(options.hyperparameters)
    columns = st.columns(4)
    for i, spec in enumerate(specs):
        column = columns[i % 4]
        name = spec.name
        default = preset.get(name, spec.default)
        helptext = f"{spec.help} Allowed: {spec.range_text}."
        widget_key = f"hp-{scope}-{name}"
        if spec.kind == "choice":
            choices = list(spec.choices)
            values[name] = column.selectbox(
                name,
                choices,
                index=choices.index(default) if default in choices else 0,
                help=helptext,
                key=widget_key,
            )
        elif spec.kind == "int":
            values[name] = column.number_input(
                name,
                value=int(default or 0),
                min_value=None if spec.minimum is None else int(spec.minimum),
                max_value=None if spec.maximum is None else int(spec.maximum),
                step=1,
                help=helptext,
                key=widget_key,
            )
        else:
            number = float(default or 0.0)
            values[name] = column.number_input(
                name,
                value=number,
                min_value=None if spec.minimum is None else float(spec.minimum),
                max_value=None if spec.maximum is None else float(spec.maximum),
                format="%.2e" if 0 < abs(number) < 0.01 else "%.4f",
                step=number / 10 if number else 0.01,
                help=helptext,
                key=widget_key,
            )
    return values


def _compute(options: LaunchOptions, backend: Backend) -> dict[str, object]:
    st.markdown("**Compute**")
    cols = st.columns(4)
    compute: dict[str, object] = {}
    if backend is Backend.SAGEMAKER:
        types = options.instance_types
        compute["instance_type"] = cols[0].selectbox(
            "Instance type",
            types,
            index=types.index("ml.g5.xlarge") if "ml.g5.xlarge" in types else 0,
        )
        compute["instance_count"] = cols[1].number_input("Instances", 1, 16, 1)
        compute["spot"] = cols[2].toggle(
            "Managed spot", help="Cheaper, may be interrupted; the job resumes from checkpoints."
        )
    elif backend is Backend.LOCAL:
        cols[0].caption(
            f"Runs on the portal's machine, {settings().max_local_jobs} job(s) at "
            "a time; later jobs wait in the queue."
        )
    else:
        cols[0].caption("Bedrock chooses and manages the compute.")
    compute["max_runtime_minutes"] = cols[3].selectbox(
        "Max runtime",
        RUNTIME_CHOICES,
        index=2,
        format_func=lambda m: f"{m // 60} h" if m >= 60 else f"{m} min",
        help="The job stops (keeping a checkpoint) when it runs this long.",
    )
    return compute


def _registration() -> tuple[bool, str]:
    left, right = st.columns(2)
    register = left.toggle("Register the result as a model version when it succeeds")
    name = right.text_input(
        "Model to register into", placeholder="new or existing model name", disabled=not register
    )
    return register, name.strip()


def _estimate(form: dict[str, Any], dataset: int | None) -> None:
    if dataset is None:
        return
    estimate = attempt(lambda: launch.preview_cost(database(), actor=current_actor(), data=form))
    if estimate is None:
        return
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.metric(
        "Estimated cost (at most)",
        "unknown" if estimate.amount is None else f"${estimate.amount:,.2f}",
    )
    right.caption(estimate.basis)
