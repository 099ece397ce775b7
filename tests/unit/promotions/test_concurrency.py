"""Simultaneous decisions on SQLite and PostgreSQL: a double click, two tabs filing the same
request, two final approvals for one stage. Each must have exactly one effect. (Twenty
approvers at once is an acceptance test: tests/acceptance/test_concurrency.py.)"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlmodel import select

from models.registry import ModelVersion
from services import promotions
from services.config import Settings
from services.db import Database
from services.errors import PortalError
from tests.promotion_support import Cast, file_request, model_with_versions


def at_once(calls: list[Callable[[], object]]) -> Counter[str]:
    """Run every call in its own thread, released together; count outcomes by kind."""
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            kind = "ok"
        except PortalError as exc:
            kind = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes[kind] += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    print(dict(outcomes))
    return outcomes


def production_versions(db: Database) -> list[int]:
    with db.read() as session:
        return [
            v.number
            for v in session.exec(select(ModelVersion).where(ModelVersion.stage == "production"))
        ]


def test_a_double_click_approves_once(db: Database, people: Cast, settings: Settings) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)
    approver = people.approvers[0]
    outcomes = at_once(
        [lambda: promotions.approve(db, settings, actor=approver, request_id=request_id)] * 10
    )
    assert outcomes["ok"] == 1 and sum(outcomes.values()) == 10
    assert all("already decided" in kind for kind in outcomes if kind != "ok")
    detail = promotions.request_detail(db, actor=approver, request_id=request_id)
    assert detail.row.request.approvals == 1 and detail.row.request.status == "pending"


def test_two_tabs_filing_the_same_request_file_one(db: Database, people: Cast) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    outcomes = at_once([lambda: file_request(db, people.scientist, v1)] * 12)
    assert outcomes["ok"] == 1
    assert all("already pending" in kind for kind in outcomes if kind != "ok")
    page = promotions.list_requests(db, actor=people.scientist, query=promotions.RequestFilter())
    assert page.total == 1


@pytest.mark.parametrize("rounds", [3])
def test_simultaneous_final_approvals_leave_one_version_in_production(
    db: Database, people: Cast, settings: Settings, rounds: int
) -> None:
    for round_number in range(rounds):
        _, versions = model_with_versions(
            db, people.scientist, name=f"Router {round_number}", metrics=[{}, {}, {}]
        )
        requests = [file_request(db, people.scientist, v) for v in versions]
        for request_id in requests:
            promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
        outcomes = at_once(
            [
                lambda r=r: promotions.approve(  # type: ignore[misc]
                    db, settings, actor=people.approvers[1], request_id=r
                )
                for r in requests
            ]
        )
        assert outcomes["ok"] == 3
    with db.read() as session:
        per_model = Counter(
            v.model_id
            for v in session.exec(select(ModelVersion).where(ModelVersion.stage == "production"))
        )
        archived = session.exec(select(ModelVersion).where(ModelVersion.stage == "archived")).all()
    assert sorted(per_model.values()) == [1] * rounds
    assert len(archived) == 2 * rounds


def test_the_database_itself_refuses_a_second_production_version(
    db: Database, people: Cast
) -> None:
    from sqlalchemy.exc import IntegrityError

    _, (v1, v2) = model_with_versions(db, people.scientist)
    with pytest.raises(IntegrityError), db.transaction() as session:
        for version_id in (v1, v2):
            version = session.get(ModelVersion, version_id)
            assert version is not None
            version.stage = "production"
            session.add(version)
            session.flush()
    assert production_versions(db) == []
