"""Hyperparameters as specs with ranges and help text, the presets the launch form offers for
the local recipe, and the check that turns what a user typed into values a backend accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from services.errors import ValidationError

Kind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class HyperparameterSpec:
    name: str
    kind: Kind
    default: int | float | str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def range_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        return f"{_number(self.minimum)} to {_number(self.maximum)}"

    def coerce(self, raw: object) -> int | float | str:
        """The value as its kind, or ``ValueError`` saying what is allowed."""
        if self.kind == "choice":
            text = str(raw).strip()
            if text not in self.choices:
                raise ValueError(f"must be {self.range_text}")
            return text
        if isinstance(raw, bool):  # JSON true is not 1 epoch
            raise ValueError("must be a number")
        try:
            number = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        except OverflowError:  # an integer beyond any float, so beyond every range
            raise ValueError(f"must be from {self.range_text}") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if self.kind == "int" and number != int(number):
            raise ValueError("must be a whole number")
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise ValueError(f"must be from {self.range_text}")
        return int(number) if self.kind == "int" else number


def _number(value: float | None) -> str:
    if value is None:
        return "any"
    return f"{value:g}"


def validate(
    specs: Sequence[HyperparameterSpec], values: Mapping[str, object], *, where: str
) -> dict[str, int | float | str]:
    """Every spec's value (the default where none was given), checked. Unknown names and
    out-of-range values are all reported at once, named and with what is allowed."""
    known = {spec.name: spec for spec in specs}
    problems: dict[str, str] = {
        name: f"is not a hyperparameter of {where}" for name in values if name not in known
    }
    result: dict[str, int | float | str] = {}
    for spec in specs:
        raw = values.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            result[spec.name] = spec.default
            continue
        try:
            result[spec.name] = spec.coerce(raw)
        except ValueError as exc:
            problems[spec.name] = str(exc)
    if problems:
        summary = "; ".join(f"{name}: {message}" for name, message in problems.items())
        raise ValidationError(f"Hyperparameters: {summary}.", fields=problems)
    return result


LOCAL_RECIPE_SPECS: tuple[HyperparameterSpec, ...] = (
    HyperparameterSpec("epochs", "int", 3, "Passes over the training split.", 1, 50),
    HyperparameterSpec(
        "max_steps",
        "int",
        0,
        "Stop after this many optimiser steps (0: run all epochs).",
        0,
        100_000,
    ),
    HyperparameterSpec(
        "learning_rate", "float", 5e-4, "Peak learning rate of the linear schedule.", 1e-7, 1e-2
    ),
    HyperparameterSpec("batch_size", "int", 8, "Examples per step per device.", 1, 256),
    HyperparameterSpec(
        "max_seq_length", "int", 128, "Tokens per example; longer ones are cut.", 16, 8192
    ),
    HyperparameterSpec("warmup_steps", "int", 0, "Steps of linear warm-up.", 0, 10_000),
    HyperparameterSpec("weight_decay", "float", 0.0, "AdamW weight decay.", 0.0, 1.0),
    HyperparameterSpec(
        "method",
        "choice",
        "auto",
        "LoRA adapters or full fine-tuning; auto picks LoRA for a saved base model and full "
        "fine-tuning for a model built from a config.",
        choices=("auto", "lora", "full"),
    ),
    HyperparameterSpec("lora_r", "int", 8, "LoRA rank.", 1, 256),
    HyperparameterSpec("lora_alpha", "int", 16, "LoRA scaling.", 1, 512),
    HyperparameterSpec("seed", "int", 42, "Random seed, for repeatable runs.", 0, 2**31 - 1),
)

LOCAL_PRESETS: dict[str, dict[str, int | float | str]] = {
    "Quick check (60 steps)": {"epochs": 1, "max_steps": 60, "learning_rate": 1e-3},
    "Standard (3 epochs)": {},
    "Thorough (6 epochs, lower rate)": {"epochs": 6, "learning_rate": 3e-4, "warmup_steps": 10},
}
"""Named starting points; a preset fills the form, and the user can still change any value."""
