"""Decisions mirrored into the SageMaker Model Registry (moto): the package's approval status
and description, its customer metadata kept, and AWS refusals left pending until fixed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from models.promotion import SideEffectStatus
from models.registry import Stage
from services import aws, promotions
from services.config import Settings
from services.db import Database
from tests.integration.promotions.conftest import effects, portal_version, status_label, version_row
from tests.promotion_support import Cast, file_request

METADATA = {"team": "growth", "pipeline": "churn-train-7"}


def package(settings: Settings, group: str = "churn-classifier") -> str:
    """What a pipeline's RegisterModel step leaves: a package waiting for manual approval."""
    sm = aws.client("sagemaker", settings)
    sm.create_model_package_group(ModelPackageGroupName=group)
    return str(
        sm.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.4",
                        "ModelDataUrl": "s3://models/churn-1/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties=METADATA,
        )["ModelPackageArn"]
    )


def described(settings: Settings, arn: str) -> dict[str, Any]:
    return dict(aws.client("sagemaker", settings).describe_model_package(ModelPackageName=arn))


def version_with_package(db: Database, people: Cast, arn: str) -> int:
    return portal_version(
        db, people.scientist, "Churn classifier", references={"sagemaker_package_arn": arn}
    )


def test_approval_marks_the_package_approved_naming_approvers_and_request(
    db: Database, aws_settings: Settings, people: Cast
) -> None:
    arn = package(aws_settings)
    v1 = version_with_package(db, people, arn)
    request_id = file_request(db, people.scientist, v1, "production")
    promotions.approve(db, aws_settings, actor=people.approvers[0], request_id=request_id)
    assert described(aws_settings, arn)["ModelApprovalStatus"] == "PendingManualApproval"

    promotions.approve(db, aws_settings, actor=people.approvers[1], request_id=request_id)

    found = described(aws_settings, arn)
    assert found["ModelApprovalStatus"] == "Approved"
    assert "approver0, approver1" in found["ApprovalDescription"]
    assert f"#{request_id}" in found["ApprovalDescription"]
    assert "production" in found["ApprovalDescription"]
    assert found["CustomerMetadataProperties"] == METADATA | {
        "portal-request-id": str(request_id),
        "portal-stage": "production",
    }
    assert version_row(db, v1).sagemaker_approval_status == "Approved"
    assert status_label(db, people, request_id) == "Approved"


def test_rejection_marks_the_package_rejected_with_the_reason(
    db: Database, aws_settings: Settings, people: Cast
) -> None:
    arn = package(aws_settings)
    v1 = version_with_package(db, people, arn)
    request_id = file_request(db, people.scientist, v1, "production")

    promotions.reject(
        db,
        aws_settings,
        actor=people.approvers[0],
        request_id=request_id,
        comment="Latency regressed on the p99 benchmark",
    )

    found = described(aws_settings, arn)
    assert found["ModelApprovalStatus"] == "Rejected"
    assert "Latency regressed on the p99 benchmark" in found["ApprovalDescription"]
    assert f"#{request_id}" in found["ApprovalDescription"]
    assert found["CustomerMetadataProperties"]["team"] == "growth"
    assert version_row(db, v1).sagemaker_approval_status == "Rejected"
    assert version_row(db, v1).stage == Stage.DEVELOPMENT.value
    assert status_label(db, people, request_id) == "Rejected"


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        (
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/portal is not authorized to "
            "perform: sagemaker:DescribeModelPackage",
            "access denied",
        ),
        ("ThrottlingException", "Rate exceeded", "throttling"),
    ],
)
def test_an_aws_refusal_stays_pending_with_its_code_until_retried(
    db: Database,
    aws_settings: Settings,
    people: Cast,
    code: str,
    message: str,
    says: str,
) -> None:
    arn = package(aws_settings)
    v1 = version_with_package(db, people, arn)
    request_id = file_request(db, people.scientist, v1, "staging")
    stubber = Stubber(aws.client("sagemaker", aws_settings))
    # A stubbed answer is final (botocore's own retries do not see it), as after its retries.
    stubber.add_client_error(
        "describe_model_package", service_error_code=code, service_message=message
    )

    with stubber:
        promotions.approve(db, aws_settings, actor=people.approvers[0], request_id=request_id)
        stubber.assert_no_pending_responses()

    assert version_row(db, v1).stage == Stage.STAGING.value
    effect = effects(db, request_id)["sagemaker_approval"]
    assert effect.status == SideEffectStatus.PENDING.value
    assert code in str(effect.last_error)
    assert says in str(effect.last_error)
    assert status_label(db, people, request_id) == "Approved, sync pending"
    assert described(aws_settings, arn)["ModelApprovalStatus"] == "PendingManualApproval"

    # The permission is granted (or the throttling passes): Retry on the page carries it out.
    assert promotions.retry(db, aws_settings, actor=people.scientist, request_id=request_id) == []
    assert described(aws_settings, arn)["ModelApprovalStatus"] == "Approved"
    assert effects(db, request_id)["sagemaker_approval"].status == SideEffectStatus.DONE.value
    assert status_label(db, people, request_id) == "Approved"


def test_a_package_that_does_not_exist_is_reported_and_the_stage_still_changes(
    db: Database, aws_settings: Settings, people: Cast
) -> None:
    package(aws_settings)  # the group exists, this version's package does not
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-classifier/99"
    v1 = version_with_package(db, people, arn)
    request_id = file_request(db, people.scientist, v1, "staging")

    promotions.approve(db, aws_settings, actor=people.approvers[0], request_id=request_id)

    assert version_row(db, v1).stage == Stage.STAGING.value
    effect = effects(db, request_id)["sagemaker_approval"]
    assert effect.status == SideEffectStatus.PENDING.value
    assert arn in str(effect.last_error)
    assert "ValidationException" in str(effect.last_error)
    assert effect.attempts == 1


def test_rejecting_production_leaves_a_staging_approval_in_place(
    db: Database, aws_settings: Settings, people: Cast
) -> None:
    arn = package(aws_settings)
    v1 = version_with_package(db, people, arn)
    staging = file_request(db, people.scientist, v1, "staging")
    promotions.approve(db, aws_settings, actor=people.approvers[0], request_id=staging)
    production = file_request(db, people.scientist, v1, "production")

    promotions.reject(
        db, aws_settings, actor=people.approvers[1], request_id=production, comment="Not yet"
    )

    found = described(aws_settings, arn)
    assert found["ModelApprovalStatus"] == "Approved"  # staging still deploys it
    assert f"#{staging}" in found["ApprovalDescription"]
    row = version_row(db, v1)
    assert (row.stage, row.sagemaker_approval_status) == (Stage.STAGING.value, "Approved")
    assert effects(db, production)["sagemaker_approval"].status == SideEffectStatus.DONE.value
