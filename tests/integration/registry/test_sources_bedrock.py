"""Bedrock as a model catalog: custom models from moto, foundation models from a Stubber on the
same client (moto does not implement ListFoundationModels)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from services import aws
from services.config import Settings, get_settings
from services.errors import ConfigurationError, ExternalServiceError
from services.registry.sources.bedrock import BedrockSource
from tests.integration.registry.conftest import ACCOUNT, REGION, PartialStubber, count_calls

ROLE = f"arn:aws:iam::{ACCOUNT}:role/bedrock-customization"
FM_ARN = f"arn:aws:bedrock:{REGION}::foundation-model/"


def summary(model_id: str, name: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {
        "modelArn": FM_ARN + model_id,
        "modelId": model_id,
        "modelName": name,
        "providerName": provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
        **extra,
    }


FOUNDATION_MODELS = {
    "modelSummaries": [
        summary(
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "Claude 3.5 Sonnet",
            "Anthropic",
            inputModalities=["TEXT", "IMAGE"],
        ),
        summary(
            "amazon.titan-text-express-v1",
            "Titan Text G1 - Express",
            "Amazon",
            customizationsSupported=["FINE_TUNING", "CONTINUED_PRE_TRAINING"],
            inferenceTypesSupported=["ON_DEMAND", "PROVISIONED"],
        ),
        summary(
            "meta.llama3-1-8b-instruct-v1:0",
            "Llama 3.1 8B Instruct",
            "Meta",
            customizationsSupported=["FINE_TUNING"],
        ),
        summary(
            "amazon.titan-image-generator-v1",
            "Titan Image Generator G1",
            "Amazon",
            inputModalities=["TEXT", "IMAGE"],
            outputModalities=["IMAGE"],
            customizationsSupported=["FINE_TUNING"],
            modelLifecycle={"status": "LEGACY"},
        ),
    ]
}


def customize(client: Any, job: str, model: str, base: str, kind: str, **extra: Any) -> None:
    """What a fine-tuning launch does; moto also registers the resulting custom model."""
    client.create_model_customization_job(
        jobName=job,
        customModelName=model,
        roleArn=ROLE,
        baseModelIdentifier=base,
        customizationType=kind,
        trainingDataConfig={"s3Uri": f"s3://datasets/{job}/train.jsonl"},
        outputDataConfig={"s3Uri": f"s3://outputs/{job}/"},
        **extra,
    )


@pytest.fixture
def bedrock(aws_settings: Settings) -> Any:
    client = aws.client("bedrock", aws_settings)
    customize(
        client,
        "support-ft-1",
        "support-bot-v1",
        "amazon.titan-text-express-v1",
        "FINE_TUNING",
        hyperParameters={"epochCount": "2", "batchSize": "1", "learningRate": "0.00001"},
        validationDataConfig={"validators": [{"s3Uri": "s3://datasets/support-ft-1/val.jsonl"}]},
        customModelTags=[{"key": "team", "value": "support"}],
    )
    customize(
        client,
        "legal-cpt-1",
        "legal-titan",
        "amazon.titan-text-express-v1",
        "CONTINUED_PRE_TRAINING",
        hyperParameters={"epochCount": "1"},
    )
    return client


def test_fetch_returns_foundation_and_custom_models(aws_settings: Settings, bedrock: Any) -> None:
    source = BedrockSource.from_settings(aws_settings)
    with PartialStubber(bedrock) as stubber:  # the very client the source uses
        stubber.add_response("list_foundation_models", FOUNDATION_MODELS, {})
        models = source.fetch()
        stubber.assert_no_pending_responses()

    foundation = {m.source_ref: m for m in models if m.kind == "foundation"}
    assert {m.provider for m in foundation.values()} == {"Anthropic", "Amazon", "Meta"}
    claude = foundation["anthropic.claude-3-5-sonnet-20240620-v1:0"]
    assert (claude.source, claude.name, claude.lifecycle) == (
        "bedrock",
        "Claude 3.5 Sonnet",
        "ACTIVE",
    )
    assert claude.modalities == ("TEXT", "IMAGE")
    assert [(v.version, v.source_ref) for v in claude.versions] == [
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            FM_ARN + "anthropic.claude-3-5-sonnet-20240620-v1:0",
        )
    ]
    titan = foundation["amazon.titan-text-express-v1"]
    assert titan.customizations == ("FINE_TUNING", "CONTINUED_PRE_TRAINING")
    image = foundation["amazon.titan-image-generator-v1"]
    assert (image.modalities, image.lifecycle) == (("TEXT", "IMAGE"), "LEGACY")

    custom = {m.name: m for m in models if m.kind == "custom"}
    assert set(custom) == {"support-bot-v1", "legal-titan"}
    bot = custom["support-bot-v1"]
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/support-bot-v1"
    assert (bot.source, bot.provider, bot.source_ref) == ("bedrock", "bedrock", arn)
    assert bot.customizations == ("FINE_TUNING",)
    assert bot.tags == {"team": "support"}
    (version,) = bot.versions
    assert (version.version, version.source_ref) == ("support-bot-v1", arn)
    assert version.base_model_ref == FM_ARN + "amazon.titan-text-express-v1"
    assert (
        version.job_ref
        == f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/support-ft-1"
    )
    assert version.params == {"epochCount": "2", "batchSize": "1", "learningRate": "0.00001"}
    assert version.metrics == {"trainingLoss": 0.0, "validationLoss": 0.0}  # moto's fixed values
    assert version.created_at is not None and version.created_at.tzinfo == UTC
    assert version.stage_hint is None and version.approval_status is None
    assert custom["legal-titan"].customizations == ("CONTINUED_PRE_TRAINING",)
    assert custom["legal-titan"].versions[0].params == {"epochCount": "1"}


def test_custom_models_are_read_page_by_page(aws_settings: Settings, bedrock: Any) -> None:
    customize(bedrock, "extra-ft", "extra-model", "meta.llama3-1-8b-instruct-v1:0", "FINE_TUNING")
    calls = count_calls(bedrock)

    models = BedrockSource(bedrock, page_size=1).custom_models()

    assert sorted(m.name for m in models) == ["extra-model", "legal-titan", "support-bot-v1"]
    assert calls["ListCustomModels"] == 3
    assert calls["GetCustomModel"] == 3


@pytest.mark.parametrize(
    ("code", "status", "says"),
    [
        ("ThrottlingException", 429, "AWS is throttling requests; try again in a minute"),
        ("AccessDeniedException", 403, "the portal's AWS identity lacks a permission"),
    ],
)
def test_foundation_model_failures_keep_the_aws_code(
    aws_settings: Settings, code: str, status: int, says: str
) -> None:
    client = aws.client("bedrock", aws_settings)
    with PartialStubber(client) as stubber:
        stubber.add_client_error(
            "list_foundation_models", code, "User is not authorized", http_status_code=status
        )
        with pytest.raises(ExternalServiceError) as caught:
            BedrockSource(client).fetch()

    assert caught.value.code == code
    assert str(caught.value).startswith("Could not list Bedrock foundation models: ")
    assert says in str(caught.value)
    assert caught.value.detail is not None and code in caught.value.detail


def test_a_custom_model_that_cannot_be_read_names_it(aws_settings: Settings, bedrock: Any) -> None:
    with PartialStubber(bedrock) as stubber:  # the listing comes from moto, the refusal from here
        stubber.add_client_error("get_custom_model", "AccessDeniedException", http_status_code=403)
        with pytest.raises(
            ExternalServiceError, match="read the Bedrock custom model arn:"
        ) as caught:
            BedrockSource(bedrock).custom_models()
    assert caught.value.code == "AccessDeniedException"


def test_without_a_region_bedrock_is_unavailable_and_builds_no_client() -> None:
    source = BedrockSource.from_settings(get_settings())

    reason = source.unavailable_reason()
    assert reason is not None and "PORTAL_AWS_REGION" in reason
    with pytest.raises(ConfigurationError, match="PORTAL_AWS_REGION"):
        source.fetch()
    assert aws._client.cache_info().currsize == 0


def test_with_a_region_or_a_client_bedrock_is_available(aws_settings: Settings) -> None:
    assert BedrockSource.from_settings(aws_settings).unavailable_reason() is None
    assert BedrockSource(aws.client("bedrock", aws_settings)).unavailable_reason() is None
