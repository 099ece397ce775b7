"""Demo data for fine-tuning: one real local job on the demo chat dataset, queued as the demo
data scientist would launch it, so the first worker to start trains it for real."""

from __future__ import annotations

from services.access import Actor
from services.auth import active_user
from services.config import Settings
from services.db import Database
from services.registry import dataset_catalog
from services.training import launch
from services.training.backends.local import LocalBackend

DEMO_KEY = "demo-support-assistant-tiny-0001"


def seed_jobs(db: Database, settings: Settings) -> str:
    """Queue the demo job once. Returns a one-line summary."""
    reason = LocalBackend(settings).unavailable_reason()
    if reason:
        return f"no demo job ({reason})"
    dana = active_user(db, "dana")
    if dana is None:
        return "no demo job (the demo data scientist is missing)"
    actor = Actor.of(dana)
    version_id = next(
        (
            vid
            for vid, label in dataset_catalog.version_choices(db, actor=actor)
            if label.startswith("support-conversations v")
        ),
        None,
    )
    if version_id is None:
        return "no demo job (the demo chat dataset is missing)"
    outcome = launch.launch(
        db,
        settings,
        actor=actor,
        data={
            "backend": "local",
            "base_model": "tiny-llama",
            "dataset_version_id": version_id,
            "hyperparameters": {"max_steps": 150},
            "register_on_success": True,
            "register_model_name": "Support assistant (tiny demo)",
            "idempotency_key": DEMO_KEY,
        },
    )
    state = "queued" if outcome.created else "already there"
    return f"a local fine-tuning job on support-conversations ({state}; the worker runs it)"
