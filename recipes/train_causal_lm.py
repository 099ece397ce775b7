"""Fine-tune a causal language model with Hugging Face transformers (LoRA via peft where it
applies), report progress to a JSON file and to MLflow, stop cleanly on SIGTERM and resume
from the last checkpoint.

Runs as ``python recipes/train_causal_lm.py --config job.json`` (the portal's local worker)
and as a SageMaker training entry point: hyperparameters arrive as ``--key value`` arguments,
data from the SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION directories, the model goes to
SM_MODEL_DIR and checkpoints to /opt/ml/checkpoints when that directory exists. The file is
uploaded alone, so it imports nothing from the portal; torch and transformers are imported
only once the arguments and the data have been checked, so ``--help`` and bad input are fast.

Exit codes: 0 completed, 1 failed, 2 bad config or data, 3 stopped on request (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import torch
    from transformers import (
        PreTrainedModel,
        PreTrainedTokenizerBase,
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )

EXIT_COMPLETED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3
TINY_LLAMA = "tiny-llama"
SAGEMAKER_CHECKPOINTS = Path("/opt/ml/checkpoints")

log = logging.getLogger("train_causal_lm")

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

FORMATS = {
    "chat": "chat",
    "bedrock_conversation": "bedrock_conversation",
    "prompt_completion": "prompt_completion",
    "continued_pretraining": "continued_pretraining",
    # the same formats under the names the portal's dataset registry uses
    "bedrock-conversation": "bedrock_conversation",
    "bedrock-prompt-completion": "prompt_completion",
    "continued-pretraining": "continued_pretraining",
}
PATH_KEYS = ("train_file", "validation_file", "output_dir", "model_dir", "progress_file")
TOP_LEVEL_KEYS = ("base_model", "data_format", *PATH_KEYS, "hyperparameters", "mlflow")
MLFLOW_KEYS = ("tracking_uri", "experiment_name", "run_id", "tags")
METHODS = ("auto", "lora", "full")


@dataclass(frozen=True)
class NumberSpec:
    kind: type[int] | type[float]
    minimum: float
    maximum: float


NUMBERS: dict[str, NumberSpec] = {
    "epochs": NumberSpec(int, 1, 1000),
    "learning_rate": NumberSpec(float, 1e-9, 1.0),
    "batch_size": NumberSpec(int, 1, 4096),
    "max_steps": NumberSpec(int, 0, 10_000_000),  # 0 or absent: run all epochs
    "max_seq_length": NumberSpec(int, 8, 131_072),
    "warmup_steps": NumberSpec(int, 0, 10_000_000),
    "weight_decay": NumberSpec(float, 0.0, 1.0),
    "gradient_accumulation_steps": NumberSpec(int, 1, 1024),
    "logging_steps": NumberSpec(int, 1, 100_000),
    "eval_steps": NumberSpec(int, 0, 10_000_000),  # 0 or absent: at the end of each epoch
    "seed": NumberSpec(int, 0, 2**32 - 1),
    "lora_r": NumberSpec(int, 1, 1024),
    "lora_alpha": NumberSpec(int, 1, 4096),
    "lora_dropout": NumberSpec(float, 0.0, 0.9),
}
HYPERPARAMETER_KEYS = (*NUMBERS, "method")


class BadInput(Exception):
    """A config or data problem the user fixes; its message is the one line they see."""


@dataclass(frozen=True)
class Hyperparameters:
    epochs: int = 3
    learning_rate: float = 5e-4  # resolved from the method when not given
    batch_size: int = 8
    max_steps: int = 0
    max_seq_length: int = 128
    warmup_steps: int = 0
    weight_decay: float = 0.0
    gradient_accumulation_steps: int = 1
    logging_steps: int = 1
    eval_steps: int = 0
    seed: int = 42
    method: str = "full"  # resolved: "lora" or "full"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05


@dataclass(frozen=True)
class Tracking:
    tracking_uri: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobConfig:
    base_model: str
    data_format: str
    train_files: tuple[Path, ...]
    validation_files: tuple[Path, ...]
    output_dir: Path  # checkpoints, and the tiny-llama tokenizer
    model_dir: Path  # the final model or adapter
    progress_file: Path | None
    hyperparameters: Hyperparameters
    tracking: Tracking | None


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other input problem
        raise BadInput(message)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Fine-tune a causal LM (the portal's local recipe; a SageMaker entry point).",
        allow_abbrev=False,
    )
    parser.add_argument("--config", type=Path, help="job JSON; the options below override it")
    for key in ("base_model", "data_format", *PATH_KEYS):
        parser.add_argument(f"--{key}")
    for key in HYPERPARAMETER_KEYS:
        parser.add_argument(f"--{key}", help="hyperparameter")
    for key in MLFLOW_KEYS:
        parser.add_argument(
            f"--mlflow_{key}", help="tags: a JSON object" if key == "tags" else None
        )
    return parser.parse_args(argv)


def _object(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return dict(value)


def raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config file, then the command line over it, then SageMaker's environment for the
    paths still missing."""
    raw: dict[str, Any] = {}
    if args.config is not None:
        try:
            raw = _object(json.loads(args.config.read_text(encoding="utf-8")), "the config")
        except FileNotFoundError:
            raise BadInput(f"config file {args.config} does not exist") from None
        except json.JSONDecodeError as exc:
            raise BadInput(f"config file {args.config} is not valid JSON ({exc})") from None
    unknown = sorted(set(raw) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise BadInput(f"unknown config key {unknown[0]!r}; known: {', '.join(TOP_LEVEL_KEYS)}")
    raw["hyperparameters"] = _object(raw.get("hyperparameters"), "hyperparameters")
    raw["mlflow"] = _object(raw.get("mlflow"), "mlflow") if raw.get("mlflow") is not None else None
    given = {key: value for key, value in vars(args).items() if value is not None}
    for key in ("base_model", "data_format", *PATH_KEYS):
        if key in given:
            raw[key] = given[key]
    for key in HYPERPARAMETER_KEYS:
        if key in given:
            raw["hyperparameters"][key] = given[key]
    for key in MLFLOW_KEYS:
        if f"mlflow_{key}" in given:
            raw["mlflow"] = raw["mlflow"] or {}
            raw["mlflow"][key] = given[f"mlflow_{key}"]
    env = os.environ
    for key, var in (
        ("train_file", "SM_CHANNEL_TRAIN"),
        ("validation_file", "SM_CHANNEL_VALIDATION"),
    ):
        if var in env:
            raw.setdefault(key, env[var])
    if "SM_MODEL_DIR" in env:
        raw.setdefault("model_dir", env["SM_MODEL_DIR"])
        if "output_dir" not in raw:  # SageMaker syncs /opt/ml/checkpoints when it is set up
            checkpoints = SAGEMAKER_CHECKPOINTS
            if not checkpoints.is_dir():
                checkpoints = Path(tempfile.mkdtemp(prefix="checkpoints-"))
            raw["output_dir"] = str(checkpoints)
    if "SM_OUTPUT_DATA_DIR" in env:
        raw.setdefault("progress_file", str(Path(env["SM_OUTPUT_DATA_DIR"]) / "progress.json"))
    return raw


def _number(name: str, raw: object) -> int | float:
    spec = NUMBERS[name]
    whole = spec.kind is int
    expected = "a whole number" if whole else "a number"
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise BadInput(f"hyperparameter {name} must be {expected}, got {raw!r}")
    try:
        number = float(raw)
    except ValueError:
        raise BadInput(f"hyperparameter {name} must be {expected}, got {raw!r}") from None
    if not math.isfinite(number) or (whole and number != int(number)):
        raise BadInput(f"hyperparameter {name} must be {expected}, got {raw!r}")
    if not spec.minimum <= number <= spec.maximum:
        raise BadInput(
            f"hyperparameter {name} must be from {spec.minimum:g} to {spec.maximum:g}, got {raw!r}"
        )
    return int(number) if whole else number


def hyperparameters(raw: dict[str, Any], *, tiny: bool) -> Hyperparameters:
    unknown = sorted(set(raw) - set(HYPERPARAMETER_KEYS))
    if unknown:
        raise BadInput(
            f"unknown hyperparameter {unknown[0]!r}; known: {', '.join(HYPERPARAMETER_KEYS)}"
        )
    given = {k: v for k, v in raw.items() if v is not None and not (isinstance(v, str) and not v)}
    method = str(given.pop("method", "auto")).strip().lower()
    if method not in METHODS:
        raise BadInput(f"hyperparameter method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "full" if tiny else "lora"
    values: dict[str, Any] = {name: _number(name, value) for name, value in given.items()}
    if "learning_rate" not in values:
        values["learning_rate"] = 2e-4 if method == "lora" else (5e-4 if tiny else 2e-5)
    return Hyperparameters(method=method, **values)


def _jsonl_files(value: object, key: str) -> tuple[Path, ...]:
    path = Path(str(value)).expanduser()
    if path.is_dir():
        files = tuple(sorted(path.glob("*.jsonl")))
        if not files:
            raise BadInput(f"{key} directory {path} holds no .jsonl files")
        return files
    if not path.is_file():
        raise BadInput(f"{key} {path} does not exist")
    return (path,)


def _tracking(raw: dict[str, Any] | None) -> Tracking | None:
    if raw is None:
        return None
    unknown = sorted(set(raw) - set(MLFLOW_KEYS))
    if unknown:
        raise BadInput(f"unknown mlflow key {unknown[0]!r}; known: {', '.join(MLFLOW_KEYS)}")
    tags = raw.get("tags") or {}
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except json.JSONDecodeError:
            raise BadInput("mlflow tags must be a JSON object") from None
    tags = _object(tags, "mlflow tags")
    text = {key: str(raw[key]) if raw.get(key) else None for key in MLFLOW_KEYS[:3]}
    return Tracking(**text, tags={str(k): str(v) for k, v in tags.items()})


def build_config(raw: dict[str, Any]) -> JobConfig:
    base_model = str(raw.get("base_model") or "").strip()
    if not base_model:
        raise BadInput("base_model is required (a Hugging Face id, a local path or tiny-llama)")
    local = Path(base_model).expanduser()
    if base_model.startswith(("/", "./", "../", "~")) and not local.is_dir():
        raise BadInput(f"base_model directory {base_model} does not exist")
    if local.is_dir() and not (local / "config.json").is_file():
        raise BadInput(f"base_model directory {base_model} holds no saved model (no config.json)")
    data_format = FORMATS.get(str(raw.get("data_format") or "chat").strip())
    if data_format is None:
        raise BadInput(
            f"unknown data_format {raw.get('data_format')!r}; use one of "
            "chat, bedrock_conversation, prompt_completion, continued_pretraining"
        )
    if not raw.get("train_file"):
        raise BadInput("train_file is required")
    if not raw.get("output_dir"):
        raise BadInput("output_dir is required")
    output_dir = Path(str(raw["output_dir"])).expanduser()
    validation = raw.get("validation_file")
    return JobConfig(
        base_model=base_model,
        data_format=data_format,
        train_files=_jsonl_files(raw["train_file"], "train_file"),
        validation_files=_jsonl_files(validation, "validation_file") if validation else (),
        output_dir=output_dir,
        model_dir=Path(str(raw.get("model_dir") or output_dir / "final")).expanduser(),
        progress_file=Path(str(raw["progress_file"])) if raw.get("progress_file") else None,
        hyperparameters=hyperparameters(raw["hyperparameters"], tiny=base_model == TINY_LLAMA),
        tracking=_tracking(raw.get("mlflow")),
    )


# ---------------------------------------------------------------------------------------------
# Data: every format becomes chat messages or one plain text
# ---------------------------------------------------------------------------------------------

Example = str | list[dict[str, str]]  # continued pre-training text, or chat messages
CHAT_ROLES = ("system", "user", "assistant")
# The template of the tiny-llama tokenizer, and the one used for a base model without its own.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def simple_chat(messages: list[dict[str, str]]) -> str:
    """CHAT_TEMPLATE in Python."""
    return "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)


def _text(value: object, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {what} must be a non-empty string")
    return value


def _parts(value: object, where: str, what: str) -> str:
    """Bedrock's content: a list of ``{"text": ...}`` blocks."""
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise BadInput(f'{where}: {what} must be a list of {{"text": ...}} blocks')
    return "\n".join(_text(p.get("text"), where, f"{what} text") for p in value)


def _messages(value: object, where: str, *, bedrock: bool) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadInput(f"{where}: messages must be a non-empty list")
    messages = []
    roles = ("user", "assistant") if bedrock else CHAT_ROLES
    for message in value:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in roles:
            raise BadInput(f"{where}: each message needs a role, one of {', '.join(roles)}")
        content = message.get("content")
        text = _parts(content, where, "content") if bedrock else _text(content, where, "content")
        messages.append({"role": str(role), "content": text})
    return messages


def parse_record(record: object, data_format: str, where: str) -> Example:
    if not isinstance(record, dict):
        raise BadInput(f"{where} is not a JSON object")
    if data_format == "chat":
        return _messages(record.get("messages"), where, bedrock=False)
    if data_format == "bedrock_conversation":
        system = _parts(record.get("system") or [], where, "system")
        messages = _messages(record.get("messages"), where, bedrock=True)
        return ([{"role": "system", "content": system}] if system else []) + messages
    if data_format == "prompt_completion":
        return [
            {"role": "user", "content": _text(record.get("prompt"), where, "prompt")},
            {"role": "assistant", "content": _text(record.get("completion"), where, "completion")},
        ]
    return _text(record.get("input"), where, "input")


def read_examples(files: Sequence[Path], data_format: str) -> list[Example]:
    examples: list[Example] = []
    for path in files:
        try:
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    where = f"{path.name} line {number}"
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise BadInput(f"{where} is not valid JSON ({exc.msg})") from None
                    examples.append(parse_record(record, data_format, where))
        except UnicodeDecodeError:
            raise BadInput(f"{path.name} is not UTF-8 text") from None
    if not examples:
        raise BadInput(f"{', '.join(p.name for p in files)} holds no records")
    return examples


def example_contents(examples: Sequence[Example]) -> list[str]:
    texts: list[str] = []
    for example in examples:
        if isinstance(example, str):
            texts.append(example)
        else:
            texts.extend(message["content"] for message in example)
    return texts


# ---------------------------------------------------------------------------------------------
# Progress file, MLflow run, stop requests
# ---------------------------------------------------------------------------------------------


class ProgressFile:
    """The JSON the worker polls, replaced atomically so a reader never sees half of it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: dict[str, Any] = {
            "step": 0,
            "total": 0,
            "epoch": 0.0,
            "loss": None,
            "learning_rate": None,
            "status": "starting",
            "message": "",
        }
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, **changes: Any) -> None:
        self.state.update(changes)
        if self.path is None:
            return
        self.state["updated_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.state), encoding="utf-8")
        temporary.replace(self.path)


class Tracker:
    """The job's MLflow run: the portal's run when it gives a run_id, otherwise one created
    here and remembered in the output directory so that a resumed job continues it."""

    def __init__(self, tracking: Tracking | None, output_dir: Path) -> None:
        self.tracking = tracking
        self.remembered = output_dir / "mlflow_run_id"
        self.client: Any = None
        self.run_id: str | None = None

    def start(self) -> None:
        if self.tracking is None:
            return
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:  # e.g. a training image without it: the log still has the metrics
            log.warning("mlflow is not installed: metrics go to this log only")
            return

        self.client = MlflowClient(tracking_uri=self.tracking.tracking_uri)
        run_id = self.tracking.run_id
        if run_id is None and self.remembered.is_file():
            run_id = self.remembered.read_text().strip()
        if run_id is None:
            name = self.tracking.experiment_name or "fine-tuning"
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = (
                experiment.experiment_id if experiment else self.client.create_experiment(name)
            )
            run_id = self.client.create_run(experiment_id, tags=self.tracking.tags).info.run_id
            self.remembered.parent.mkdir(parents=True, exist_ok=True)
            self.remembered.write_text(run_id)
        else:
            self.client.update_run(run_id, status="RUNNING")
            for key, value in self.tracking.tags.items():
                self.client.set_tag(run_id, key, value)
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        if self.client is None:
            return
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        try:
            self.client.log_batch(
                self.run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())]
            )
        except MlflowException as exc:  # a resumed run whose config changed: params are final
            log.warning("MLflow kept the parameters it had: %s", str(exc).splitlines()[0])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
        )

    def log_model(self, directory: Path) -> None:
        if self.client is not None:
            self.client.log_artifacts(self.run_id, str(directory), artifact_path="model")

    def end(self, status: str) -> None:
        """End the run: FINISHED, FAILED, or KILLED (stopped, to be resumed)."""
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)
            self.run_id = None
        if status != "KILLED":  # only a stopped job continues its run
            self.remembered.unlink(missing_ok=True)


class StopRequest:
    """Set by SIGTERM; the training callback checks it after every step."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True  # nothing else: the handler may run in the middle of anything


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


class TrainingMonitor:
    """What the trainer's callback reports to: the job log, the progress file and MLflow."""

    def __init__(self, progress: ProgressFile, tracker: Tracker, stop: StopRequest) -> None:
        self.progress = progress
        self.tracker = tracker
        self.stop = stop
        self.stopping = False
        self.last_eval_step = -1
        self.samples_per_step = 1
        self._mark = (time.monotonic(), 0, 0)  # time, step and tokens seen at the last log

    def train_began(self, step: int, total: int, tokens_seen: int) -> None:
        self._mark = (time.monotonic(), step, tokens_seen)
        self.progress.update(status="running", step=step, total=total, message="training")

    def step_ended(self, step: int, total: int, epoch: float) -> bool:
        """Record the step; True when a stop was requested and training should end now."""
        if self.stop.requested and not self.stopping:
            self.stopping = True
            log.info("stop requested: saving a checkpoint at step %d", step)
            self.progress.update(
                status="saving", step=step, total=total, epoch=epoch, message="saving checkpoint"
            )
            return True
        self.progress.update(step=step, total=total, epoch=epoch)
        return False

    def logged(self, step: int, total: int, logs: dict[str, float], tokens_seen: int) -> None:
        then, last_step, last_tokens = self._mark
        now = time.monotonic()
        elapsed = max(now - then, 1e-6)
        self._mark = (now, step, tokens_seen)
        metrics = {
            "train_loss": logs["loss"],
            "learning_rate": logs.get("learning_rate", 0.0),
            "tokens_per_second": (tokens_seen - last_tokens) / elapsed,
            "samples_per_second": (step - last_step) * self.samples_per_step / elapsed,
        }
        self.tracker.log_metrics(metrics, step)
        self.progress.update(loss=metrics["train_loss"], learning_rate=metrics["learning_rate"])
        log.info(
            "step %d/%d loss %.4f lr %.1e %.0f tok/s",
            step,
            total,
            metrics["train_loss"],
            metrics["learning_rate"],
            metrics["tokens_per_second"],
        )

    def evaluated(self, step: int, total: int, eval_loss: float) -> None:
        self.last_eval_step = step
        metrics = {"eval_loss": eval_loss, "eval_perplexity": perplexity(eval_loss)}
        self.tracker.log_metrics(metrics, step)
        log.info(
            "eval step %d/%d loss %.4f perplexity %.2f",
            step,
            total,
            eval_loss,
            metrics["eval_perplexity"],
        )


def monitor_callback(monitor: TrainingMonitor) -> TrainerCallback:
    """The trainer callback forwarding to ``monitor``; defined here because its base class
    comes from transformers, which is imported only once the input has been checked."""
    from transformers import TrainerCallback

    class MonitorCallback(TrainerCallback):
        def on_train_begin(
            self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
        ) -> None:
            monitor.train_began(state.global_step, state.max_steps, state.num_input_tokens_seen)

        def on_step_end(
            self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
        ) -> None:
            if monitor.step_ended(state.global_step, state.max_steps, state.epoch or 0.0):
                control.should_save = True
                control.should_training_stop = True
                control.should_evaluate = False  # save quickly; evaluate after resuming

        def on_epoch_end(
            self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any
        ) -> None:
            if monitor.stopping:
                control.should_evaluate = False

        def on_log(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            logs: dict[str, float] | None = None,
            **_: Any,
        ) -> None:
            if logs and "loss" in logs:  # a training step, not evaluation or the final summary
                tokens = state.num_input_tokens_seen
                monitor.logged(state.global_step, state.max_steps, logs, tokens)

        def on_evaluate(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            metrics: dict[str, float] | None = None,
            **_: Any,
        ) -> None:
            if metrics and "eval_loss" in metrics:
                monitor.evaluated(state.global_step, state.max_steps, metrics["eval_loss"])

    return MonitorCallback()


# ---------------------------------------------------------------------------------------------
# Tokenizer, model, data collation
# ---------------------------------------------------------------------------------------------

TINY_PAD, TINY_END = "<|pad|>", "<|end|>"
TINY_SPECIAL_TOKENS = (TINY_PAD, TINY_END, "<|system|>", "<|user|>", "<|assistant|>")


def train_tiny_tokenizer(texts: Sequence[str], vocab_size: int = 2000) -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer learned from the training data itself."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(TINY_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token=TINY_END, pad_token=TINY_PAD
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def load_tokenizer(config: JobConfig, examples: Sequence[Example]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    if config.base_model != TINY_LLAMA:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(config.base_model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    # Saved on the first run and reused, so a resumed job keeps the token ids it trained on.
    saved = config.output_dir / "tokenizer"
    if (saved / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(saved)
    tokenizer = train_tiny_tokenizer(example_contents(examples))
    tokenizer.save_pretrained(saved)
    return tokenizer


def build_model(config: JobConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    hp = config.hyperparameters
    model: Any
    if config.base_model == TINY_LLAMA:
        torch.manual_seed(hp.seed)
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=192,
                intermediate_size=512,
                num_hidden_layers=3,
                num_attention_heads=4,
                num_key_value_heads=4,
                max_position_embeddings=max(512, hp.max_seq_length),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                bos_token_id=None,
                tie_word_embeddings=True,
            )
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=torch.float32)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    if hp.method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=hp.lora_r,
                lora_alpha=hp.lora_alpha,
                lora_dropout=hp.lora_dropout,
                target_modules="all-linear",
            ),
        )
    return model


def tokenize(
    examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[list[list[int]], int]:
    """Token ids of each example rendered as one text, and how many were cut to fit."""
    rows, cut = [], 0
    for example in examples:
        if isinstance(example, str):
            text, add_special = example + (tokenizer.eos_token or ""), True
        elif tokenizer.chat_template:  # the model's own template brings its special tokens
            text, add_special = str(tokenizer.apply_chat_template(example, tokenize=False)), False
        else:
            text, add_special = simple_chat(example), True
        ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
        cut += len(ids) > max_length
        rows.append(list(ids[:max_length]))
    return rows, cut


def pad_batches(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, torch.Tensor]]:
    """A collator padding on the right; padding is masked out of attention and of the loss."""
    import torch

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(row["input_ids"]) for row in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, row in enumerate(batch):
            ids = torch.tensor(row["input_ids"], dtype=torch.long)
            input_ids[i, : len(ids)] = ids
            attention_mask[i, : len(ids)] = 1
            labels[i, : len(ids)] = ids
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    return collate


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` directory (one killed mid-save has no
    trainer_state.json and is ignored)."""
    complete = [
        path
        for path in directory.glob("checkpoint-*")
        if path.name.removeprefix("checkpoint-").isdigit()
        and (path / "trainer_state.json").is_file()
    ]
    return max(complete, key=lambda p: int(p.name.removeprefix("checkpoint-")), default=None)


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


def prepare_environment() -> None:
    """Nothing is downloaded (SageMaker may set HF_HUB_OFFLINE=0 to allow it) and nothing
    phones home; set before the libraries are imported, as they read these once."""
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("HF_DATASETS_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ):
        os.environ.setdefault(name, value)


def run(
    config: JobConfig,
    train_examples: list[Example],
    validation_examples: list[Example],
    progress: ProgressFile,
    tracker: Tracker,
    stop: StopRequest,
) -> int:
    started = time.monotonic()
    import torch
    from datasets import Dataset  # type: ignore[import-untyped]
    from transformers import PrinterCallback, Trainer, TrainingArguments

    hp = config.hyperparameters
    cuda = torch.cuda.is_available()
    if not cuda:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    config.output_dir.mkdir(parents=True, exist_ok=True)
    tracker.start()
    progress.update(status="starting", message="loading the model")
    try:
        tokenizer = load_tokenizer(config, train_examples)
        model = build_model(config, tokenizer)
    except OSError as exc:  # not a model directory, or not in the offline cache
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"base_model {config.base_model!r} cannot be loaded: {first_line}") from exc
    train_ids, train_cut = tokenize(train_examples, tokenizer, hp.max_seq_length)
    eval_ids, _ = tokenize(validation_examples, tokenizer, hp.max_seq_length)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in model.parameters())
    log.info(
        "base model %s, %s fine-tuning of %s of %s parameters",
        config.base_model,
        "LoRA" if hp.method == "lora" else "full",
        f"{trainable:,}",
        f"{total_params:,}",
    )
    log.info(
        "data: %d training and %d validation examples (%s); %d cut to %d tokens",
        len(train_ids),
        len(eval_ids),
        config.data_format,
        train_cut,
        hp.max_seq_length,
    )

    evaluate = bool(eval_ids)
    args = TrainingArguments(
        output_dir=str(config.output_dir),
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size,
        num_train_epochs=hp.epochs,
        max_steps=hp.max_steps or -1,
        learning_rate=hp.learning_rate,
        warmup_steps=hp.warmup_steps,
        weight_decay=hp.weight_decay,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        logging_strategy="steps",
        logging_steps=hp.logging_steps,
        eval_strategy=("steps" if hp.eval_steps else "epoch") if evaluate else "no",
        eval_steps=hp.eval_steps or None,
        save_strategy="no",  # checkpoints only on a stop request (set by the callback)
        save_total_limit=1,
        seed=hp.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        include_num_input_tokens_seen="non_padding",
        log_level="warning",
    )
    monitor = TrainingMonitor(progress, tracker, stop)
    monitor.samples_per_step = hp.batch_size * hp.gradient_accumulation_steps
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"input_ids": train_ids}),
        eval_dataset=Dataset.from_dict({"input_ids": eval_ids}) if evaluate else None,
        data_collator=pad_batches(int(tokenizer.pad_token_id)),
        processing_class=tokenizer,
        callbacks=[monitor_callback(monitor)],
    )
    trainer.remove_callback(PrinterCallback)  # the monitor writes the log lines
    tracker.log_params(
        {
            **{k: v for k, v in asdict(hp).items() if hp.method == "lora" or "lora" not in k},
            "base_model": config.base_model,
            "data_format": config.data_format,
            "trainable_parameters": trainable,
            "total_parameters": total_params,
            "train_examples": len(train_ids),
            "validation_examples": len(eval_ids),
        }
    )

    resume = latest_checkpoint(config.output_dir)
    if resume is not None:
        log.info("resuming from %s", resume.name)
    if stop.requested:
        return _stopped(progress, tracker, "stopped before training began")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    if stop.requested and state.global_step < state.max_steps:
        return _stopped(
            progress,
            tracker,
            f"stopped at step {state.global_step} of {state.max_steps}; "
            "run the same config again to resume",
        )

    if evaluate and monitor.last_eval_step != state.global_step:
        trainer.evaluate()
    progress.update(status="saving", message="saving the model")
    trainer.save_model(str(config.model_dir))
    tracker.log_model(config.model_dir)
    for checkpoint in config.output_dir.glob("checkpoint-*"):  # the job is done: no resuming
        shutil.rmtree(checkpoint, ignore_errors=True)
    message = f"completed {state.global_step} steps in {time.monotonic() - started:.1f} s"
    log.info("%s; model saved to %s", message, config.model_dir)
    progress.update(status="completed", step=state.global_step, message=message)
    tracker.end("FINISHED")
    return EXIT_COMPLETED


def _stopped(progress: ProgressFile, tracker: Tracker, message: str) -> int:
    log.info("%s", message)
    progress.update(status="stopped", message=message)
    tracker.end("KILLED")
    return EXIT_STOPPED


def _bad_input(progress: ProgressFile, problem: BadInput) -> int:
    print(f"error: {problem}", file=sys.stderr)
    progress.update(status="failed", message=str(problem))
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    prepare_environment()
    stop = StopRequest()
    stop.install()
    progress = ProgressFile(None)
    try:
        raw = raw_config(parse_args(argv))
        if isinstance(raw.get("progress_file"), str):  # so that a config error is reported too
            progress = ProgressFile(Path(raw["progress_file"]))
        config = build_config(raw)
        progress.update(status="starting", message="reading the data")
        train_examples = read_examples(config.train_files, config.data_format)
        validation_examples = (
            read_examples(config.validation_files, config.data_format)
            if config.validation_files
            else []
        )
    except BadInput as problem:
        return _bad_input(progress, problem)
    tracker = Tracker(config.tracking, config.output_dir)
    try:
        return run(config, train_examples, validation_examples, progress, tracker, stop)
    except BadInput as problem:
        _end_quietly(tracker, "FAILED")
        return _bad_input(progress, problem)
    except Exception as exc:
        traceback.print_exc()
        progress.update(status="failed", message=f"{type(exc).__name__}: {exc}")
        _end_quietly(tracker, "FAILED")
        return EXIT_FAILED


def _end_quietly(tracker: Tracker, status: str) -> None:
    try:
        tracker.end(status)
    except Exception:  # already failing: the first error is the one to report
        log.exception("could not end the MLflow run")


if __name__ == "__main__":
    sys.exit(main())
