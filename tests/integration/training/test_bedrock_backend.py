"""Bedrock model customization jobs against moto: the checks made before anything is sent, the
job Bedrock is asked to run, a repeated submit, status mapping (driven through moto's job objects,
since moto keeps jobs in progress), the loss CSVs Bedrock writes to S3, stopping, and AWS
refusals injected with a Stubber on the client moto serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY
from moto import mock_aws
from moto.bedrock.models import bedrock_backends

from models.training import JobStatus
from services import aws
from services.config import Settings, get_settings
from services.errors import ExternalServiceError, ValidationError
from services.registry.formats import BEDROCK_SCHEMA_VERSION
from services.training.backends.base import JobSpec
from services.training.backends.bedrock import (
    TRAINING_METRICS_CSV,
    VALIDATION_METRICS_CSV,
    BedrockBackend,
    job_state,
)
from tests.integration.registry.conftest import (  # offline_sdks: autouse, fake credentials
    ACCOUNT,
    REGION,
    PartialStubber,
    count_calls,
    offline_sdks,  # noqa: F401
)
from tests.integration.training.test_sagemaker_backend import BUCKET, make_spec

pytestmark = pytest.mark.usefixtures("moto_takes_job_arns")

ROLE = f"arn:aws:iam::{ACCOUNT}:role/portal-bedrock"
TITAN = "amazon.titan-text-express-v1"
PROMPTS = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(8)]
CONVERSATIONS = [
    {
        "schemaVersion": BEDROCK_SCHEMA_VERSION,
        "messages": [
            {"role": "user", "content": [{"text": f"Question {i}?"}]},
            {"role": "assistant", "content": [{"text": f"Answer {i}."}]},
        ],
    }
    for i in range(8)
]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for Bedrock customization with every AWS call answered by moto, and the training
    bucket created."""
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    monkeypatch.setenv("PORTAL_TRAINING_BUCKET", BUCKET)
    monkeypatch.setenv("PORTAL_BEDROCK_ROLE_ARN", ROLE)
    get_settings.cache_clear()
    with mock_aws():
        configured = get_settings()
        aws.client("s3", configured).create_bucket(Bucket=BUCKET)
        yield configured


@pytest.fixture
def backend(settings: Settings) -> BedrockBackend:
    return BedrockBackend(settings)


def titan_spec(folder: Path, **changes: Any) -> JobSpec:
    values: dict[str, Any] = {
        "base_model": TITAN,
        "customization_type": "FINE_TUNING",
        "fmt": "bedrock-prompt-completion",
        "records": PROMPTS,
        "hyperparameters": {"epochCount": 2, "learningRate": "0.00001", "batchSize": 4},
        "compute": {},
    }
    return make_spec(folder, **{**values, **changes})


def moto_job(name: str) -> Any:
    return bedrock_backends[ACCOUNT][REGION].model_customization_jobs[name]


def keys(settings: Settings) -> list[str]:
    listed = aws.client("s3", settings).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def test_submit_uploads_the_splits_and_creates_the_job(
    backend: BedrockBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = titan_spec(tmp_path)
    submitted = backend.submit(spec)
    assert submitted.status is JobStatus.STARTING
    assert submitted.output_uri == f"s3://{BUCKET}/portal/jobs/{spec.name}/output/"

    bedrock = aws.client("bedrock", settings)
    job = bedrock.get_model_customization_job(jobIdentifier=submitted.external_id)
    train, validation = spec.dataset.splits["train"], spec.dataset.splits["validation"]
    assert job["jobName"] == spec.name
    assert job["outputModelName"].startswith(f"{spec.name}-model")
    assert job["roleArn"] == ROLE
    assert job["customizationType"] == "FINE_TUNING"
    assert job["baseModelArn"].endswith(f"foundation-model/{TITAN}:0:8k")
    assert job["clientRequestToken"] == spec.idempotency_key
    assert job["hyperParameters"] == {
        "epochCount": "2",
        "learningRate": "0.00001",
        "batchSize": "4",
    }
    assert job["trainingDataConfig"] == {
        "s3Uri": f"s3://{BUCKET}/portal/datasets/{train.sha256}/train.jsonl"
    }
    assert job["validationDataConfig"] == {
        "validators": [
            {"s3Uri": f"s3://{BUCKET}/portal/datasets/{validation.sha256}/validation.jsonl"}
        ]
    }
    assert job["outputDataConfig"] == {"s3Uri": submitted.output_uri}
    tags = bedrock.list_tags_for_resource(resourceARN=submitted.external_id)["tags"]
    assert {t["key"]: t["value"] for t in tags} == {
        "cost-center": "cc-42",
        "team": "support",
        "owner": "dana",
        "portal-job-id": "17",
        "portal-idempotency-key": spec.idempotency_key,
    }
    assert keys(settings) == sorted(
        [
            f"portal/datasets/{train.sha256}/train.jsonl",
            f"portal/datasets/{validation.sha256}/validation.jsonl",
        ]
    )


def test_submitting_twice_is_one_job(
    backend: BedrockBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = titan_spec(tmp_path)
    first = backend.submit(spec)
    again = backend.submit(spec)
    assert again.external_id == first.external_id
    summaries = aws.client("bedrock", settings).list_model_customization_jobs()[
        "modelCustomizationJobSummaries"
    ]
    assert [s["jobName"] for s in summaries] == [spec.name]


def test_a_name_taken_by_another_submission_is_refused(
    backend: BedrockBackend, tmp_path: Path
) -> None:
    backend.submit(titan_spec(tmp_path))
    other = titan_spec(tmp_path, idempotency_key="another-key")
    with pytest.raises(ExternalServiceError, match="Another Bedrock customization job"):
        backend.submit(other)


@pytest.mark.parametrize(
    ("changes", "fields", "says"),
    [
        ({"fmt": "chat"}, {"dataset"}, "needs Bedrock prompt–completion records"),
        (
            {"hyperparameters": {"epochCount": 11, "learningRate": "fast", "warmup": 3}},
            {"epochCount", "learningRate", "warmup"},
            "from 1 to 10",
        ),
        (
            {"base_model": "amazon.nova-micro-v1:0", "hyperparameters": {"batchSize": 8}},
            {"dataset", "batchSize"},
            "Bedrock conversation",
        ),
        (
            {
                "base_model": "meta.llama3-1-8b-instruct-v1:0",
                "customization_type": "CONTINUED_PRE_TRAINING",
            },
            {"customization_type"},
            "FINE_TUNING, DISTILLATION",
        ),
        (
            {
                "base_model": "anthropic.claude-3-haiku-20240307-v1:0",
                "fmt": "bedrock-conversation",
                "hyperparameters": {"epochCount": 2},
            },
            {"dataset"},
            "cannot register yet",
        ),
        ({"base_model": "openai.gpt-oss-20b-1:0"}, {"base_model"}, "Titan Text G1 - Express"),
    ],
)
def test_a_job_bedrock_would_refuse_is_stopped_before_any_call(
    backend: BedrockBackend,
    settings: Settings,
    tmp_path: Path,
    changes: dict[str, Any],
    fields: set[str],
    says: str,
) -> None:
    bedrock_calls = count_calls(aws.client("bedrock", settings))
    s3_calls = count_calls(aws.client("s3", settings))
    with pytest.raises(ValidationError) as caught:
        backend.submit(titan_spec(tmp_path, **changes))
    assert set(caught.value.fields) == fields
    assert says in " ".join(caught.value.fields.values())
    assert not bedrock_calls and not s3_calls
    assert keys(settings) == [] and not bedrock_backends[ACCOUNT][REGION].model_customization_jobs


def test_distillation_names_the_teacher_and_sends_no_validation_data(
    backend: BedrockBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = make_spec(
        tmp_path,
        base_model="amazon.nova-lite-v1:0",
        customization_type="DISTILLATION",
        fmt="bedrock-conversation",
        records=CONVERSATIONS,
        hyperparameters={"maxResponseLengthForInference": 800},
    )
    job_id = "amazon.nova-lite-v1:0:300k/abcdefghijkl"
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:model-customization-job/{job_id}"
    expected = {
        "jobName": spec.name,
        "customModelName": ANY,
        "roleArn": ROLE,
        "clientRequestToken": spec.idempotency_key,
        "baseModelIdentifier": "amazon.nova-lite-v1:0:300k",
        "customizationType": "DISTILLATION",
        "trainingDataConfig": ANY,
        "outputDataConfig": ANY,
        "jobTags": ANY,
        "customModelTags": ANY,
        "customizationConfig": {
            "distillationConfig": {
                "teacherModelConfig": {
                    "teacherModelIdentifier": "amazon.nova-pro-v1:0",
                    "maxResponseLengthForInference": 800,
                }
            }
        },
    }
    with PartialStubber(aws.client("bedrock", settings)) as stubber:
        stubber.add_response("create_model_customization_job", {"jobArn": arn}, expected)
        submitted = backend.submit(spec)
        stubber.assert_no_pending_responses()
    assert submitted.external_id == arn
    assert "validation" in submitted.detail


def test_describe_maps_the_job_status(backend: BedrockBackend, tmp_path: Path) -> None:
    spec = titan_spec(tmp_path)
    arn = backend.submit(spec).external_id
    seen = {}
    for status in ("InProgress", "Completed", "Failed", "Stopping", "Stopped"):
        moto_job(spec.name).status = status
        state = backend.describe(arn)
        seen[status] = (state.status, state.output_model_ref is not None)
    assert seen == {  # the custom model exists only once the job completed
        "InProgress": (JobStatus.RUNNING, False),
        "Completed": (JobStatus.COMPLETED, True),
        "Failed": (JobStatus.FAILED, False),
        "Stopping": (JobStatus.STOPPING, False),
        "Stopped": (JobStatus.STOPPED, False),
    }


def test_describe_of_a_finished_job(backend: BedrockBackend, tmp_path: Path) -> None:
    spec = titan_spec(tmp_path)
    arn = backend.submit(spec).external_id
    job = moto_job(spec.name)
    job.status = "Completed"
    job.training_metrics = {"trainingLoss": 0.42}
    job.validation_metrics = [{"validationLoss": 0.51}]
    state = backend.describe(arn)
    assert state.metrics == {"train_loss": 0.42, "eval_loss": 0.51}
    assert state.output_model_ref == job.output_model_arn
    assert [t.status for t in state.transitions] == ["Submitted", "Completed"]

    job.status, job.failure_message = "Failed", "Data validation failed: record 3 has no prompt"
    state = backend.describe(arn)
    assert state.failure_reason == state.detail == "Data validation failed: record 3 has no prompt"


def test_a_job_still_checking_its_data_is_starting() -> None:
    job = {
        "status": "InProgress",
        "creationTime": None,
        "statusDetails": {
            "validationDetails": {"status": "Completed"},
            "dataProcessingDetails": {"status": "InProgress"},
            "trainingDetails": {"status": "NotStarted"},
        },
    }
    state = job_state(job, {})
    assert (state.status, state.detail) == (JobStatus.STARTING, "Data processing")
    job["statusDetails"]["trainingDetails"] = {"status": "InProgress"}  # type: ignore[index]
    assert job_state(job, {}).status is JobStatus.RUNNING


def write_metrics(settings: Settings, name: str, training: str, validation: str) -> None:
    folder = f"portal/jobs/{name}/output/model-customization-job-{name}"
    s3 = aws.client("s3", settings)
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/{TRAINING_METRICS_CSV}", Body=training.encode())
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/{VALIDATION_METRICS_CSV}", Body=validation.encode())


def test_loss_curves_are_read_from_the_csvs_bedrock_writes(
    backend: BedrockBackend, settings: Settings, tmp_path: Path
) -> None:
    spec = titan_spec(tmp_path)
    arn = backend.submit(spec).external_id
    assert backend.metric_history(arn) == {}  # nothing written yet
    write_metrics(
        settings,
        spec.name,
        "step_number,epoch_number,training_loss\n1,0,2.5\n2,0,2.1\n3,0,\n4,1,1.7\n",
        "step_number,epoch_number,validation_loss\n2,0,2.3\n4,1,1.9\n",
    )
    assert backend.metric_history(arn) == {
        "train_loss": [(1, 2.5), (2, 2.1), (4, 1.7)],  # the row cut short is left out
        "eval_loss": [(2, 2.3), (4, 1.9)],
    }
    state = backend.describe(arn)
    assert state.status is JobStatus.RUNNING
    assert state.metrics == {"train_loss": 1.7, "eval_loss": 1.9}
    assert state.progress_step == 4


def test_stop_stops_the_job(backend: BedrockBackend, tmp_path: Path) -> None:
    spec = titan_spec(tmp_path)
    arn = backend.submit(spec).external_id
    backend.stop(arn)
    assert backend.describe(arn).status is JobStatus.STOPPED
    lines = backend.logs(arn)
    assert [line.split("  ", 1)[1] for line in lines] == ["Submitted", "Stopped"]
    assert lines[0].endswith("UTC  Submitted")


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        ("ThrottlingException", "Too many requests", "AWS is throttling requests"),
        ("AccessDeniedException", "not authorized to perform iam:PassRole", "access denied"),
        ("ValidationException", "The provided role does not trust bedrock", "does not trust"),
    ],
)
def test_refused_create_keeps_the_aws_code_and_leaves_only_the_shared_data(
    backend: BedrockBackend,
    settings: Settings,
    tmp_path: Path,
    code: str,
    message: str,
    says: str,
) -> None:
    spec = titan_spec(tmp_path)
    with PartialStubber(aws.client("bedrock", settings)) as stubber:
        stubber.add_client_error("create_model_customization_job", code, message)
        with pytest.raises(ExternalServiceError, match=says) as caught:
            backend.submit(spec)
    assert caught.value.code == code
    assert str(caught.value).startswith(
        f"Could not start the Bedrock customization job {spec.name}"
    )
    assert all(key.startswith("portal/datasets/") for key in keys(settings))  # reused later
    assert not bedrock_backends[ACCOUNT][REGION].model_customization_jobs


def test_unavailable_without_the_bedrock_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    monkeypatch.setenv("PORTAL_TRAINING_BUCKET", BUCKET)
    get_settings.cache_clear()
    reason = BedrockBackend(get_settings()).unavailable_reason()
    assert reason == (
        "Bedrock customization needs the ARN of an IAM role Bedrock assumes to read the data and "
        "write output: set PORTAL_BEDROCK_ROLE_ARN."
    )
