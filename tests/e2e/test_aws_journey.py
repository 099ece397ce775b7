"""The whole journey against AWS, in Chromium, with every AWS call answered by a moto server
the test starts (``PORTAL_AWS_ENDPOINT_URL``): a data scientist registers a dataset and
launches a SageMaker fine-tuning job from the form; moto finishes it at once and the portal's
worker finds it completed, registers its model as a model version and as a SageMaker model
package pending approval; the version is promoted to production with two approvals, which sets
the package's ModelApprovalStatus to Approved; Bedrock invocation logs put in S3 are ingested
with the command line, and a manager finds their spend on Usage & costs.

The portal here is a ``streamlit run`` of its own (its own PORTAL_HOME and AWS settings), not
the session's shared one."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Browser, Page, expect

from services.gateway.pricing import PriceBook
from services.training.samples import sample_chat_records
from tests.e2e.conftest import ADMIN, Account, Portal, browser_page, start_portal
from tests.e2e.helpers import ROOT, click, goto, login, main_area, settle, shot, upload_dataset

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TRAINING_BUCKET = "portal-training"
LOGS_BUCKET = "bedrock-invocation-logs"
LOGS_PREFIX = f"AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/portal-sagemaker"
SAMPLES = ROOT / "tests" / "samples" / "bedrock_invocation_log.jsonl"

PASSWORD = "aws journey passphrase 8"
SCIENTIST = Account("aws.scientist", "data_scientist", PASSWORD, "Ada Scientist")
FIRST = Account("aws.approver1", "approver", PASSWORD, "Abe Approver")
SECOND = Account("aws.approver2", "approver", PASSWORD, "Bea Approver")
MANAGER = Account("aws.manager", "manager", PASSWORD, "Max Manager")
MODEL = "Support summariser"
# SageMaker's job runs on moto (it "completes" at once); the portal's worker looks at cloud
# jobs every 30 s, so the page may say "Starting" for that long.
REFRESH_TIMEOUT_MS = 60_000
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server on a free loopback port, with the training bucket an administrator would
    have created. moto keeps its accounts' state in the process, so what earlier tests in this
    process made (training jobs, packages) is reset first."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 (the loopback server)
        client(url, "s3").create_bucket(Bucket=TRAINING_BUCKET)
        yield url
    finally:
        server.stop()


def client(endpoint: str, service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client(service, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def aws_portal(
    browser: Browser, artifacts: Path, moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    settings = {
        **FAKE_AWS,
        "PORTAL_AWS_REGION": REGION,
        "PORTAL_AWS_ENDPOINT_URL": moto_url,
        "PORTAL_TRAINING_BUCKET": TRAINING_BUCKET,
        "PORTAL_SAGEMAKER_ROLE_ARN": ROLE_ARN,
    }
    home = tmp_path_factory.mktemp("e2e-aws") / "portal-home"
    log = artifacts / "streamlit-aws-server.log"
    with start_portal(settings, browser=browser, home=home, log=log) as portal:
        portal.ensure_users([ADMIN, SCIENTIST, FIRST, SECOND, MANAGER])
        yield portal


def register_dataset(page: Page, portal: Portal, data: Path) -> None:
    upload_dataset(page, portal.url, "support-chats", data)
    expect(page).to_have_url(re.compile(r"dataset=\d+"))
    shot(page, "aws-dataset-registered")


def launch_sagemaker_job(page: Page, portal: Portal) -> None:
    goto(page, portal.url, "/fine-tuning?view=launch")
    click(main_area(page).get_by_test_id("stButtonGroup").get_by_text("Amazon SageMaker"))
    page.get_by_role("combobox", name="Dataset version").click()
    click(page.get_by_role("option", name=re.compile(r"^support-chats v1")))
    click(page.get_by_text("Register the result as a model version when it succeeds"))
    page.get_by_label("Model to register into").fill(MODEL)
    page.get_by_label("Model to register into").press("Tab")
    settle(page)
    expect(main_area(page).get_by_text("Estimated cost (at most)")).to_be_visible()
    shot(page, "aws-sagemaker-launch-form")
    click(page.get_by_role("button", name="Launch job"))
    expect(page).to_have_url(re.compile(r"job=\d+"))
    expect(main_area(page).get_by_text(re.compile(r"Amazon SageMaker · by"))).to_be_visible()
    shot(page, "aws-sagemaker-job-submitted")


def put_model_artifact(moto_url: str) -> str:
    """What the training container would leave: model.tar.gz where the job says its model is."""
    sagemaker = client(moto_url, "sagemaker")
    (summary,) = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    assert job["TrainingJobStatus"] == "Completed"  # moto finishes a job when it is created
    assert job["RoleArn"] == ROLE_ARN
    s3 = client(moto_url, "s3")
    for channel in job["InputDataConfig"]:  # the portal uploaded the dataset's splits
        bucket, _, key = channel["DataSource"]["S3DataSource"]["S3Uri"][5:].partition("/")
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    uri = str(job["ModelArtifacts"]["S3ModelArtifacts"])
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"weights"))
    return uri


def approve(page: Page, request_url: str, note: str) -> None:
    """Approve the request, as the approver logged in on ``page``."""
    page.goto(request_url)
    settle(page)
    page.get_by_label("Comment").fill(note)
    click(main_area(page).get_by_role("button", name="Approve"))


def invocation_logs(now: datetime) -> list[dict[str, Any]]:
    """Bedrock invocation log records made from the samples' Converse call and throttled call:
    the support team's scientist and the search team's assistant, a few seconds apart."""
    converse, _, throttled = (json.loads(line) for line in SAMPLES.read_text().splitlines())
    who = [("support", SCIENTIST.username)] * 30 + [("search", "search-assistant")] * 18
    records = []
    for i, (team, user) in enumerate(who):
        template = throttled if i % 16 == 15 else converse
        role = f"arn:aws:sts::{ACCOUNT}:assumed-role/team-{team}-app/session-{i}"
        records.append(
            template
            | {
                "requestId": str(uuid.UUID(int=i + 1)),
                "timestamp": (now - timedelta(seconds=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "identity": {"arn": role},
                "requestMetadata": {"team": team, "user": user, "app": "assistant"},
            }
        )
    return records


def spend_of(records: list[dict[str, Any]]) -> Decimal:
    """What the records cost at the model prices the portal uses (no overrides are set)."""
    book, total = PriceBook(), Decimal(0)
    for record in records:
        price = book.price_of(record["modelId"])
        assert price is not None, record["modelId"]
        total += price.cost(
            record["input"]["inputTokenCount"],
            record["output"]["outputTokenCount"],
            record["input"].get("cacheReadInputTokenCount", 0),
            record["input"].get("cacheWriteInputTokenCount", 0),
        )
    return total


@dataclass
class Ingest:
    """``usage ingest`` running in the background."""

    process: subprocess.Popen[str]

    def summary(self) -> str:
        """The command's last line, once it has finished (successfully: it is asserted)."""
        out, err = self.process.communicate(timeout=90)
        assert self.process.returncode == 0, out + err
        return out.strip().splitlines()[-1]


@contextlib.contextmanager
def ingesting(portal: Portal, moto_url: str, records: list[dict[str, Any]]) -> Iterator[Ingest]:
    """Put ``records`` in S3 as Bedrock writes them and start ``usage ingest`` on that prefix,
    as an administrator (or a scheduled job) would; it runs while the test goes on."""
    s3 = client(moto_url, "s3")
    s3.create_bucket(Bucket=LOGS_BUCKET)
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    for part in range(2):  # Bedrock writes a gzip object every few minutes
        body = b"".join(json.dumps(r).encode() + b"\n" for r in records[part::2])
        key = f"{LOGS_PREFIX}{day}/{part:02d}/{uuid.uuid4()}.json.gz"
        s3.put_object(Bucket=LOGS_BUCKET, Key=key, Body=gzip.compress(body))
    location = f"s3://{LOGS_BUCKET}/{LOGS_PREFIX}"
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "usage", "ingest", location, "--format", "bedrock"],
        cwd=ROOT,
        env=portal.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Ingest(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Page]]:
    """Opens a page in a browser context of its own, one per person; all are closed after the
    test (a failed test's pages are saved as FAILED-…-<name>.png first)."""
    with contextlib.ExitStack() as stack:
        yield lambda name: stack.enter_context(browser_page(browser, request, name))


def test_sagemaker_job_to_approved_package_and_bedrock_spend(
    open_page: Callable[[str], Page], aws_portal: Portal, moto_url: str, tmp_path: Path
) -> None:
    portal = aws_portal
    data = tmp_path / "support-chats.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sample_chat_records(60, seed=8)))
    scientist, first, second, manager = map(
        open_page, ["scientist", "first_approver", "second_approver", "manager"]
    )
    login(scientist, portal.url, SCIENTIST.username, SCIENTIST.password)
    register_dataset(scientist, portal, data)
    launch_sagemaker_job(scientist, portal)
    artifact = put_model_artifact(moto_url)

    # While the portal's worker has yet to look at the job again (it does every 30 s), the
    # gateway's logs are ingested and the others log in.
    records = invocation_logs(datetime.now(UTC))
    with ingesting(portal, moto_url, records) as ingest:
        for page, who in ((first, FIRST), (second, SECOND), (manager, MANAGER)):
            login(page, portal.url, who.username, who.password)
        assert ingest.summary() == f"ingested={len(records)} duplicates=0 rejected=0"

    main = main_area(scientist)
    card_link = main.get_by_role("link", name="Open its model card")
    expect(card_link).to_be_visible(timeout=REFRESH_TIMEOUT_MS)
    # The live view has just ended with a rerun of the whole page, which Streamlit now and
    # then draws without one of the elements after the live part: read a fresh page.
    scientist.reload()
    settle(scientist)
    expect(main.get_by_text("Completed", exact=True)).to_be_visible()
    expect(main.get_by_text("This job is registered as version 1")).to_be_visible()
    shot(scientist, "aws-sagemaker-job-completed")

    sagemaker = client(moto_url, "sagemaker")
    (package,) = sagemaker.list_model_packages(ModelPackageGroupName="Support-summariser")[
        "ModelPackageSummaryList"
    ]
    arn = package["ModelPackageArn"]
    found = sagemaker.describe_model_package(ModelPackageName=arn)
    assert found["ModelApprovalStatus"] == "PendingManualApproval"
    assert found["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == artifact

    click(card_link)
    expect(main.get_by_role("heading", name=MODEL)).to_be_visible()
    expect(main.get_by_text(arn).first).to_be_visible()
    expect(main.get_by_text("PendingManualApproval")).to_be_visible()
    expect(main.get_by_role("link", name=re.compile(r"Fine-tuning job #\d+"))).to_be_visible()
    shot(scientist, "aws-model-card-with-package")

    click(main.get_by_role("link", name="Request promotion"))
    form = main.get_by_test_id("stForm")
    click(form.get_by_text("Production", exact=True))
    form.get_by_label("Justification").fill("Summarises tickets the support leads accept.")
    click(form.get_by_role("button", name="Request promotion"))
    expect(scientist).to_have_url(re.compile(r"request=\d+"))
    shot(scientist, "aws-promotion-requested")

    approve(first, scientist.url, "Read thirty summaries.")
    expect(main_area(first).get_by_text("1 of 2 approvals", exact=False)).to_be_visible()
    approve(second, scientist.url, "Ship it.")
    expect(main_area(second).get_by_text("2 of 2 approvals", exact=False)).to_be_visible()
    shot(second, "aws-promotion-approved")
    # Right after the decision's rerun Streamlit may still show the tabs of the run before
    # (two "Side effects" tabs): read a fresh page.
    goto(second, "", scientist.url)
    click(main_area(second).get_by_role("tab", name="Side effects"))
    effects = main_area(second).get_by_role("tabpanel", name="Side effects")
    expect(effects.get_by_test_id("stDataFrame")).to_be_visible()
    shot(second, "aws-promotion-side-effects")

    found = sagemaker.describe_model_package(ModelPackageName=arn)
    assert found["ModelApprovalStatus"] == "Approved"
    assert "production" in found["ApprovalDescription"]

    goto(manager, portal.url, "/usage")
    kpis = main_area(manager).get_by_test_id("stMetric")
    expect(kpis.filter(has_text="Spend").first).to_contain_text(f"${spend_of(records):,.2f}")
    expect(kpis.filter(has_text="Requests").first).to_contain_text(str(len(records)))
    shot(manager, "aws-usage-bedrock-spend")
