"""Amazon Bedrock as a model catalog: its foundation models and the account's custom models.

Foundation models come from ``ListFoundationModels`` (one version each: the model id); custom
models from ``ListCustomModels`` and ``GetCustomModel`` (one version each: the model name),
with the base model, the customization job, its hyperparameters and its training and
validation metrics.
"""

from __future__ import annotations

from typing import Any

from services import aws
from services.config import Settings
from services.errors import ConfigurationError
from services.registry.sources.base import (
    ExternalModel,
    ExternalVersion,
    as_utc,
    pages,
    string_map,
)


class BedrockSource:
    """Reads the Bedrock model catalog of one region through an injected boto3 client, or
    one built from the settings on first use."""

    name = "bedrock"
    label = "Amazon Bedrock"

    def __init__(
        self,
        client: Any = None,
        *,
        settings: Settings | None = None,
        page_size: int | None = None,
    ) -> None:
        if client is None and settings is None:
            raise TypeError("BedrockSource needs a bedrock client or the settings to build one")
        self._client = client
        self._settings = settings
        self._page_size = page_size

    @classmethod
    def from_settings(cls, settings: Settings) -> BedrockSource:
        """The source for the portal's AWS settings; the client is built when first needed."""
        return cls(settings=settings)

    def unavailable_reason(self) -> str | None:
        """Why Bedrock cannot be read (AWS not configured); None when it can."""
        if self._client is not None or self._settings is None:
            return None
        return aws.not_configured_reason(self._settings)

    def fetch(self) -> list[ExternalModel]:
        """Foundation models first, then custom models, each with one version."""
        return self.foundation_models() + self.custom_models()

    def foundation_models(self) -> list[ExternalModel]:
        """The foundation models Bedrock offers in this region."""
        client = self._bedrock()
        with aws.aws_errors("list Bedrock foundation models"):
            summaries = [
                summary
                for page in pages(client, "list_foundation_models")
                for summary in page.get("modelSummaries", [])
            ]
        return [_foundation_model(summary) for summary in summaries]

    def custom_models(self) -> list[ExternalModel]:
        """The account's custom (fine-tuned or further pre-trained) models."""
        client = self._bedrock()
        with aws.aws_errors("list Bedrock custom models"):
            arns = [
                summary["modelArn"]
                for page in pages(client, "list_custom_models", self._page_size)
                for summary in page.get("modelSummaries", [])
            ]
        models = []
        for arn in arns:
            with aws.aws_errors(f"read the Bedrock custom model {arn}"):
                detail = client.get_custom_model(modelIdentifier=arn)
                tags = client.list_tags_for_resource(resourceARN=arn).get("tags", [])
            models.append(_custom_model(detail, string_map(tags, "key", "value")))
        return models

    def _bedrock(self) -> Any:
        if self._client is None:
            reason = self.unavailable_reason()
            if reason:
                raise ConfigurationError(reason)
            assert self._settings is not None
            with aws.aws_errors("connect to Amazon Bedrock"):
                self._client = aws.client("bedrock", self._settings)
        return self._client


def _foundation_model(summary: dict[str, Any]) -> ExternalModel:
    model_id = str(summary["modelId"])
    modalities = [*summary.get("inputModalities", []), *summary.get("outputModalities", [])]
    return ExternalModel(
        source="bedrock",
        kind="foundation",
        provider=str(summary.get("providerName") or "Unknown"),
        name=str(summary.get("modelName") or model_id),
        source_ref=model_id,
        modalities=tuple(dict.fromkeys(modalities)),
        customizations=tuple(summary.get("customizationsSupported", [])),
        lifecycle=summary.get("modelLifecycle", {}).get("status"),
        versions=(ExternalVersion(version=model_id, source_ref=str(summary["modelArn"])),),
    )


def _custom_model(detail: dict[str, Any], tags: dict[str, str]) -> ExternalModel:
    arn = str(detail["modelArn"])
    name = str(detail["modelName"])
    customization = detail.get("customizationType")
    version = ExternalVersion(
        version=name,
        source_ref=arn,
        created_at=as_utc(detail.get("creationTime")),
        metrics=_metrics(detail),
        params={str(k): str(v) for k, v in detail.get("hyperParameters", {}).items()},
        base_model_ref=detail.get("baseModelArn"),
        job_ref=detail.get("jobArn"),
    )
    return ExternalModel(
        source="bedrock",
        kind="custom",
        provider="bedrock",
        name=name,
        source_ref=arn,
        tags=tags,
        customizations=(customization,) if customization else (),
        lifecycle=detail.get("modelStatus"),
        versions=(version,),
    )


def _metrics(detail: dict[str, Any]) -> dict[str, float]:
    """``trainingMetrics`` ({"trainingLoss": x}) and ``validationMetrics`` (one
    {"validationLoss": y} per validator; the second and later get a ``_2``… suffix)."""
    metrics = {str(k): float(v) for k, v in detail.get("trainingMetrics", {}).items()}
    for index, validator in enumerate(detail.get("validationMetrics", []), start=1):
        suffix = "" if index == 1 else f"_{index}"
        metrics.update({f"{k}{suffix}": float(v) for k, v in validator.items()})
    return metrics
