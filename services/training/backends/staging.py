"""What SageMaker and Bedrock jobs share: the settings they need, their tags, the dataset
splits staged in S3 under content-addressed keys, and spotting a repeated submission."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from services import aws
from services.config import Settings
from services.errors import ExternalServiceError, ValidationError
from services.training.backends.base import DatasetInput, DatasetSplit, JobSpec

DATASETS_PREFIX = "portal/datasets"
JOBS_PREFIX = "portal/jobs"
_MISSING_OBJECT = {"404", "NoSuchKey", "NotFound"}


def missing_settings(
    settings: Settings, service: str, needs: dict[str, tuple[str, str]]
) -> str | None:
    """Why ``service`` cannot run with these settings: AWS not configured, or each setting in
    ``needs`` (attribute -> (variable, what it is)) that is empty; None when nothing is missing."""
    reason = aws.not_configured_reason(settings)
    if reason:
        return reason
    missing = [
        f"{service} needs {what}: set {variable}."
        for attribute, (variable, what) in needs.items()
        if not getattr(settings, attribute)
    ]
    return " ".join(missing) or None


def already_exists(error: ExternalServiceError) -> bool:
    """Whether AWS refused a create because a job of that name exists (a repeated submit)."""
    if error.code in {"ResourceInUse", "ResourceInUseException", "ConflictException"}:
        return True
    return error.code == "ValidationException" and "already exist" in (error.detail or "").lower()


def stage_dataset(s3: Any, bucket: str, dataset: DatasetInput) -> dict[str, str]:
    """The S3 URIs of the dataset's ``train`` and ``validation`` splits (the whole file as
    ``train`` when it has no splits), uploading each local file the bucket does not hold yet."""
    whole = DatasetSplit("train", dataset.storage_uri, dataset.sha256, dataset.record_count)
    splits = {"train": whole, **dataset.splits}
    return {
        name: stage_split(s3, bucket, splits[name])
        for name in ("train", "validation")
        if name in splits
    }


def stage_split(s3: Any, bucket: str, split: DatasetSplit) -> str:
    """``s3://<bucket>/portal/datasets/<sha256>/<split>.jsonl`` with the split's content; an
    ``s3://`` split stays where it is, and an object of the same size is not sent again."""
    if split.uri.startswith("s3://"):
        return split.uri
    path = Path(urlparse(split.uri).path) if split.uri.startswith("file:") else Path(split.uri)
    key = f"{DATASETS_PREFIX}/{split.sha256}/{split.name}.jsonl"
    uri = f"s3://{bucket}/{key}"
    if not path.is_file():
        raise ValidationError(
            f"The {split.name} split of the dataset is missing from {path}.",
            fields={"dataset": f"the {split.name} split file is gone; register the dataset again"},
        )
    if object_size(s3, bucket, key) == path.stat().st_size:
        return uri
    if sha256_of(path) != split.sha256:
        raise ValidationError(
            f"The {split.name} split at {path} changed after it was registered.",
            fields={"dataset": "the file changed since it was checked; register a new version"},
        )
    with aws.aws_errors(f"upload the {split.name} split to {uri}"), path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/jsonl")
    return uri


def job_tags(spec: JobSpec) -> dict[str, str]:
    """The job's own tags, then the portal's (which win): team, owner, job id, idempotency key."""
    tags = {**spec.tags, "owner": spec.owner, "portal-job-id": str(spec.job_id)}
    tags["portal-idempotency-key"] = spec.idempotency_key
    if spec.team:
        tags["team"] = spec.team
    return tags


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as content:
        for block in iter(lambda: content.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def object_size(s3: Any, bucket: str, key: str) -> int | None:
    with aws.aws_errors(f"check s3://{bucket}/{key}"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) in _MISSING_OBJECT:
                return None
            raise
    return int(head["ContentLength"])
