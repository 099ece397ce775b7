"""Filing a request: evidence captured, gates and PII judged under the policy in force,
duplicates refused, withdrawal by the requester only, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models.audit import AuditEvent
from models.dataset import PiiStatus
from models.promotion import MetricGate, PolicyUpdate, PromotionRequest, RequestCreate
from models.registry import ModelVersion
from models.types import utcnow
from services import promotions
from services.config import Settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.registry import datasets
from tests.promotion_support import JUSTIFICATION, Cast, file_request, model_with_versions
from tests.unit.registry.test_datasets import chat_lines, register


def request_count(db: Database) -> int:
    with db.read() as session:
        return len(session.exec(select(PromotionRequest)).all())


def test_a_request_captures_evidence_against_the_version_in_the_stage(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, v2) = model_with_versions(
        db, people.scientist, metrics=[{"eval_loss": 1.3, "accuracy": 0.7}, {"eval_loss": 1.1}]
    )
    first = file_request(db, people.scientist, v1, "staging")
    promotions.approve(db, settings, actor=people.approvers[0], request_id=first)
    second = file_request(db, people.scientist, v2, "staging")
    detail = promotions.request_detail(db, actor=people.approvers[1], request_id=second)
    evidence = detail.evidence
    assert evidence["incumbent"]["number"] == 1
    assert evidence["incumbent"]["deltas"] == {"eval_loss": pytest.approx(-0.2)}
    assert evidence["trained_by"] == "dana"
    assert evidence["policy"]["revision"] == 1
    assert detail.may_decide and detail.row.status_label == "Pending"


def test_failing_gates_refuse_the_request_and_write_nothing(db: Database, people: Cast) -> None:
    promotions.save_policy(
        db,
        actor=people.admin,
        target_stage="production",
        update=PolicyUpdate(
            required_approvals=2,
            metric_gates=[
                MetricGate(metric="eval_loss", op="<", threshold=1.2),
                MetricGate(metric="accuracy", op=">=", threshold=0.8),
            ],
        ),
    )
    _, (v1, _) = model_with_versions(db, people.scientist)
    with pytest.raises(ValidationError) as refused:
        file_request(db, people.scientist, v1)
    message = str(refused.value)
    assert "gate eval_loss < 1.2 fails (eval_loss = 1.3)" in message
    assert "gate accuracy >= 0.8 fails (metric missing)" in message
    assert "policy revision 2" in message
    assert request_count(db) == 0


def test_pii_flagged_training_data_blocks_until_an_exception(db: Database, people: Cast) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    flagged = register(db, people.scientist, chat_lines(100, pii_every=10)).version
    assert flagged.pii_status == PiiStatus.FLAGGED.value
    with db.write() as session:
        version = session.get(ModelVersion, v1)
        assert version is not None
        version.dataset_version_id = flagged.id
        session.add(version)
    with pytest.raises(ValidationError, match="tickets v1 is flagged for personal data"):
        file_request(db, people.scientist, v1, "staging")
    datasets.except_pii(
        db, actor=people.approvers[0], version_id=flagged.id or 0, reason="Synthetic addresses"
    )
    request_id = file_request(db, people.scientist, v1, "staging")
    detail = promotions.request_detail(db, actor=people.approvers[1], request_id=request_id)
    assert detail.evidence["dataset"]["pii_status"] == "excepted"
    assert detail.evidence["dataset"]["pii_exception_by"] == "approver0"


def test_a_second_request_for_the_same_move_is_refused(db: Database, people: Cast) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    first = file_request(db, people.scientist, v1)
    with pytest.raises(Conflict, match=f"already pending \\(#{first}, by dana\\)"):
        file_request(db, people.peer, v1)
    assert request_count(db) == 1
    assert file_request(db, people.peer, v1, "staging")  # another stage is another request


def test_a_version_already_in_the_stage_cannot_be_requested(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    promotions.approve(
        db,
        settings,
        actor=people.approvers[0],
        request_id=file_request(db, people.scientist, v1, "staging"),
    )
    with pytest.raises(Conflict, match="already in staging"):
        file_request(db, people.scientist, v1, "staging")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("justification", "short", "at least 10 characters"),
        ("target_stage", "archived", "must be one of staging, production"),
        ("justification", "bad\x00text here", "control characters"),
    ],
)
def test_bad_request_input_is_named(field: str, value: str, message: str) -> None:
    data = {"model_version_id": 1, "target_stage": "production", "justification": JUSTIFICATION}
    with pytest.raises(ValueError, match=message):
        RequestCreate.model_validate({**data, field: value})


def test_only_the_requester_withdraws_and_only_while_pending(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)
    with pytest.raises(PermissionDenied, match="Only the person who filed"):
        promotions.withdraw(db, actor=people.peer, request_id=request_id)
    withdrawn = promotions.withdraw(db, actor=people.scientist, request_id=request_id)
    assert withdrawn.status == "withdrawn"
    with pytest.raises(Conflict, match="already withdrawn"):
        promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    assert file_request(db, people.scientist, v1)  # a new request can be filed again


def test_pending_requests_expire_under_the_policy(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)  # production: 14 days
    with db.write() as session:
        request = session.get(PromotionRequest, request_id)
        assert request is not None and request.expires_at is not None
        assert request.expires_at - request.created_at == timedelta(days=14)
        request.expires_at = utcnow() - timedelta(seconds=1)
        session.add(request)
    with pytest.raises(Conflict, match="already expired"):
        promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    with db.read() as session:
        actions = session.exec(select(AuditEvent.action)).all()
    assert "promotion.expire" in actions
    assert promotions.approval_queue(db, actor=people.approvers[0]) == []


def test_every_step_is_an_audit_event(db: Database, people: Cast, settings: Settings) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)
    for approver in people.approvers[:2]:
        promotions.approve(db, settings, actor=approver, request_id=request_id)
    with db.read() as session:
        events = session.exec(
            select(AuditEvent.action, AuditEvent.actor).where(
                AuditEvent.action.startswith("promotion.")
            )
        ).all()
    assert list(events) == [
        ("promotion.request", "dana"),
        ("promotion.approve", "approver0"),
        ("promotion.approve", "approver1"),
        ("promotion.apply", "approver1"),
    ]
