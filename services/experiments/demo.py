"""Demo fine-tuning runs for the Experiments page: four LoRA sweeps logged straight to MLflow
with explicit timestamps over the past weeks, so a fresh install has runs to compare.

Every run is tagged ``portal.demo=1`` and ``portal.demo_key``; seeding again adds only the runs
that are missing, so it is idempotent and finishes an interrupted seeding. Everything goes
through ``MlflowClient.log_batch`` (at most 1,000 entities a call), which keeps the ~70 runs at
a few seconds on a SQLite store. The numbers are seeded, so every install gets the same runs.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

DEMO_TAG = "portal.demo"
KEY_TAG = "portal.demo_key"
BATCH_LIMIT = 1000  # MLflow's limit on metrics + params + tags in one log_batch call
EVAL_EVERY = 50
STEPS_PER_EPOCH = {8: 150, 16: 125, 32: 100}  # by batch size: a fixed dataset per sweep


@dataclass(frozen=True)
class Sweep:
    """One experiment: a random search over learning rate, LoRA rank, epochs and batch size,
    run in two rounds (coarse, then refined around the best learning rate)."""

    experiment: str
    base_model: str
    team: str
    owner: str
    dataset: str
    runs: int
    floor: float  # eval loss of the best settings
    best_lr: float
    days_ago: int
    seconds_per_step: float
    learning_rates: tuple[float, ...] = (3e-5, 1e-4, 2e-4, 5e-4, 1e-3)
    ranks: tuple[int, ...] = (8, 16, 32, 64)
    fates: dict[int, str] = field(default_factory=dict)  # run index -> diverge/nan/killed/oom


SWEEPS = (
    Sweep("support-assistant-sweeps", "llama-3.1-8b-instruct", "customer-support", "dana",
          "support-conversations v3", 24, 0.82, 2e-4, 27, 1.2,
          fates={5: "diverge", 11: "nan", 17: "killed"}),
    Sweep("fraud-explainer-lora", "mistral-7b-instruct-v0.3", "risk-analytics", "omar",
          "fraud-case-notes v2", 20, 0.64, 1e-4, 19, 1.0, fates={7: "killed"}),
    Sweep("query-rewriter-baselines", "qwen2.5-1.5b-instruct", "search", "lena",
          "query-pairs v5", 16, 1.05, 5e-4, 12, 0.4, (1e-4, 3e-4, 5e-4, 1e-3, 2e-3),
          fates={3: "diverge"}),
    Sweep("contract-summarizer-qlora", "llama-3.1-70b-instruct", "legal-ai", "sam",
          "contract-summaries v1", 12, 0.95, 1e-4, 6, 3.5, ranks=(8, 16, 32),
          fates={9: "oom"}),
)  # fmt: skip


@dataclass
class RunPlan:
    """Everything one demo run logs, computed before touching MLflow."""

    key: str
    name: str
    start_ms: int
    end_ms: int
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[tuple[str, float, int, int]]  # key, value, timestamp ms, step


def plan_runs(sweep: Sweep, now: datetime) -> list[RunPlan]:
    """The sweep's runs, deterministic for a given ``now``."""
    rng = np.random.default_rng(zlib.crc32(sweep.experiment.encode()))
    first_round = now.replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(
        days=sweep.days_ago
    )
    wave_ms = int((600 * sweep.seconds_per_step + 900) * 1000)
    plans = []
    for index in range(sweep.runs):
        refine = index >= sweep.runs // 2
        rates = sweep.learning_rates
        if refine:  # the second round keeps to the learning rates around the best one
            rates = tuple(r for r in rates if 0.3 <= r / sweep.best_lr <= 3.5)
        lr = float(rng.choice(rates))
        fate = sweep.fates.get(index, "")
        if fate == "diverge":
            lr = max(sweep.learning_rates)
        rank, batch = int(rng.choice(sweep.ranks)), int(rng.choice([8, 16, 32]))
        epochs, scheduler = int(rng.choice([2, 3, 4])), str(rng.choice(["cosine", "linear"]))
        wave = index - sweep.runs // 2 if refine else index
        start = first_round + timedelta(days=3 if refine else 0)
        start_ms = int(start.timestamp() * 1000) + (wave // 4) * wave_ms + (wave % 4) * 41_000
        name = f"t{index:02d}-lr{lr:.0e}-r{rank}-e{epochs}-b{batch}".replace("e-0", "e-")
        params = {
            "learning_rate": f"{lr:g}", "lora_rank": str(rank), "lora_alpha": str(2 * rank),
            "epochs": str(epochs), "batch_size": str(batch), "lr_scheduler": scheduler,
            "warmup_ratio": "0.03", "max_seq_length": "2048", "base_model": sweep.base_model,
            "dataset": sweep.dataset,
        }  # fmt: skip
        tags = {
            DEMO_TAG: "1", KEY_TAG: f"{sweep.experiment}/{index:02d}",
            "portal.base_model": sweep.base_model, "portal.owner": sweep.owner,
            "team": sweep.team, "sweep": f"{sweep.experiment}-{'refine' if refine else 'coarse'}",
            "mlflow.user": sweep.owner,
        }  # fmt: skip
        metrics, end_ms, status = _curves(sweep, rng, params, start_ms, fate)
        if fate == "oom":
            tags["portal.failure_reason"] = "CUDA out of memory at step 61"
        plans.append(RunPlan(tags[KEY_TAG], name, start_ms, end_ms, status, params, tags, metrics))
    return plans


def _curves(
    sweep: Sweep, rng: np.random.Generator, params: dict[str, str], start_ms: int, fate: str
) -> tuple[list[tuple[str, float, int, int]], int, str]:
    """Loss curves: exponential decay toward a floor set by the hyper-parameters, plus noise;
    eval loss turns up late in long runs (overfitting); a too-high learning rate diverges."""
    lr, rank, batch = (
        float(params["learning_rate"]),
        int(params["lora_rank"]),
        int(params["batch_size"]),
    )
    epochs, per_epoch = int(params["epochs"]), STEPS_PER_EPOCH[batch]
    total = epochs * per_epoch
    floor = (sweep.floor + 0.16 * math.log10(lr / sweep.best_lr) ** 2
             - 0.035 * math.log2(rank / 8) + 0.02 * math.log2(batch / 16)
             + float(rng.normal(0, 0.02)))  # fmt: skip
    start_loss = floor + 1.7 + float(rng.normal(0, 0.1))
    tau = 45 * math.sqrt(sweep.best_lr / lr) * 16 / batch
    stop = {"killed": int(total * 0.4), "oom": 61}.get(fate, total)
    steps = np.arange(stop)
    train_floor = floor - 0.08 - 0.07 * (steps // per_epoch)  # memorises more every epoch
    train = train_floor + (start_loss - floor) * np.exp(-steps / tau)
    train = train + rng.normal(0, 0.045, stop) * (0.5 + train / start_loss)
    blowup = np.zeros(stop)
    if fate == "diverge":
        turn = int(rng.integers(70, 130))
        blowup = 0.05 * (np.exp(np.clip(steps - turn, 0, None) / 18.0) - 1)
        train = train + blowup
        stop = int(np.argmax(train > 12)) or stop
        steps, train = steps[: stop + 1], train[: stop + 1]
        train[-1] = float("nan")
    if fate == "nan":
        train[int(stop * 0.45)] = float("nan")  # one bad batch, training carried on

    def ms(step: int) -> int:
        return start_ms + 90_000 + int(step * sweep.seconds_per_step * 1000) + step // 50 * 20_000

    metrics = [
        ("train_loss", float(v), ms(int(s)), int(s)) for s, v in zip(steps, train, strict=True)
    ]
    warmup = max(1, int(0.03 * total))
    for step in range(0, len(steps), 10):
        progress = max(0.0, (step - warmup) / max(1, total - warmup))
        decay = (
            0.5 * (1 + math.cos(math.pi * progress))
            if params["lr_scheduler"] == "cosine"
            else 1 - progress
        )
        metrics.append(("learning_rate", lr * min(1.0, step / warmup) * decay, ms(step), step))
    overfit = 0.1 * max(0, epochs - 2) * (rank / 16) ** 0.3
    eval_loss = floor
    for step in [*range(EVAL_EVERY, len(steps), EVAL_EVERY), len(steps) - 1]:
        late = max(0.0, step / total - 0.5)
        eval_loss = floor + (start_loss - floor) * math.exp(-step / tau) + overfit * late**1.5
        eval_loss += float(blowup[step])
        eval_loss = min(eval_loss + float(rng.normal(0, 0.012)), 15.0)
        metrics.append(("eval_loss", eval_loss, ms(step) + 15_000, step))
        metrics.append(("eval_perplexity", math.exp(eval_loss), ms(step) + 15_000, step))
    end_ms = ms(len(steps) - 1) + 30_000
    if fate in ("diverge", "oom"):
        return metrics, end_ms, "FAILED"
    if fate == "killed":
        return metrics, end_ms, "KILLED"
    accuracy = min(
        0.97, max(0.3, 0.93 - 0.4 * (eval_loss - sweep.floor) + float(rng.normal(0, 0.01)))
    )
    metrics.append(("accuracy", accuracy, end_ms - 5_000, len(steps) - 1))
    return metrics, end_ms, "FINISHED"


def seed_runs(
    tracking_uri: str, artifact_root: Path | None = None, *, now: datetime | None = None
) -> str:
    """Log the demo sweeps to the MLflow store at ``tracking_uri`` unless they are there.
    On a local SQLite store with ``artifact_root``, experiments keep their artifacts under it
    rather than in ./mlruns. Returns a one-line summary."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    now = now or datetime.now(UTC)
    created, present, experiments = 0, 0, set()
    for sweep in SWEEPS:
        experiment = client.get_experiment_by_name(sweep.experiment)
        if experiment is not None and experiment.lifecycle_stage != "active":
            log.info("demo experiment %s is deleted; left alone", sweep.experiment)
            continue
        if experiment is None:
            location = None
            if artifact_root is not None and tracking_uri.startswith("sqlite:"):
                location = (artifact_root / sweep.experiment).as_uri()
            note = f"LoRA sweep of {sweep.base_model} on {sweep.dataset}."
            tags = {"team": sweep.team, DEMO_TAG: "1", "mlflow.note.content": note}
            experiment_id = client.create_experiment(sweep.experiment, location, tags)
        else:
            experiment_id = experiment.experiment_id
        existing = client.search_runs(
            [experiment_id], f"tags.`{DEMO_TAG}` = '1'", ViewType.ALL, max_results=1000
        )
        keys = {run.data.tags.get(KEY_TAG) for run in existing}
        for plan in plan_runs(sweep, now):
            if plan.key in keys:
                present += 1
                continue
            _log_run(client, experiment_id, plan)
            created += 1
            experiments.add(sweep.experiment)
    summary = f"{created} runs in {len(experiments)} experiments"
    return summary + (f" ({present} demo runs were already there)" if present else "")


def _log_run(client: MlflowClient, experiment_id: str, plan: RunPlan) -> None:
    from mlflow.entities import Metric, Param

    run = client.create_run(
        experiment_id, start_time=plan.start_ms, tags=plan.tags, run_name=plan.name
    )
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in plan.params.items()]
    metrics: list[Metric] = [Metric(k, v, t, s) for k, v, t, s in plan.metrics]
    first = BATCH_LIMIT - len(params)
    client.log_batch(run_id, metrics=metrics[:first], params=params)
    for offset in range(first, len(metrics), BATCH_LIMIT):
        client.log_batch(run_id, metrics=metrics[offset : offset + BATCH_LIMIT])
    client.set_terminated(run_id, status=plan.status, end_time=plan.end_ms)
