"""The Fine-tuning page through AppTest: the empty state, launching from the form (once, however
often it is sent), a job's detail with its failure, who sees the Stop button, cloud backends
that are not configured, and the admin's price table."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import func, select
from streamlit.testing.v1 import AppTest

from models.dataset import DatasetVersion, PiiStatus
from models.training import FineTuneJob, JobStatus
from models.user import Role
from services.db import Database
from services.training.launch import record_transition
from tests.conftest import make_user
from tests.training_support import launch_local, register_chat_dataset
from tests.ui.conftest import signed_in, texts

PAGE = "pages/views/fine_tuning.py"


@pytest.fixture
def people(app_db: Database) -> Database:
    make_user(app_db, "root.admin", Role.ADMIN)
    make_user(app_db, "dana", Role.DATA_SCIENTIST)
    make_user(app_db, "omar", Role.DATA_SCIENTIST)
    return app_db


def page(username: str, **params: str) -> AppTest:
    at = signed_in(username)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page(PAGE).run()


def widget(elements: Any, label: str) -> Any:
    matches = [e for e in elements if e.label == label]
    assert matches, f"no widget labelled {label!r}"
    return matches[0]


def stop_offered(at: AppTest) -> bool:
    return any(p.proto.popover.label == "Stop job" for p in at.get("popover"))


def job_ids(db: Database) -> list[int | None]:
    with db.read() as session:
        return list(session.exec(select(FineTuneJob.id)))


def dana(db: Database) -> Any:
    from services.access import Actor
    from services.auth import active_user

    user = active_user(db, "dana")
    assert user is not None
    return Actor.of(user)


def test_a_new_data_scientist_is_told_how_to_start(people: Database) -> None:
    at = page("dana")
    assert not at.exception
    assert "You have not launched a fine-tuning job yet" in texts(at)


def test_launching_from_the_form_queues_one_job_and_opens_it(people: Database) -> None:
    register_chat_dataset(people, dana(people), count=40)
    at = page("dana", view="launch", key="0123456789abcdef0123")
    assert not at.exception
    assert "Estimated cost (at most)" in [m.label for m in at.metric]
    widget(at.number_input, "epochs").set_value(2)
    widget(at.button, "Launch job").click().run()
    assert not at.exception
    ids = job_ids(people)
    assert len(ids) == 1 and at.query_params["job"] == str(ids[0])
    with people.read() as session:
        job = session.get(FineTuneJob, ids[0])
    assert job is not None and job.hyperparameters["epochs"] == 2
    assert job.status == JobStatus.QUEUED.value
    assert "Waiting for the first training step" in str([p.text for p in at.get("progress")])
    # The same form again (a duplicated tab, a retry): the same job, not a second one.
    again = page("dana", view="launch", key="0123456789abcdef0123")
    widget(again.button, "Launch job").click().run()
    assert job_ids(people) == ids and again.query_params["job"] == str(ids[0])


def test_a_refused_launch_says_why_and_keeps_the_form(people: Database) -> None:
    dataset = register_chat_dataset(people, dana(people), count=40)
    at = page("dana", view="launch", key="fedcba9876543210fedc")
    widget(at.number_input, "epochs").set_value(7)
    with people.write() as session:  # an approver's decision lands while the form is open
        version = session.get(DatasetVersion, dataset)
        assert version is not None
        version.pii_status = PiiStatus.FLAGGED.value
        session.add(version)
    widget(at.button, "Launch job").click().run()
    assert "flagged for personal data" in texts(at)
    assert widget(at.number_input, "epochs").value == 7
    assert job_ids(people) == []


def test_hyperparameter_inputs_stay_within_their_ranges(people: Database) -> None:
    register_chat_dataset(people, dana(people), count=40)
    at = page("dana", view="launch")
    epochs = widget(at.number_input, "epochs")
    assert (epochs.min, epochs.max) == (1, 50)


def test_a_failed_job_says_why(people: Database) -> None:
    dataset = register_chat_dataset(people, dana(people), count=40)
    job = launch_local(people, dana(people), dataset).job
    record_transition(
        people,
        job.id,
        JobStatus.FAILED,
        "bad data",
        failure_reason="train.jsonl line 7: not valid JSON (exit code 2)",
        error_code="BadInput",
    )
    at = page("dana", job=str(job.id))
    assert not at.exception
    assert "train.jsonl line 7: not valid JSON (exit code 2) (`BadInput`)" in texts(at)
    assert not stop_offered(at)


@pytest.mark.parametrize(
    ("username", "sees_stop"), [("dana", True), ("omar", False), ("root.admin", True)]
)
def test_only_the_owner_and_admins_see_stop(
    people: Database, username: str, sees_stop: bool
) -> None:
    dataset = register_chat_dataset(people, dana(people), count=40)
    job = launch_local(people, dana(people), dataset).job
    at = page(username, job=str(job.id))
    assert not at.exception
    assert stop_offered(at) is sees_stop


def test_an_unconfigured_cloud_backend_says_what_to_set(people: Database) -> None:
    register_chat_dataset(people, dana(people), count=40)
    at = page("dana", view="launch")
    widget(at.get("button_group"), "Where to train").set_value("sagemaker").run()
    assert not at.exception
    assert "PORTAL_AWS_REGION" in texts(at)
    assert widget(at.button, "Launch job").disabled


def test_an_admin_corrects_a_price(people: Database) -> None:
    at = signed_in("root.admin").run().switch_page("pages/views/admin.py").run()
    widget(at.text_input, "Instance type or Bedrock base model").input("ml.g5.xlarge")
    widget(at.text_input, "Price in USD").input("0.99")
    widget(at.text_input, "Source").input("Negotiated rate 2026")
    widget(at.button, "Save price").click().run()
    assert not at.exception
    frame = next(d.value for d in at.dataframe if "Overridden by" in d.value.columns)
    row = frame[frame["Item"] == "ml.g5.xlarge"].iloc[0]
    assert row["Price (USD)"] == pytest.approx(0.99) and row["Overridden by"] == "root.admin"
    with people.read() as session:
        assert session.exec(select(func.count()).select_from(FineTuneJob)).one() == 0


@pytest.mark.parametrize(
    "model",
    [
        "amazon.titan-text-express-v1:0:8k",
        "amazon.nova-lite-v1:0:300k",
        "anthropic.claude-3-haiku-20240307-v1:0:200k",
        "cohere.command-light-text-v14:7:4k",
    ],
)
def test_every_bedrock_model_draws_its_hyperparameters(people: Database, model: str) -> None:
    at = page("dana", view="launch")
    widget(at.get("button_group"), "Where to train").set_value("bedrock").run()
    widget(at.selectbox, "Base model").set_value(model).run()
    assert not at.exception
    assert len(at.number_input) >= 2
