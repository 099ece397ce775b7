"""Read-only adapters that fetch model catalogs (Amazon Bedrock, the SageMaker Model Registry,
the MLflow Model Registry) as plain dataclasses for the registry sync.

Importing this package is cheap: boto3 and MLflow load only when a source is used."""

from services.registry.sources.base import (
    STAGE_APPROVED,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    ExternalModel,
    ExternalVersion,
    RegistrySource,
    sources_for,
)

__all__ = [
    "STAGE_APPROVED",
    "STAGE_PRODUCTION",
    "STAGE_STAGING",
    "ExternalModel",
    "ExternalVersion",
    "RegistrySource",
    "sources_for",
]
