"""The SageMaker Model Registry as a model catalog: one model per model package group, one
version per model package in it.

Per version: ``ModelPackageVersion``, ``ModelApprovalStatus`` (and ``stage_hint`` "approved"
when Approved), ``ModelPackageDescription`` (else ``ApprovalDescription``), ``CreationTime``,
``CreatedBy``, the first inference container's model data (or image) as the artifact,
``CustomerMetadataProperties`` as tags, ``MetadataProperties.GeneratedBy`` as the job, and the
metrics of the ``ModelMetrics.ModelQuality.Statistics`` report when an S3 client can read it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from services import aws
from services.config import Settings
from services.errors import ConfigurationError, ExternalServiceError
from services.registry.sources.base import (
    STAGE_APPROVED,
    ExternalModel,
    ExternalVersion,
    as_utc,
    pages,
    string_map,
)

log = logging.getLogger(__name__)


class SageMakerSource:
    """Reads model package groups through injected boto3 ``sagemaker`` (and optional ``s3``,
    for metric reports) clients, or ones built from the settings on first use."""

    name = "sagemaker"
    label = "SageMaker Model Registry"

    def __init__(
        self,
        client: Any = None,
        s3_client: Any = None,
        *,
        settings: Settings | None = None,
        page_size: int | None = None,
    ) -> None:
        if client is None and settings is None:
            raise TypeError("SageMakerSource needs a sagemaker client or the settings to build one")
        self._client = client
        self._s3 = s3_client
        self._settings = settings
        self._page_size = page_size

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerSource:
        """The source for the portal's AWS settings; clients are built when first needed."""
        return cls(settings=settings)

    def unavailable_reason(self) -> str | None:
        """Why the registry cannot be read (AWS not configured); None when it can."""
        if self._client is not None or self._settings is None:
            return None
        return aws.not_configured_reason(self._settings)

    def fetch(self) -> list[ExternalModel]:
        """Every model package group with its versioned packages, oldest version first."""
        client = self._sagemaker()
        with aws.aws_errors("list SageMaker model package groups"):
            groups = [
                group
                for page in pages(client, "list_model_package_groups", self._page_size)
                for group in page.get("ModelPackageGroupSummaryList", [])
            ]
        return [self._group(group) for group in groups]

    def _group(self, group: dict[str, Any]) -> ExternalModel:
        client = self._sagemaker()
        name = str(group["ModelPackageGroupName"])
        with aws.aws_errors(f"list the model packages of SageMaker group {name}"):
            arns = [
                package["ModelPackageArn"]
                for page in pages(
                    client, "list_model_packages", self._page_size, ModelPackageGroupName=name
                )
                for package in page.get("ModelPackageSummaryList", [])
            ]
        packages = sorted(map(self._describe, arns), key=lambda p: p.get("ModelPackageVersion", 0))
        return ExternalModel(
            source="sagemaker",
            kind="custom",
            provider="sagemaker",
            name=name,
            source_ref=str(group["ModelPackageGroupArn"]),
            description=group.get("ModelPackageGroupDescription"),
            tags=self._group_tags(str(group["ModelPackageGroupArn"])),
            versions=tuple(self._version(package) for package in packages),
        )

    def _describe(self, arn: str) -> dict[str, Any]:
        with aws.aws_errors(f"describe the SageMaker model package {arn}"):
            return dict(self._sagemaker().describe_model_package(ModelPackageName=arn))

    def _version(self, package: dict[str, Any]) -> ExternalVersion:
        arn = str(package["ModelPackageArn"])
        status = package.get("ModelApprovalStatus")
        created_by = package.get("CreatedBy", {})
        return ExternalVersion(
            version=str(package.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
            source_ref=arn,
            artifact_uri=_artifact_uri(package.get("InferenceSpecification", {})),
            created_at=as_utc(package.get("CreationTime")),
            created_by=created_by.get("UserProfileName")
            or created_by.get("IamIdentity", {}).get("Arn"),
            description=package.get("ModelPackageDescription")
            or package.get("ApprovalDescription"),
            stage_hint=STAGE_APPROVED if status == "Approved" else None,
            approval_status=status,
            metrics=self._metrics(package.get("ModelMetrics", {})),
            tags={str(k): str(v) for k, v in package.get("CustomerMetadataProperties", {}).items()},
            job_ref=package.get("MetadataProperties", {}).get("GeneratedBy"),
        )

    def _group_tags(self, arn: str) -> dict[str, str]:
        with aws.aws_errors(f"list the tags of SageMaker group {arn}"):
            return {
                key: value
                for page in pages(self._sagemaker(), "list_tags", ResourceArn=arn)
                for key, value in string_map(page.get("Tags")).items()
            }

    def _metrics(self, model_metrics: dict[str, Any]) -> dict[str, float]:
        """Metrics of the model quality statistics report, e.g. ``{"regression_metrics":
        {"mse": {"value": 4.6, "standard_deviation": 2.2}}}``; {} without a readable report,
        because a missing report must not hide the version."""
        uri = model_metrics.get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        s3 = self._s3_client() if uri else None
        if s3 is None:
            return {}
        bucket, _, key = str(uri).removeprefix("s3://").partition("/")
        try:
            with aws.aws_errors(f"read the SageMaker metrics report {uri}"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            report = json.loads(body)
        except (ExternalServiceError, ValueError) as exc:
            log.warning("Metrics of a SageMaker model package left out: %s", exc)
            return {}
        return _flatten_statistics(report)

    def _sagemaker(self) -> Any:
        if self._client is None:
            reason = self.unavailable_reason()
            if reason:
                raise ConfigurationError(reason)
            assert self._settings is not None
            with aws.aws_errors("connect to SageMaker"):
                self._client = aws.client("sagemaker", self._settings)
        return self._client

    def _s3_client(self) -> Any:
        if self._s3 is None and self._settings is not None and not self.unavailable_reason():
            with aws.aws_errors("connect to Amazon S3"):
                self._s3 = aws.client("s3", self._settings)
        return self._s3


def _artifact_uri(spec: dict[str, Any]) -> str | None:
    containers = spec.get("Containers") or [{}]
    first = containers[0]
    s3_source = first.get("ModelDataSource", {}).get("S3DataSource", {})
    return first.get("ModelDataUrl") or s3_source.get("S3Uri") or first.get("Image")


def _flatten_statistics(report: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if not isinstance(report, dict):
        return metrics
    for section, entries in report.items():
        if not (str(section).endswith("_metrics") and isinstance(entries, dict)):
            continue
        for name, entry in entries.items():
            value = entry.get("value") if isinstance(entry, dict) else entry
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[str(name)] = float(value)
    return metrics
