"""What the Promotions page, the Home page and model cards read: approvers' queues,
requesters' requests, the history, and one request with everything needed to decide it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from models.promotion import (
    TARGET_STAGES,
    ApprovalDecision,
    PromotionPolicy,
    PromotionRequest,
    PromotionSideEffect,
    RequestStatus,
)
from models.registry import ModelAsset, ModelKind, ModelVersion
from models.user import Role
from services.access import Actor, require, roles_of
from services.db import Database
from services.paging import Page, clamp_page
from services.permissions import Permission
from services.promotions.policies import describe
from services.promotions.requests import expire_due, is_past_expiry, load_request
from services.promotions.side_effects import effects_of, sync_state


@dataclass(frozen=True)
class RequestRow:
    request: PromotionRequest
    model_name: str
    version_number: int
    required_approvals: int
    sync: str  # "", "synced" or "sync pending"

    @property
    def status_label(self) -> str:
        status = RequestStatus(self.request.status)
        if status is RequestStatus.PENDING and is_past_expiry(self.request):
            return "Expired"
        if status is RequestStatus.APPROVED and self.sync == "sync pending":
            return "Approved, sync pending"
        return status.label


@dataclass(frozen=True)
class RequestDetail:
    row: RequestRow
    policy: PromotionPolicy
    policy_summary: str
    decisions: list[ApprovalDecision]
    effects: list[PromotionSideEffect]
    may_decide: bool
    decide_reason: str  # why the viewer may not decide ("" when they may)
    may_withdraw: bool

    @property
    def evidence(self) -> dict[str, Any]:
        return self.row.request.evidence


@dataclass(frozen=True)
class RequestFilter:
    status: str | None = None
    model_id: int | None = None
    requested_by: str | None = None


def list_requests(
    db: Database, *, actor: Actor, query: RequestFilter, page: int = 1, page_size: int = 50
) -> Page[RequestRow]:
    """Every request (the history everyone with the Promotions page sees), newest first."""
    expire_due(db)
    with db.read() as session:
        require(session, actor, Permission.VIEW_PROMOTIONS)
        stmt = select(PromotionRequest)
        if query.status:
            stmt = stmt.where(PromotionRequest.status == query.status)
        if query.model_id is not None:
            stmt = stmt.where(PromotionRequest.model_id == query.model_id)
        if query.requested_by:
            stmt = stmt.where(PromotionRequest.requested_by == query.requested_by)
        total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
        page = clamp_page(page, total, page_size)
        found = session.exec(
            stmt.order_by(col(PromotionRequest.id).desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        return Page(_rows(session, list(found)), total, page, page_size)


def approval_queue(db: Database, *, actor: Actor) -> list[RequestRow]:
    """Pending requests the actor could decide now: their role approves the target stage,
    they did not file it, and they have not decided on it yet. Oldest first."""
    with db.read() as session:
        user = require(session, actor, Permission.VIEW_PROMOTIONS)
        roles = roles_of(actor, user)
        decided = select(ApprovalDecision.request_id).where(
            ApprovalDecision.decided_by == actor.username
        )
        found = session.exec(
            select(PromotionRequest)
            .join(PromotionPolicy, col(PromotionPolicy.id) == PromotionRequest.policy_id)
            .where(
                PromotionRequest.status == RequestStatus.PENDING.value,
                PromotionRequest.requested_by != actor.username,
                col(PromotionPolicy.approver_role).in_([r.value for r in roles]),
                col(PromotionRequest.id).not_in(decided),
            )
            .order_by(col(PromotionRequest.id))
        ).all()
        return [r for r in _rows(session, list(found)) if not is_past_expiry(r.request)]


def requests_of_version(db: Database, *, actor: Actor, version_id: int) -> list[RequestRow]:
    """A version's requests, newest first (the model card shows them)."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        found = session.exec(
            select(PromotionRequest)
            .where(PromotionRequest.model_version_id == version_id)
            .order_by(col(PromotionRequest.id).desc())
        ).all()
        return _rows(session, list(found))


def request_detail(db: Database, *, actor: Actor, request_id: int) -> RequestDetail:
    with db.read() as session:
        user = require(session, actor, Permission.VIEW_PROMOTIONS)
        request = load_request(session, request_id)
        policy = session.get(PromotionPolicy, request.policy_id)
        assert policy is not None
        decisions = list(
            session.exec(
                select(ApprovalDecision)
                .where(ApprovalDecision.request_id == request_id)
                .order_by(col(ApprovalDecision.decided_at))
            ).all()
        )
        effects = effects_of(session, request_id)
        row = _rows(session, [request])[0]
        reason = _why_not_decide(actor, roles_of(actor, user), request, policy, decisions)
        return RequestDetail(
            row=row,
            policy=policy,
            policy_summary=describe(policy),
            decisions=decisions,
            effects=effects,
            may_decide=not reason,
            decide_reason=reason,
            may_withdraw=request.requested_by == actor.username
            and request.status == RequestStatus.PENDING.value
            and not is_past_expiry(request),
        )


@dataclass(frozen=True)
class VersionChoice:
    version_id: int
    label: str
    stage: str


def requestable_versions(
    db: Database, *, actor: Actor, model_id: int | None = None
) -> list[VersionChoice]:
    """Versions a request could be filed for (every stage but archived ones may go back:
    a rollback is a promotion of an earlier version), newest first."""
    with db.read() as session:
        require(session, actor, Permission.REQUEST_PROMOTION)
        stmt = (
            select(ModelVersion, ModelAsset.name)
            .join(ModelAsset, col(ModelAsset.id) == ModelVersion.model_id)
            .where(ModelAsset.kind != ModelKind.FOUNDATION.value)  # the provider's to change
        )
        if model_id is not None:
            stmt = stmt.where(ModelVersion.model_id == model_id)
        found = session.exec(
            stmt.order_by(col(ModelAsset.name), col(ModelVersion.number).desc()).limit(2000)
        ).all()
        return [
            VersionChoice(v.id or 0, f"{name} v{v.number} ({v.stage})", v.stage)
            for v, name in found
        ]


def target_choices(current_stage: str) -> list[str]:
    return [s for s in TARGET_STAGES if s != current_stage]


def _why_not_decide(
    actor: Actor,
    roles: frozenset[Role],
    request: PromotionRequest,
    policy: PromotionPolicy,
    decisions: list[ApprovalDecision],
) -> str:
    if request.status != RequestStatus.PENDING.value or is_past_expiry(request):
        return "This request is closed."
    if request.requested_by == actor.username:
        return "You filed this request; someone else must decide it (separation of duties)."
    if Role(policy.approver_role) not in roles:
        return f"Only the {Role(policy.approver_role).label.lower()} role decides this request."
    if any(d.decided_by == actor.username for d in decisions):
        return "You have already approved this request; it needs someone else's approval."
    return ""


def _rows(session: Session, requests: list[PromotionRequest]) -> list[RequestRow]:
    if not requests:
        return []
    ids = {r.model_version_id for r in requests}
    versions = {
        version_id: (name, number)
        for version_id, name, number in session.exec(
            select(ModelVersion.id, ModelAsset.name, ModelVersion.number)
            .join(ModelAsset, col(ModelAsset.id) == ModelVersion.model_id)
            .where(col(ModelVersion.id).in_(ids))
        ).all()
    }
    policies = {
        p.id: p.required_approvals
        for p in session.exec(
            select(PromotionPolicy).where(
                col(PromotionPolicy.id).in_({r.policy_id for r in requests})
            )
        ).all()
    }
    effects: dict[int, list[PromotionSideEffect]] = {}
    for effect in session.exec(
        select(PromotionSideEffect).where(
            col(PromotionSideEffect.request_id).in_([r.id for r in requests])
        )
    ).all():
        effects.setdefault(effect.request_id, []).append(effect)
    return [
        RequestRow(
            request=r,
            model_name=versions.get(r.model_version_id, ("?", 0))[0],
            version_number=versions.get(r.model_version_id, ("?", 0))[1],
            required_approvals=policies.get(r.policy_id, 1),
            sync=sync_state(effects.get(r.id or 0, [])),
        )
        for r in requests
    ]
