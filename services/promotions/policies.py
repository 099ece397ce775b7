"""Promotion policies: one per target stage, versioned. Saving a policy adds a revision; a
request keeps the revision it was judged under, so a later edit never changes an old verdict."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from models.promotion import TARGET_STAGES, MetricGate, PolicyUpdate, PromotionPolicy
from services import audit
from services.access import Actor, require, require_any
from services.db import Database
from services.errors import NotFound, ValidationError
from services.permissions import Permission
from services.validation import parse

GATE_LINE = re.compile(r"^\s*(?P<metric>[^<>=\s]+)\s*(?P<op><=|>=|<|>)\s*(?P<threshold>\S+)\s*$")


def parse_gates(text: str) -> list[MetricGate]:
    """Metric gates written one per line as ``metric operator threshold`` (``eval_loss < 1.2``,
    as the portal shows them); blank lines are skipped. A ValidationError names every bad line."""
    gates, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        shown = line.strip()[:60]
        match = GATE_LINE.match(line)
        if match is None:
            problems.append(
                f"Line {number} ({shown}): write metric, operator (< <= > >=) and threshold, "
                "e.g. eval_loss < 1.2"
            )
            continue
        try:
            threshold = float(match["threshold"])
        except ValueError:
            problems.append(f"Line {number} ({shown}): the threshold must be a number")
            continue
        try:
            gates.append(parse(MetricGate, {**match.groupdict(), "threshold": threshold}))
        except ValidationError as error:
            problems.append(f"Line {number} ({shown}): {str(error).rstrip('.')}")
    if problems:
        raise ValidationError(
            "Metric gates: " + "; ".join(problems) + ". Nothing was saved.",
            fields={"metric_gates": "; ".join(problems)},
        )
    return gates


def current_policy(session: Session, target_stage: str) -> PromotionPolicy:
    """The newest revision of the target stage's policy (the migration seeds revision 1)."""
    policy = session.exec(
        select(PromotionPolicy)
        .where(PromotionPolicy.target_stage == target_stage)
        .order_by(col(PromotionPolicy.revision).desc())
        .limit(1)
    ).first()
    if policy is None:
        raise NotFound(
            f"No promotion policy for {target_stage!r}; run `python -m services.cli init`."
        )
    return policy


def current_policies(db: Database, *, actor: Actor) -> dict[str, PromotionPolicy]:
    """The policy in force for each target stage."""
    with db.read() as session:
        require_any(session, actor, Permission.VIEW_PROMOTIONS, Permission.MANAGE_POLICIES)
        return {stage: current_policy(session, stage) for stage in TARGET_STAGES}


def policy_history(db: Database, *, actor: Actor, target_stage: str) -> list[PromotionPolicy]:
    """Every revision of one stage's policy, newest first."""
    with db.read() as session:
        require(session, actor, Permission.MANAGE_POLICIES)
        return list(
            session.exec(
                select(PromotionPolicy)
                .where(PromotionPolicy.target_stage == target_stage)
                .order_by(col(PromotionPolicy.revision).desc())
            ).all()
        )


def save_policy(
    db: Database, *, actor: Actor, target_stage: str, update: PolicyUpdate
) -> PromotionPolicy:
    """Add a revision of ``target_stage``'s policy; requests already filed keep theirs."""
    if target_stage not in TARGET_STAGES:
        raise ValidationError(
            f"Target stage must be one of {', '.join(TARGET_STAGES)}.",
            fields={"target_stage": "unknown stage"},
        )
    with db.write() as session:
        require(session, actor, Permission.MANAGE_POLICIES)
        before = current_policy(session, target_stage)
        policy = PromotionPolicy(
            target_stage=target_stage,
            revision=before.revision + 1,
            required_approvals=update.required_approvals,
            approver_role=update.approver_role,
            metric_gates=[g.model_dump() for g in update.metric_gates],
            block_pii=update.block_pii,
            expiry_days=update.expiry_days,
            created_by=actor.username,
        )
        session.add(policy)
        session.flush()
        audit.record(
            session,
            actor=actor.username,
            action="policy.update",
            entity_type="promotion_policy",
            entity_id=policy.id,
            summary=f"{target_stage} policy revision {policy.revision}: {describe(policy)}",
            before=_snapshot(before),
            after=_snapshot(policy),
        )
        return policy


def describe(policy: PromotionPolicy) -> str:
    """One line a person can read: approvals, who approves, gates, PII rule, expiry."""
    parts = [
        f"{policy.required_approvals} approval{'s' if policy.required_approvals != 1 else ''} "
        f"by {policy.approver_role.replace('_', ' ')}s"
    ]
    gates = policy.gates()
    parts.append("gates: " + ", ".join(g.describe() for g in gates) if gates else "no metric gates")
    parts.append("no PII-flagged data" if policy.block_pii else "PII-flagged data allowed")
    if policy.expiry_days:
        parts.append(f"pending requests expire after {policy.expiry_days} days")
    return "; ".join(parts)


def _snapshot(policy: PromotionPolicy) -> dict[str, object]:
    return {
        "revision": policy.revision,
        "required_approvals": policy.required_approvals,
        "approver_role": policy.approver_role,
        "metric_gates": policy.metric_gates,
        "block_pii": policy.block_pii,
        "expiry_days": policy.expiry_days,
    }
