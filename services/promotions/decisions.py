"""Approving and rejecting promotion requests, and applying an approved stage change.

Separation of duties holds for everyone, administrators included: the requester never
decides their own request, and approvals count once per person. Decisions run inside
``Database.write()``, which serialises writers (the audit chain's row lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so simultaneous approvals are counted one after another; the
unique constraints on decisions and on stage holders back that up in the database itself."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models.promotion import (
    ApprovalDecision,
    Decision,
    PromotionPolicy,
    PromotionRequest,
    RequestStatus,
)
from models.registry import ModelAsset, ModelVersion, Stage
from models.user import Role
from services import audit
from services.access import Actor, require, roles_of
from services.config import Settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.permissions import Permission
from services.promotions import evidence, side_effects
from services.promotions.requests import (
    close,
    describe_target,
    ensure_pending,
    expire_due,
    load_request,
)
from services.registry.assets import record_stage


def approve(
    db: Database, settings: Settings, *, actor: Actor, request_id: int, comment: str = ""
) -> PromotionRequest:
    """Add the actor's approval; the last approval the policy needs applies the change and
    then carries out its side effects (a failure there leaves them pending, not undone)."""
    request = _decide(db, settings, actor, request_id, Decision.APPROVE, comment.strip())
    if request.status == RequestStatus.APPROVED.value:
        side_effects.run_due(db, settings, request_id=request_id)
    return request


def reject(
    db: Database, settings: Settings, *, actor: Actor, request_id: int, comment: str
) -> PromotionRequest:
    """Reject a request (a comment saying why is required); it closes at once."""
    if not comment.strip():
        raise ValidationError(
            "Say why you reject the request: the requester reads it.",
            fields={"comment": "required to reject"},
        )
    request = _decide(db, settings, actor, request_id, Decision.REJECT, comment.strip())
    side_effects.run_due(db, settings, request_id=request_id)
    return request


def _decide(
    db: Database,
    settings: Settings,
    actor: Actor,
    request_id: int,
    decision: Decision,
    comment: str,
) -> PromotionRequest:
    expire_due(db)
    try:
        with db.write() as session:
            user = require(session, actor, Permission.VIEW_PROMOTIONS)
            request = load_request(session, request_id, lock=True)
            policy = session.get(PromotionPolicy, request.policy_id)
            assert policy is not None
            _check_may_decide(session, actor, roles_of(actor, user), request, policy)
            session.add(
                ApprovalDecision(
                    request_id=request_id,
                    decided_by=actor.username,
                    decision=decision.value,
                    comment=comment,
                )
            )
            session.flush()
            webhook = bool(settings.promotion_webhook_url)
            if decision is Decision.REJECT:
                _close_rejected(session, actor, request, comment, webhook)
            else:
                _count_approval(session, actor, request, policy, comment, webhook)
            return request
    except IntegrityError as exc:
        if "approval_decision" in str(exc):
            raise Conflict(
                f"You have already decided on request #{request_id}; it counts once."
            ) from None
        raise Conflict(
            "Someone changed this model's stages at the same moment; reload and try again."
        ) from exc


def _check_may_decide(
    session: Session,
    actor: Actor,
    roles: frozenset[Role],
    request: PromotionRequest,
    policy: PromotionPolicy,
) -> None:
    if request.requested_by == actor.username:
        raise PermissionDenied(
            "You filed this request, so someone else must decide it (separation of duties)."
        )
    if Role(policy.approver_role) not in roles:
        raise PermissionDenied(
            f"Requests for {request.target_stage} are decided by the "
            f"{Role(policy.approver_role).label.lower()} role, which you do not hold."
        )
    ensure_pending(request)
    earlier = session.exec(
        select(ApprovalDecision).where(
            ApprovalDecision.request_id == request.id,
            ApprovalDecision.decided_by == actor.username,
        )
    ).first()
    if earlier is not None:
        raise Conflict(f"You have already decided on request #{request.id}; it counts once.")


def _close_rejected(
    session: Session, actor: Actor, request: PromotionRequest, comment: str, webhook: bool
) -> None:
    close(session, request, RequestStatus.REJECTED, comment)
    audit.record(
        session,
        actor=actor.username,
        action="promotion.reject",
        entity_type="promotion_request",
        entity_id=request.id,
        summary=f"rejected {describe_target(request)}: {comment[:200]}",
    )
    version = session.get(ModelVersion, request.model_version_id)
    assert version is not None
    side_effects.plan(session, request, version, approved_by=[], webhook_configured=webhook)


def _count_approval(
    session: Session,
    actor: Actor,
    request: PromotionRequest,
    policy: PromotionPolicy,
    comment: str,
    webhook: bool,
) -> None:
    request.approvals += 1
    request.revision += 1
    session.add(request)
    needed = policy.required_approvals
    audit.record(
        session,
        actor=actor.username,
        action="promotion.approve",
        entity_type="promotion_request",
        entity_id=request.id,
        summary=f"approved {describe_target(request)} ({request.approvals} of {needed})"
        + (f": {comment[:200]}" if comment else ""),
    )
    if request.approvals >= needed:
        _apply(session, actor, request, policy, webhook)


def _apply(
    session: Session,
    actor: Actor,
    request: PromotionRequest,
    policy: PromotionPolicy,
    webhook: bool,
) -> None:
    """The final approval: re-check the policy on today's facts, then move the stage holder
    to archived and this version into the stage, in the same transaction."""
    version = session.get(ModelVersion, request.model_version_id, with_for_update=True)
    model = session.get(ModelAsset, request.model_id)
    assert version is not None and model is not None
    found = evidence.collect(session, model, version, request.target_stage, policy)
    reasons = evidence.blocking_reasons(found)
    if reasons:
        raise ValidationError(
            f"Request #{request.id} can no longer be approved: " + "; ".join(reasons) + "."
        )
    approvers = list(
        session.exec(
            select(ApprovalDecision.decided_by)
            .where(
                ApprovalDecision.request_id == request.id,
                ApprovalDecision.decision == Decision.APPROVE.value,
            )
            .order_by(ApprovalDecision.decided_at)  # type: ignore[arg-type]
        ).all()
    )
    reason = f"promotion request #{request.id} approved by {', '.join(approvers)}"
    holder = evidence.stage_holder(session, model.id or 0, request.target_stage)
    previous = None
    if holder is not None and holder.id != version.id:
        previous = holder.number
        record_stage(session, holder, Stage.ARCHIVED, by=actor.username, reason=reason)
    from_stage = version.stage
    record_stage(session, version, Stage(request.target_stage), by=actor.username, reason=reason)
    version.version += 1
    close(session, request, RequestStatus.APPROVED, None)
    audit.record(
        session,
        actor=actor.username,
        action="promotion.apply",
        entity_type="model_version",
        entity_id=version.id,
        summary=f"{model.name} v{version.number} moved from {from_stage} to "
        f"{request.target_stage}"
        + (f"; v{previous} archived" if previous is not None else "")
        + f" (request #{request.id})",
        before={"stage": from_stage, "holder": previous},
        after={"stage": request.target_stage, "approved_by": approvers},
    )
    side_effects.plan(session, request, version, approved_by=approvers, webhook_configured=webhook)
