"""Amazon SageMaker training jobs as a :class:`~services.training.backends.base.JobBackend`.

A job runs a recipe from ``recipes/`` in the Hugging Face PyTorch training container (script
mode): the folder goes up as ``sourcedir.tar.gz`` and the container runs :data:`ENTRY_POINT`
with the job's hyperparameters. Under the training bucket:

- ``portal/datasets/<sha256>/<split>.jsonl``: dataset splits, content-addressed, shared by jobs
  (and by the Bedrock backend), never deleted by the portal;
- ``portal/jobs/<name>/source/sourcedir.tar.gz``: the recipes as the job saw them;
- ``portal/jobs/<name>/output/``: SageMaker's output (``<name>/output/model.tar.gz``), and
  ``portal/jobs/<name>/checkpoints/`` for managed spot training.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from models.training import Backend, JobStatus
from services import aws
from services.config import Settings
from services.errors import ConfigurationError, ExternalServiceError, ValidationError
from services.registry.sources.base import as_utc, pages
from services.training.backends.base import (
    JobSpec,
    JobState,
    Submitted,
    Transition,
)
from services.training.backends.staging import (
    JOBS_PREFIX,
    already_exists,
    job_tags,
    missing_settings,
    stage_dataset,
)

log = logging.getLogger(__name__)

ENTRY_POINT = "train_causal_lm.py"
RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
DEFAULT_VOLUME_GB = 100
# The Hugging Face PyTorch training image (PyTorch 2.5.1, transformers 4.49, Python 3.11,
# CUDA 12.4). A recipe that needs newer libraries lists them in recipes/requirements.txt, which
# the container installs first; PORTAL_SAGEMAKER_IMAGE_URI replaces the image altogether.
HF_TRAINING_IMAGE = (
    "huggingface-pytorch-training:2.5.1-transformers4.49.0-gpu-py311-cu124-ubuntu22.04"
)
_DLC_ACCOUNT = "763104351884"  # AWS Deep Learning Containers, most regions
_DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-southeast-3": "907027046896",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}
# The recipe's log lines ("step 12/300 loss 1.2345 lr 2.0e-04 …", "eval step 12/300 loss 1.3 …"),
# read from the job's log by SageMaker into FinalMetricDataList under the portal's metric names.
METRIC_DEFINITIONS = [
    {"Name": "train_loss", "Regex": r"step \d+/\d+ loss ([0-9.eE+-]+) lr"},
    {"Name": "eval_loss", "Regex": r"eval step \d+/\d+ loss ([0-9.eE+-]+)"},
]
_RUNNING_PHASES = {"Training", "Uploading"}  # other InProgress phases are still starting
_STATUSES = {
    "Completed": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "Stopping": JobStatus.STOPPING,
    "Stopped": JobStatus.STOPPED,
}
_TIME_LIMITS = {"MaxRuntimeExceeded", "MaxWaitTimeExceeded"}  # "Stopped", but not by anyone
_SKIPPED = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".DS_Store"}


def dlc_image_uri(region: str, image: str) -> str:
    """``image`` (name:tag) in ``region``'s AWS Deep Learning Containers registry."""
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    account = _DLC_ACCOUNTS.get(region, _DLC_ACCOUNT)
    return f"{account}.dkr.ecr.{region}.{domain}/{image}"


def training_image_uri(region: str) -> str:
    """The Hugging Face PyTorch training image in ``region``'s Deep Learning Containers registry."""
    return dlc_image_uri(region, HF_TRAINING_IMAGE)


def job_name(external_id: str) -> str:
    """The job name in a SageMaker training job ARN (or the name itself)."""
    return external_id.rsplit("/", 1)[-1] if external_id.startswith("arn:") else external_id


def pack_source(folder: Path) -> bytes:
    """``folder`` as a reproducible ``sourcedir.tar.gz``: its files at the archive root, in
    name order, with fixed times and owners and without caches."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if not path.is_file() or path.suffix == ".pyc" or _SKIPPED & set(relative.parts):
                continue
            info = tarfile.TarInfo(relative.as_posix())
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            with path.open("rb") as content:
                tar.addfile(info, content)
    return buffer.getvalue()


@dataclass(frozen=True)
class Compute:
    instance_type: str
    instance_count: int
    volume_gb: int
    spot: bool
    max_wait_seconds: int | None


def compute_of(spec: JobSpec) -> Compute:
    """The job's compute settings, checked; ``ValidationError`` naming each bad one."""
    compute, problems = spec.compute, {}
    instance_type = compute.get("instance_type")
    if not (isinstance(instance_type, str) and instance_type.startswith("ml.")):
        problems["instance_type"] = "a SageMaker instance type such as ml.g5.2xlarge"
    count = _whole(compute.get("instance_count", 1))
    if count is None or count < 1:
        problems["instance_count"] = "a whole number of instances, at least 1"
    volume = _whole(compute.get("volume_size_gb", DEFAULT_VOLUME_GB))
    if volume is None or volume < 1:
        problems["volume_size_gb"] = "a whole number of GB, at least 1"
    runtime = spec.max_runtime_seconds
    if runtime < 1:
        problems["max_runtime_seconds"] = "at least 1 second"
    spot = bool(compute.get("spot", False))
    wait = _whole(compute.get("max_wait_seconds", 2 * runtime)) if spot else None
    if spot and (wait is None or wait < runtime):
        problems["max_wait_seconds"] = f"with spot capacity, at least the run time ({runtime} s)"
    if problems:
        raise ValidationError("The compute settings of the job are not valid.", fields=problems)
    return Compute(str(instance_type), count or 1, volume or DEFAULT_VOLUME_GB, spot, wait)


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SageMakerBackend:
    """Runs jobs as SageMaker training jobs; clients come from :func:`services.aws.client`."""

    name = Backend.SAGEMAKER

    def __init__(self, settings: Settings, *, source_dir: Path = RECIPES_DIR) -> None:
        self._settings = settings
        self._source_dir = source_dir

    def unavailable_reason(self) -> str | None:
        return missing_settings(
            self._settings,
            "SageMaker training",
            {
                "training_bucket": ("PORTAL_TRAINING_BUCKET", "an S3 bucket for data and output"),
                "sagemaker_role_arn": (
                    "PORTAL_SAGEMAKER_ROLE_ARN",
                    "the ARN of an IAM role SageMaker runs training jobs as",
                ),
            },
        )

    def submit(self, spec: JobSpec) -> Submitted:
        """Upload the data and the recipes, then create the training job. A job of the same
        name (an earlier submit of this spec) is returned as it is, nothing uploaded again."""
        compute = compute_of(spec)
        reason = self.unavailable_reason()
        if reason:
            raise ConfigurationError(reason)
        bucket = str(self._settings.training_bucket)
        output = f"s3://{bucket}/{JOBS_PREFIX}/{spec.name}/output"
        sagemaker = self._client("sagemaker")
        existing = _find_job(sagemaker, spec.name)
        if existing is not None:
            return _same_job(existing, output)
        s3 = self._client("s3")
        channels = stage_dataset(s3, bucket, spec.dataset)
        source_key = f"{JOBS_PREFIX}/{spec.name}/source/sourcedir.tar.gz"
        self._upload_source(s3, bucket, source_key)
        request = self._request(spec, compute, channels, f"s3://{bucket}/{source_key}")
        try:
            with aws.aws_errors(f"start the SageMaker training job {spec.name}"):
                created = sagemaker.create_training_job(**request)
        except ExternalServiceError as exc:
            refused = isinstance(exc.__cause__, ClientError)
            # A create whose answer never came (a timeout) may have made the job all the same:
            # look it up by name, as for a repeated submit, rather than leave it untracked.
            unanswered = not refused and exc.code == "Unreachable"
            existing = (
                _find_job(sagemaker, spec.name) if already_exists(exc) or unanswered else None
            )
            if existing is not None:
                return _same_job(existing, output)
            if refused:  # no job will read the source
                _discard(s3, bucket, source_key)
            raise
        return Submitted(str(created["TrainingJobArn"]), JobStatus.STARTING, output_uri=output)

    def describe(self, external_id: str) -> JobState:
        name = job_name(external_id)
        with aws.aws_errors(f"read the SageMaker training job {name}"):
            job = self._client("sagemaker").describe_training_job(TrainingJobName=name)
        return job_state(job)

    def stop(self, external_id: str) -> None:
        name = job_name(external_id)
        with aws.aws_errors(f"stop the SageMaker training job {name}"):
            self._client("sagemaker").stop_training_job(TrainingJobName=name)

    def logs(self, external_id: str, limit: int = 200) -> list[str]:
        """The last ``limit`` lines of every instance's log stream, oldest first, each prefixed
        with its instance when there are several; [] before the job has written any."""
        name = job_name(external_id)
        limit = max(1, min(limit, 10_000))
        client = self._client("logs")
        events: list[tuple[int, str, str]] = []
        with aws.aws_errors(f"read the logs of the SageMaker training job {name}"):
            try:
                streams = [
                    stream["logStreamName"]
                    for page in pages(
                        client,
                        "describe_log_streams",
                        logGroupName=LOG_GROUP,
                        logStreamNamePrefix=f"{name}/",
                    )
                    for stream in page.get("logStreams", [])
                ]
                for stream in streams:
                    answer = client.get_log_events(
                        logGroupName=LOG_GROUP,
                        logStreamName=stream,
                        limit=limit,
                        startFromHead=False,
                    )
                    host = stream.removeprefix(f"{name}/")
                    events += [(e["timestamp"], host, e["message"]) for e in answer["events"]]
            except ClientError as exc:
                if aws.error_code(exc) == "ResourceNotFoundException":
                    return []
                raise
        events.sort(key=lambda event: event[0])  # stable: each stream keeps its own order
        several = len(streams) > 1
        lines = [f"[{host}] {text}" if several else text for _, host, text in events]
        return [line.rstrip("\n") for line in lines[-limit:]]

    def _request(
        self, spec: JobSpec, compute: Compute, channels: dict[str, str], source_uri: str
    ) -> dict[str, Any]:
        settings = self._settings
        region = str(settings.aws_region)
        jobs = f"s3://{settings.training_bucket}/{JOBS_PREFIX}/{spec.name}"
        # The recipe's command line (sagemaker_* are the container's own settings), every value
        # JSON-encoded as SageMaker's Python SDK sends them.
        hyperparameters = {
            **spec.hyperparameters,
            "base_model": spec.base_model,
            "data_format": spec.dataset.format,
            **_tracking_arguments(spec),
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": source_uri,
            "sagemaker_region": region,
        }
        stopping = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
        request: dict[str, Any] = {
            "TrainingJobName": spec.name,
            "AlgorithmSpecification": {
                "TrainingImage": settings.sagemaker_image_uri or training_image_uri(region),
                "TrainingInputMode": "File",
                "MetricDefinitions": METRIC_DEFINITIONS,
            },
            "HyperParameters": {str(k): json.dumps(v) for k, v in hyperparameters.items()},
            "RoleArn": settings.sagemaker_role_arn,
            "InputDataConfig": [_channel(name, uri) for name, uri in channels.items()],
            "OutputDataConfig": {"S3OutputPath": f"{jobs}/output"},
            "ResourceConfig": {
                "InstanceType": compute.instance_type,
                "InstanceCount": compute.instance_count,
                "VolumeSizeInGB": compute.volume_gb,
            },
            "StoppingCondition": stopping,
            "Tags": [{"Key": k, "Value": v} for k, v in job_tags(spec).items()],
        }
        if compute.spot:
            stopping["MaxWaitTimeInSeconds"] = int(compute.max_wait_seconds or 0)
            request["EnableManagedSpotTraining"] = True
            request["CheckpointConfig"] = {
                "S3Uri": f"{jobs}/checkpoints",
                "LocalPath": "/opt/ml/checkpoints",
            }
        return request

    def _upload_source(self, s3: Any, bucket: str, key: str) -> None:
        if not (self._source_dir / ENTRY_POINT).is_file():
            raise ConfigurationError(
                f"The training recipes are missing: {self._source_dir / ENTRY_POINT} "
                "does not exist in this installation."
            )
        with aws.aws_errors(f"upload the training recipes to s3://{bucket}/{key}"):
            s3.put_object(Bucket=bucket, Key=key, Body=pack_source(self._source_dir))

    def _client(self, service: str) -> Any:
        with aws.aws_errors(f"connect to {service}"):
            return aws.client(service, self._settings)


def job_state(job: dict[str, Any]) -> JobState:
    """A DescribeTrainingJob answer as the portal's :class:`JobState`."""
    phase = str(job.get("SecondaryStatus") or "")
    history = job.get("SecondaryStatusTransitions") or []
    # The last transition's message describes the current phase only if it is that phase's.
    last = history[-1] if history else {}
    message = str(last.get("StatusMessage") or "") if last.get("Status") == phase else ""
    status = _status(str(job["TrainingJobStatus"]), phase)
    failure = job.get("FailureReason")
    error_code = None
    if status is JobStatus.FAILED and phase in _TIME_LIMITS:
        error_code = phase
        failure = failure or f"The job reached its time limit ({phase}) and was stopped."
    elif failure and (match := re.match(r"(\w+Error):", str(failure))):
        error_code = match.group(1)
    return JobState(
        status=status,
        detail=f"{phase}: {message}" if phase and message else phase or message,
        transitions=tuple(
            Transition(
                as_utc(t.get("StartTime")), str(t["Status"]), str(t.get("StatusMessage") or "")
            )
            for t in history
        ),
        metrics={
            str(m["MetricName"]): float(m["Value"]) for m in job.get("FinalMetricDataList", [])
        },
        billable_seconds=job.get("BillableTimeInSeconds"),
        artifact_uri=job.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
        error_code=error_code,
        failure_reason=str(failure) if failure else None,
    )


def _status(status: str, phase: str) -> JobStatus:
    if status == "InProgress":
        return JobStatus.RUNNING if phase in _RUNNING_PHASES else JobStatus.STARTING
    if status == "Stopped" and phase in _TIME_LIMITS:
        return JobStatus.FAILED
    if status not in _STATUSES:
        log.warning("Unknown SageMaker training job status %r; taken as running", status)
    return _STATUSES.get(status, JobStatus.RUNNING)


def _channel(name: str, uri: str) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": source},
        "ContentType": "application/jsonl",
    }


def _tracking_arguments(spec: JobSpec) -> dict[str, str]:
    """The recipe's MLflow arguments, so it logs to the portal's run: only for a tracking server
    the job can reach (http(s), or a SageMaker managed MLflow ARN), not a local store."""
    tracking = spec.tracking
    if tracking is None or not tracking.tracking_uri.startswith(("http://", "https://", "arn:")):
        return {}
    arguments = {
        "mlflow_tracking_uri": tracking.tracking_uri,
        "mlflow_experiment_name": tracking.experiment_name,
    }
    if tracking.run_id:
        arguments["mlflow_run_id"] = tracking.run_id
    return arguments


def _find_job(sagemaker: Any, name: str) -> dict[str, Any] | None:
    with aws.aws_errors(f"look for the SageMaker training job {name}"):
        try:
            return dict(sagemaker.describe_training_job(TrainingJobName=name))
        except ClientError as exc:  # SageMaker says "ValidationException: … not found"
            message = str(exc.response.get("Error", {}).get("Message", "")).lower()
            missing = "not found" in message or "could not find" in message
            if aws.error_code(exc) in {"ValidationException", "ResourceNotFound"} and missing:
                return None
            raise


def _same_job(job: dict[str, Any], output: str) -> Submitted:
    return Submitted(
        external_id=str(job["TrainingJobArn"]),
        status=job_state(job).status,
        detail="This job was submitted before; the portal follows the existing training job.",
        output_uri=output,
    )


def _discard(s3: Any, bucket: str, key: str) -> None:
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:  # the refusal is what the user must see
        log.warning("Could not remove s3://%s/%s after a refused job: %s", bucket, key, exc)
