"""The table of Bedrock base models: what each can be customized with, and the hyperparameter
check that runs before a job is sent (every bad field named, with what it allows)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.errors import ValidationError
from services.registry.formats import DatasetFormat
from services.training.bedrock_models import (
    PRICE_AS_OF,
    PRICE_SOURCE,
    BedrockBaseModel,
    CustomizationType,
    customizable_models,
    spec_for,
    validate_hyperparameters,
)

TITAN = "amazon.titan-text-express-v1:0:8k"


def model(model_id: str = TITAN) -> BedrockBaseModel:
    found = spec_for(model_id)
    assert found is not None
    return found


def test_every_entry_is_usable_as_it_stands() -> None:
    models = customizable_models()
    assert len({m.model_id for m in models}) == len(models) == len({m.family for m in models})
    for entry in models:
        assert entry.customizations, entry.name
        for kind, rules in entry.customizations.items():
            assert rules.data_formats or rules.note, (entry.name, kind)
            for spec in rules.hyperparameters:
                checked = validate_hyperparameters(entry, kind, {spec.name: spec.default})
                assert spec.name in checked, (entry.name, spec.name)  # defaults are in range
        price = entry.training_price_per_1k_tokens
        assert price is None or (isinstance(price, Decimal) and price > 0)
    assert PRICE_SOURCE.startswith("https://aws.amazon.com/bedrock/pricing/")
    assert PRICE_AS_OF.tzinfo is not None


@pytest.mark.parametrize(
    "reference",
    [
        TITAN,
        "amazon.titan-text-express-v1",  # as Bedrock's catalog lists it
        "amazon.titan-text-express-v1:0",
        f"arn:aws:bedrock:us-east-1::foundation-model/{TITAN}",
    ],
)
def test_a_model_is_found_by_id_catalog_id_or_arn(reference: str) -> None:
    assert model(reference).model_id == TITAN


def test_models_outside_the_table_are_not_found() -> None:
    assert spec_for("anthropic.claude-3-5-sonnet-20240620-v1:0") is None
    assert spec_for("arn:aws:bedrock:us-east-1:123456789012:custom-model/mine/abc") is None


def test_what_each_customization_needs() -> None:
    titan = model()
    assert titan.customization_types == ("FINE_TUNING", "CONTINUED_PRE_TRAINING")
    assert titan.formats_for("FINE_TUNING") == (DatasetFormat.BEDROCK_PROMPT_COMPLETION.value,)
    assert titan.formats_for("CONTINUED_PRE_TRAINING") == (
        DatasetFormat.CONTINUED_PRETRAINING.value,
    )
    assert titan.formats_for("DISTILLATION") == () and titan.hyperparameters_for("nope") == ()
    nova = model("amazon.nova-micro-v1:0")
    assert nova.formats_for("FINE_TUNING") == (DatasetFormat.BEDROCK_CONVERSATION.value,)
    assert nova.formats_for("DISTILLATION") == (DatasetFormat.BEDROCK_CONVERSATION.value,)
    haiku = model("anthropic.claude-3-haiku-20240307-v1:0")
    assert haiku.formats_for("FINE_TUNING") == ()  # its own format; the portal lacks it
    assert "system" in haiku.customizations[CustomizationType.FINE_TUNING].note


def test_titan_ranges_follow_the_aws_table() -> None:
    specs = {s.name: s for s in model().hyperparameters_for("FINE_TUNING")}
    assert {n: (s.minimum, s.maximum, s.default) for n, s in specs.items()} == {
        "epochCount": (1, 10, 5),
        "batchSize": (1, 64, 1),
        "learningRate": (0.0, 1.0, 0.00001),
        "learningRateWarmupSteps": (0, 250, 5),
    }
    assert all(s.help for s in specs.values())


def test_values_become_the_strings_bedrock_takes() -> None:
    checked = validate_hyperparameters(
        model("amazon.nova-pro-v1:0"),
        "FINE_TUNING",
        {"epochCount": "3", "learningRate": 1e-05, "learningRateWarmupSteps": 100.0},
    )
    assert checked == {
        "epochCount": "3",
        "learningRate": "0.00001",
        "learningRateWarmupSteps": "100",
    }
    assert validate_hyperparameters(model(), "FINE_TUNING", {}) == {}  # AWS's defaults apply


def test_the_range_ends_are_allowed() -> None:
    nova = model("amazon.nova-lite-v1:0")
    low = {"epochCount": 1, "learningRate": "0.000001", "learningRateWarmupSteps": 0}
    high = {"epochCount": 5, "learningRate": "0.0001", "learningRateWarmupSteps": 100}
    assert validate_hyperparameters(nova, "FINE_TUNING", low)["learningRate"] == "0.000001"
    assert validate_hyperparameters(nova, "FINE_TUNING", high)["learningRate"] == "0.0001"


def test_every_bad_value_is_named_with_what_it_allows() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_hyperparameters(
            model("meta.llama3-1-8b-instruct-v1:0"),
            "FINE_TUNING",
            {"epochCount": 11, "batchSize": 2, "learningRate": "quick", "loraRank": 8},
        )
    assert caught.value.fields == {
        "epochCount": "must be a whole number from 1 to 10, got 11",
        "batchSize": "must be a whole number from 1 to 1, got 2",
        "learningRate": "must be a number from 5e-06 to 0.1, got 'quick'",
        "loraRank": "is not a hyperparameter of this job; allowed: epochCount, batchSize, "
        "learningRate",
    }
    assert "Llama 3.1 8B Instruct fine-tuning" in str(caught.value)


@pytest.mark.parametrize("value", [2.5, "2.5", True, None, float("nan"), "inf", [3]])
def test_a_whole_number_must_be_whole(value: object) -> None:
    with pytest.raises(ValidationError, match="epochCount"):
        validate_hyperparameters(model(), "FINE_TUNING", {"epochCount": value})


def test_a_customization_the_model_lacks_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_hyperparameters(model("cohere.command-text-v14"), "CONTINUED_PRE_TRAINING", {})
    assert caught.value.fields == {"customization_type": "Command supports FINE_TUNING"}


def test_distillation_picks_a_teacher_of_the_same_family() -> None:
    nova = model("amazon.nova-micro-v1:0")
    assert validate_hyperparameters(nova, "DISTILLATION", {}) == {
        "teacherModelIdentifier": "amazon.nova-pro-v1:0"
    }
    with pytest.raises(ValidationError) as caught:
        validate_hyperparameters(
            nova, "DISTILLATION", {"teacherModelIdentifier": "meta.llama3-1-70b-instruct-v1:0"}
        )
    assert (
        "one of amazon.nova-pro-v1:0, amazon.nova-premier-v1:0"
        in (caught.value.fields["teacherModelIdentifier"])
    )
