"""The demo sweeps: seeded once into a fresh SQLite MLflow store, then read back the way the
Experiments page would read them."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from services.experiments.demo import SWEEPS, seed_runs


@dataclass
class Seeded:
    client: MlflowClient
    uri: str
    artifact_root: Path
    summary: str
    seconds: float
    runs: list[Any]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One store for the module: MLflow's migrations alone take seconds."""
    home = tmp_path_factory.mktemp("demo-mlflow")
    uri, artifact_root = f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # the portal never phones home
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments()  # creates the store, so the timing below is seeding only
        started = time.perf_counter()
        summary = seed_runs(uri, artifact_root)
        seconds = time.perf_counter() - started
        print(f"\nseeded {summary} in {seconds:.1f} s")
        ids = [e.experiment_id for e in client.search_experiments()]
        runs = list(client.search_runs(ids, max_results=1000))
        yield Seeded(client, uri, artifact_root, summary, seconds, runs)


def history(seeded: Seeded, run: Any, key: str) -> list[float]:
    points = seeded.client.get_metric_history(run.info.run_id, key)
    return [m.value for m in sorted(points, key=lambda m: m.step)]


def test_seeds_about_seventy_runs_in_four_tagged_experiments(seeded: Seeded) -> None:
    expected = sum(s.runs for s in SWEEPS)
    assert seeded.summary == f"{expected} runs in 4 experiments"
    assert 60 <= len(seeded.runs) == expected <= 80
    per_experiment = Counter(r.info.experiment_id for r in seeded.runs)
    assert sorted(per_experiment.values()) == sorted(s.runs for s in SWEEPS)
    for run in seeded.runs:
        tags = run.data.tags
        assert tags["portal.demo"] == "1"
        assert {"portal.base_model", "team", "sweep"} <= tags.keys()
        assert {"learning_rate", "lora_rank", "epochs", "batch_size"} <= run.data.params.keys()
    statuses = Counter(r.info.status for r in seeded.runs)
    assert statuses["FAILED"] >= 2 and statuses["KILLED"] >= 1
    assert seeded.seconds < 120  # a few seconds normally; printed above


def test_runs_are_spread_over_the_past_weeks(seeded: Seeded) -> None:
    now = time.time() * 1000
    starts = [r.info.start_time for r in seeded.runs]
    assert all(now - 35 * 86_400_000 < s < now for s in starts)
    assert max(starts) - min(starts) > 14 * 86_400_000
    assert all(r.info.end_time > r.info.start_time for r in seeded.runs)


def test_experiments_keep_their_artifacts_under_the_artifact_root(seeded: Seeded) -> None:
    for sweep in SWEEPS:
        experiment = seeded.client.get_experiment_by_name(sweep.experiment)
        assert experiment is not None
        assert experiment.artifact_location == (seeded.artifact_root / sweep.experiment).as_uri()


def test_finished_runs_learn_and_long_ones_overfit(seeded: Seeded) -> None:
    finished = [r for r in seeded.runs if r.info.status == "FINISHED"]
    improved, overfit = 0, 0
    for run in finished:
        logged = history(seeded, run, "train_loss")  # every step
        assert 200 <= len(logged) <= 600
        losses = [v for v in logged if math.isfinite(v)]
        tenth = len(losses) // 10
        assert sum(losses[-tenth:]) < 0.75 * sum(losses[:tenth]), run.info.run_name
        evals = history(seeded, run, "eval_loss")  # every 50 steps and at the end
        assert len(evals) >= 4
        assert evals[-1] > run.data.metrics["train_loss"]  # eval sits above train
        improved += evals[-1] < evals[0]
        overfit += run.data.params["epochs"] == "4" and evals[-1] > min(evals) + 0.03
        assert 0 < run.data.metrics["accuracy"] < 1
    assert improved >= 0.7 * len(finished)
    assert overfit >= 3


def test_failures_diverge_and_one_run_has_a_nan_spike(seeded: Seeded) -> None:
    diverged = [
        r for r in seeded.runs if r.info.status == "FAILED" and r.data.metrics["eval_loss"] > 5
    ]
    assert len(diverged) == 2
    for run in diverged:
        assert float(run.data.params["learning_rate"]) >= 1e-3
        assert math.isnan(history(seeded, run, "train_loss")[-1])
    spiked = [
        r
        for r in seeded.runs
        if r.info.status == "FINISHED"
        and any(math.isnan(v) for v in history(seeded, r, "train_loss"))
    ]
    assert len(spiked) == 1
    assert all("accuracy" not in r.data.metrics for r in seeded.runs if r.info.status != "FINISHED")


def test_seeding_again_adds_nothing(seeded: Seeded) -> None:
    again = seed_runs(seeded.uri, seeded.artifact_root)
    assert again.startswith("0 runs in 0 experiments")
    ids = [e.experiment_id for e in seeded.client.search_experiments()]
    assert len(seeded.client.search_runs(ids, max_results=1000)) == len(seeded.runs)
