"""The SageMaker Model Registry as a model catalog, against moto (in process and as a server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from services import aws
from services.config import Settings, get_settings
from services.errors import ConfigurationError, ExternalServiceError
from services.registry.sources import STAGE_APPROVED
from services.registry.sources.sagemaker import SageMakerSource
from tests.integration.registry.conftest import ACCOUNT, REGION, PartialStubber, count_calls

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn:1.4"
BUCKET = "ml-reports"
JOB = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/"


def report(kind: str, **values: float) -> bytes:
    """A model quality statistics report as SageMaker Clarify / pipelines write it."""
    metrics = {name: {"value": v, "standard_deviation": 0.01} for name, v in values.items()}
    return json.dumps({"version": 0.0, f"{kind}_metrics": metrics}).encode()


def register(
    client: Any,
    group: str,
    status: str,
    job: str,
    metrics_key: str | None = None,
    **extra: Any,
) -> str:
    """What a pipeline's RegisterModel step does."""
    model_metrics = {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": f"s3://{BUCKET}/{metrics_key}",
            }
        }
    }
    return client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://models/{job}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        MetadataProperties={"GeneratedBy": JOB + job},
        **({"ModelMetrics": model_metrics} if metrics_key else {}),
        **extra,
    )["ModelPackageArn"]


def populate(settings: Settings) -> None:
    s3 = aws.client("s3", settings)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="churn/1.json", Body=report("binary_classification", auc=0.81))
    s3.put_object(Bucket=BUCKET, Key="churn/2.json", Body=report("binary_classification", auc=0.86))
    s3.put_object(Bucket=BUCKET, Key="churn/3.json", Body=b"not json")
    s3.put_object(Bucket=BUCKET, Key="fraud/1.json", Body=report("regression", mse=4.6, r2=0.7))
    sm = aws.client("sagemaker", settings)
    sm.create_model_package_group(
        ModelPackageGroupName="churn-classifier",
        ModelPackageGroupDescription="Predicts churn from usage",
        Tags=[{"Key": "team", "Value": "growth"}],
    )
    sm.create_model_package_group(ModelPackageGroupName="fraud-scorer")
    register(
        sm,
        "churn-classifier",
        "Rejected",
        "churn-1",
        "churn/1.json",
        ModelPackageDescription="XGBoost, 200 trees",
        CustomerMetadataProperties={"dataset": "usage-2024-q3"},
    )
    second = register(
        sm,
        "churn-classifier",
        "PendingManualApproval",
        "churn-2",
        "churn/2.json",
    )
    sm.update_model_package(  # an approver signs it off later
        ModelPackageArn=second,
        ModelApprovalStatus="Approved",
        ApprovalDescription="Beats v1 on AUC",
    )
    register(sm, "churn-classifier", "PendingManualApproval", "churn-3", "churn/3.json")
    register(sm, "fraud-scorer", "PendingManualApproval", "fraud-1", "fraud/1.json")
    register(sm, "fraud-scorer", "Approved", "fraud-2", "fraud/missing.json")


@pytest.fixture
def registry(aws_settings: Settings) -> Settings:
    populate(aws_settings)
    return aws_settings


def assert_catalog(models: list[Any]) -> None:
    by_name = {m.name: m for m in models}
    assert sorted(by_name) == ["churn-classifier", "fraud-scorer"]
    churn = by_name["churn-classifier"]
    group_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn-classifier"
    assert (churn.source, churn.kind, churn.provider) == ("sagemaker", "custom", "sagemaker")
    assert (churn.source_ref, churn.description) == (group_arn, "Predicts churn from usage")
    assert churn.tags == {"team": "growth"}
    assert [(v.version, v.approval_status, v.stage_hint) for v in churn.versions] == [
        ("1", "Rejected", None),
        ("2", "Approved", STAGE_APPROVED),
        ("3", "PendingManualApproval", None),
    ]
    v1, v2, v3 = churn.versions
    assert v1.metrics == {"auc": 0.81}
    assert v2.metrics == {"auc": 0.86}
    assert v3.metrics == {}  # an unreadable report leaves the version without metrics
    assert v2.source_ref.endswith(":model-package/churn-classifier/2")
    assert v2.artifact_uri == "s3://models/churn-2/model.tar.gz"
    assert v2.description == "Beats v1 on AUC"
    assert v1.tags == {"dataset": "usage-2024-q3"}
    assert v1.description == "XGBoost, 200 trees"
    assert v2.job_ref == JOB + "churn-2"
    assert v2.created_by == "fake-user-profile-name"  # moto's stand-in for a Studio user
    assert v2.created_at is not None and v2.created_at.tzinfo == UTC

    fraud = by_name["fraud-scorer"]
    assert fraud.tags == {} and fraud.description is None
    assert [(v.version, v.approval_status) for v in fraud.versions] == [
        ("1", "PendingManualApproval"),
        ("2", "Approved"),
    ]
    assert fraud.versions[0].metrics == {"mse": 4.6, "r2": 0.7}
    assert fraud.versions[1].metrics == {}  # the report does not exist


def test_fetch_returns_groups_with_their_versions(registry: Settings) -> None:
    assert_catalog(SageMakerSource.from_settings(registry).fetch())


def test_groups_and_packages_are_read_page_by_page(registry: Settings) -> None:
    client = aws.client("sagemaker", registry)
    calls = count_calls(client)

    models = SageMakerSource(client, aws.client("s3", registry), page_size=1).fetch()

    assert_catalog(models)
    assert calls["ListModelPackageGroups"] >= 2
    assert calls["ListModelPackages"] >= 5  # one page per package, at least
    assert calls["DescribeModelPackage"] == 5


def test_without_an_s3_client_versions_come_without_metrics(registry: Settings) -> None:
    models = SageMakerSource(aws.client("sagemaker", registry)).fetch()
    assert all(v.metrics == {} for m in models for v in m.versions)
    assert sum(len(m.versions) for m in models) == 5


def test_access_denied_keeps_the_code_and_says_what_failed(aws_settings: Settings) -> None:
    client = aws.client("sagemaker", aws_settings)
    with PartialStubber(client) as stubber:
        stubber.add_client_error(
            "list_model_package_groups",
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/portal is not authorized to perform: "
            "sagemaker:ListModelPackageGroups",
            http_status_code=400,
        )
        with pytest.raises(ExternalServiceError) as caught:
            SageMakerSource(client).fetch()

    assert caught.value.code == "AccessDeniedException"
    message = str(caught.value)
    assert message.startswith("Could not list SageMaker model package groups: access denied")
    assert "sagemaker:ListModelPackageGroups" in message
    assert "lacks a permission" in message


def test_without_a_region_sagemaker_is_unavailable() -> None:
    source = SageMakerSource.from_settings(get_settings())

    reason = source.unavailable_reason()
    assert reason is not None and "PORTAL_AWS_REGION" in reason
    with pytest.raises(ConfigurationError, match="PORTAL_AWS_REGION"):
        source.fetch()


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_portal_aws_endpoint_url_reaches_a_moto_server(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    monkeypatch.setenv("PORTAL_AWS_ENDPOINT_URL", moto_server)
    get_settings.cache_clear()
    settings = get_settings()
    populate(settings)

    assert_catalog(SageMakerSource.from_settings(settings).fetch())
