"""What a job can be launched with: the base models each backend can customise, the dataset
versions that fit them, and the hyperparameters each accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from models.dataset import Dataset, DatasetVersion, PiiStatus
from models.registry import ModelAsset, ModelKind, Source
from models.training import Backend
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import ValidationError
from services.permissions import Permission
from services.registry.formats import DatasetFormat
from services.training import bedrock_models
from services.training.hyperparameters import LOCAL_RECIPE_SPECS, HyperparameterSpec, validate

if TYPE_CHECKING:
    from services.training.launch import LaunchRequest

TINY_MODEL = "tiny-llama"
"""A small Llama built from a config, with a tokenizer trained on the job's data: nothing is
downloaded, so it works offline, in tests and in the demo."""

RECIPE_FORMATS = frozenset(DatasetFormat)  # the causal-LM recipe reads every format


@dataclass(frozen=True)
class BaseModelChoice:
    ref: str  # what the job records and the backend receives
    label: str
    model_id: int | None  # the registry's model, when it is there
    customization_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetChoice:
    version_id: int
    label: str
    format: str
    usable: bool
    reason: str = ""  # why it cannot be used, when it cannot


def base_model_choices(session: Session, backend: Backend) -> list[BaseModelChoice]:
    if backend is Backend.BEDROCK:
        registered = {
            ref: (model_id, name)
            for model_id, name, ref in session.exec(
                select(ModelAsset.id, ModelAsset.name, ModelAsset.source_ref).where(
                    ModelAsset.source == Source.BEDROCK.value,
                    ModelAsset.kind == ModelKind.FOUNDATION.value,
                )
            )
        }
        choices = []
        for model in bedrock_models.customizable_models():
            found = registered.get(model.model_id) or registered.get(model.family)
            choices.append(
                BaseModelChoice(
                    model.model_id,
                    f"{found[1] if found else model.name} ({model.model_id})",
                    found[0] if found else None,
                    tuple(model.customization_types),
                )
            )
        return choices
    choices = [BaseModelChoice(TINY_MODEL, "Tiny Llama from a config (no download; demo)", None)]
    rows = session.exec(
        select(ModelAsset.id, ModelAsset.name, ModelAsset.source_ref)
        .where(
            ModelAsset.source == Source.PORTAL.value,
            col(ModelAsset.kind).in_([ModelKind.FOUNDATION.value, ModelKind.IMPORTED.value]),
            ~col(ModelAsset.source_ref).startswith("portal:"),
        )
        .order_by(ModelAsset.name)
    )
    choices += [BaseModelChoice(ref, f"{name} ({ref})", model_id) for model_id, name, ref in rows]
    return choices


def accepted_formats(
    backend: Backend, base_model: str, customization_type: str | None
) -> frozenset[str]:
    if backend is not Backend.BEDROCK:
        return frozenset(f.value for f in RECIPE_FORMATS)
    model = bedrock_models.spec_for(base_model)
    if model is None or not customization_type:
        return frozenset()
    return frozenset(model.formats_for(customization_type))


def dataset_choices(
    session: Session, backend: Backend, base_model: str, customization_type: str | None
) -> list[DatasetChoice]:
    formats = accepted_formats(backend, base_model, customization_type)
    rows = session.exec(
        select(DatasetVersion, Dataset.name)
        .join(Dataset, col(Dataset.id) == DatasetVersion.dataset_id)
        .order_by(Dataset.name, col(DatasetVersion.number).desc())
    )
    choices = []
    for version, name in rows:
        assert version.id is not None
        label = (
            f"{name} v{version.number} · {DatasetFormat(version.format).label} · "
            f"{version.record_count:,} records"
        )
        reason = ""
        if version.pii_status == PiiStatus.FLAGGED.value:
            reason = "flagged for personal data"
        elif version.format not in formats:
            reason = "its format does not fit this base model and customization"
        choices.append(DatasetChoice(version.id, label, version.format, not reason, reason))
    return choices


def check_compatible(
    session: Session, request: LaunchRequest, dataset: DatasetVersion
) -> int | None:
    """Refuse a base model the backend cannot customise or a dataset it cannot read; returns
    the registry id of the base model, when it has one."""
    choices = {c.ref: c for c in base_model_choices(session, request.backend)}
    choice = choices.get(request.base_model)
    if choice is None and request.backend is Backend.BEDROCK:
        raise ValidationError(
            f"Base model: {request.base_model} cannot be customised on Bedrock.",
            fields={"base_model": "not customisable on Bedrock"},
        )
    if request.backend is Backend.BEDROCK:
        assert choice is not None
        if request.customization_type not in choice.customization_types:
            allowed = ", ".join(choice.customization_types)
            raise ValidationError(
                f"Customization type: {request.base_model} supports {allowed}.",
                fields={"customization_type": f"must be one of {allowed}"},
            )
    formats = accepted_formats(request.backend, request.base_model, request.customization_type)
    if dataset.format not in formats:
        wanted = ", ".join(sorted(DatasetFormat(f).label for f in formats)) or "none"
        raise ValidationError(
            f"Dataset: this version is in {DatasetFormat(dataset.format).label} format; "
            f"this job needs {wanted}.",
            fields={"dataset_version_id": "wrong format for this job"},
        )
    return choice.model_id if choice else None


def hyperparameter_specs(
    backend: Backend, base_model: str, customization_type: str | None
) -> tuple[HyperparameterSpec, ...]:
    if backend is Backend.BEDROCK:
        model = bedrock_models.spec_for(base_model)
        return tuple(model.hyperparameters_for(customization_type or "")) if model else ()
    return LOCAL_RECIPE_SPECS


def checked_hyperparameters(request: LaunchRequest) -> dict[str, int | float | str]:
    if request.backend is Backend.BEDROCK:
        model = bedrock_models.spec_for(request.base_model)
        assert model is not None  # check_compatible refused it otherwise
        return dict(
            bedrock_models.validate_hyperparameters(
                model, request.customization_type or "", request.hyperparameters
            )
        )
    return validate(LOCAL_RECIPE_SPECS, request.hyperparameters, where="the causal-LM recipe")


@dataclass(frozen=True)
class BackendChoices:
    unavailable: str | None  # why the backend cannot be used now
    base_models: list[BaseModelChoice]


def backend_choices(
    db: Database, settings: Settings, *, actor: Actor, backend: Backend
) -> BackendChoices:
    """What the launch form offers first for a backend: whether it can be used, and the base
    models it can customise."""
    from services.training.backends import backend_for

    with db.read() as session:
        require(session, actor, Permission.LAUNCH_JOBS)
        models = base_model_choices(session, backend)
    return BackendChoices(backend_for(backend, settings).unavailable_reason(), models)


@dataclass(frozen=True)
class LaunchOptions:
    datasets: list[DatasetChoice]
    hyperparameters: tuple[HyperparameterSpec, ...]
    instance_types: list[str]
    formats: frozenset[str]  # the dataset formats this backend, model and customization read


def launch_options(
    db: Database,
    *,
    actor: Actor,
    backend: Backend,
    base_model: str,
    customization_type: str | None,
) -> LaunchOptions:
    """The rest of the launch form, once a backend and base model are chosen."""
    from services.training import pricing

    with db.read() as session:
        require(session, actor, Permission.LAUNCH_JOBS)
        datasets = dataset_choices(session, backend, base_model, customization_type)
        instances = sorted(
            p.item for p in pricing.price_table(session) if p.backend == Backend.SAGEMAKER.value
        )
    return LaunchOptions(
        datasets=datasets,
        hyperparameters=hyperparameter_specs(backend, base_model, customization_type),
        instance_types=instances,
        formats=accepted_formats(backend, base_model, customization_type),
    )
