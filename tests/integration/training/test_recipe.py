"""The local fine-tuning recipe, run the way the portal's worker runs it: a subprocess on a job
JSON, logging to a real MLflow store (SQLite) into a run the portal created beforehand.

Real training of the tiny-llama model on the sample chat data, on CPU; nothing is mocked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from services.training.samples import sample_chat_records, write_jsonl

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "recipes" / "train_causal_lm.py"


def write_config(directory: Path, **overrides: Any) -> Path:
    """A job JSON as the worker writes it, for the sample data in ``directory``."""
    config = {
        "base_model": "tiny-llama",
        "data_format": "chat",
        "train_file": str(directory / "train.jsonl"),
        "validation_file": str(directory / "validation.jsonl"),
        "output_dir": str(directory / "output"),
        "progress_file": str(directory / "progress.json"),
        "hyperparameters": {},
        **overrides,
    }
    path = directory / "job.json"
    path.write_text(json.dumps(config))
    return path


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@dataclass
class Job:
    """One training job's files and the MLflow run the portal made for it."""

    directory: Path
    client: MlflowClient
    tracking_uri: str
    run_id: str

    @property
    def config_path(self) -> Path:
        return self.directory / "job.json"

    @property
    def output_dir(self) -> Path:
        return self.directory / "output"

    @property
    def progress_path(self) -> Path:
        return self.directory / "progress.json"

    def write_config(self, **overrides: Any) -> Path:
        mlflow = {"tracking_uri": self.tracking_uri, "run_id": self.run_id}
        return write_config(self.directory, mlflow=mlflow, **overrides)

    def progress(self) -> dict[str, Any]:
        return read_json(self.progress_path)

    def run_status(self) -> str:
        return self.client.get_run(self.run_id).info.status

    def loss_history(self) -> list[tuple[int, float]]:
        history = self.client.get_metric_history(self.run_id, "train_loss")
        return sorted((m.step, m.value) for m in history)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: creating one runs MLflow's migrations (seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def new_job(directory: Path, tracking_uri: str, *, records: int = 400) -> Job:
    """Sample data (unless ``records`` is 0), and an experiment and run created the way the
    portal creates them."""
    if records:
        write_jsonl(sample_chat_records(records, seed=7), directory / "train.jsonl")
        write_jsonl(sample_chat_records(40, seed=8), directory / "validation.jsonl")
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(
        f"fine-tuning-{uuid.uuid4().hex[:8]}",
        artifact_location=(directory / "artifacts").as_uri(),
    )
    run = client.create_run(
        experiment_id, tags={"portal.job_id": "1", "portal.owner": "ana"}, run_name="job-1"
    )
    return Job(directory, client, tracking_uri, run.info.run_id)


def run_recipe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RECIPE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def step_lines(stdout: str) -> list[int]:
    """The step numbers of the ``step N/M loss …`` lines of a job's log."""
    return [
        int(line.split()[1].split("/")[0])
        for line in stdout.splitlines()
        if line.startswith("step ")
    ]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, tracking_uri: str
) -> tuple[Job, subprocess.CompletedProcess[str]]:
    """The sample job (400 chat records, tiny-llama, default hyperparameters) cut to 60 of
    its 150 steps, shared by the tests that read its results."""
    job = new_job(tmp_path_factory.mktemp("sample-job"), tracking_uri)
    job.write_config(hyperparameters={"max_steps": 60})
    return job, run_recipe("--config", str(job.config_path))


def test_sample_job_learns_and_reports_to_mlflow(
    trained: tuple[Job, subprocess.CompletedProcess[str]],
) -> None:
    job, result = trained
    assert result.returncode == 0, result.stderr[-3000:]

    losses = [value for _, value in job.loss_history()]
    assert len(losses) == 60
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0], losses
    run = job.client.get_run(job.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["eval_loss"] < losses[0]
    assert run.data.metrics["eval_perplexity"] > 1
    assert {"learning_rate", "tokens_per_second", "samples_per_second"} <= set(run.data.metrics)
    params = run.data.params
    assert params["base_model"] == "tiny-llama"
    assert params["method"] == "full"
    assert params["learning_rate"] == "0.0005"
    assert params["train_examples"] == "400"
    assert params["validation_examples"] == "40"
    assert int(params["trainable_parameters"]) > 1_000_000
    assert run.data.tags["portal.owner"] == "ana"  # the portal's run, continued

    artifacts = {a.path for a in job.client.list_artifacts(job.run_id, "model")}
    assert {"model/config.json", "model/model.safetensors", "model/tokenizer.json"} <= artifacts
    assert (job.output_dir / "final" / "model.safetensors").is_file()
    progress = job.progress()
    assert progress["status"] == "completed"
    assert progress["step"] == progress["total"] == 60
    assert step_lines(result.stdout) == list(range(1, 61))


def test_stop_saves_a_checkpoint_and_the_rerun_resumes(tmp_path: Path, tracking_uri: str) -> None:
    job = new_job(tmp_path, tracking_uri, records=200)
    config = job.write_config(hyperparameters={"max_steps": 24, "batch_size": 4})
    process = subprocess.Popen(
        [sys.executable, str(RECIPE), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            if job.progress_path.exists() and job.progress()["step"] >= 5:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the job ended before it could be stopped"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 3, stderr[-3000:]
    checkpoints = list(job.output_dir.glob("checkpoint-*"))
    assert len(checkpoints) == 1
    stopped_at = int(checkpoints[0].name.removeprefix("checkpoint-"))
    assert 5 <= stopped_at < 24
    progress = job.progress()
    assert progress["status"] == "stopped"
    assert progress["step"] == stopped_at
    assert job.run_status() == "KILLED"
    assert f"stopped at step {stopped_at} of 24" in stdout

    resumed = run_recipe("--config", str(config))

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from checkpoint-{stopped_at}" in resumed.stdout
    assert step_lines(resumed.stdout)[0] == stopped_at + 1
    assert [step for step, _ in job.loss_history()] == list(range(1, 25))  # one run, no gaps
    assert job.run_status() == "FINISHED"
    assert job.progress()["status"] == "completed"
    assert job.progress()["step"] == 24
    assert not list(job.output_dir.glob("checkpoint-*"))  # finished: nothing left to resume


def test_sagemaker_entry_point_trains_a_lora_adapter_on_a_saved_model(
    trained: tuple[Job, subprocess.CompletedProcess[str]], tmp_path: Path, tracking_uri: str
) -> None:
    """SageMaker's way of calling: hyperparameters as ``--key value`` strings, data from the
    channel directories, the model to SM_MODEL_DIR; here on Bedrock conversation records and
    on the model the sample job saved, so ``auto`` picks LoRA."""
    base_job, _ = trained
    job = new_job(tmp_path, tracking_uri, records=0)
    channel = tmp_path / "channels" / "train"
    bedrock = [
        {
            "schemaVersion": "bedrock-conversation-2024",
            "system": [{"text": record["messages"][0]["content"]}],
            "messages": [
                {"role": m["role"], "content": [{"text": m["content"]}]}
                for m in record["messages"][1:]
            ],
        }
        for record in sample_chat_records(64, seed=3)
    ]
    write_jsonl(bedrock, channel / "part-0.jsonl")
    model_dir, output_data = tmp_path / "model", tmp_path / "output" / "data"
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(channel),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_data),
    }

    result = run_recipe(
        *("--base_model", str(base_job.output_dir / "final")),
        *("--data_format", "bedrock_conversation"),
        *("--output_dir", str(tmp_path / "checkpoints")),  # no /opt/ml/checkpoints here
        *("--max_steps", "4", "--batch_size", "8", "--lora_r", "4"),
        *("--mlflow_tracking_uri", tracking_uri, "--mlflow_run_id", job.run_id),
        env=env,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert (model_dir / "adapter_config.json").is_file()
    assert (model_dir / "adapter_model.safetensors").is_file()
    progress = read_json(output_data / "progress.json")
    assert progress["status"] == "completed"
    params = job.client.get_run(job.run_id).data.params
    assert params["method"] == "lora"
    assert params["lora_r"] == "4"
    assert int(params["trainable_parameters"]) < int(params["total_parameters"]) / 10
    artifacts = {a.path for a in job.client.list_artifacts(job.run_id, "model")}
    assert "model/adapter_config.json" in artifacts
    assert len(job.loss_history()) == 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"data_format": "xml"}, "error: unknown data_format 'xml'; use one of chat, "),
        ({"train_file": "missing.jsonl"}, "error: train_file missing.jsonl does not exist"),
        ({"hyperparameters": {"epochs": "three"}}, "error: hyperparameter epochs must be a "),
        ({"train_file": "broken.jsonl"}, "error: broken.jsonl line 3 is not valid JSON ("),
        ({"train_file": "empty.jsonl"}, "error: empty.jsonl holds no records"),
    ],
    ids=["unknown-format", "missing-file", "bad-number", "invalid-json-line", "empty-file"],
)
def test_bad_config_or_data_exits_2_with_one_line(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    good = json.dumps(sample_chat_records(1)[0])
    (tmp_path / "broken.jsonl").write_text(f"{good}\n{good}\n{{not json\n")
    (tmp_path / "empty.jsonl").write_text("\n")
    write_jsonl(sample_chat_records(4), tmp_path / "train.jsonl")
    write_jsonl(sample_chat_records(4), tmp_path / "validation.jsonl")
    config = write_config(tmp_path, **change)

    started = time.monotonic()
    result = run_recipe("--config", str(config), cwd=tmp_path, timeout=60)

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert time.monotonic() - started < 10  # refused before torch and transformers load
    assert read_json(tmp_path / "progress.json")["status"] == "failed"
