"""Approvals mirrored into a real MLflow Model Registry (the session's sqlite store): the
``@staging`` / ``@production`` alias, the ``approved_by`` and ``request_id`` tags, and the
registration of a portal version that MLflow does not know as a model version yet."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.promotion import SideEffectStatus
from models.registry import Stage
from services import promotions
from services.config import Settings
from services.db import Database
from tests.integration.promotions.conftest import (
    effects,
    portal_version,
    status_label,
    version_row,
)
from tests.promotion_support import Cast, file_request


@pytest.fixture
def mlflow(shared_tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=shared_tracking_uri, registry_uri=shared_tracking_uri)


def trained_run(mlflow: MlflowClient, experiment: str) -> Any:
    """A finished training run, as a portal training job leaves it in MLflow."""
    found = mlflow.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    run = mlflow.create_run(experiment_id)
    mlflow.log_metric(run.info.run_id, "eval_loss", 1.1)
    mlflow.set_terminated(run.info.run_id)
    return run


def version_with_run(db: Database, people: Cast, mlflow: MlflowClient, model: str) -> int:
    run = trained_run(mlflow, f"{model}-training")
    return portal_version(
        db,
        people.scientist,
        model,
        mlflow_run_id=run.info.run_id,
        artifact_uri=f"{run.info.artifact_uri}/model",
        metrics={"eval_loss": 1.1},
    )


def promote(db: Database, settings: Settings, people: Cast, version_id: int, stage: str) -> int:
    """File a request and give it the approvals the seeded policy needs (production: 2)."""
    request_id = file_request(db, people.scientist, version_id, stage)
    for approver in people.approvers[: 2 if stage == "production" else 1]:
        promotions.approve(db, settings, actor=approver, request_id=request_id)
    return request_id


def test_a_trained_version_is_registered_and_becomes_production_after_two_approvals(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    model = f"support-assistant-{unique}"
    v1 = version_with_run(db, people, mlflow, model)
    request_id = file_request(db, people.scientist, v1, "production")

    promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    with pytest.raises(MlflowException):  # one approval of two changes nothing in MLflow
        mlflow.get_registered_model(model)

    promotions.approve(db, settings, actor=people.approvers[1], request_id=request_id)
    held = mlflow.get_model_version_by_alias(model, "production")
    assert held.run_id == version_row(db, v1).mlflow_run_id
    assert held.tags["approved_by"] == "approver0,approver1"
    assert held.tags["request_id"] == str(request_id)
    row = version_row(db, v1)
    assert (row.stage, row.mlflow_model_name, row.mlflow_model_version) == (
        Stage.PRODUCTION.value,
        model,
        str(held.version),
    )
    assert row.mlflow_aliases == ["production"]
    assert effects(db, request_id)["mlflow_alias"].status == SideEffectStatus.DONE.value
    assert status_label(db, people, request_id) == "Approved"


def test_promoting_the_next_version_moves_the_alias_off_the_first(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    model = f"summarizer-{unique}"
    v1 = version_with_run(db, people, mlflow, model)
    v2 = version_with_run(db, people, mlflow, model)
    promote(db, settings, people, v1, "production")
    second = promote(db, settings, people, v2, "production")

    first_mv, second_mv = version_row(db, v1), version_row(db, v2)
    assert str(mlflow.get_model_version_by_alias(model, "production").version) == (
        second_mv.mlflow_model_version
    )
    assert mlflow.get_model_version(model, str(first_mv.mlflow_model_version)).aliases == []
    assert (first_mv.stage, first_mv.mlflow_aliases) == (Stage.ARCHIVED.value, [])
    assert (second_mv.stage, second_mv.mlflow_aliases) == (Stage.PRODUCTION.value, ["production"])
    assert first_mv.mlflow_model_version != second_mv.mlflow_model_version
    assert mlflow.get_model_version(model, str(second_mv.mlflow_model_version)).tags[
        "request_id"
    ] == str(second)


def test_a_version_already_registered_in_mlflow_keeps_its_registration(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    """A version synced from MLflow names its registered model version; the alias goes
    there, and nothing is registered under the portal model's name."""
    registered = f"churn-{unique}"
    run = trained_run(mlflow, f"{registered}-training")
    mlflow.create_registered_model(registered)
    mlflow.create_model_version(registered, f"{run.info.artifact_uri}/a", run_id=run.info.run_id)
    mlflow.create_model_version(registered, f"{run.info.artifact_uri}/b", run_id=run.info.run_id)
    portal_name = f"Churn classifier {unique}"
    v1 = portal_version(
        db,
        people.scientist,
        portal_name,
        mlflow_run_id=run.info.run_id,
        references={"mlflow_model_name": registered, "mlflow_model_version": "2"},
    )

    promote(db, settings, people, v1, "production")

    assert str(mlflow.get_model_version_by_alias(registered, "production").version) == "2"
    assert len(mlflow.search_model_versions(f"name = '{registered}'")) == 2
    with pytest.raises(MlflowException):
        mlflow.get_registered_model(portal_name)
    row = version_row(db, v1)
    assert (row.mlflow_model_name, row.mlflow_model_version) == (registered, "2")
    assert row.mlflow_aliases == ["production"]


def test_staging_then_production_leaves_only_the_production_alias(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    model = f"router-{unique}"
    v1 = version_with_run(db, people, mlflow, model)

    promote(db, settings, people, v1, "staging")
    number = str(version_row(db, v1).mlflow_model_version)
    assert str(mlflow.get_model_version_by_alias(model, "staging").version) == number
    assert version_row(db, v1).mlflow_aliases == ["staging"]

    promote(db, settings, people, v1, "production")
    assert mlflow.get_model_version(model, number).aliases == ["production"]
    assert len(mlflow.search_model_versions(f"name = '{model}'")) == 1  # registered once
    assert version_row(db, v1).mlflow_aliases == ["production"]


def test_a_run_missing_from_mlflow_leaves_the_alias_pending_but_the_stage_changed(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    model = f"ghost-{unique}"
    missing_run = uuid.uuid4().hex
    v1 = portal_version(db, people.scientist, model, mlflow_run_id=missing_run)

    request_id = promote(db, settings, people, v1, "production")

    assert version_row(db, v1).stage == Stage.PRODUCTION.value  # the portal is the truth
    effect = effects(db, request_id)["mlflow_alias"]
    assert effect.status == SideEffectStatus.PENDING.value
    assert effect.last_error is not None
    assert f"has no run {missing_run}" in effect.last_error
    assert effect.next_attempt_at > effect.last_attempt_at  # type: ignore[operator]
    assert status_label(db, people, request_id) == "Approved, sync pending"
    with pytest.raises(MlflowException):  # no empty registered model left behind
        mlflow.get_registered_model(model)


def test_a_version_whose_run_lives_elsewhere_is_registered_from_its_artifacts_once(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    model = f"sagemaker-trained-{unique}"
    elsewhere = uuid.uuid4().hex  # the run is on another tracking server
    v1 = portal_version(
        db,
        people.scientist,
        model,
        mlflow_run_id=elsewhere,
        artifact_uri="s3://training-bucket/jobs/42/output/model.tar.gz",
    )
    request_id = promote(db, settings, people, v1, "staging")
    assert effects(db, request_id)["mlflow_alias"].status == SideEffectStatus.DONE.value
    registered = mlflow.get_model_version_by_alias(model, "staging")
    assert registered.source == "s3://training-bucket/jobs/42/output/model.tar.gz"
    assert registered.tags["portal_run_id"] == elsewhere and not registered.run_id
    promote(db, settings, people, v1, "production")  # found again by its portal id
    assert len(mlflow.search_model_versions(f"name = '{model}'")) == 1
    assert mlflow.get_model_version(model, registered.version).aliases == ["production"]


def test_a_late_retry_of_an_older_approval_does_not_take_the_alias_back(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    """v1's alias could not be set (its registered model was not in MLflow yet); v2 went to
    production since. Retrying v1's effect must not point @production back at v1."""
    registered = f"pricing-{unique}"
    run = trained_run(mlflow, f"{registered}-training")
    refs = {"mlflow_model_name": registered}
    v1 = portal_version(
        db, people.scientist, registered, references=refs | {"mlflow_model_version": "1"}
    )
    first = promote(db, settings, people, v1, "production")
    assert "pricing" in str(effects(db, first)["mlflow_alias"].last_error)

    mlflow.create_registered_model(registered)  # someone fixes MLflow
    for folder in ("a", "b"):
        mlflow.create_model_version(
            registered, f"{run.info.artifact_uri}/{folder}", run_id=run.info.run_id
        )
    v2 = portal_version(
        db, people.scientist, registered, references=refs | {"mlflow_model_version": "2"}
    )
    promote(db, settings, people, v2, "production")

    assert promotions.retry(db, settings, actor=people.approvers[0], request_id=first) == []
    assert str(mlflow.get_model_version_by_alias(registered, "production").version) == "2"
    assert mlflow.get_model_version(registered, "1").aliases == []
    assert effects(db, first)["mlflow_alias"].status == SideEffectStatus.DONE.value
    assert status_label(db, people, first) == "Approved"
    assert (version_row(db, v1).mlflow_aliases, version_row(db, v2).mlflow_aliases) == (
        [],
        ["production"],
    )


def test_a_model_named_after_a_hugging_face_id_gets_a_name_mlflow_accepts(
    db: Database, settings: Settings, people: Cast, mlflow: MlflowClient, unique: str
) -> None:
    """MLflow refuses '/' and ':' in registered model names."""
    v1 = version_with_run(db, people, mlflow, f"meta-llama/Llama-3-8B:{unique}")

    request_id = promote(db, settings, people, v1, "staging")

    expected = f"meta-llama-Llama-3-8B-{unique}"
    assert str(mlflow.get_model_version_by_alias(expected, "staging").version) == "1"
    assert version_row(db, v1).mlflow_model_name == expected
    assert status_label(db, people, request_id) == "Approved"
