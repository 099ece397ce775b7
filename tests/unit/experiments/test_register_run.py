"""A run made outside the portal's jobs becomes a model version: its final metrics (finite
ones), parameters, base model and artifacts, once per model, on a real MLflow store."""

from __future__ import annotations

import uuid

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from models.registry import ModelAssetCreate
from models.user import Role
from services.config import get_settings
from services.db import Database
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.experiments.register import register_run, registrable_models
from services.registry import assets
from tests.conftest import make_user


@pytest.fixture
def notebook_run() -> str:
    client = MlflowClient(get_settings().resolved_tracking_uri)
    experiment = client.create_experiment(f"notebook-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment, run_name="colab-try-3")
    client.log_batch(
        run.info.run_id,
        metrics=[
            Metric("eval_loss", 1.4, 0, 1), Metric("eval_loss", 0.92, 0, 2),
            Metric("grad_norm", float("nan"), 0, 2),
        ],
        params=[Param("base_model", "Qwen/Qwen2.5-0.5B"), Param("lr", "2e-4")],
    )  # fmt: skip
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def test_a_notebook_run_becomes_a_version_once(db: Database, notebook_run: str) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    version = register_run(
        db, get_settings(), actor=dana, run_id=notebook_run, new_model_name="Notebook helper"
    )
    assert version.number == 1 and version.mlflow_run_id == notebook_run
    assert version.metrics == {"eval_loss": 0.92}  # the latest value; NaN left out
    assert version.params == {"base_model": "Qwen/Qwen2.5-0.5B", "lr": "2e-4"}
    assert version.base_model == "Qwen/Qwen2.5-0.5B"
    assert version.artifact_uri and notebook_run in version.artifact_uri
    assert [name for _, name in registrable_models(db, actor=dana)] == ["Notebook helper"]
    with pytest.raises(Conflict, match="already Notebook helper version 1"):
        register_run(db, get_settings(), actor=dana, run_id=notebook_run, model_id=version.model_id)
    other = assets.register_model(db, actor=dana, data=ModelAssetCreate(name="Another model"))
    again = register_run(db, get_settings(), actor=dana, run_id=notebook_run, model_id=other.id)
    assert again.number == 1  # the same run may be a version of another model


def test_bad_requests_are_refused(db: Database, notebook_run: str) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    approver = make_user(db, "priya", Role.APPROVER)
    with pytest.raises(ValidationError, match="choose a model or name a new one"):
        register_run(db, get_settings(), actor=dana, run_id=notebook_run)
    with pytest.raises(PermissionDenied):
        register_run(db, get_settings(), actor=approver, run_id=notebook_run, new_model_name="X")
    MlflowClient(get_settings().resolved_tracking_uri).delete_run(notebook_run)
    with pytest.raises(NotFound, match="does not exist any more"):
        register_run(db, get_settings(), actor=dana, run_id=notebook_run, new_model_name="Y")
