"""SageMaker training jobs against moto: what is uploaded where, the job SageMaker is asked to
run, a repeated submit, status mapping (driven through moto's job objects, since moto finishes
training jobs at once), stopping (a Stubber: moto 5.2.5 has no StopTrainingJob), logs from
moto's CloudWatch Logs, and AWS refusals injected with a Stubber."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from models.training import JobStatus
from services import aws
from services.config import Settings, get_settings
from services.errors import ConfigurationError, ExternalServiceError, ValidationError
from services.training.backends.base import (
    DatasetInput,
    DatasetSplit,
    JobSpec,
    TrackingTarget,
)
from services.training.backends.sagemaker import (
    ENTRY_POINT,
    HF_TRAINING_IMAGE,
    LOG_GROUP,
    SageMakerBackend,
    training_image_uri,
)
from tests.integration.registry.conftest import (  # the fixtures: moto, fake credentials
    ACCOUNT,
    REGION,
    PartialStubber,
    count_calls,
    offline_sdks,  # noqa: F401  (autouse)
)

BUCKET = "portal-training"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/portal-sagemaker"


def chat_record(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Question {i}?"},
            {"role": "assistant", "content": f"Answer {i}."},
        ]
    }


def write_split(folder: Path, name: str, records: list[dict[str, Any]]) -> DatasetSplit:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return DatasetSplit(
        name, str(path), hashlib.sha256(path.read_bytes()).hexdigest(), len(records)
    )


def make_spec(
    folder: Path, name: str = "ft-support-0001", fmt: str = "chat", **changes: Any
) -> JobSpec:
    """A job on real little JSONL splits written to ``folder``."""
    records = changes.pop("records", None) or [chat_record(i) for i in range(8)]
    train = write_split(folder, "train", records[:6])
    validation = write_split(folder, "validation", records[6:])
    dataset = DatasetInput(
        version_id=3,
        name="support-tickets v3",
        format=fmt,
        sha256="0" * 64,
        storage_uri=str(folder / "all.jsonl"),
        token_estimate=400,
        record_count=len(records),
        splits={"train": train, "validation": validation},
    )
    values: dict[str, Any] = {
        "job_id": 17,
        "name": name,
        "idempotency_key": "k" * 32,
        "owner": "dana",
        "team": "support",
        "base_model": "tiny-llama",
        "recipe": "causal-lm",
        "customization_type": None,
        "hyperparameters": {"epochs": 2, "learning_rate": 0.0005, "method": "lora"},
        "compute": {"instance_type": "ml.g5.2xlarge", "instance_count": 1},
        "max_runtime_seconds": 3600,
        "dataset": dataset,
        "tags": {"cost-center": "cc-42"},
    }
    return JobSpec(**{**values, **changes})


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / ENTRY_POINT).write_text("print('training')\n")
    (folder / "requirements.txt").write_text("peft\n")
    (folder / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0")
    return folder


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for SageMaker training with every AWS call answered by moto, and the training
    bucket created."""
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    monkeypatch.setenv("PORTAL_TRAINING_BUCKET", BUCKET)
    monkeypatch.setenv("PORTAL_SAGEMAKER_ROLE_ARN", ROLE)
    get_settings.cache_clear()
    with mock_aws():
        configured = get_settings()
        aws.client("s3", configured).create_bucket(Bucket=BUCKET)
        yield configured


@pytest.fixture
def backend(settings: Settings, recipes: Path) -> SageMakerBackend:
    return SageMakerBackend(settings, source_dir=recipes)


def objects(settings: Settings) -> dict[str, bytes]:
    s3 = aws.client("s3", settings)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


def moto_job(name: str) -> Any:
    return sagemaker_backends[ACCOUNT][REGION].training_jobs[name]


def test_submit_uploads_data_and_recipes_and_starts_the_job(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path, compute={"instance_type": "ml.g5.2xlarge", "instance_count": 2})
    submitted = backend.submit(spec)

    sagemaker = aws.client("sagemaker", settings)
    job = sagemaker.describe_training_job(TrainingJobName=spec.name)
    assert submitted.external_id == job["TrainingJobArn"]
    assert submitted.status is JobStatus.STARTING
    prefix = f"s3://{BUCKET}/portal/jobs/{spec.name}"
    assert submitted.output_uri == f"{prefix}/output"

    train, validation = spec.dataset.splits["train"], spec.dataset.splits["validation"]
    stored = objects(settings)
    train_key = f"portal/datasets/{train.sha256}/train.jsonl"
    assert stored[train_key] == Path(train.uri).read_bytes()
    assert stored[f"portal/datasets/{validation.sha256}/validation.jsonl"]
    with tarfile.open(
        fileobj=io.BytesIO(stored[f"portal/jobs/{spec.name}/source/sourcedir.tar.gz"])
    ) as tar:
        assert sorted(tar.getnames()) == ["requirements.txt", ENTRY_POINT]  # no caches

    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in job["InputDataConfig"]}
    assert channels["train"]["S3Uri"] == f"s3://{BUCKET}/{train_key}"
    assert channels["train"]["S3DataType"] == "S3Prefix"
    assert set(channels) == {"train", "validation"}
    assert job["HyperParameters"] == {
        "epochs": "2",
        "learning_rate": "0.0005",
        "method": '"lora"',
        "base_model": '"tiny-llama"',
        "data_format": '"chat"',
        "sagemaker_program": f'"{ENTRY_POINT}"',
        "sagemaker_submit_directory": f'"{prefix}/source/sourcedir.tar.gz"',
        "sagemaker_region": f'"{REGION}"',
    }
    assert job["AlgorithmSpecification"]["TrainingImage"] == (
        f"763104351884.dkr.ecr.{REGION}.amazonaws.com/{HF_TRAINING_IMAGE}"
    )
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == f"{prefix}/output"
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.g5.2xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 100,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert not job.get("EnableManagedSpotTraining")
    tags = sagemaker.list_tags(ResourceArn=submitted.external_id)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "cost-center": "cc-42",
        "team": "support",
        "owner": "dana",
        "portal-job-id": "17",
        "portal-idempotency-key": "k" * 32,
    }


def test_spot_job_waits_longer_than_it_runs_and_checkpoints_to_s3(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    compute = {"instance_type": "ml.g5.xlarge", "spot": True, "max_wait_seconds": 5400}
    spec = make_spec(tmp_path, compute=compute, max_runtime_seconds=1800)
    backend.submit(spec)
    job = aws.client("sagemaker", settings).describe_training_job(TrainingJobName=spec.name)
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 5400}
    assert job["CheckpointConfig"] == {
        "S3Uri": f"s3://{BUCKET}/portal/jobs/{spec.name}/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }


def test_reachable_tracking_server_and_own_image_are_passed_on(
    settings: Settings, recipes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_SAGEMAKER_IMAGE_URI", "123.dkr.ecr.us-east-1.amazonaws.com/own:1")
    get_settings.cache_clear()
    tracking = TrackingTarget("https://mlflow.internal", "support-bot", run_id="abc123")
    spec = make_spec(tmp_path, tracking=tracking)
    SageMakerBackend(get_settings(), source_dir=recipes).submit(spec)
    job = aws.client("sagemaker", settings).describe_training_job(TrainingJobName=spec.name)
    assert (
        job["AlgorithmSpecification"]["TrainingImage"]
        == "123.dkr.ecr.us-east-1.amazonaws.com/own:1"
    )
    parameters = job["HyperParameters"]
    assert parameters["mlflow_tracking_uri"] == '"https://mlflow.internal"'
    assert parameters["mlflow_run_id"] == '"abc123"'


def test_submitting_twice_starts_one_job_and_uploads_nothing_again(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    first = backend.submit(spec)
    sagemaker_calls = count_calls(aws.client("sagemaker", settings))
    s3_calls = count_calls(aws.client("s3", settings))
    again = backend.submit(spec)
    assert again.external_id == first.external_id
    assert sagemaker_calls["CreateTrainingJob"] == 0 and s3_calls["PutObject"] == 0
    listed = aws.client("sagemaker", settings).list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == [spec.name]


def test_data_already_in_the_bucket_is_not_sent_again(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    backend.submit(make_spec(tmp_path, name="first-job"))
    s3_calls = count_calls(aws.client("s3", settings))
    backend.submit(make_spec(tmp_path, name="second-job"))  # same data, another job
    assert s3_calls["PutObject"] == 1  # only the second job's recipes


def test_name_taken_at_create_time_is_the_same_job(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    """A submit whose answer was lost, retried: the lookup still misses, CreateTrainingJob says
    the name exists, and the existing job is returned."""
    spec = make_spec(tmp_path)
    first = backend.submit(spec)
    sagemaker = aws.client("sagemaker", settings)
    with PartialStubber(sagemaker) as stubber:
        stubber.add_client_error(
            "describe_training_job", "ValidationException", "Requested resource not found."
        )
        stubber.add_client_error(
            "create_training_job",
            "ResourceInUse",
            "Training job names must be unique within an AWS account and region, and a "
            "training job with this name already exists",
        )
        again = backend.submit(spec)
        stubber.assert_no_pending_responses()
    assert again.external_id == first.external_id
    assert f"portal/jobs/{spec.name}/source/sourcedir.tar.gz" in objects(settings)


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        ("ThrottlingException", "Rate exceeded", "AWS is throttling requests"),
        ("AccessDeniedException", "not authorized to perform: iam:PassRole", "access denied"),
        ("ValidationException", "Instance type ml.g5.2xlarge is not supported", "not supported"),
    ],
)
def test_refused_create_keeps_the_aws_code_and_leaves_only_the_shared_data(
    backend: SageMakerBackend,
    settings: Settings,
    tmp_path: Path,
    code: str,
    message: str,
    says: str,
) -> None:
    spec = make_spec(tmp_path)
    with PartialStubber(aws.client("sagemaker", settings)) as stubber:
        stubber.add_client_error("create_training_job", code, message)
        with pytest.raises(ExternalServiceError, match=says) as caught:
            backend.submit(spec)
    assert caught.value.code == code
    assert str(caught.value).startswith(f"Could not start the SageMaker training job {spec.name}")
    assert all(key.startswith("portal/datasets/") for key in objects(settings))  # reused later


STATUSES = [  # TrainingJobStatus, SecondaryStatus, what the portal shows
    ("InProgress", "Starting", JobStatus.STARTING),
    ("InProgress", "Downloading", JobStatus.STARTING),
    ("InProgress", "Pending", JobStatus.STARTING),
    ("InProgress", "Training", JobStatus.RUNNING),
    ("InProgress", "Uploading", JobStatus.RUNNING),
    ("Completed", "Completed", JobStatus.COMPLETED),
    ("Failed", "Failed", JobStatus.FAILED),
    ("Stopping", "Stopping", JobStatus.STOPPING),
    ("Stopped", "Stopped", JobStatus.STOPPED),
    ("Stopped", "MaxRuntimeExceeded", JobStatus.FAILED),  # nobody asked it to stop
]


def test_describe_maps_the_training_job_status(backend: SageMakerBackend, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    arn = backend.submit(spec).external_id
    job = moto_job(spec.name)
    seen = []
    for status, phase, _ in STATUSES:
        job.training_job_status, job.secondary_status = status, phase
        seen.append((status, phase, backend.describe(arn).status))
    assert seen == STATUSES


def test_describe_reports_phase_history_metrics_and_artifact(
    backend: SageMakerBackend, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    arn = backend.submit(spec).external_id
    job = moto_job(spec.name)
    job.secondary_status_transitions = [
        {"Status": "Starting", "StartTime": job.creation_time, "StatusMessage": "Launching"},
        {
            "Status": "Training",
            "StartTime": job.creation_time,
            "StatusMessage": "Training in progress.",
        },
        {"Status": "Completed", "StartTime": job.creation_time, "StatusMessage": "Job completed"},
    ]
    job.final_metric_data_list = [
        {"MetricName": "train_loss", "Value": 0.91, "Timestamp": job.creation_time},
        {"MetricName": "eval_loss", "Value": 1.02, "Timestamp": job.creation_time},
    ]
    job.billable_time_in_seconds = 321
    state = backend.describe(arn)
    assert state.status is JobStatus.COMPLETED
    assert state.detail == "Completed: Job completed"
    assert [(t.status, t.detail) for t in state.transitions][1] == (
        "Training",
        "Training in progress.",
    )
    assert state.transitions[0].at is not None and state.transitions[0].at.tzinfo is not None
    assert state.metrics == {"train_loss": 0.91, "eval_loss": 1.02}
    assert state.billable_seconds == 321
    assert state.artifact_uri == (
        f"s3://{BUCKET}/portal/jobs/{spec.name}/output/{spec.name}/output/model.tar.gz"
    )


def test_describe_explains_failures(backend: SageMakerBackend, tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    arn = backend.submit(spec).external_id
    job = moto_job(spec.name)
    job.training_job_status = job.secondary_status = "Failed"
    job.failure_reason = "AlgorithmError: ExecuteUserScriptError: exit code 2"
    state = backend.describe(arn)
    assert (state.status, state.error_code) == (JobStatus.FAILED, "AlgorithmError")
    assert state.failure_reason == "AlgorithmError: ExecuteUserScriptError: exit code 2"

    job.training_job_status, job.secondary_status, job.failure_reason = (
        "Stopped",
        "MaxRuntimeExceeded",
        None,
    )
    state = backend.describe(arn)
    assert (state.status, state.error_code) == (JobStatus.FAILED, "MaxRuntimeExceeded")
    assert "time limit" in str(state.failure_reason)


def test_stop_asks_sagemaker_to_stop_the_named_job(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    arn = backend.submit(spec).external_id
    with Stubber(aws.client("sagemaker", settings)) as stubber:
        stubber.add_response("stop_training_job", {}, {"TrainingJobName": spec.name})
        backend.stop(arn)
        stubber.assert_no_pending_responses()


def test_stopping_a_finished_job_says_why_not(
    backend: SageMakerBackend, settings: Settings
) -> None:
    with Stubber(aws.client("sagemaker", settings)) as stubber:
        stubber.add_client_error(
            "stop_training_job",
            "ValidationException",
            "The request was rejected because the training job is in status Completed.",
        )
        with pytest.raises(ExternalServiceError, match="status Completed") as caught:
            backend.stop(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/done")
    assert caught.value.code == "ValidationException"


def put_log(settings: Settings, stream: str, lines: list[str], start: int) -> None:
    """Events from ``start`` (ms since the epoch), 10 ms apart."""
    logs = aws.client("logs", settings)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    events = [{"timestamp": start + 10 * i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)


NOW = int(time.time() * 1000)  # CloudWatch refuses events more than 14 days old


def test_logs_are_the_last_lines_oldest_first(
    backend: SageMakerBackend, settings: Settings
) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/ft-support-0001"
    assert backend.logs(arn) == []  # no log group yet: nothing written
    aws.client("logs", settings).create_log_group(logGroupName=LOG_GROUP)
    assert backend.logs(arn) == []  # no stream for this job yet
    put_log(settings, "ft-support-0001/algo-1-1700000000", [f"step {i}\n" for i in range(50)], NOW)
    put_log(settings, "other-job/algo-1-1700000000", ["not this job"], NOW + 1_000)
    assert backend.logs(arn, limit=3) == ["step 47", "step 48", "step 49"]


def test_logs_of_several_instances_are_merged_in_time_order(
    backend: SageMakerBackend, settings: Settings
) -> None:
    aws.client("logs", settings).create_log_group(logGroupName=LOG_GROUP)
    put_log(settings, "multi/algo-1-17", ["a1", "a2"], NOW)  # at +0, +10 ms
    put_log(settings, "multi/algo-2-17", ["b1", "b2"], NOW + 5)  # at +5, +15 ms
    assert backend.logs("multi") == [
        "[algo-1-17] a1",
        "[algo-2-17] b1",
        "[algo-1-17] a2",
        "[algo-2-17] b2",
    ]


def test_unavailable_until_aws_bucket_and_role_are_set(
    monkeypatch: pytest.MonkeyPatch, recipes: Path, tmp_path: Path
) -> None:
    get_settings.cache_clear()
    bare = SageMakerBackend(get_settings(), source_dir=recipes)
    assert "PORTAL_AWS_REGION" in str(bare.unavailable_reason())
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    get_settings.cache_clear()
    reason = str(SageMakerBackend(get_settings()).unavailable_reason())
    assert "set PORTAL_TRAINING_BUCKET" in reason and "set PORTAL_SAGEMAKER_ROLE_ARN" in reason
    with pytest.raises(ConfigurationError, match="PORTAL_TRAINING_BUCKET"):
        SageMakerBackend(get_settings(), source_dir=recipes).submit(make_spec(tmp_path))


def test_bad_compute_is_refused_before_anything_is_sent(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    calls = count_calls(aws.client("sagemaker", settings))
    compute = {"instance_type": "g5.xlarge", "spot": True, "max_wait_seconds": 600}
    with pytest.raises(ValidationError) as caught:
        backend.submit(make_spec(tmp_path, compute=compute, max_runtime_seconds=3600))
    assert set(caught.value.fields) == {"instance_type", "max_wait_seconds"}
    assert "3600" in caught.value.fields["max_wait_seconds"]
    assert not calls and objects(settings) == {}


def test_missing_recipes_are_a_configuration_error(settings: Settings, tmp_path: Path) -> None:
    backend = SageMakerBackend(settings, source_dir=tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match=ENTRY_POINT):
        backend.submit(make_spec(tmp_path))
    assert not aws.client("sagemaker", settings).list_training_jobs()["TrainingJobSummaries"]


def test_image_registry_follows_the_region() -> None:
    assert training_image_uri("eu-west-1").startswith(
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
    )
    assert training_image_uri("me-south-1").startswith("217643126080.dkr.ecr.me-south-1.")
    assert training_image_uri("cn-north-1").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )


def test_a_split_changed_after_registration_is_not_uploaded(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    Path(spec.dataset.splits["train"].uri).write_text('{"messages": []}\n')
    with pytest.raises(ValidationError, match="changed after it was registered"):
        backend.submit(spec)
    assert objects(settings) == {}


def test_splits_already_in_s3_are_read_where_they_are(
    backend: SageMakerBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(tmp_path)
    train = DatasetSplit("train", "s3://datasets-team/care/train.jsonl", "a" * 64, 6)
    dataset = replace(spec.dataset, splits={**spec.dataset.splits, "train": train})
    backend.submit(replace(spec, dataset=dataset))
    job = aws.client("sagemaker", settings).describe_training_job(TrainingJobName=spec.name)
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]
    }
    assert channels["train"] == "s3://datasets-team/care/train.jsonl"
    assert not any(key.endswith("/train.jsonl") for key in objects(settings))


def test_detail_names_the_phase_without_a_message_from_an_earlier_one(
    backend: SageMakerBackend, tmp_path: Path
) -> None:
    """moto completes a job at once and keeps only its "Starting" transition: the job is
    "Completed", not "Completed: Preparing the instances for training"."""
    arn = backend.submit(make_spec(tmp_path)).external_id
    state = backend.describe(arn)
    assert (state.status, state.detail) == (JobStatus.COMPLETED, "Completed")
