"""The local backend: the recipe in a subprocess on this machine, the way SageMaker's local
mode runs the same script without the cloud.

Jobs are queued in the portal database and started by a worker (``services.training.worker``),
never by the Streamlit process. Each job has a folder under ``PORTAL_HOME/jobs/<id>`` with its
config, its log and the progress file the recipe rewrites every step; this module knows that
layout, starts the process in its own process group and reads what it reports."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.training import Backend, JobStatus
from services.config import Settings
from services.errors import ValidationError
from services.training.backends.base import JobSpec, JobState, Submitted

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "recipes" / "train_causal_lm.py"
EXIT_STOPPED = 3  # the recipe saved a checkpoint and stopped on SIGTERM
EXIT_BAD_INPUT = 2
RECIPE_FORMATS = {  # the registry's dataset format names, as the recipe calls them
    "chat": "chat",
    "bedrock-conversation": "bedrock_conversation",
    "bedrock-prompt-completion": "prompt_completion",
    "continued-pretraining": "continued_pretraining",
}
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
    # MLflow's own patience for a long job (the portal's pages use shorter limits).
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
}


@dataclass(frozen=True)
class JobFiles:
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "job.json"

    @property
    def progress(self) -> Path:
        return self.folder / "progress.json"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

    @property
    def output(self) -> Path:
        return self.folder / "output"


def job_files(settings: Settings, job_id: int | str) -> JobFiles:
    return JobFiles(settings.home_dir / "jobs" / str(job_id))


def read_progress(files: JobFiles) -> dict[str, Any]:
    """What the recipe last reported (empty before its first report). The recipe replaces the
    file atomically, so a read never sees half a write."""
    try:
        data = json.loads(files.progress.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def tail(path: Path, limit: int) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            return [line.rstrip("\n") for line in deque(stream, maxlen=limit)]
    except FileNotFoundError:
        return []


def recipe_config(spec: JobSpec, files: JobFiles) -> dict[str, Any]:
    splits = spec.dataset.splits
    missing = [
        s.uri
        for s in splits.values()
        if s.name in ("train", "validation") and s.records and not Path(s.uri).is_file()
    ]
    if "train" not in splits or missing:
        raise ValidationError(
            f"The dataset {spec.dataset.name} is gone from the portal's storage "
            f"({', '.join(missing) or 'no training split'}); register it again."
        )
    hyperparameters = dict(spec.hyperparameters)
    if not hyperparameters.get("max_steps"):
        hyperparameters.pop("max_steps", None)
    validation = splits.get("validation")
    return {
        "base_model": spec.base_model,
        "train_file": splits["train"].uri,
        "validation_file": validation.uri if validation and validation.records else None,
        "data_format": RECIPE_FORMATS[spec.dataset.format],
        "output_dir": str(files.output),
        "progress_file": str(files.progress),
        "hyperparameters": hyperparameters,
        "mlflow": None
        if spec.tracking is None
        else {
            "tracking_uri": spec.tracking.tracking_uri,
            "experiment_name": spec.tracking.experiment_name,
            "run_id": spec.tracking.run_id,
            "tags": spec.tags,
        },
    }


def start_process(spec: JobSpec, files: JobFiles) -> subprocess.Popen[bytes]:
    """Write the job's config and start the recipe in a new process group (so a stop reaches
    every process it started). Output goes to the job's log, appended across restarts."""
    files.folder.mkdir(parents=True, exist_ok=True)
    files.config.write_text(json.dumps(recipe_config(spec, files), indent=2), encoding="utf-8")
    env = {**os.environ, **OFFLINE_ENV}
    with files.log.open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(RECIPE), "--config", str(files.config)],
            cwd=files.folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def state_from_progress(progress: dict[str, Any]) -> JobState:
    status = {
        "completed": JobStatus.COMPLETED,
        "stopped": JobStatus.STOPPED,
        "failed": JobStatus.FAILED,
        "running": JobStatus.RUNNING,
        "saving": JobStatus.RUNNING,
    }.get(str(progress.get("status")), JobStatus.STARTING)
    metrics = {
        key: float(progress[key])
        for key in ("loss", "learning_rate", "epoch")
        if isinstance(progress.get(key), int | float)
    }
    if "loss" in metrics:
        metrics["train_loss"] = metrics.pop("loss")
    return JobState(
        status=status,
        detail=str(progress.get("message") or progress.get("status") or "starting"),
        metrics=metrics,
        progress_step=_int(progress.get("step")),
        progress_total=_int(progress.get("total")),
    )


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


class LocalBackend:
    name = Backend.LOCAL

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def unavailable_reason(self) -> str | None:
        if not RECIPE.is_file():
            return f"The training recipe {RECIPE} is missing from this installation."
        lacking = [m for m in ("torch", "transformers", "peft") if not importlib.util.find_spec(m)]
        if lacking:
            return (
                f"Local training needs {', '.join(lacking)}: install them with "
                "`pip install -r requirements-train.txt`."
            )
        return None

    def submit(self, spec: JobSpec) -> Submitted:
        """Local jobs are queued in the database; a worker starts them."""
        return Submitted(str(spec.job_id), JobStatus.QUEUED, "waiting for a worker")

    def describe(self, external_id: str) -> JobState:
        return state_from_progress(read_progress(job_files(self.settings, external_id)))

    def stop(self, external_id: str) -> None:
        """The worker that runs the job sees the stop request in the database and signals the
        process group; nothing to do here."""

    def logs(self, external_id: str, limit: int = 200) -> list[str]:
        return tail(job_files(self.settings, external_id).log, limit)
