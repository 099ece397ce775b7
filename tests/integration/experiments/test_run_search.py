"""Searching, fetching and comparing runs against a real MLflow sqlite store: the filter
syntax across several experiments, plain errors for a bad filter, thousands of runs paged
through, deleted runs in a shared link, the table's columns, differences and baseline deltas."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from models.user import Role
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database, upgrade_schema
from services.errors import ExternalServiceError, NotFound, PermissionDenied, ValidationError
from services.experiments import detail, runs
from services.experiments.table import baseline_deltas, best_run, direction_of, runs_frame
from tests.conftest import make_user


@pytest.fixture
def store() -> tuple[Settings, MlflowClient]:
    """The session's MLflow store (creating one costs seconds); each test names its own
    experiments."""
    settings = get_settings()
    return settings, MlflowClient(settings.resolved_tracking_uri)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def portal(store: tuple[Settings, MlflowClient]) -> Iterator[Database]:
    db = Database(store[0].resolved_database_url)
    upgrade_schema(db)
    make_user(db, "root.admin", Role.ADMIN)
    yield db
    db.dispose()


@pytest.fixture
def dana(portal: Database) -> Actor:
    return make_user(portal, "dana", Role.DATA_SCIENTIST)


def log_run(
    client: MlflowClient,
    experiment: str,
    name: str,
    params: dict[str, str],
    metrics: dict[str, float],
) -> str:
    run = client.create_run(experiment, run_name=name)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture
def sweeps(store: tuple[Settings, MlflowClient], tmp_path: Path) -> dict[str, str]:
    _, client = store
    first = client.create_experiment(unique("sweep-a"), artifact_location=(tmp_path / "a").as_uri())
    second = client.create_experiment(
        unique("sweep-b"), artifact_location=(tmp_path / "b").as_uri()
    )
    ids = {
        "a1": log_run(
            client, first, "a1", {"lr": "1e-4", "rank": "8"}, {"eval_loss": 1.1, "accuracy": 0.71}
        ),
        "a2": log_run(
            client, first, "a2", {"lr": "3e-4", "rank": "8"}, {"eval_loss": 0.9, "accuracy": 0.78}
        ),
        "b1": log_run(
            client,
            second,
            "b1",
            {"lr": "1e-4", "rank": "16"},
            {"eval_loss": 1.4, "accuracy": 0.64, "odd": math.nan},
        ),
    }
    return {"first": first, "second": second, **ids}


def test_a_filter_searches_across_experiments(
    portal: Database, dana: Actor, store: tuple[Settings, MlflowClient], sweeps: dict[str, str]
) -> None:
    settings, _ = store
    found = runs.search_runs(
        portal,
        settings,
        actor=dana,
        experiment_ids=[sweeps["first"], sweeps["second"]],
        filter_string="metrics.eval_loss < 1.2 and params.lr = '1e-4'",
    )
    assert [r.name for r in found.runs] == ["a1"] and not found.truncated
    ordered = runs.search_runs(
        portal,
        settings,
        actor=dana,
        experiment_ids=[sweeps["first"], sweeps["second"]],
        order_by="metrics.accuracy DESC",
    )
    assert [r.name for r in ordered.runs] == ["a2", "a1", "b1"]
    assert {r.experiment.split("-")[1] for r in ordered.runs} == {"a", "b"}


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("metrics.eval_loss <", "Invalid clause"),
        ("params.lr = 1e-4", "quoted string"),
        ("foo.bar = 1", "Invalid entity type 'foo'"),
    ],
)
def test_a_bad_filter_is_explained_in_plain_words(
    portal: Database,
    dana: Actor,
    store: tuple[Settings, MlflowClient],
    sweeps: dict[str, str],
    bad: str,
    says: str,
) -> None:
    with pytest.raises(ValidationError, match=says) as refused:
        runs.search_runs(
            portal, store[0], actor=dana, experiment_ids=[sweeps["first"]], filter_string=bad
        )
    assert str(refused.value).startswith("Filter: ") and runs.FILTER_EXAMPLE in str(refused.value)


def test_many_runs_are_paged_through(
    portal: Database,
    dana: Actor,
    store: tuple[Settings, MlflowClient],
    tmp_path: Path,
) -> None:
    settings, client = store
    experiment = client.create_experiment(
        unique("big"), artifact_location=(tmp_path / "big").as_uri()
    )
    for i in range(130):
        client.create_run(experiment, run_name=f"r{i}")
    found = runs.search_runs(
        portal, settings, actor=dana, experiment_ids=[experiment], page_size=50
    )
    assert len(found.runs) == 130 and not found.truncated
    assert len({r.run_id for r in found.runs}) == 130
    capped = runs.search_runs(
        portal, settings, actor=dana, experiment_ids=[experiment], max_runs=70, page_size=50
    )
    assert len(capped.runs) == 70 and capped.truncated


def test_a_shared_link_with_a_deleted_run_names_it(
    portal: Database, dana: Actor, store: tuple[Settings, MlflowClient], sweeps: dict[str, str]
) -> None:
    settings, client = store
    client.delete_run(sweeps["a2"])
    unknown = "f" * 32
    found, missing = runs.get_runs(
        portal, settings, actor=dana, run_ids=[sweeps["b1"], sweeps["a2"], unknown, "x' OR 1=1"]
    )
    assert [r.name for r in found] == ["b1"]
    assert missing == [sweeps["a2"], unknown, "x' OR 1=1"]
    with pytest.raises(NotFound, match="does not exist any more"):
        detail.run_detail(portal, settings, actor=dana, run_id=sweeps["a2"])


def test_the_table_shows_differences_and_deltas_against_a_baseline(
    portal: Database, dana: Actor, store: tuple[Settings, MlflowClient], sweeps: dict[str, str]
) -> None:
    found, _ = runs.get_runs(
        portal, store[0], actor=dana, run_ids=[sweeps["a1"], sweeps["a2"], sweeps["b1"]]
    )
    frame = runs_frame(found)
    assert {"params.lr", "params.rank", "metrics.eval_loss", "metrics.accuracy"} <= set(frame)
    assert frame["metrics.odd"].isna()[sweeps["b1"]]  # NaN is shown as empty
    a_only = runs_frame(found[:2], differences_only=True)
    assert "params.lr" in a_only and "params.rank" not in a_only  # rank is 8 for both
    deltas, verdicts = baseline_deltas(frame, sweeps["a1"])
    assert deltas.loc[sweeps["a2"], "metrics.eval_loss"] == pytest.approx(-0.2)
    assert verdicts.loc[sweeps["a2"], "metrics.eval_loss"] == "better"  # lower loss
    assert verdicts.loc[sweeps["a2"], "metrics.accuracy"] == "better"  # higher accuracy
    assert verdicts.loc[sweeps["b1"], "metrics.accuracy"] == "worse"
    flipped = baseline_deltas(frame, sweeps["a1"], {"accuracy": "min"})[1]
    assert flipped.loc[sweeps["a2"], "metrics.accuracy"] == "worse"
    assert best_run(frame, "eval_loss") == sweeps["a2"]


def test_metric_directions_follow_their_names() -> None:
    assert [
        direction_of(m) for m in ("eval_loss", "perplexity", "accuracy", "f1", "latency_ms")
    ] == ["min", "min", "max", "max", "min"]


def test_the_run_detail_knows_its_artifacts(
    portal: Database,
    dana: Actor,
    store: tuple[Settings, MlflowClient],
    sweeps: dict[str, str],
    tmp_path: Path,
) -> None:
    settings, client = store
    note = tmp_path / "notes.txt"
    note.write_text("tried a higher rank")
    client.log_artifact(sweeps["a1"], str(note), "reports")
    found = detail.run_detail(portal, settings, actor=dana, run_id=sweeps["a1"])
    assert [(a.path, a.size) for a in found.artifacts] == [
        ("reports", None),
        ("reports/notes.txt", 19),
    ]
    content = detail.download_artifact(
        portal, settings, actor=dana, run_id=sweeps["a1"], path="reports/notes.txt", size=19
    )
    assert content == b"tried a higher rank"


def test_managers_cannot_read_experiments(
    portal: Database, store: tuple[Settings, MlflowClient], sweeps: dict[str, str]
) -> None:
    manager = make_user(portal, "max", Role.MANAGER)
    with pytest.raises(PermissionDenied):
        runs.search_runs(portal, store[0], actor=manager, experiment_ids=[sweeps["first"]])
    with pytest.raises(PermissionDenied):
        runs.list_experiments(portal, store[0], actor=manager)


def test_a_tracking_server_that_is_down_is_said_plainly_and_quickly(
    portal: Database, dana: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PORTAL_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    get_settings.cache_clear()
    started = time.monotonic()
    with pytest.raises(ExternalServiceError, match=f"127.0.0.1:{port}"):
        runs.list_experiments(portal, get_settings(), actor=dana)
    assert time.monotonic() - started < 20
