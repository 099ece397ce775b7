"""Fixtures for the model catalog sources: fake AWS credentials (nothing may reach real AWS),
moto for the AWS APIs it emulates, a botocore Stubber for the few it does not, and MLflow with
telemetry off and no retries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from services import aws
from services.config import Settings, get_settings

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(autouse=True)
def offline_sdks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Fake AWS credentials and no AWS profile or config files; MLflow never phones home."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }.items():
        monkeypatch.setenv(name, value)
    aws._client.cache_clear()
    yield
    aws._client.cache_clear()


@pytest.fixture
def aws_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Portal settings with AWS configured, every boto3 call answered by moto."""
    monkeypatch.setenv("PORTAL_AWS_REGION", REGION)
    get_settings.cache_clear()
    with mock_aws():
        yield get_settings()
    aws._client.cache_clear()


class PartialStubber(Stubber):
    """A Stubber that answers only the operations queued on it, in order, and lets every other
    call through to moto: for the APIs moto does not implement (ListFoundationModels), on the
    same client that moto serves. Overrides two private Stubber hooks; botocore is pinned."""

    def _stubs(self, model: Any) -> bool:
        return bool(self._queue) and self._queue[0]["operation_name"] == model.name

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kw: Any) -> None:
        if self._stubs(model):
            super()._assert_expected_params(model, params, context, **kw)

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kw: Any) -> Any:
        return (
            super()._get_response_handler(model, params, context, **kw)
            if self._stubs(model)
            else None
        )


def count_calls(client: Any) -> Counter[str]:
    """Counts the API calls ``client`` makes from now on, by operation name."""
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    # before-parameter-build fires for every call, stubbed or not (before-call stops at a stub)
    client.meta.events.register("before-parameter-build.*.*", record)
    return calls


@dataclass
class Store:
    uri: str
    artifacts: Path
    runs: dict[str, str]  # label -> run id


def log_run(client: Any, experiment: str, params: dict[str, str], metrics: dict[str, float]) -> Any:
    run = client.create_run(experiment)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    for name, number in metrics.items():
        client.log_metric(run.info.run_id, name, number / 2, step=0)  # the latest value counts
        client.log_metric(run.info.run_id, name, number, step=1)
    client.set_terminated(run.info.run_id)
    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A real MLflow sqlite store with two experiments, runs and three registered models."""
    folder = tmp_path_factory.mktemp("mlflow-registry")
    uri, artifacts = f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        tuning = client.create_experiment("support-bot-tuning", artifacts.as_uri() + "/tuning")
        sweeps = client.create_experiment("summarizer-sweeps", artifacts.as_uri() + "/sweeps")
        first = log_run(client, tuning, {"lr": "3e-5", "epochs": "2"}, {"eval_loss": 0.42})
        second = log_run(client, tuning, {"lr": "1e-5", "epochs": "3"}, {"eval_loss": 0.31})
        summary = log_run(client, sweeps, {"lora_rank": "8"}, {"rougeL": 0.44})

        client.create_registered_model(
            "support-bot", tags={"team": "support"}, description="Answers tickets"
        )
        for run, note in ((first, "first cut"), (second, "lower loss")):
            client.create_model_version(
                "support-bot",
                f"{run.info.artifact_uri}/model",
                run_id=run.info.run_id,
                tags={"dataset": "tickets-v2"},
                description=note,
            )
        client.create_model_version("support-bot", str(artifacts / "imported" / "model"))
        client.set_registered_model_alias("support-bot", "production", "2")
        client.set_registered_model_alias("support-bot", "champion", "2")
        client.set_registered_model_alias("support-bot", "staging", "3")

        client.create_registered_model("bob's summarizer")
        client.create_model_version(
            "bob's summarizer", f"{summary.info.artifact_uri}/model", run_id=summary.info.run_id
        )
        client.create_registered_model("empty-model")
        yield Store(uri, artifacts, {"first": first.info.run_id, "second": second.info.run_id})
