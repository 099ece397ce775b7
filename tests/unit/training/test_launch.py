"""Launching, stopping and reading jobs through the services the Fine-tuning page calls, on
SQLite and PostgreSQL: one job per form submission however often it is sent, clear refusals
for bad input and for every role that may not act, nothing half-written."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from sqlmodel import func, select

from models.dataset import DatasetCreate
from models.training import FineTuneJob, JobEvent, JobStatus
from models.user import Role
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.registry.dataset_files import DatasetSource
from services.registry.datasets import except_pii, register_version
from services.registry.formats import DatasetFormat
from services.training import jobs, launch
from tests.conftest import make_user
from tests.training_support import launch_local, new_key, register_chat_dataset


@pytest.fixture
def scientist(db: Database, admin: Actor) -> Actor:
    return make_user(db, "dana", Role.DATA_SCIENTIST)


@pytest.fixture
def dataset(db: Database, scientist: Actor) -> int:
    return register_chat_dataset(db, scientist, count=60)


def job_count(db: Database) -> int:
    with db.read() as session:
        return session.exec(select(func.count()).select_from(FineTuneJob)).one()


def test_a_local_launch_is_queued_with_its_settings_and_audited(
    db: Database, scientist: Actor, dataset: int
) -> None:
    outcome = launch_local(db, scientist, dataset, hyperparameters={"epochs": "2", "seed": 7})
    job = outcome.job
    assert outcome.created and job.status == JobStatus.QUEUED.value
    assert job.owner == "dana" and job.base_model == "tiny-llama"
    assert job.hyperparameters["epochs"] == 2 and job.hyperparameters["seed"] == 7
    assert job.hyperparameters["learning_rate"] == pytest.approx(5e-4)  # the default filled in
    assert job.estimated_cost == Decimal("0.00")
    detail = jobs.job_detail(db, actor=scientist, job_id=job.id or 0)
    assert [e.status for e in detail.events] == ["queued"]
    assert detail.can_stop and not detail.can_register


def test_the_same_form_submitted_twice_is_one_job(
    db: Database, scientist: Actor, dataset: int
) -> None:
    key = new_key()
    first = launch_local(db, scientist, dataset, key=key)
    again = launch_local(db, scientist, dataset, key=key)
    assert first.created and not again.created and again.job.id == first.job.id
    assert job_count(db) == 1


def test_out_of_range_hyperparameters_are_all_named_and_nothing_is_written(
    db: Database, scientist: Actor, dataset: int
) -> None:
    with pytest.raises(ValidationError) as refused:
        launch_local(
            db,
            scientist,
            dataset,
            hyperparameters={"epochs": 0, "learning_rate": "fast", "batch_size": 2.5, "dropout": 1},
        )
    assert set(refused.value.fields) == {"epochs", "learning_rate", "batch_size", "dropout"}
    assert "epochs: must be from 1 to 50" in str(refused.value)
    assert job_count(db) == 0


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"base_model": ""}, "base_model"),
        ({"max_runtime_minutes": 1}, "max_runtime_minutes"),
        ({"idempotency_key": "short"}, "idempotency_key"),
        ({"backend": "kubernetes"}, "backend"),
    ],
)
def test_bad_form_fields_are_refused_by_name(
    db: Database, scientist: Actor, dataset: int, form: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        launch_local(db, scientist, dataset, form=form)
    assert field in refused.value.fields
    assert job_count(db) == 0


def test_a_flagged_dataset_is_refused_until_an_approver_accepts_it(
    db: Database, scientist: Actor
) -> None:
    body = (
        b'{"messages":[{"role":"user","content":"mail me at jo@example.com"},'
        b'{"role":"assistant","content":"Will do."}]}\n' * 20
    )
    version = register_version(
        db,
        get_settings(),
        actor=scientist,
        source=DatasetSource.upload(io.BytesIO(body), "pii.jsonl"),
        fmt=DatasetFormat.CHAT,
        new_dataset=DatasetCreate(name="with-emails"),
    ).version
    with pytest.raises(PermissionDenied, match="flagged for personal data"):
        launch_local(db, scientist, version.id or 0)
    assert job_count(db) == 0
    approver = make_user(db, "ana", Role.APPROVER)
    except_pii(db, actor=approver, version_id=version.id or 0, reason="synthetic addresses")
    assert launch_local(db, scientist, version.id or 0).created


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MANAGER, Role.ADMIN])
def test_only_data_scientists_launch(
    db: Database, scientist: Actor, dataset: int, role: Role
) -> None:
    other = make_user(db, f"someone-{role.value}".replace("_", "-"), role)
    with pytest.raises(PermissionDenied):
        launch_local(db, other, dataset)
    assert job_count(db) == 0


def test_a_queued_job_stops_at_once_and_a_finished_one_cannot_stop(
    db: Database, scientist: Actor, dataset: int
) -> None:
    job = launch_local(db, scientist, dataset).job
    stopped = jobs.stop_job(db, get_settings(), actor=scientist, job_id=job.id or 0)
    assert stopped.status == JobStatus.STOPPED.value
    assert "before it started" in stopped.status_detail
    with pytest.raises(Conflict, match="already stopped"):
        jobs.stop_job(db, get_settings(), actor=scientist, job_id=job.id or 0)


def test_only_the_owner_or_an_admin_may_stop_a_job(
    db: Database, scientist: Actor, dataset: int, admin: Actor
) -> None:
    job = launch_local(db, scientist, dataset).job
    for role in (Role.DATA_SCIENTIST, Role.APPROVER):
        other = make_user(db, f"other-{role.value}".replace("_", "-"), role)
        with pytest.raises(PermissionDenied):
            jobs.stop_job(db, get_settings(), actor=other, job_id=job.id or 0)
    manager = make_user(db, "max", Role.MANAGER)
    with pytest.raises(PermissionDenied):
        jobs.stop_job(db, get_settings(), actor=manager, job_id=job.id or 0)
    assert jobs.stop_job(db, get_settings(), actor=admin, job_id=job.id or 0).status == "stopped"


def test_the_job_list_filters_by_scope_status_and_text(
    db: Database, scientist: Actor, dataset: int
) -> None:
    other = make_user(db, "omar", Role.DATA_SCIENTIST)
    mine = [launch_local(db, scientist, dataset).job for _ in range(3)]
    launch_local(db, other, dataset)
    jobs.stop_job(db, get_settings(), actor=scientist, job_id=mine[0].id or 0)
    query = jobs.JobQuery
    assert jobs.list_jobs(db, actor=scientist, query=query(scope="mine")).total == 3
    assert jobs.list_jobs(db, actor=scientist, query=query(scope="all")).total == 4
    stopped = jobs.list_jobs(db, actor=scientist, query=query(scope="all", status="stopped"))
    assert [r.id for r in stopped.rows] == [mine[0].id]
    found = jobs.list_jobs(db, actor=scientist, query=query(scope="all", text="omar"))
    assert {r.owner for r in found.rows} == {"omar"}
    newest_first = jobs.list_jobs(db, actor=scientist, query=query(scope="mine"))
    assert [r.id for r in newest_first.rows] == [j.id for j in reversed(mine)]
    with pytest.raises(PermissionDenied):
        jobs.list_jobs(db, actor=make_user(db, "max", Role.MANAGER), query=query())


def test_every_transition_is_on_the_timeline(db: Database, scientist: Actor, dataset: int) -> None:
    job = launch_local(db, scientist, dataset).job
    launch.record_transition(db, job.id, JobStatus.STARTING, "starting")
    launch.record_transition(db, job.id, JobStatus.RUNNING, "step 1", progress_step=1)
    launch.record_transition(db, job.id, JobStatus.RUNNING, "step 1")  # no change: no event
    finished = launch.record_transition(db, job.id, JobStatus.COMPLETED, "done")
    assert finished.started_at is not None and finished.finished_at is not None
    with db.read() as session:
        events = session.exec(select(JobEvent.status).where(JobEvent.job_id == job.id)).all()
    assert events == ["queued", "starting", "running", "completed"]


def test_home_lists_my_failed_running_and_unregistered_jobs(
    db: Database, scientist: Actor, dataset: int
) -> None:
    from services.attention import job_items

    assert job_items(db, actor=scientist) == []
    failed, done, _queued = (launch_local(db, scientist, dataset).job for _ in range(3))
    launch.record_transition(db, failed.id, JobStatus.FAILED, "crashed", failure_reason="OOM")
    launch.record_transition(db, done.id, JobStatus.COMPLETED, "training finished")
    titles = [item.title for item in job_items(db, actor=scientist)]
    assert titles == [
        "1 of your fine-tuning job(s) failed this week",
        "1 finished job(s) not registered yet",
        "1 of your job(s) running or queued",
    ]
    other = make_user(db, "omar", Role.DATA_SCIENTIST)
    assert job_items(db, actor=other) == []
