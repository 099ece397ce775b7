"""Deciding requests: separation of duties for every role, approvals from distinct people,
rejection with a reason, the stage change on the final approval, rollback, and gates
re-checked when the change is applied."""

from __future__ import annotations

import pytest
from sqlmodel import select

from models.promotion import MetricGate, PolicyUpdate
from models.registry import ModelVersion, StageChange
from models.user import Role
from services import promotions
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from tests.conftest import make_user
from tests.promotion_support import Cast, file_request, model_with_versions


def stages(db: Database, version_ids: list[int]) -> list[str]:
    with db.read() as session:
        return [session.get(ModelVersion, i).stage for i in version_ids]  # type: ignore[union-attr]


def test_two_distinct_approvers_put_a_version_in_production(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, v2) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v2)
    first = promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    assert (first.status, first.approvals) == ("pending", 1)
    assert stages(db, [v1, v2]) == ["development", "development"]
    with pytest.raises(Conflict, match="already decided"):
        promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    done = promotions.approve(db, settings, actor=people.approvers[1], request_id=request_id)
    assert (done.status, done.approvals) == ("approved", 2)
    assert stages(db, [v1, v2]) == ["development", "production"]


def test_the_final_approval_archives_the_previous_holder_and_keeps_history(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, v2) = model_with_versions(db, people.scientist)
    for version in (v1, v2):
        request_id = file_request(db, people.scientist, version)
        for approver in people.approvers[:2]:
            promotions.approve(db, settings, actor=approver, request_id=request_id)
    assert stages(db, [v1, v2]) == ["archived", "production"]
    # Rollback: the previous version goes back through the same flow.
    rollback = file_request(db, people.scientist, v1)
    for approver in people.approvers[1:3]:
        promotions.approve(db, settings, actor=approver, request_id=rollback)
    assert stages(db, [v1, v2]) == ["production", "archived"]
    with db.read() as session:
        history = session.exec(
            select(StageChange.to_stage, StageChange.reason)
            .where(StageChange.model_version_id == v1)
            .order_by(StageChange.id)  # type: ignore[arg-type]
        ).all()
    assert [stage for stage, _ in history] == [
        "development",
        "production",
        "archived",
        "production",
    ]
    assert history[-1][1] == f"promotion request #{rollback} approved by approver1, approver2"


def test_a_staging_version_promoted_to_production_leaves_staging_empty(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    promotions.approve(
        db,
        settings,
        actor=people.approvers[0],
        request_id=file_request(db, people.scientist, v1, "staging"),
    )
    assert stages(db, [v1]) == ["staging"]
    request_id = file_request(db, people.scientist, v1, "production")
    for approver in people.approvers[:2]:
        promotions.approve(db, settings, actor=approver, request_id=request_id)
    with db.read() as session:
        in_staging = session.exec(select(ModelVersion).where(ModelVersion.stage == "staging")).all()
    assert stages(db, [v1]) == ["production"] and in_staging == []


def test_nobody_approves_their_own_request_not_even_an_admin_approver(
    db: Database, people: Cast, settings: Settings
) -> None:
    both = make_user(db, "ada", Role.DATA_SCIENTIST, Role.APPROVER, Role.ADMIN)
    _, (v1, _) = model_with_versions(db, both)
    request_id = file_request(db, both, v1)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        promotions.approve(db, settings, actor=both, request_id=request_id)
    with pytest.raises(PermissionDenied, match="separation of duties"):
        promotions.reject(
            db, settings, actor=both, request_id=request_id, comment="I changed my mind"
        )
    detail = promotions.request_detail(db, actor=both, request_id=request_id)
    assert not detail.may_decide and "separation of duties" in detail.decide_reason
    assert detail.may_withdraw
    assert promotions.approval_queue(db, actor=both) == []


@pytest.mark.parametrize("who", ["scientist", "peer", "manager", "admin"])
def test_roles_without_the_approver_role_cannot_decide(
    db: Database, people: Cast, settings: Settings, who: str
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)
    actor: Actor = getattr(people, who)
    with pytest.raises(PermissionDenied):
        promotions.approve(db, settings, actor=actor, request_id=request_id)
    with pytest.raises(PermissionDenied):
        promotions.reject(
            db, settings, actor=actor, request_id=request_id, comment="not good enough"
        )
    assert stages(db, [v1]) == ["development"]


@pytest.mark.parametrize("who", ["manager", "admin"] + [f"approver{i}" for i in range(1)])
def test_only_data_scientists_file_requests(db: Database, people: Cast, who: str) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    actor = people.approvers[0] if who.startswith("approver") else getattr(people, who)
    with pytest.raises(PermissionDenied, match="data scientist"):
        file_request(db, actor, v1)


@pytest.mark.parametrize("who", ["scientist", "manager"])
def test_only_admins_edit_policies(db: Database, people: Cast, who: str) -> None:
    with pytest.raises(PermissionDenied, match="admin"):
        promotions.save_policy(
            db, actor=getattr(people, who), target_stage="staging", update=PolicyUpdate()
        )
    with pytest.raises(PermissionDenied):
        promotions.save_policy(
            db, actor=people.approvers[0], target_stage="staging", update=PolicyUpdate()
        )


def test_the_manager_cannot_read_requests(db: Database, people: Cast) -> None:
    with pytest.raises(PermissionDenied):
        promotions.list_requests(db, actor=people.manager, query=promotions.RequestFilter())
    with pytest.raises(PermissionDenied):
        promotions.approval_queue(db, actor=people.manager)


def test_a_rejection_needs_a_reason_and_closes_the_request(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)
    promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    with pytest.raises(ValidationError, match="Say why"):
        promotions.reject(
            db, settings, actor=people.approvers[1], request_id=request_id, comment=" "
        )
    rejected = promotions.reject(
        db,
        settings,
        actor=people.approvers[1],
        request_id=request_id,
        comment="Eval set overlaps the training data",
    )
    assert rejected.status == "rejected"
    assert rejected.closing_comment == "Eval set overlaps the training data"
    with pytest.raises(Conflict, match="already rejected"):
        promotions.approve(db, settings, actor=people.approvers[2], request_id=request_id)
    assert stages(db, [v1]) == ["development"]


def test_a_peer_review_policy_lets_another_data_scientist_approve(
    db: Database, people: Cast, settings: Settings
) -> None:
    promotions.save_policy(
        db,
        actor=people.admin,
        target_stage="staging",
        update=PolicyUpdate(required_approvals=1, approver_role="data_scientist"),
    )
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1, "staging")
    with pytest.raises(PermissionDenied, match="data scientist role"):
        promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    assert [r.request.id for r in promotions.approval_queue(db, actor=people.peer)] == [request_id]
    promotions.approve(db, settings, actor=people.peer, request_id=request_id)
    assert stages(db, [v1]) == ["staging"]


def test_a_request_keeps_the_policy_it_was_filed_under(
    db: Database, people: Cast, settings: Settings
) -> None:
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1)  # revision 1: two approvals
    promotions.save_policy(
        db,
        actor=people.admin,
        target_stage="production",
        update=PolicyUpdate(required_approvals=3),
    )
    promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    done = promotions.approve(db, settings, actor=people.approvers[1], request_id=request_id)
    assert done.status == "approved"
    history = promotions.policy_history(db, actor=people.admin, target_stage="production")
    assert [p.revision for p in history] == [2, 1]


def test_gates_are_checked_again_when_the_change_is_applied(
    db: Database, people: Cast, settings: Settings
) -> None:
    promotions.save_policy(
        db,
        actor=people.admin,
        target_stage="staging",
        update=PolicyUpdate(metric_gates=[MetricGate(metric="eval_loss", op="<=", threshold=1.2)]),
    )
    _, (_, v2) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v2, "staging")
    with db.write() as session:  # the version's metrics are corrected after the request
        version = session.get(ModelVersion, v2)
        assert version is not None
        version.metrics = {"eval_loss": 1.5}
        session.add(version)
    with pytest.raises(ValidationError, match=r"can no longer be approved: gate eval_loss <= 1\.2"):
        promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    detail = promotions.request_detail(db, actor=people.approvers[0], request_id=request_id)
    assert detail.row.request.approvals == 0 and detail.decisions == []
    assert stages(db, [v2]) == ["development"]


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"required_approvals": 0}, "greater than or equal to 1"),
        ({"approver_role": "admin"}, "must be one of approver, data_scientist"),
        ({"metric_gates": [{"metric": "loss", "op": "=", "threshold": 1}]}, "must be one of"),
        ({"metric_gates": [{"metric": "loss", "op": "<", "threshold": "nan"}]}, "finite"),
        (
            {"metric_gates": [{"metric": "a", "op": "<", "threshold": 1}] * 2},
            "one gate only",
        ),
        ({"expiry_days": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_policy_input_is_named(update: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PolicyUpdate.model_validate(update)
