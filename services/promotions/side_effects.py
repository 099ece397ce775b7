"""What an approval (or rejection) must change outside the portal, carried out reliably.

The decision's transaction writes one outbox row per side effect (MLflow alias and tags,
SageMaker approval status, the deployment webhook). ``run_due`` then carries each out; a
failure keeps the row pending with the error and a later retry time (the worker tries again
in the background, and people can press Retry). The portal's own stage is the truth
throughout: a failed side effect never undoes a decision. Each effect is idempotent
(aliases are set, not added; SageMaker's status is set; webhook deliveries carry an id)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from models.promotion import (
    PromotionRequest,
    PromotionSideEffect,
    RequestStatus,
    SideEffectKind,
    SideEffectStatus,
)
from models.registry import ModelAsset, ModelVersion
from models.types import utcnow
from services import audit
from services.access import Actor, require_any
from services.config import Settings
from services.db import Database
from services.errors import PortalError
from services.permissions import Permission
from services.promotions.targets import carry_out

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
"""How long a runner owns an effect it claimed; a crashed runner's claim lapses after this."""
MAX_BACKOFF = timedelta(hours=1)


def plan(
    session: Session,
    request: PromotionRequest,
    version: ModelVersion,
    *,
    approved_by: list[str],
    webhook_configured: bool,
) -> list[PromotionSideEffect]:
    """Write the outbox rows for a decision that has just closed ``request``."""
    model = session.get(ModelAsset, version.model_id)
    assert model is not None and request.id is not None
    approved = request.status == RequestStatus.APPROVED.value
    payload: dict[str, Any] = {
        "event": f"promotion.{request.status}",
        "request_id": request.id,
        "model": model.name,
        "model_id": model.id,
        "version": version.number,
        "version_id": version.id,
        "stage": request.target_stage,
        "approved_by": approved_by,
        "decided_at": (request.decided_at or utcnow()).isoformat(),
        "comment": request.closing_comment or "",
        "artifact_uri": version.artifact_uri,
        "mlflow_run_id": version.mlflow_run_id,
        "mlflow_model_name": version.mlflow_model_name,
        "mlflow_model_version": version.mlflow_model_version,
        "sagemaker_package_arn": version.sagemaker_package_arn,
    }
    kinds = []
    if approved and (version.mlflow_model_name or version.mlflow_run_id):
        kinds.append(SideEffectKind.MLFLOW_ALIAS)
    if version.sagemaker_package_arn:
        kinds.append(SideEffectKind.SAGEMAKER_APPROVAL)
    if webhook_configured:
        kinds.append(SideEffectKind.WEBHOOK)
    effects = [
        PromotionSideEffect(request_id=request.id, kind=k.value, payload=payload) for k in kinds
    ]
    session.add_all(effects)
    return effects


def effects_of(session: Session, request_id: int) -> list[PromotionSideEffect]:
    """A request's side effects, in the order they were planned."""
    return list(
        session.exec(
            select(PromotionSideEffect)
            .where(PromotionSideEffect.request_id == request_id)
            .order_by(col(PromotionSideEffect.id))
        ).all()
    )


def retry(db: Database, settings: Settings, *, actor: Actor, request_id: int) -> list[str]:
    """Try a request's pending side effects now. Returns the errors that remain."""
    with db.transaction() as session:
        require_any(session, actor, Permission.REQUEST_PROMOTION, Permission.APPROVE_PROMOTION)
        session.exec(
            update(PromotionSideEffect)
            .where(
                col(PromotionSideEffect.request_id) == request_id,
                col(PromotionSideEffect.status) == SideEffectStatus.PENDING.value,
            )
            .values(next_attempt_at=utcnow())
        )
    return run_due(db, settings, request_id=request_id)


def run_due(db: Database, settings: Settings, *, request_id: int | None = None) -> list[str]:
    """Carry out every side effect that is due (of one request, or all). Returns the errors."""
    errors = []
    for effect_id in _due(db, request_id):
        effect = _claim(db, effect_id)
        if effect is None:
            continue  # another runner has it
        label = SideEffectKind(effect.kind).label
        stale = _superseded(db, effect)
        if stale:
            _done(db, effect, {"summary": stale}, skipped=True)
            continue
        try:
            outcome = carry_out(settings, SideEffectKind(effect.kind), effect.payload)
        except PortalError as exc:
            _failed(db, effect, _reason(exc))
            errors.append(f"{label}: {_reason(exc)}")
        except Exception as exc:  # an unexpected failure is still only a pending effect
            log.exception("promotion side effect %s failed", effect.id)
            _failed(db, effect, f"{type(exc).__name__}: {exc}")
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
        else:
            _done(db, effect, outcome)
    return errors


def _reason(exc: PortalError) -> str:
    """The message, with the service's own error code (``AccessDeniedException``, ``500``)
    when the message does not already name it: operators search for the code."""
    code = getattr(exc, "code", None)
    return f"{exc} [{code}]" if code and code not in str(exc) else str(exc)


def _superseded(db: Database, effect: PromotionSideEffect) -> str:
    """Why an approval's effect no longer applies ("" if it does). A later decision moved the
    version out of the stage it was approved for: a late retry must not undo that decision
    outside the portal (move ``@production`` back, tell the pipeline to deploy it again)."""
    payload = effect.payload
    if payload.get("event") != f"promotion.{RequestStatus.APPROVED.value}":
        return ""
    with db.read() as session:
        version = session.get(ModelVersion, payload.get("version_id"))
    if version is None or version.stage == payload["stage"]:
        return ""
    return (
        f"{payload['model']} v{payload['version']} has left {payload['stage']} "
        f"(now {version.stage}) since this approval"
    )


def _due(db: Database, request_id: int | None) -> list[int]:
    with db.read() as session:
        stmt = select(PromotionSideEffect.id).where(
            PromotionSideEffect.status == SideEffectStatus.PENDING.value,
            col(PromotionSideEffect.next_attempt_at) <= utcnow(),
        )
        if request_id is not None:
            stmt = stmt.where(PromotionSideEffect.request_id == request_id)
        return [i for i in session.exec(stmt.order_by(col(PromotionSideEffect.id))).all() if i]


def _claim(db: Database, effect_id: int) -> PromotionSideEffect | None:
    """Take a lease on one effect with a compare-and-set, so two runners never both try it."""
    now = utcnow()
    with db.transaction() as session:
        claimed = session.exec(
            update(PromotionSideEffect)
            .where(
                col(PromotionSideEffect.id) == effect_id,
                col(PromotionSideEffect.status) == SideEffectStatus.PENDING.value,
                col(PromotionSideEffect.next_attempt_at) <= now,
            )
            .values(next_attempt_at=now + LEASE, last_attempt_at=now)
        ).rowcount
        if claimed != 1:
            return None
        return session.get(PromotionSideEffect, effect_id)


def _failed(db: Database, effect: PromotionSideEffect, error: str) -> None:
    with db.write() as session:
        row = session.get(PromotionSideEffect, effect.id)
        assert row is not None
        row.attempts += 1
        row.last_error = error[:2000]
        row.next_attempt_at = utcnow() + min(timedelta(seconds=30 * 2**row.attempts), MAX_BACKOFF)
        session.add(row)
        audit.record(
            session,
            actor="system",
            action="promotion.sync_failed",
            entity_type="promotion_request",
            entity_id=row.request_id,
            summary=f"{SideEffectKind(row.kind).label} failed (attempt {row.attempts}): "
            f"{error[:300]}",
        )


def _done(
    db: Database,
    effect: PromotionSideEffect,
    outcome: dict[str, Any],
    *,
    skipped: bool = False,
) -> None:
    with db.write() as session:
        row = session.get(PromotionSideEffect, effect.id)
        assert row is not None
        row.attempts += 1
        row.status = SideEffectStatus.DONE.value
        row.last_error = None
        row.done_at = utcnow()
        session.add(row)
        _remember_references(session, row, outcome)
        audit.record(
            session,
            actor="system",
            action="promotion.sync_skipped" if skipped else "promotion.sync",
            entity_type="promotion_request",
            entity_id=row.request_id,
            summary=f"{SideEffectKind(row.kind).label} {'skipped' if skipped else 'done'}: "
            f"{outcome.get('summary', '')}"[:500],
        )


def _remember_references(
    session: Session, effect: PromotionSideEffect, outcome: dict[str, Any]
) -> None:
    """Keep what the outside world now says about the version (its MLflow registered model
    and aliases, its SageMaker approval status) on the portal's version row."""
    fields = {
        k: outcome[k]
        for k in (
            "mlflow_model_name",
            "mlflow_model_version",
            "mlflow_aliases",
            "sagemaker_approval_status",
        )
        if k in outcome
    }
    if not fields:
        return
    version = session.get(ModelVersion, effect.payload["version_id"])
    if version is None:
        return
    for name, value in fields.items():
        setattr(version, name, value)
    session.add(version)
    if "mlflow_aliases" in fields:
        # The alias moved away from the version that held it before.
        others = session.exec(
            select(ModelVersion).where(
                ModelVersion.model_id == version.model_id, ModelVersion.id != version.id
            )
        ).all()
        for other in others:
            kept = [a for a in other.mlflow_aliases if a not in fields["mlflow_aliases"]]
            if kept != other.mlflow_aliases:
                other.mlflow_aliases = kept
                session.add(other)


def sync_state(effects: list[PromotionSideEffect]) -> str:
    """ "synced", "sync pending" or "" (nothing to sync), for lists and badges."""
    if not effects:
        return ""
    return (
        "synced"
        if all(e.status == SideEffectStatus.DONE.value for e in effects)
        else "sync pending"
    )
