"""A finished SageMaker training job registered in the SageMaker Model Registry: a model
package in a group named after the portal's model, pending approval until a promotion in the
portal approves it. ``ClientToken`` makes a retried registration return the same package."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services import aws
from services.config import Settings
from services.training.backends.sagemaker import dlc_image_uri

HF_INFERENCE_IMAGE = (
    "huggingface-pytorch-inference:2.6.0-transformers4.49.0-gpu-py312-cu124-ubuntu22.04"
)
PENDING = "PendingManualApproval"


@dataclass(frozen=True)
class RegisteredPackage:
    arn: str
    group: str
    approval_status: str


def group_name(model_name: str) -> str:
    """A valid package group name (letters, digits, dashes; at most 63) for a portal model."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model_name).strip("-")[:63].strip("-")
    return slug or "portal-model"


def inference_image_uri(region: str) -> str:
    return dlc_image_uri(region, HF_INFERENCE_IMAGE)


def register_package(
    settings: Settings,
    *,
    model_name: str,
    model_data_url: str,
    description: str,
    token: str,
    metadata: dict[str, str],
) -> RegisteredPackage:
    """Create (or find, on a retry) the model package of a training job's model artifact."""
    client = aws.client("sagemaker", settings)
    group = group_name(model_name)
    with aws.aws_errors(f"create the SageMaker model package group {group}"):
        existing = client.list_model_package_groups(NameContains=group).get(
            "ModelPackageGroupSummaryList", []
        )
        if not any(g["ModelPackageGroupName"] == group for g in existing):
            client.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=f"Versions of {model_name}, registered by the portal",
            )
    image = settings.sagemaker_inference_image_uri or inference_image_uri(str(settings.aws_region))
    with aws.aws_errors(f"register the model of this job in SageMaker group {group}"):
        answer = client.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=description[:1000],
            InferenceSpecification={
                "Containers": [{"Image": image, "ModelDataUrl": model_data_url}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=PENDING,
            CustomerMetadataProperties=metadata,
            ClientToken=token,
        )
    return RegisteredPackage(str(answer["ModelPackageArn"]), group, PENDING)
