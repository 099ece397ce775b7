"""The MLflow Model Registry as a model catalog, against a real local MLflow store; and the
factory that picks the three sources without importing their SDKs."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.config import get_settings
from services.errors import ConfigurationError, ExternalServiceError
from services.registry.sources import (
    STAGE_PRODUCTION,
    STAGE_STAGING,
    ExternalModel,
    RegistrySource,
    sources_for,
)
from services.registry.sources.mlflow_registry import MlflowRegistrySource
from tests.integration.registry.conftest import Store

ROOT = Path(__file__).resolve().parents[3]


def by_name(models: list[ExternalModel]) -> dict[str, ExternalModel]:
    return {model.name: model for model in models}


def test_fetch_returns_models_versions_aliases_and_run_metrics(store: Store) -> None:
    models = by_name(MlflowRegistrySource(store.uri).fetch())

    assert sorted(models) == ["bob's summarizer", "empty-model", "support-bot"]
    bot = models["support-bot"]
    assert (bot.source, bot.kind, bot.provider, bot.source_ref) == (
        "mlflow",
        "custom",
        "mlflow",
        "support-bot",
    )
    assert (bot.description, bot.tags) == ("Answers tickets", {"team": "support"})
    assert [v.version for v in bot.versions] == ["1", "2", "3"]
    v1, v2, v3 = bot.versions
    assert v1.source_ref == "models:/support-bot/1"
    assert (v1.run_id, v1.params, v1.metrics) == (
        store.runs["first"],
        {"lr": "3e-5", "epochs": "2"},
        {"eval_loss": 0.42},
    )
    assert (v1.description, v1.tags, v1.stage_hint, v1.mlflow_aliases) == (
        "first cut",
        {"dataset": "tickets-v2"},
        None,
        (),
    )
    assert v1.artifact_uri is not None and v1.artifact_uri.endswith(
        f"/{store.runs['first']}/artifacts/model"
    )
    assert v2.metrics == {"eval_loss": 0.31}
    assert (v2.mlflow_aliases, v2.stage_hint) == (("champion", "production"), STAGE_PRODUCTION)
    assert (v2.mlflow_model_name, v2.mlflow_model_version) == ("support-bot", "2")
    assert (v3.mlflow_aliases, v3.stage_hint) == (("staging",), STAGE_STAGING)
    assert (v3.run_id, v3.metrics, v3.params) == (None, {}, {})  # registered from a path, no run
    assert v3.artifact_uri == str(store.artifacts / "imported" / "model")
    for version in bot.versions:
        assert version.created_at is not None and version.created_at.tzinfo == UTC
        assert abs(version.created_at - datetime.now(UTC)).total_seconds() < 600
    assert bot.versions[0].created_by  # the run's user when the registry names nobody

    (summary,) = models["bob's summarizer"].versions  # a quote in the name is searched safely
    assert (summary.params, summary.metrics) == ({"lora_rank": "8"}, {"rougeL": 0.44})
    assert models["empty-model"].versions == ()


def test_models_and_versions_are_read_page_by_page(store: Store) -> None:
    whole = MlflowRegistrySource(store.uri).fetch()
    paged = MlflowRegistrySource(store.uri, page_size=1).fetch()
    assert paged == whole


def test_an_unreachable_tracking_server_fails_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    source = MlflowRegistrySource("http://portal:s3cret@127.0.0.1:9")
    assert source.unavailable_reason() is None  # configured; whether it answers shows in fetch

    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as caught:
        source.fetch()

    assert time.monotonic() - started < 20
    message = str(caught.value)
    assert message.startswith(
        "Could not read the MLflow Model Registry at http://***@127.0.0.1:9: "
    )
    assert "did not answer" in message and "PORTAL_MLFLOW_TRACKING_URI" in message
    assert "s3cret" not in message and "s3cret" not in (caught.value.detail or "")


def test_unavailable_without_a_uri_or_before_the_store_exists(tmp_path: Path) -> None:
    assert MlflowRegistrySource(None).unavailable_reason() == (
        "MLflow tracking URI is not set: set PORTAL_MLFLOW_TRACKING_URI."
    )
    missing = tmp_path / "nowhere" / "mlflow.db"
    source = MlflowRegistrySource(f"sqlite:///{missing}")
    reason = source.unavailable_reason()
    assert reason is not None and str(missing) in reason and "services.cli init" in reason
    with pytest.raises(ConfigurationError, match="does not exist yet"):
        source.fetch()
    assert not missing.parent.exists()  # reading never creates a store


def test_the_embedded_default_is_used_when_nothing_is_set(
    monkeypatch: pytest.MonkeyPatch, portal_env: Path
) -> None:
    monkeypatch.delenv("PORTAL_MLFLOW_TRACKING_URI")
    get_settings.cache_clear()
    source = sources_for(get_settings())["mlflow"]
    reason = source.unavailable_reason()
    assert reason is not None and str(portal_env.resolve() / "mlflow.db") in reason


def test_sources_for_gives_the_three_sources_by_name(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_MLFLOW_TRACKING_URI", store.uri)
    get_settings.cache_clear()
    sources = sources_for(get_settings())

    assert list(sources) == ["bedrock", "sagemaker", "mlflow"]
    assert all(isinstance(s.label, str) and s.label for s in sources.values())
    assert sources["bedrock"].unavailable_reason() is not None  # no PORTAL_AWS_REGION
    assert sources["sagemaker"].unavailable_reason() is not None
    mlflow_source: RegistrySource = sources["mlflow"]
    assert mlflow_source.unavailable_reason() is None
    assert "support-bot" in {m.name for m in mlflow_source.fetch()}


def test_importing_the_sources_loads_no_sdk() -> None:
    script = (
        "import sys\n"
        "import services.registry.sources as s\n"
        "assert 'mlflow' not in sys.modules and 'boto3' not in sys.modules, 'import'\n"
        "from services.config import Settings\n"
        "s.sources_for(Settings())\n"
        "assert 'mlflow' not in sys.modules, 'sources_for'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
