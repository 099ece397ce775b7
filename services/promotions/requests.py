"""Filing and withdrawing promotion requests. A request is judged against the target stage's
policy when it is filed: failing gates or flagged training data refuse it with the reasons,
and nothing is written."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models.promotion import PromotionRequest, RequestCreate, RequestStatus
from models.registry import ModelAsset, ModelVersion
from models.types import utcnow
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import Conflict, NotFound, PermissionDenied, ValidationError
from services.permissions import Permission
from services.promotions import evidence
from services.promotions.policies import current_policy


def load_request(session: Session, request_id: int, *, lock: bool = False) -> PromotionRequest:
    request = session.get(PromotionRequest, request_id, with_for_update=lock)
    if request is None:
        raise NotFound(f"No promotion request #{request_id}.")
    return request


def describe_target(request: PromotionRequest) -> str:
    ev = request.evidence
    return f"{ev.get('model', 'model')} v{ev.get('version', '?')} to {request.target_stage}"


def request_promotion(db: Database, *, actor: Actor, data: RequestCreate) -> PromotionRequest:
    """File a request to move a version to a target stage, with its evidence attached."""
    try:
        with db.write() as session:
            require(session, actor, Permission.REQUEST_PROMOTION)
            return _file(session, actor, data)
    except IntegrityError:
        # Another request for the same version and stage committed first (a double click).
        with db.read() as session:
            raise Conflict(_already_open_message(session, data)) from None


def _file(session: Session, actor: Actor, data: RequestCreate) -> PromotionRequest:
    version = session.get(ModelVersion, data.model_version_id)
    if version is None:
        raise NotFound(f"No model version with id {data.model_version_id}.")
    model = session.get(ModelAsset, version.model_id)
    assert model is not None and model.id is not None and version.id is not None
    if version.stage == data.target_stage:
        raise Conflict(f"{model.name} v{version.number} is already in {data.target_stage}.")
    open_request = _open_request(session, version.id, data.target_stage)
    if open_request is not None:
        raise Conflict(_already_open_message(session, data))
    policy = current_policy(session, data.target_stage)
    found = evidence.collect(session, model, version, data.target_stage, policy)
    reasons = evidence.blocking_reasons(found)
    if reasons:
        raise ValidationError(
            f"{model.name} v{version.number} cannot be put forward for {data.target_stage} under "
            f"policy revision {policy.revision}: " + "; ".join(reasons) + ".",
            fields={"model_version_id": "; ".join(reasons)},
        )
    now = utcnow()
    assert policy.id is not None
    request = PromotionRequest(
        model_id=model.id,
        model_version_id=version.id,
        target_stage=data.target_stage,
        policy_id=policy.id,
        requested_by=actor.username,
        justification=data.justification,
        evidence=found,
        created_at=now,
        expires_at=now + timedelta(days=policy.expiry_days) if policy.expiry_days else None,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="promotion.request",
        entity_type="promotion_request",
        entity_id=request.id,
        summary=f"requested {describe_target(request)}: {data.justification[:200]}",
        after={"policy_revision": policy.revision, "gates": found["gates"]},
    )
    return request


def _open_request(session: Session, version_id: int, stage: str) -> PromotionRequest | None:
    return session.exec(
        select(PromotionRequest).where(
            PromotionRequest.model_version_id == version_id,
            PromotionRequest.target_stage == stage,
            PromotionRequest.status == RequestStatus.PENDING.value,
        )
    ).first()


def _already_open_message(session: Session, data: RequestCreate) -> str:
    found = _open_request(session, data.model_version_id, data.target_stage)
    which = f" (#{found.id}, by {found.requested_by})" if found else ""
    return (
        f"A request to move this version to {data.target_stage} is already pending{which}; "
        "follow that one or withdraw it first."
    )


def withdraw(db: Database, *, actor: Actor, request_id: int, comment: str = "") -> PromotionRequest:
    """The requester takes back a pending request."""
    with db.write() as session:
        require(session, actor, Permission.REQUEST_PROMOTION)
        request = load_request(session, request_id, lock=True)
        if request.requested_by != actor.username:
            raise PermissionDenied("Only the person who filed a request can withdraw it.")
        ensure_pending(request)
        close(session, request, RequestStatus.WITHDRAWN, comment.strip() or None)
        audit.record(
            session,
            actor=actor.username,
            action="promotion.withdraw",
            entity_type="promotion_request",
            entity_id=request.id,
            summary=f"withdrew the request for {describe_target(request)}"
            + (f": {comment.strip()[:200]}" if comment.strip() else ""),
        )
        return request


def ensure_pending(request: PromotionRequest) -> None:
    if request.status == RequestStatus.PENDING.value and is_past_expiry(request):
        raise Conflict(
            f"Request #{request.id} expired on {request.expires_at:%Y-%m-%d %H:%M} UTC; "
            "file a new one."
        )
    if request.status != RequestStatus.PENDING.value:
        raise Conflict(
            f"Request #{request.id} is already {RequestStatus(request.status).value}; "
            "nothing was changed."
        )


def is_past_expiry(request: PromotionRequest) -> bool:
    return request.expires_at is not None and request.expires_at <= utcnow()


def close(
    session: Session, request: PromotionRequest, status: RequestStatus, comment: str | None
) -> None:
    request.status = status.value
    request.decided_at = utcnow()
    request.closing_comment = comment
    request.revision += 1
    session.add(request)


def expire_due(db: Database) -> int:
    """Close pending requests whose policy's expiry has passed. Returns how many. Cheap when
    none is due (one indexed read), so lists call it before they show requests."""
    with db.read() as session:
        if not _any_past_expiry(session):
            return 0
    with db.write() as session:
        due = session.exec(
            select(PromotionRequest).where(
                PromotionRequest.status == RequestStatus.PENDING.value,
                PromotionRequest.expires_at <= utcnow(),  # type: ignore[operator]
            )
        ).all()
        for request in due:
            close(session, request, RequestStatus.EXPIRED, "expired before enough approvals")
            audit.record(
                session,
                actor="system",
                action="promotion.expire",
                entity_type="promotion_request",
                entity_id=request.id,
                summary=f"request for {describe_target(request)} expired",
            )
        return len(due)


def _any_past_expiry(session: Session) -> bool:
    return (
        session.exec(
            select(PromotionRequest.id)
            .where(
                PromotionRequest.status == RequestStatus.PENDING.value,
                PromotionRequest.expires_at <= utcnow(),  # type: ignore[operator]
            )
            .limit(1)
        ).first()
        is not None
    )
