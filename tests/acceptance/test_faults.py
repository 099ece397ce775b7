"""Issue #8, faults: AWS throttling, AccessDenied, timeouts and 500s during registry sync, cloud
launch, promotion approval sync and usage ingest; the MLflow server down; the database going
away mid-request; a local training process killed. For each, the portal says what failed in
plain words, retries where that is safe, and loses no record. Every test prints what it tried
and what the user saw.

AWS faults come over real HTTP: moto's server behind a proxy that fails chosen operations
(``aws_faults``), reached through ``PORTAL_AWS_ENDPOINT_URL`` with three attempts per call and
one-second timeouts, so botocore's own retries are what is exercised (the proxy counts them).

Already proven elsewhere, and not repeated here: Stubber refusals of each AWS source and backend
(tests/integration/registry/test_sources_*.py, training/test_sagemaker_backend.py,
training/test_bedrock_backend.py, promotions/test_sagemaker_approval.py); the deployment
webhook's 500s, timeouts and back-off (promotions/test_webhook.py); ``list_experiments`` and
metric histories against a server that is down (experiments/test_run_search.py,
test_histories.py); a really trained local job killed or lost (training/test_local_worker.py);
an unreachable database named without its password (unit/test_db.py, test_cli.py)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from sqlalchemy import event, text
from sqlmodel import func, select

from models.promotion import SideEffectStatus
from models.registry import ModelAsset, RegistrySync, Stage
from models.team import Team, TeamCreate
from models.training import FineTuneJob, JobStatus
from models.usage import UsageSource
from models.user import Role
from services import aws, promotions, teams
from services.access import Actor
from services.audit import verify_chain
from services.cli import main as cli_main
from services.config import Settings, get_settings
from services.db import Database, upgrade_schema
from services.errors import DatabaseUnavailable, ExternalServiceError, PortalError
from services.experiments import detail, runs
from services.gateway.ingest import ingest
from services.registry.sources.sagemaker import SageMakerSource
from services.registry.sync import sync_source
from services.training import jobs, launch
from services.training import worker as worker_module
from services.training.backends.local import JobFiles
from services.training.worker import Worker
from tests.acceptance.aws_faults import Fault, FaultyAws, faulty_aws
from tests.conftest import PostgresSchemas, database_url, make_user
from tests.integration.promotions.conftest import (
    effects,
    portal_version,
    status_label,
    version_row,
)
from tests.integration.registry.conftest import ACCOUNT, REGION, offline_sdks
from tests.processes import free_port
from tests.promotion_support import cast, file_request
from tests.training_support import launch_local, new_key, register_chat_dataset
from tests.unit.gateway.support import events, litellm, rollups

__all__ = ["offline_sdks"]  # autouse: fake credentials, no AWS profile files

ATTEMPTS = 3  # PORTAL_AWS_MAX_ATTEMPTS here: the first try and two retries
SECRET = "fault-test-secret-key-never-shown"
BUCKET = "portal-training"
LOGS = "gateway-logs"
RECORDS = 8_000
PLAIN_WORDS = {
    Fault.THROTTLING: "throttling",
    Fault.ACCESS_DENIED: "access denied",
    Fault.TIMEOUT: "did not answer",
    Fault.SERVER_ERROR: "internal error",
}
RETRIED = {Fault.THROTTLING, Fault.TIMEOUT, Fault.SERVER_ERROR}  # AccessDenied is final

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyAws]:
    with faulty_aws() as state:
        yield state


@pytest.fixture
def cloud(faulty: FaultyAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose every AWS call goes through the fault proxy to an empty moto."""
    faulty.reset()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    for name, value in {
        "PORTAL_AWS_REGION": REGION,
        "PORTAL_AWS_ENDPOINT_URL": faulty.url,
        "PORTAL_AWS_MAX_ATTEMPTS": str(ATTEMPTS),
        "PORTAL_AWS_CONNECT_TIMEOUT": "1",
        "PORTAL_AWS_READ_TIMEOUT": "1",
        "PORTAL_TRAINING_BUCKET": BUCKET,
        "PORTAL_SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/sm",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws._client.cache_clear()
    yield get_settings()
    faulty.clear()
    aws._client.cache_clear()


def behind_the_proxy(faulty: FaultyAws, service: str) -> Any:
    """A client straight to moto, for setting up and checking what AWS holds."""
    return boto3.client(service, endpoint_url=faulty.moto_url, region_name=REGION)


@pytest.fixture
def portal(cloud: Settings) -> Iterator[Database]:
    db = Database(cloud.resolved_database_url)
    upgrade_schema(db)
    yield db
    db.dispose()


@pytest.fixture
def admin(portal: Database) -> Actor:
    return make_user(portal, "root.admin", Role.ADMIN)


def assert_plain(message: str, fault: Fault, service: str) -> None:
    """The message names the service and the cause in plain words: no traceback, no secret."""
    assert service in message, message
    assert PLAIN_WORDS[fault] in message.lower(), message
    assert "Traceback" not in message and 'File "' not in message, message
    assert SECRET not in message, message


def expected_requests(fault: Fault) -> int:
    return ATTEMPTS if fault in RETRIED else 1


# -- the AWS matrix: each operation under each fault ---------------------------------------


@dataclass
class Seen:
    message: str
    requests: int


def registry_sync(portal: Database, settings: Settings, faulty: FaultyAws, fault: Fault) -> Seen:
    sm = behind_the_proxy(faulty, "sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn-classifier")
    admin = make_user(portal, "root.admin", Role.ADMIN)
    faulty.fail("ListModelPackageGroups", fault)

    result = sync_source(portal, actor=admin, source=SageMakerSource.from_settings(settings))

    seen = Seen(result.describe(), faulty.received["ListModelPackageGroups"])
    with portal.read() as session:
        assert session.exec(select(func.count()).select_from(ModelAsset)).one() == 0
        record = session.get(RegistrySync, "sagemaker")
    assert record is not None and record.last_error == result.error  # shown under the source
    assert record.last_success_at is None

    faulty.clear()  # the fault passes: the next sync (a press of Sync, or the nightly run) works
    again = sync_source(portal, actor=admin, source=SageMakerSource.from_settings(settings))
    print(f"  after the fault: {again.describe()}")
    assert again.error is None and again.models_seen == 1
    with portal.read() as session:
        record = session.get(RegistrySync, "sagemaker")
        assert record is not None and record.last_error is None and record.last_success_at
        assert session.exec(select(func.count()).select_from(ModelAsset)).one() == 1
    return seen


def sagemaker_launch(portal: Database, settings: Settings, faulty: FaultyAws, fault: Fault) -> Seen:
    behind_the_proxy(faulty, "s3").create_bucket(Bucket=BUCKET)
    make_user(portal, "root.admin", Role.ADMIN)
    dana = make_user(portal, "dana", Role.DATA_SCIENTIST)
    dataset = register_chat_dataset(portal, dana, count=40)
    form = {
        "backend": "sagemaker",
        "base_model": "tiny-llama",
        "dataset_version_id": dataset,
        "instance_type": "ml.g5.2xlarge",
        "max_runtime_minutes": 60,
        "idempotency_key": new_key(),
    }
    faulty.fail("CreateTrainingJob", fault)

    job = launch.launch(portal, settings, actor=dana, data=form).job

    assert job.status == JobStatus.FAILED.value, job.status  # never left submitting or running
    assert job.failure_reason == job.status_detail and job.error_code
    seen = Seen(job.failure_reason or "", faulty.received["CreateTrainingJob"])
    sm = behind_the_proxy(faulty, "sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    timeline = jobs.job_detail(portal, actor=dana, job_id=job.id or 0).events
    assert [e.status for e in timeline] == ["submitting", "failed"]

    faulty.clear()  # the user launches again from a fresh form once AWS answers
    again = launch.launch(portal, settings, actor=dana, data=form | {"idempotency_key": new_key()})
    print(f"  after the fault: job {again.job.id} {again.job.status}")
    assert again.job.status == JobStatus.STARTING.value and again.job.external_id
    names = [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    assert names == [again.job.name]
    with portal.read() as session:  # the failed attempt is still on record, as failed
        failed = session.get(FineTuneJob, job.id)
    assert failed is not None and failed.status == JobStatus.FAILED.value
    return seen


def approval_sync(portal: Database, settings: Settings, faulty: FaultyAws, fault: Fault) -> Seen:
    sm = behind_the_proxy(faulty, "sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn-classifier")
    arn = sm.create_model_package(
        ModelPackageGroupName="churn-classifier",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    people = cast(portal, make_user(portal, "root.admin", Role.ADMIN), approvers=1)
    version = portal_version(
        portal, people.scientist, "Churn", references={"sagemaker_package_arn": arn}
    )
    request_id = file_request(portal, people.scientist, version, "staging")
    faulty.fail("UpdateModelPackage", fault)

    promotions.approve(portal, settings, actor=people.approvers[0], request_id=request_id)

    effect = effects(portal, request_id)["sagemaker_approval"]
    label = status_label(portal, people, request_id)
    seen = Seen(f"{label}: {effect.last_error}", faulty.received["UpdateModelPackage"])
    assert label == "Approved, sync pending"  # the decision stands; the side effect waits
    assert effect.status == SideEffectStatus.PENDING.value and effect.attempts == 1
    assert version_row(portal, version).stage == Stage.STAGING.value
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == (
        "PendingManualApproval"
    )

    faulty.clear()  # Retry on the page (or the worker, after its back-off) carries it out
    assert promotions.retry(portal, settings, actor=people.scientist, request_id=request_id) == []
    print(f"  after the fault: {status_label(portal, people, request_id)}")
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    done = effects(portal, request_id)["sagemaker_approval"]
    assert done.status == SideEffectStatus.DONE.value and done.attempts == 2
    assert status_label(portal, people, request_id) == "Approved"
    return seen


def log_lines(prefix: str, count: int) -> bytes:
    start = 1795608208.0
    return gzip.compress(
        b"".join(orjson.dumps(litellm(f"{prefix}-{i}", start + i)) + b"\n" for i in range(count))
    )


def usage_ingest(portal: Database, settings: Settings, faulty: FaultyAws, fault: Fault) -> Seen:
    s3 = behind_the_proxy(faulty, "s3")
    s3.create_bucket(Bucket=LOGS)
    s3.put_object(Bucket=LOGS, Key="litellm/1.json.gz", Body=log_lines("first", 30))
    s3.put_object(Bucket=LOGS, Key="litellm/2.json.gz", Body=log_lines("second", 20))
    location = f"s3://{LOGS}/litellm/"
    second = f"GetObject /{LOGS}/litellm/2.json.gz"
    faulty.fail(second, fault)  # the first object reads; the second fails

    with pytest.raises(ExternalServiceError) as caught:
        ingest(
            portal,
            settings,
            actor=Actor.command_line(),
            location=location,
            source=UsageSource.LITELLM,
        )

    seen = Seen(str(caught.value), faulty.received[second])
    assert isinstance(caught.value, PortalError)  # shown as one line, no traceback
    assert len(events(portal)) == 30 and sum(r.requests for r in rollups(portal)) == 30

    faulty.clear()  # run it again (the page's Ingest button, the CLI, the schedule)
    result = ingest(
        portal, settings, actor=Actor.command_line(), location=location, source=UsageSource.LITELLM
    )
    print(f"  after the fault: {result.summary()}")
    assert (result.ingested, result.duplicates) == (20, 30)
    assert len(events(portal)) == 50 and sum(r.requests for r in rollups(portal)) == 50
    return seen


OPERATIONS: dict[str, tuple[Callable[..., Seen], str]] = {
    # name: (scenario, the service its message must name)
    "registry sync": (registry_sync, "SageMaker"),
    "SageMaker launch": (sagemaker_launch, "SageMaker"),
    "approval sync": (approval_sync, "SageMaker"),
    "usage ingest from s3://": (usage_ingest, "s3://"),
}


@pytest.mark.parametrize("fault", list(Fault), ids=[f.name.lower() for f in Fault])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_an_aws_fault_is_reported_plainly_retried_and_loses_nothing(
    portal: Database, cloud: Settings, faulty: FaultyAws, operation: str, fault: Fault
) -> None:
    scenario, service = OPERATIONS[operation]
    started = time.monotonic()
    print(f"\ntried: {operation} while AWS answers with {fault.value}")
    seen = scenario(portal, cloud, faulty, fault)
    print(f"  requests AWS received: {seen.requests} (expected {expected_requests(fault)})")
    print(f"  the user saw: {seen.message}")
    print(f"  took {time.monotonic() - started:.1f} s")
    assert_plain(seen.message, fault, service)
    assert seen.requests == expected_requests(fault)


@pytest.mark.parametrize("lost", [1, ATTEMPTS], ids=["first answer lost", "every answer lost"])
def test_a_sagemaker_create_that_timed_out_after_aws_accepted_it_is_followed_not_lost(
    portal: Database, cloud: Settings, faulty: FaultyAws, lost: int
) -> None:
    """The worst timeout: SageMaker made the job, then its answer never came. botocore sends
    the create again and the name (from the idempotency key) is taken; or every answer is lost,
    and the portal looks the job up by name. Either way it follows the job that exists instead
    of recording a failure and leaving a paid job running untracked."""
    behind_the_proxy(faulty, "s3").create_bucket(Bucket=BUCKET)
    make_user(portal, "root.admin", Role.ADMIN)
    dana = make_user(portal, "dana", Role.DATA_SCIENTIST)
    dataset = register_chat_dataset(portal, dana, count=40)
    faulty.lost_answers["CreateTrainingJob"] = lost  # moto creates it; the answer stalls
    form = {
        "backend": "sagemaker",
        "base_model": "tiny-llama",
        "dataset_version_id": dataset,
        "instance_type": "ml.g5.2xlarge",
        "idempotency_key": new_key(),
    }
    print(f"\ntried: a SageMaker launch; {lost} CreateTrainingJob answer(s) never arrive")

    job = launch.launch(portal, cloud, actor=dana, data=form).job

    faulty.clear()
    names = [
        j["TrainingJobName"]
        for j in behind_the_proxy(faulty, "sagemaker").list_training_jobs()["TrainingJobSummaries"]
    ]
    print(f"  CreateTrainingJob requests: {faulty.received['CreateTrainingJob']}")
    print(f"  the user saw: {job.status}: {job.status_detail}")
    assert faulty.received["CreateTrainingJob"] >= 2  # botocore retried the timed-out create
    assert names == [job.name]  # one cloud job, and the portal knows it
    assert job.status != JobStatus.FAILED.value and job.external_id  # moto: done at once


def test_an_ingest_cut_off_in_the_middle_of_an_object_completes_later_counted_once(
    portal: Database, cloud: Settings, faulty: FaultyAws
) -> None:
    """The download of a log object stops part-way (headers and some bytes, then nothing):
    the batches stored before the cut stay, the user is told plainly, and the next run stores
    the rest without counting anything twice."""
    s3 = behind_the_proxy(faulty, "s3")
    s3.create_bucket(Bucket=LOGS)
    body = b"".join(
        orjson.dumps(litellm(f"req-{i}", 1795608208.0 + i)) + b"\n" for i in range(RECORDS)
    )  # over 2 MB: more than the 1 MiB the ingest reads at a time
    s3.put_object(Bucket=LOGS, Key="litellm/big.json", Body=body)
    faulty.partial_body["GetObject"] = len(body) * 3 // 5
    location = f"s3://{LOGS}/litellm/"
    print(f"\ntried: ingest {location} while the download stops after 60% of the object")

    with pytest.raises(PortalError) as caught:
        ingest(
            portal,
            cloud,
            actor=Actor.command_line(),
            location=location,
            source=UsageSource.LITELLM,
            batch_size=500,
        )
    stored = len(events(portal))
    print(f"  the user saw: {caught.value}")
    print(f"  stored before the cut: {stored} of {RECORDS} (batches of 500)")
    assert "s3://gateway-logs/litellm/big.json" in str(caught.value)
    assert "stopped part-way" in str(caught.value) and SECRET not in str(caught.value)
    assert 0 < stored < RECORDS and sum(r.requests for r in rollups(portal)) == stored

    faulty.clear()
    result = ingest(
        portal,
        cloud,
        actor=Actor.command_line(),
        location=location,
        source=UsageSource.LITELLM,
        batch_size=500,
    )
    print(f"  after the fault: {result.summary()}")
    assert (result.ingested, result.duplicates) == (RECORDS - stored, stored)
    assert len(events(portal)) == RECORDS
    assert sum(r.requests for r in rollups(portal)) == RECORDS


# -- the MLflow tracking server down -------------------------------------------------------


@pytest.mark.parametrize("page", ["experiments search", "run detail"])
def test_a_tracking_server_that_is_down_is_named_plainly_and_quickly(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PORTAL_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # the portal's own defaults
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    get_settings.cache_clear()
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root.admin", Role.ADMIN)
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    print(f"\ntried: {page} with the MLflow server at {uri} down")
    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as caught:
        if page == "run detail":
            detail.run_detail(db, settings, actor=dana, run_id="0" * 32)
        else:
            runs.search_runs(db, settings, actor=dana, experiment_ids=["1"])
    took = time.monotonic() - started
    db.dispose()
    print(f"  the user saw ({took:.1f} s): {caught.value}")
    message = str(caught.value)
    assert message.startswith(f"The MLflow tracking server at {uri} did not answer")
    assert "Traceback" not in message and took < 15


# -- the database going away ---------------------------------------------------------------


@pytest.fixture
def pg(
    postgres: PostgresSchemas | None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Database, PostgresSchemas]]:
    """The portal on a real PostgreSQL (skipped without ``PORTAL_TEST_DATABASE_URL``)."""
    db = Database(database_url("postgresql", tmp_path, postgres, request))
    upgrade_schema(db)
    assert postgres is not None
    yield db, postgres
    db.dispose()


def terminate(postgres: PostgresSchemas, pid: int) -> None:
    with postgres.admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def team_names(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.exec(select(Team.name)).all())


@pytest.mark.postgres
def test_postgres_connection_killed_mid_write_rolls_back_and_the_next_request_works(
    pg: tuple[Database, PostgresSchemas],
) -> None:
    db, postgres = pg
    admin = make_user(db, "root.admin", Role.ADMIN)
    killed: list[int] = []

    @event.listens_for(db.engine, "after_cursor_execute")
    def kill_after_the_team_insert(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO team") and not killed:
            killed.append(conn.connection.dbapi_connection.info.backend_pid)
            terminate(postgres, killed[0])  # the server ends the session before the audit row

    print("\ntried: create a team while PostgreSQL terminates the session between its statements")
    with pytest.raises(DatabaseUnavailable) as caught:
        teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    event.remove(db.engine, "after_cursor_execute", kill_after_the_team_insert)
    print(f"  the user saw: {caught.value}")
    message = str(caught.value)
    assert killed and "Cannot use the portal database" in message
    assert "terminat" in message and "Traceback" not in message
    assert team_names(db) == []  # the insert was rolled back with the transaction
    report = verify_chain(db, actor=admin)
    assert report.ok, report  # no half-written audit chain either

    again = teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    print(f"  the next request: team {again.name!r} created")
    assert team_names(db) == ["Search"] and verify_chain(db, actor=admin).ok


@pytest.mark.postgres
def test_postgres_idle_connection_killed_between_requests_is_replaced_unseen(
    pg: tuple[Database, PostgresSchemas],
) -> None:
    """A pooled connection the server dropped (a restart, a failover, an idle timeout) is
    found dead by the pre-ping and replaced: the user's next request just works."""
    db, postgres = pg
    admin = make_user(db, "root.admin", Role.ADMIN)
    with db.engine.connect() as conn:  # the pool's one idle connection, afterwards
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
    terminate(postgres, pid)
    print(f"\ntried: the server ends the idle pooled session {pid}, then a request")
    team = teams.create_team(db, actor=admin, data=TeamCreate(name="Growth"))
    print(f"  the user saw: team {team.name!r} created")
    assert team_names(db) == ["Growth"]


def test_a_locked_sqlite_database_is_a_clear_error_then_the_next_request_works(
    tmp_path: Path,
) -> None:
    """Another process holds the SQLite write lock (a long import, a sqlite3 shell left in a
    transaction) for longer than the portal waits."""
    path = tmp_path / "portal.db"
    db = Database(f"sqlite:///{path}")
    upgrade_schema(db)
    admin = make_user(db, "root.admin", Role.ADMIN)

    @event.listens_for(db.engine, "connect")
    def wait_briefly(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=300")  # the portal waits 30 s

    db.engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    print("\ntried: create a team while another process holds the SQLite write lock")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    finally:
        holder.rollback()
        holder.close()
    print(f"  the user saw: {caught.value}")
    assert "is busy" in str(caught.value) and "database is locked" in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert team_names(db) == []
    again = teams.create_team(db, actor=admin, data=TeamCreate(name="Search"))
    print(f"  the next request: team {again.name!r} created")
    assert team_names(db) == ["Search"] and verify_chain(db, actor=admin).ok
    db.dispose()


# -- a local training process killed -------------------------------------------------------

FAKE_RECIPE = """
import json, sys, time
config = json.load(open(sys.argv[2]))
with open(config["progress_file"] + ".tmp", "w") as out:
    json.dump({"status": "running", "step": 3, "total": 100, "loss": 1.5}, out)
import os; os.replace(config["progress_file"] + ".tmp", config["progress_file"])
print("step 3/100 loss 1.5000 lr 2.0e-04", flush=True)
time.sleep(120)
"""


def fake_training(spec: Any, files: JobFiles) -> subprocess.Popen[bytes]:
    """The recipe's process as the worker sees it (own group, config, progress file, log),
    without loading a model: only being killed matters here."""
    files.folder.mkdir(parents=True, exist_ok=True)
    files.config.write_text(json.dumps({"progress_file": str(files.progress)}))
    with files.log.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", FAKE_RECIPE, "--config", str(files.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize("watched", [True, False], ids=["worker watching", "no worker"])
def test_a_killed_training_process_fails_its_job_with_the_reason(
    watched: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "start_process", fake_training)
    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root.admin", Role.ADMIN)
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    job = launch_local(db, dana, register_chat_dataset(db, dana, count=30)).job
    worker = Worker(db, get_settings(), poll=0.1)
    pid = 0
    try:
        for _ in range(100):
            worker.tick()
            with db.read() as session:
                running = session.get(FineTuneJob, job.id)
            if running is not None and running.status == JobStatus.RUNNING.value:
                pid = running.pid or 0
                break
            time.sleep(0.1)
        assert pid, "the fake training never reported running"
        if not watched:
            worker.runs.clear()  # the worker ends; the process runs on, then is killed
        print(f"\ntried: SIGKILL to training process {pid} ({'with' if watched else 'no'} worker)")
        os.killpg(pid, signal.SIGKILL)
        if watched:
            for _ in range(50):
                worker.tick()
                if not worker.runs:
                    break
                time.sleep(0.1)
        else:
            time.sleep(0.2)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):  # what an operator (or a restart) runs
                assert cli_main(["jobs", "reconcile"]) == 0
            print(f"  jobs reconcile printed: {printed.getvalue().strip()}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    detail_seen = jobs.job_detail(db, actor=dana, job_id=job.id or 0)
    failed = detail_seen.job
    db.dispose()
    print(f"  the user saw: {failed.status}: {failed.failure_reason}")
    assert failed.status == JobStatus.FAILED.value and failed.pid is None
    if watched:
        assert "killed by signal 9" in (failed.failure_reason or "")
    else:
        assert failed.error_code == "Lost"
        assert f"training process ({pid}) ended while no worker" in (failed.failure_reason or "")
    assert detail_seen.events[-1].status == "failed"
