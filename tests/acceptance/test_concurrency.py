"""Issue #8, concurrency: twenty approvers on one request and twenty submissions of one launch
form, all at once, on SQLite and PostgreSQL. Each has exactly the effects one of them would
have, and prints what it tried."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from models.audit import AuditEvent
from models.promotion import ApprovalDecision, PromotionSideEffect, SideEffectStatus
from models.registry import ModelVersion
from models.training import FineTuneJob, JobEvent
from models.user import Role
from services import promotions
from services.access import Actor
from services.config import get_settings
from services.db import Database
from tests.conftest import make_user
from tests.promotion_support import Cast, file_request, model_with_versions
from tests.training_support import launch_local, new_key, register_chat_dataset
from tests.unit.promotions.test_cli_sync import SECRET, Receiver, free_port, receiving_on

T = TypeVar("T")


def simultaneously(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run each call in its own thread, all released at once; what each returned or raised."""
    start = threading.Barrier(len(calls))
    outcomes: list[T | Exception] = [RuntimeError("did not finish")] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # every outcome is reported and asserted on by the caller
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as session:
        return int(session.exec(select(func.count()).select_from(table).where(*where)).one())


def audited(db: Database, action: str) -> int:
    return count(db, AuditEvent, col(AuditEvent.action) == action)


# ---------------------------------------------------------------- promotions


def test_twenty_approvers_at_once_count_exactly_the_approvals_needed(
    db: Database, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    settings = get_settings()
    people = Cast(
        scientist=make_user(db, "dana", Role.DATA_SCIENTIST),
        peer=make_user(db, "sam", Role.DATA_SCIENTIST),
        approvers=[make_user(db, f"approver{i:02d}", Role.APPROVER) for i in range(20)],
        manager=make_user(db, "mona", Role.MANAGER),
        admin=admin,
    )
    _, (_, v2) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v2)
    Receiver.received = []
    with receiving_on(port):
        outcomes = simultaneously(
            [
                lambda a=a: promotions.approve(db, settings, actor=a, request_id=request_id)  # type: ignore[misc]
                for a in people.approvers
            ]
        )
    refusals = [str(o) for o in outcomes if isinstance(o, Exception)]
    with db.read() as session:
        effects = session.exec(select(PromotionSideEffect)).all()
    request = promotions.request_detail(db, actor=people.scientist, request_id=request_id).row
    print(
        f"20 approvers at once ({db.engine.dialect.name}): {20 - len(refusals)} approvals, "
        f"{len(refusals)} refused {set(refusals)}; decisions {count(db, ApprovalDecision)}, "
        f"audit events approve={audited(db, 'promotion.approve')} "
        f"apply={audited(db, 'promotion.apply')}; request {request.request.status} with "
        f"{request.request.approvals} approvals; outbox {[(e.kind, e.status) for e in effects]}, "
        f"webhook deliveries {len(Receiver.received)}"
    )
    already = f"Request #{request_id} is already approved; nothing was changed."
    assert len(refusals) == 18 and set(refusals) == {already}
    assert count(db, ApprovalDecision) == 2
    assert (audited(db, "promotion.approve"), audited(db, "promotion.apply")) == (2, 1)
    assert request.request.status == "approved" and request.request.approvals == 2
    with db.read() as session:
        stages = {v.number: v.stage for v in session.exec(select(ModelVersion))}
    assert stages[2] == "production" and list(stages.values()).count("production") == 1
    assert [(e.kind, e.status) for e in effects] == [("webhook", SideEffectStatus.DONE.value)]
    assert len(Receiver.received) == 1 and b'"event":"promotion.approved"' in Receiver.received[0]


# ---------------------------------------------------------------- fine-tuning launches


def test_twenty_simultaneous_submissions_of_one_form_make_one_job(
    db: Database, admin: Actor
) -> None:
    scientist = make_user(db, "dana", Role.DATA_SCIENTIST)
    dataset = register_chat_dataset(db, scientist, count=60)
    key = new_key()
    outcomes = simultaneously([lambda: launch_local(db, scientist, dataset, key=key)] * 20)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    launched = [o for o in outcomes if not isinstance(o, Exception)]
    jobs = {o.job.id for o in launched}
    created = sum(o.created for o in launched)
    print(
        f"20 submissions of one launch form at once ({db.engine.dialect.name}): "
        f"{created} created, {len(launched) - created} answered with the same job {jobs}, "
        f"errors {[str(e) for e in errors]}; job rows {count(db, FineTuneJob)}, "
        f"timeline events {count(db, JobEvent)}, audit events {audited(db, 'training.launch')}"
    )
    assert not errors
    assert created == 1 and len(jobs) == 1
    assert count(db, FineTuneJob) == 1 and count(db, JobEvent) == 1
    assert audited(db, "training.launch") == 1
