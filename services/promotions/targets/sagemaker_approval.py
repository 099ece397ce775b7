"""Mirror a decision into the SageMaker Model Registry: ``ModelApprovalStatus`` Approved or
Rejected, with an ``ApprovalDescription`` naming the request and who decided.

``UpdateModelPackage`` is sent with every field the portal means to keep: SageMaker
emulators (and a careless reading of the API) drop customer metadata that a call omits, so
the current metadata is read first and sent back with the portal's keys added. A rejection
leaves an already Approved package as it is (the request was for a further stage)."""

from __future__ import annotations

from typing import Any

from services import aws
from services.config import Settings


def approval_status(payload: dict[str, Any]) -> str:
    return "Approved" if payload["event"] == "promotion.approved" else "Rejected"


def approval_description(payload: dict[str, Any]) -> str:
    request = f"portal request #{payload['request_id']}"
    if payload["event"] == "promotion.approved":
        who = ", ".join(payload["approved_by"]) or "the portal"
        text = f"Approved for {payload['stage']} by {who} ({request})"
    else:
        text = f"Rejected for {payload['stage']} ({request}): {payload.get('comment', '')}"
    return text[:1000]


def set_approval(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    arn = str(payload["sagemaker_package_arn"])
    status = approval_status(payload)
    client = aws.client("sagemaker", settings)
    with aws.aws_errors(f"set the SageMaker model package {arn} to {status}"):
        current = client.describe_model_package(ModelPackageName=arn)
        if status == "Rejected" and current.get("ModelApprovalStatus") == "Approved":
            # Rejecting a promotion (say, staging to production) does not withdraw the
            # approval the package already has: deployments of the earlier stage rely on it.
            return {
                "summary": f"{arn} stays Approved: rejecting request #{payload['request_id']} "
                f"for {payload['stage']} does not withdraw its earlier approval",
                "sagemaker_approval_status": "Approved",
            }
        metadata = dict(current.get("CustomerMetadataProperties") or {})
        metadata.update(
            {
                "portal-request-id": str(payload["request_id"]),
                "portal-stage": payload["stage"] if status == "Approved" else "rejected",
            }
        )
        client.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus=status,
            ApprovalDescription=approval_description(payload),
            CustomerMetadataProperties=metadata,
        )
    return {"summary": f"{arn} is {status}", "sagemaker_approval_status": status}
