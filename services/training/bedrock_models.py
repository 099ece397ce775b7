"""The Bedrock base models the portal can customize: per model, the customization types it
supports, the dataset format each type needs, and the hyperparameters with their ranges.

Ranges and defaults are AWS's "Custom model hyperparameters" tables
(:data:`HYPERPARAMETERS_SOURCE`); data formats follow "Prepare data for fine-tuning text-to-text
models", "Fine-tuning Amazon Nova models" and the distillation data guide. Bedrock rejects a
hyperparameter it does not know, so the portal refuses one too, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from services.errors import ValidationError
from services.registry.formats import DatasetFormat
from services.training.hyperparameters import HyperparameterSpec

HYPERPARAMETERS_SOURCE = (
    "https://docs.aws.amazon.com/bedrock/latest/userguide/custom-models-hp.html"
)
# Both dates are approximate: the tables and prices as AWS published them around mid-2025.
# Re-check both pages when a model is added; admins override a stale price in the portal.
HYPERPARAMETERS_AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
PRICE_SOURCE = (
    "https://aws.amazon.com/bedrock/pricing/ (Model customization: price to train 1,000 tokens, "
    "US East (N. Virginia))"
)
PRICE_AS_OF = datetime(2025, 6, 1, tzinfo=UTC)  # None as a model's price: no figure transcribed


class CustomizationType(StrEnum):
    FINE_TUNING = "FINE_TUNING"
    CONTINUED_PRE_TRAINING = "CONTINUED_PRE_TRAINING"
    DISTILLATION = "DISTILLATION"

    @property
    def label(self) -> str:
        return _TYPE_LABELS[self]


_TYPE_LABELS = {
    CustomizationType.FINE_TUNING: "fine-tuning",
    CustomizationType.CONTINUED_PRE_TRAINING: "continued pre-training",
    CustomizationType.DISTILLATION: "distillation",
}


@dataclass(frozen=True)
class Customization:
    data_formats: tuple[DatasetFormat, ...]  # empty: a format the portal cannot register yet
    hyperparameters: tuple[HyperparameterSpec, ...]
    note: str = ""  # what the user must know about the data, said plainly


@dataclass(frozen=True)
class BedrockBaseModel:
    # The identifier customization jobs take, e.g. "amazon.titan-text-express-v1:0:8k".
    model_id: str
    name: str
    provider: str
    customizations: dict[CustomizationType, Customization] = field(default_factory=dict)
    training_price_per_1k_tokens: Decimal | None = None  # USD, see PRICE_SOURCE

    @property
    def customization_types(self) -> tuple[str, ...]:
        return tuple(kind.value for kind in self.customizations)

    def formats_for(self, customization_type: str) -> tuple[str, ...]:
        """The dataset formats a job of this type takes (none for a type the model lacks)."""
        rules = self.rules_for(customization_type)
        return tuple(f.value for f in rules.data_formats) if rules else ()

    def hyperparameters_for(self, customization_type: str) -> tuple[HyperparameterSpec, ...]:
        rules = self.rules_for(customization_type)
        return rules.hyperparameters if rules else ()

    def rules_for(self, customization_type: str | None) -> Customization | None:
        try:
            return self.customizations.get(CustomizationType(customization_type or ""))
        except ValueError:
            return None

    @property
    def family(self) -> str:
        """The id without version and context suffixes: what a catalog id or ARN ends with."""
        return self.model_id.split(":", 1)[0]


def _int(name: str, low: int, high: int, default: int, help: str) -> HyperparameterSpec:
    return HyperparameterSpec(name, "int", default, help, low, high)


def _float(name: str, low: float, high: float, default: float, help: str) -> HyperparameterSpec:
    return HyperparameterSpec(name, "float", default, help, low, high)


_EPOCHS = "Passes over the whole training set; every pass adds its tokens to the bill."
_BATCH = "Records processed before the model's weights are updated."
_LR = "How far the weights move after each batch."
_WARMUP = "Steps over which the learning rate rises to its set value."
_STOP_THRESHOLD = "Least improvement in loss that counts as progress for early stopping."
_STOP_PATIENCE = "Evaluations without that progress before training stops early."

_PROMPT_COMPLETION = (DatasetFormat.BEDROCK_PROMPT_COMPLETION,)
_CONVERSATION = (DatasetFormat.BEDROCK_CONVERSATION,)

# Titan Text G1 Express and Lite (the docs give 0–1 for the learning rate, default 1e-5).
_TITAN = (
    _int("epochCount", 1, 10, 5, _EPOCHS),
    _int("batchSize", 1, 64, 1, _BATCH),
    _float("learningRate", 0.0, 1.0, 0.00001, _LR),
    _int("learningRateWarmupSteps", 0, 250, 5, _WARMUP),
)
_TITAN_PREMIER = (
    _int("epochCount", 1, 5, 2, _EPOCHS),
    _int("batchSize", 1, 1, 1, _BATCH),
    _float("learningRate", 0.0000001, 0.00001, 0.000001, _LR),
    _int("learningRateWarmupSteps", 0, 20, 5, _WARMUP),
)
# Meta Llama 3.1 8B/70B and 3.2 1B/3B share one table.
_LLAMA = (
    _int("epochCount", 1, 10, 5, _EPOCHS),
    _int("batchSize", 1, 1, 1, _BATCH),
    _float("learningRate", 0.000005, 0.1, 0.0001, _LR),
)
# Amazon Nova Micro, Lite and Pro (the batch size is fixed by AWS).
_NOVA = (
    _int("epochCount", 1, 5, 2, _EPOCHS),
    _float("learningRate", 0.000001, 0.0001, 0.00001, _LR),
    _int("learningRateWarmupSteps", 0, 100, 10, _WARMUP),
)
_CLAUDE_3 = (
    _int("epochCount", 1, 10, 2, _EPOCHS),
    _int("batchSize", 4, 256, 32, _BATCH),
    _float("learningRateMultiplier", 0.1, 2.0, 1.0, "Scales the learning rate Anthropic set."),
    _float("earlyStoppingThreshold", 0.0, 0.1, 0.001, _STOP_THRESHOLD),
    _int("earlyStoppingPatience", 1, 10, 2, _STOP_PATIENCE),
)


def _cohere(batch_max: int) -> tuple[HyperparameterSpec, ...]:
    return (
        _int("epochCount", 1, 100, 1, _EPOCHS),
        _int("batchSize", 8, batch_max, 8, _BATCH),
        _float("learningRate", 0.000005, 0.1, 0.00001, _LR + " Leave unset with validation data."),
        _float("earlyStoppingThreshold", 0.0, 0.1, 0.01, _STOP_THRESHOLD),
        _int("earlyStoppingPatience", 1, 10, 6, _STOP_PATIENCE),
        _float("evalPercentage", 5.0, 50.0, 20.0, "Share of the data held out without validation."),
    )


# Distillation takes no training hyperparameters: the teacher and the length of its answers go
# into the job's customizationConfig. The data is prompts in the conversation format.
DISTILLATION_SETTINGS = ("teacherModelIdentifier", "maxResponseLengthForInference")


def _distillation(*teachers: str) -> Customization:
    teacher = HyperparameterSpec(
        "teacherModelIdentifier",
        "choice",
        teachers[0],
        "The larger model whose answers the student learns.",
        choices=teachers,
    )
    length = _int(
        "maxResponseLengthForInference",
        1,
        4096,
        1000,
        "Most tokens the teacher writes per prompt (the upper bound is the portal's).",
    )
    note = "Prompts in the Bedrock conversation format; the assistant turn is optional."
    return Customization(_CONVERSATION, (teacher, length), note)


_FT = CustomizationType.FINE_TUNING
_CPT = CustomizationType.CONTINUED_PRE_TRAINING
_DISTIL = CustomizationType.DISTILLATION
_TITAN_TYPES = {
    _FT: Customization(_PROMPT_COMPLETION, _TITAN),
    _CPT: Customization((DatasetFormat.CONTINUED_PRETRAINING,), _TITAN),
}
_LLAMA_FT = {_FT: Customization(_PROMPT_COMPLETION, _LLAMA)}
_NOVA_FT = Customization(_CONVERSATION, _NOVA)
_NOVA_TEACHERS = ("amazon.nova-pro-v1:0", "amazon.nova-premier-v1:0")
_CLAUDE_FT = Customization(
    (),
    _CLAUDE_3,
    'Fine-tuning Claude 3 Haiku needs records shaped {"system": …, "messages": [{"role", '
    '"content"}, …]} with plain-text content, a format the portal cannot register yet.',
)


def _model(
    model_id: str,
    name: str,
    provider: str,
    customizations: dict[CustomizationType, Customization],
    price: str | None = None,
) -> BedrockBaseModel:
    return BedrockBaseModel(
        model_id, name, provider, customizations, Decimal(price) if price else None
    )


# fmt: off
_MODELS = (
    _model("amazon.titan-text-express-v1:0:8k", "Titan Text G1 - Express", "Amazon",
           _TITAN_TYPES, "0.008"),
    _model("amazon.titan-text-lite-v1:0:4k", "Titan Text G1 - Lite", "Amazon",
           _TITAN_TYPES, "0.0004"),
    _model("amazon.titan-text-premier-v1:0:32k", "Titan Text G1 - Premier", "Amazon",
           {_FT: Customization(_PROMPT_COMPLETION, _TITAN_PREMIER)}),
    _model("amazon.nova-micro-v1:0:128k", "Nova Micro", "Amazon",
           {_FT: _NOVA_FT, _DISTIL: _distillation(*_NOVA_TEACHERS)}, "0.001"),
    _model("amazon.nova-lite-v1:0:300k", "Nova Lite", "Amazon",
           {_FT: _NOVA_FT, _DISTIL: _distillation(*_NOVA_TEACHERS)}, "0.002"),
    _model("amazon.nova-pro-v1:0:300k", "Nova Pro", "Amazon",
           {_FT: _NOVA_FT, _DISTIL: _distillation("amazon.nova-premier-v1:0")}, "0.008"),
    _model("anthropic.claude-3-haiku-20240307-v1:0:200k", "Claude 3 Haiku", "Anthropic",
           {_FT: _CLAUDE_FT,
            _DISTIL: _distillation("anthropic.claude-3-5-sonnet-20241022-v2:0")}, "0.004"),
    _model("meta.llama3-1-8b-instruct-v1:0:128k", "Llama 3.1 8B Instruct", "Meta",
           {**_LLAMA_FT, _DISTIL: _distillation("meta.llama3-1-70b-instruct-v1:0",
                                                "meta.llama3-1-405b-instruct-v1:0")}),
    _model("meta.llama3-1-70b-instruct-v1:0:128k", "Llama 3.1 70B Instruct", "Meta", _LLAMA_FT),
    _model("meta.llama3-2-1b-instruct-v1:0:128k", "Llama 3.2 1B Instruct", "Meta", _LLAMA_FT),
    _model("meta.llama3-2-3b-instruct-v1:0:128k", "Llama 3.2 3B Instruct", "Meta", _LLAMA_FT),
    _model("cohere.command-text-v14:7:4k", "Command", "Cohere",
           {_FT: Customization(_PROMPT_COMPLETION, _cohere(8))}, "0.004"),
    _model("cohere.command-light-text-v14:7:4k", "Command Light", "Cohere",
           {_FT: Customization(_PROMPT_COMPLETION, _cohere(32))}, "0.001"),
)
# fmt: on


def customizable_models() -> list[BedrockBaseModel]:
    """Every base model in the table, by provider and name."""
    return sorted(_MODELS, key=lambda model: (model.provider, model.name))


def spec_for(model_id: str) -> BedrockBaseModel | None:
    """The table entry for a model id, a catalog id without the context suffix
    (``amazon.titan-text-express-v1``) or a foundation model ARN; None when not in the table."""
    family = model_id.rsplit("/", 1)[-1].split(":", 1)[0]
    return next((model for model in _MODELS if model.family == family), None)


def validate_hyperparameters(
    model: BedrockBaseModel,
    customization_type: str,
    values: Mapping[str, object],
) -> dict[str, str]:
    """The hyperparameters as the strings Bedrock takes: those given (AWS applies its defaults to
    the rest) plus the default of a choice left out. Raises ``ValidationError`` naming every bad
    field with what it allows."""
    customization = customization_for(model, customization_type)
    specs = {spec.name: spec for spec in customization.hyperparameters}
    problems: dict[str, str] = {}
    sent: dict[str, str] = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(specs) or "none"
            problems[name] = f"is not a hyperparameter of this job; allowed: {known}"
        elif (text := _as_text(spec, value)) is None:
            kind = {"int": "a whole number from ", "float": "a number from "}.get(spec.kind, "")
            problems[name] = f"must be {kind}{spec.range_text}, got {value!r}"
        else:
            sent[name] = text
    for spec in customization.hyperparameters:
        if spec.kind == "choice" and spec.name not in values:
            sent[spec.name] = str(spec.default)
    if problems:
        label = CustomizationType(customization_type).label
        raise ValidationError(
            f"Some hyperparameters do not fit {model.name} {label}: {', '.join(problems)}.",
            fields=problems,
        )
    return sent


def customization_for(model: BedrockBaseModel, customization_type: str | None) -> Customization:
    """The model's rules for one customization type; ``ValidationError`` when it has none."""
    rules = model.rules_for(customization_type)
    if rules is None:
        offered = ", ".join(model.customization_types)
        raise ValidationError(
            f"{model.name} cannot be customized by {customization_type or 'an unnamed type'}.",
            fields={"customization_type": f"{model.name} supports {offered}"},
        )
    return rules


def _as_text(spec: HyperparameterSpec, value: object) -> str | None:
    """The value as Bedrock takes it (decimal notation, no exponent), or None when not allowed."""
    if isinstance(value, bool):
        return None
    try:
        checked = spec.coerce(value)
    except ValueError:
        return None
    if isinstance(checked, float):
        return format(Decimal(repr(checked)).normalize(), "f")
    return str(checked)
