"""Launching SageMaker and Bedrock jobs through the portal's own launch service against moto:
the job row and the cloud job agree, a repeated form is one cloud job, a refusal is recorded
as a failed job with the AWS code (never left submitting), status changes are picked up by a
refresh, and a finished Bedrock job lands in the registry as a model version."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from moto import mock_aws
from moto.bedrock.models import bedrock_backends
from moto.sagemaker.models import sagemaker_backends

from models.dataset import DatasetCreate
from models.registry import ModelVersion
from models.training import FineTuneJob, JobStatus
from models.user import Role
from services import aws
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database, upgrade_schema
from services.errors import Conflict, ValidationError
from services.registry.dataset_files import DatasetSource
from services.registry.datasets import register_version
from services.registry.formats import DatasetFormat
from services.training import cloud_status, jobs, launch, registration
from tests.conftest import make_user
from tests.integration.registry.conftest import (  # offline_sdks: autouse, fake credentials
    ACCOUNT,
    REGION,
    PartialStubber,
    offline_sdks,  # noqa: F401
)
from tests.training_support import new_key, register_chat_dataset

BUCKET = "portal-training"
TITAN = "amazon.titan-text-express-v1:0:8k"
pytestmark = pytest.mark.usefixtures("moto_takes_job_arns")


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    monkeypatch.setenv("PORTAL_TRAINING_BUCKET", BUCKET)
    monkeypatch.setenv("PORTAL_SAGEMAKER_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/sm")
    monkeypatch.setenv("PORTAL_BEDROCK_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/br")
    get_settings.cache_clear()
    with mock_aws():
        settings = get_settings()
        aws.client("s3", settings).create_bucket(Bucket=BUCKET)
        yield settings


@pytest.fixture
def portal(cloud: Settings) -> Iterator[Database]:
    db = Database(cloud.resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root.admin", Role.ADMIN)
    yield db
    db.dispose()


@pytest.fixture
def dana(portal: Database) -> Actor:
    return make_user(portal, "dana", Role.DATA_SCIENTIST)


def sagemaker_form(dataset: int, key: str) -> dict[str, object]:
    return {
        "backend": "sagemaker",
        "base_model": "tiny-llama",
        "dataset_version_id": dataset,
        "hyperparameters": {"epochs": 2},
        "instance_type": "ml.g5.2xlarge",
        "spot": True,
        "max_runtime_minutes": 120,
        "idempotency_key": key,
    }


def test_a_sagemaker_launch_starts_one_training_job_however_often_it_is_sent(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = register_chat_dataset(portal, dana, count=40)
    key = new_key()
    first = launch.launch(portal, cloud, actor=dana, data=sagemaker_form(dataset, key))
    again = launch.launch(portal, cloud, actor=dana, data=sagemaker_form(dataset, key))
    job = first.job
    assert first.created and not again.created and again.job.id == job.id
    assert job.status == JobStatus.STARTING.value and job.external_id
    training_jobs = sagemaker_backends[ACCOUNT][REGION].training_jobs
    assert list(training_jobs) == [job.name]
    created = training_jobs[job.name]
    assert created.stopping_condition["MaxRuntimeInSeconds"] == 7200
    assert created.enable_managed_spot_training
    assert job.estimated_cost is not None and "managed-spot saving" in job.cost_basis
    refreshed = cloud_status.refresh(portal, cloud, job.id or 0)  # moto completes jobs at once
    assert refreshed.status == JobStatus.COMPLETED.value


def test_a_refused_sagemaker_launch_is_a_failed_job_with_the_aws_code(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = register_chat_dataset(portal, dana, count=40)
    with PartialStubber(aws.client("sagemaker", cloud)) as stubber:
        stubber.add_client_error(
            "create_training_job", "AccessDeniedException", "not authorized to iam:PassRole"
        )
        outcome = launch.launch(portal, cloud, actor=dana, data=sagemaker_form(dataset, new_key()))
    job = outcome.job
    assert job.status == JobStatus.FAILED.value and job.error_code == "AccessDeniedException"
    assert "access denied" in (job.failure_reason or "")
    detail = jobs.job_detail(portal, actor=dana, job_id=job.id or 0)
    assert [e.status for e in detail.events] == ["submitting", "failed"]


def prompt_dataset(portal: Database, dana: Actor) -> int:
    body = b"".join(
        orjson.dumps({"prompt": f"Summarise ticket {i}.", "completion": f"Ticket {i} is fine."})
        + b"\n"
        for i in range(40)
    )
    version = register_version(
        portal,
        get_settings(),
        actor=dana,
        source=DatasetSource.upload(io.BytesIO(body), "tickets.jsonl"),
        fmt=DatasetFormat.BEDROCK_PROMPT_COMPLETION,
        new_dataset=DatasetCreate(name="tickets"),
    ).version
    return version.id or 0


def bedrock_form(dataset: int, **hyperparameters: object) -> dict[str, object]:
    return {
        "backend": "bedrock",
        "base_model": TITAN,
        "customization_type": "FINE_TUNING",
        "dataset_version_id": dataset,
        "hyperparameters": hyperparameters or {"epochCount": 2},
        "register_model_name": "Ticket summariser",
        "idempotency_key": new_key(),
    }


def test_bedrock_refuses_out_of_range_hyperparameters_before_any_call(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = prompt_dataset(portal, dana)
    with pytest.raises(ValidationError, match="epochCount"):
        launch.launch(portal, cloud, actor=dana, data=bedrock_form(dataset, epochCount=99))
    assert not bedrock_backends[ACCOUNT][REGION].model_customization_jobs
    with portal.read() as session:
        assert session.get(FineTuneJob, 1) is None


def test_a_chat_dataset_is_refused_for_titan_fine_tuning(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = register_chat_dataset(portal, dana, count=40)
    with pytest.raises(ValidationError, match="needs Bedrock prompt–completion"):
        launch.launch(portal, cloud, actor=dana, data=bedrock_form(dataset))


def test_a_finished_bedrock_job_appears_in_the_registry(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = prompt_dataset(portal, dana)
    job = launch.launch(portal, cloud, actor=dana, data=bedrock_form(dataset)).job
    assert job.status in (JobStatus.STARTING.value, JobStatus.RUNNING.value), job.failure_reason
    cloud_job = bedrock_backends[ACCOUNT][REGION].model_customization_jobs[job.name]
    assert cloud_job.client_request_token == job.idempotency_key
    cloud_job.status = "Completed"
    done = cloud_status.refresh(portal, cloud, job.id or 0)
    assert done.status == JobStatus.COMPLETED.value and done.output_model_ref
    with portal.read() as session:
        version = session.get(ModelVersion, load_job(portal, job.id).model_version_id)
    assert version is not None
    assert version.bedrock_custom_model_arn == done.output_model_ref
    assert version.dataset_version_id == dataset and version.job_ref == str(job.id)


def load_job(db: Database, job_id: int | None) -> FineTuneJob:
    with db.read() as session:
        job = session.get(FineTuneJob, job_id)
    assert job is not None
    return job


def test_a_sagemaker_result_is_registered_in_both_registries(
    portal: Database, dana: Actor, cloud: Settings
) -> None:
    dataset = register_chat_dataset(portal, dana, count=40)
    job = launch.launch(portal, cloud, actor=dana, data=sagemaker_form(dataset, new_key())).job
    done = cloud_status.refresh(portal, cloud, job.id or 0)
    assert done.status == JobStatus.COMPLETED.value
    assert (done.artifact_uri or "").startswith("s3://")
    version = registration.register_job_result(
        portal, cloud, actor=dana, job_id=job.id or 0, new_model_name="Helpdesk assistant"
    )
    sm = aws.client("sagemaker", cloud)
    packages = sm.list_model_packages(ModelPackageGroupName="Helpdesk-assistant")
    [package] = packages["ModelPackageSummaryList"]
    assert version.sagemaker_package_arn == package["ModelPackageArn"]
    assert version.sagemaker_approval_status == "PendingManualApproval"
    described = sm.describe_model_package(ModelPackageName=package["ModelPackageArn"])
    container = described["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == done.artifact_uri
    assert version.job_ref == str(job.id) and version.dataset_version_id == dataset
    with pytest.raises(Conflict, match="already registered"):
        registration.register_job_result(
            portal, cloud, actor=dana, job_id=job.id or 0, new_model_name="Helpdesk assistant"
        )
    assert (
        len(
            sm.list_model_packages(ModelPackageGroupName="Helpdesk-assistant")[
                "ModelPackageSummaryList"
            ]
        )
        == 1
    )


def test_an_interrupted_submission_is_sent_again_and_makes_one_job(
    portal: Database, dana: Actor, cloud: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = register_chat_dataset(portal, dana, count=40)
    form = sagemaker_form(dataset, new_key())
    with monkeypatch.context() as dies:  # the portal stops between recording and submitting
        dies.setattr(launch, "submit", lambda db, settings, job: job)
        stuck = launch.launch(portal, cloud, actor=dana, data=form).job
    assert stuck.status == JobStatus.SUBMITTING.value
    assert cloud_status.resubmit_interrupted(portal, cloud) == []  # too recent: maybe in flight
    resent = cloud_status.resubmit_interrupted(portal, cloud, older_than=timedelta(0))
    assert resent == [stuck.id]
    assert load_job(portal, stuck.id).status == JobStatus.STARTING.value
    assert list(sagemaker_backends[ACCOUNT][REGION].training_jobs) == [stuck.name]
    assert cloud_status.resubmit_interrupted(portal, cloud, older_than=timedelta(0)) == []
