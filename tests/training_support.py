"""Shared by the training tests: a real chat dataset registered through the registry, and a
launch through the service the Fine-tuning page calls."""

from __future__ import annotations

import io
import secrets

import orjson

from models.dataset import DatasetCreate
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.registry.dataset_files import DatasetSource
from services.registry.datasets import register_version
from services.registry.formats import DatasetFormat
from services.training import launch
from services.training.samples import sample_chat_records


def register_chat_dataset(
    db: Database, actor: Actor, *, count: int = 200, name: str = "support-chat", seed: int = 7
) -> int:
    body = b"".join(orjson.dumps(r) + b"\n" for r in sample_chat_records(count, seed=seed))
    result = register_version(
        db,
        get_settings(),
        actor=actor,
        source=DatasetSource.upload(io.BytesIO(body), f"{name}.jsonl"),
        fmt=DatasetFormat.CHAT,
        new_dataset=DatasetCreate(name=name),
    )
    assert result.version.id is not None
    return result.version.id


def new_key() -> str:
    return secrets.token_hex(12)


def launch_local(
    db: Database,
    actor: Actor,
    version_id: int,
    *,
    key: str | None = None,
    form: dict[str, object] | None = None,
    **fields: object,
) -> launch.LaunchOutcome:
    """Launch as the form would; ``fields`` (or ``form``, for names like ``idempotency_key``)
    override its defaults."""
    data: dict[str, object] = {
        "backend": "local",
        "base_model": "tiny-llama",
        "dataset_version_id": version_id,
        "hyperparameters": {"max_steps": 20, "batch_size": 8},
        "idempotency_key": key or new_key(),
    }
    data.update(fields)
    data.update(form or {})
    return launch.launch(db, get_settings(), actor=actor, data=data)
