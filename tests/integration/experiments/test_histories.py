"""Metric histories of many runs against a real ``mlflow server`` and its SQLite store: the
same points as MLflow's own client, thinned to ``max_points`` with first and last kept, NaN and
infinities hidden and counted, unknown runs named, a dead server explained in one line, and a
rerun served from the cache until the run changes."""

from __future__ import annotations

import itertools
import math
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from services.errors import ExternalServiceError
from services.experiments import histories, history_sources
from services.experiments.histories import clear_cache, load_histories
from tests.processes import free_port

KEYS = ["loss", "accuracy"]
CLOCK_MS = itertools.count(1_700_000_000_000)  # each point logged after the one before
UNKNOWN_RUN = uuid.uuid4().hex


def log_metrics(
    client: MlflowClient, run_id: str, points: Iterable[tuple[str, int, float]]
) -> None:
    metrics = [Metric(key, value, next(CLOCK_MS), step) for key, step, value in points]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])


@pytest.fixture(scope="module")
def runs(mlflow_server: str) -> dict[str, str]:
    """Runs as training jobs leave them: regular, irregular with NaN/inf and a step logged
    twice, long, and one that logged nothing."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("histories")
    ids = {name: client.create_run(experiment, run_name=name).info.run_id
           for name in ("regular", "irregular", "long", "silent")}  # fmt: skip
    log_metrics(client, ids["regular"], [(k, s, 1 / (s + 1)) for s in range(100) for k in KEYS])
    irregular = [0, 3, 7, 10, 20, 30, 40, 50, 51, 400, 1000]
    values = {10: math.nan, 20: math.nan, 30: math.inf, 40: -math.inf}
    log_metrics(client, ids["irregular"], [("loss", s, values.get(s, s / 10)) for s in irregular])
    log_metrics(client, ids["irregular"], [("loss", 7, 9.9)])  # step 7 again, later
    log_metrics(client, ids["long"], [("loss", s, math.sin(s / 50)) for s in range(3000)])
    return ids


def chartable(metrics: Iterable[Metric]) -> list[tuple[int, float, int]]:
    """What a chart shows of a history from MLflow's client: finite values (MLflow's SQL
    stores keep ±inf as ±max float), the last one logged at each step, by step."""
    by_step: dict[int, tuple[int, float, int]] = {}
    for m in sorted(metrics, key=lambda m: (m.timestamp, m.value)):
        if abs(m.value) < sys.float_info.max:
            by_step[m.step] = (m.step, m.value, m.timestamp)
    return [by_step[step] for step in sorted(by_step)]


def test_histories_over_rest_are_what_mlflows_client_sees(
    mlflow_server: str, runs: dict[str, str]
) -> None:
    clear_cache()
    client = MlflowClient(mlflow_server)
    found = load_histories(mlflow_server, list(runs.values()), KEYS)
    for run_id in (runs["regular"], runs["irregular"], runs["silent"]):  # up to 1,000 points
        for key in KEYS:
            expected = chartable(client.get_metric_history(run_id, key))
            assert found.points(run_id, key) == expected, (run_id, key)
    assert found.missing_runs == ()
    assert found.get(runs["silent"], "loss").points() == []


def test_irregular_steps_keep_the_last_value_and_nan_and_inf_are_hidden_and_counted(
    mlflow_server: str, runs: dict[str, str]
) -> None:
    series = load_histories(mlflow_server, [runs["irregular"]], ["loss"]).get(
        runs["irregular"], "loss"
    )
    assert series.steps == (0, 3, 7, 50, 51, 400, 1000)
    assert series.values[2] == 9.9
    assert (series.hidden_nan, series.hidden_inf) == (2, 2)


def test_max_points_thins_a_long_history_and_keeps_its_first_and_last_points(
    mlflow_server: str, runs: dict[str, str]
) -> None:
    every = set(chartable(MlflowClient(mlflow_server).get_metric_history(runs["long"], "loss")))
    points = load_histories(mlflow_server, [runs["long"]], ["loss"], max_points=100).points(
        runs["long"], "loss"
    )
    assert len(points) == 100
    assert (points[0][0], points[-1][0]) == (0, 2999)
    assert set(points) <= every
    assert [p[0] for p in points] == sorted({p[0] for p in points})


def test_runs_past_the_bulk_cap_come_sampled_by_the_server(
    mlflow_server: str, runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(histories, "WHOLE_BULK_CAP", 500)
    monkeypatch.setattr(history_sources, "WHOLE_BULK_CAP", 500)
    client = MlflowClient(mlflow_server)
    found = load_histories(mlflow_server, list(runs.values()), ["loss"], max_points=200)
    long = found.points(runs["long"], "loss")
    assert len(long) <= 200
    assert (long[0][0], long[-1][0]) == (0, 2999)
    assert set(long) <= set(chartable(client.get_metric_history(runs["long"], "loss")))
    regular = chartable(client.get_metric_history(runs["regular"], "loss"))
    assert found.points(runs["regular"], "loss") == regular


def test_a_server_without_bulk_endpoints_is_read_run_by_run(
    mlflow_server: str, runs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk = load_histories(mlflow_server, list(runs.values()), KEYS)
    for name in ("WHOLE_BULK_PATH", "SAMPLED_BULK_PATH"):
        monkeypatch.setattr(history_sources, name, "/ajax-api/2.0/mlflow/metrics/no-such-read")
    one_by_one = load_histories(mlflow_server, [*runs.values(), UNKNOWN_RUN], KEYS)
    assert one_by_one.series == bulk.series
    assert one_by_one.missing_runs == (UNKNOWN_RUN,)


def test_unknown_runs_are_named_and_the_others_still_come(
    mlflow_server: str, runs: dict[str, str]
) -> None:
    found = load_histories(mlflow_server, [UNKNOWN_RUN, runs["regular"]], KEYS)
    assert found.missing_runs == (UNKNOWN_RUN,)
    assert len(found.points(runs["regular"], "accuracy")) == 100


def test_a_rerun_is_served_from_the_cache_until_the_runs_marker_changes(
    mlflow_server: str, runs: dict[str, str]
) -> None:
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("histories")
    assert experiment is not None
    run_id = client.create_run(experiment.experiment_id).info.run_id
    log_metrics(client, run_id, [("loss", 0, 1.0)])
    first = load_histories(mlflow_server, [run_id], ["loss"], versions={run_id: 1})
    log_metrics(client, run_id, [("loss", 1, 0.5)])
    same_marker = load_histories(mlflow_server, [run_id], ["loss"], versions={run_id: 1})
    new_marker = load_histories(mlflow_server, [run_id], ["loss"], versions={run_id: 2})
    assert same_marker.get(run_id, "loss") is first.get(run_id, "loss")
    assert new_marker.get(run_id, "loss").steps == (0, 1)


def test_a_server_that_is_not_listening_is_named_in_one_line() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ExternalServiceError) as error:
        load_histories(uri, ["a"], ["loss"], timeout=2)
    assert time.monotonic() - started < 5
    assert str(error.value).startswith(f"The MLflow tracking server at {uri} cannot be reached")


def test_a_server_that_does_not_answer_is_named_with_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ExternalServiceError) as error:
            load_histories(uri, ["a"], ["loss"], timeout=0.5)
    assert str(error.value) == f"The MLflow tracking server at {uri} did not answer within 0.5 s."


def test_a_local_sqlite_store_gives_the_same_histories_without_a_server(
    mlflow_server: str, mlflow_server_folder: Path, runs: dict[str, str]
) -> None:
    asked = [*runs.values(), UNKNOWN_RUN]
    over_rest = load_histories(mlflow_server, asked, KEYS, max_points=2500)
    local = load_histories(
        f"sqlite:///{mlflow_server_folder / 'mlflow.db'}", asked, KEYS, max_points=2500
    )
    assert local.series == over_rest.series
    assert local.missing_runs == (UNKNOWN_RUN,)
