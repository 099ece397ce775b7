"""What needs a user's attention, per role, for the Home page. Later capabilities add their
items here (pending approvals, budget alerts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlmodel import col, or_, select

from models.audit import AuditChainHead
from models.dataset import Dataset, DatasetVersion, PiiStatus
from models.team import Team
from models.training import ACTIVE_STATUSES, FineTuneJob, JobStatus
from models.types import utcnow
from models.user import User
from services.access import Actor, require
from services.db import Database
from services.permissions import Permission, permissions_of


@dataclass(frozen=True)
class AttentionItem:
    severity: Literal["info", "warning", "error"]
    title: str
    detail: str
    page: str | None = None


@dataclass(frozen=True)
class AdminOverview:
    active_users: int
    disabled_users: int
    teams: int
    audit_events: int
    items: list[AttentionItem] = field(default_factory=list)


def _names(values: list[str], limit: int = 5) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def admin_overview(db: Database, *, actor: Actor) -> AdminOverview:
    """Counts for the admin's Home page and the account problems worth a look."""
    now = utcnow()
    with db.read() as session:
        require(session, actor, Permission.MANAGE_USERS)
        people = session.exec(select(User)).all()
        teams = session.exec(select(Team)).all()
        head = session.get(AuditChainHead, 1)
        audit_events = head.last_seq if head else 0
    active = [u for u in people if not u.disabled]
    locked = sorted(u.username for u in active if u.locked_until and u.locked_until > now)
    teamless = sorted(u.username for u in active if u.team_id is None)
    unbudgeted = sorted(t.name for t in teams if t.monthly_budget <= 0)
    items: list[AttentionItem] = []
    if locked:
        items.append(
            AttentionItem(
                "error",
                f"{len(locked)} locked account(s)",
                f"Locked after failed logins: {_names(locked)}.",
                "admin",
            )
        )
    if teamless:
        items.append(
            AttentionItem(
                "warning",
                f"{len(teamless)} user(s) without a team",
                f"Their usage cannot be charged to a team: {_names(teamless)}.",
                "admin",
            )
        )
    if unbudgeted:
        items.append(
            AttentionItem(
                "info",
                f"{len(unbudgeted)} team(s) without a budget",
                f"No monthly budget set: {_names(unbudgeted)}.",
                "admin",
            )
        )
    if not teams:
        items.append(
            AttentionItem(
                "info",
                "No teams yet",
                "Create teams so that models and costs have owners.",
                "admin",
            )
        )
    return AdminOverview(len(active), len(people) - len(active), len(teams), audit_events, items)


def registry_items(db: Database, *, actor: Actor) -> list[AttentionItem]:
    """Flagged datasets: approvers and admins decide on them; their registrants wait."""
    granted = permissions_of(actor.roles)
    items: list[AttentionItem] = []
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        flagged = session.exec(
            select(DatasetVersion, Dataset.name)
            .join(Dataset, col(Dataset.id) == col(DatasetVersion.dataset_id))
            .where(DatasetVersion.pii_status == PiiStatus.FLAGGED.value)
            .order_by(col(DatasetVersion.created_at))
        ).all()
    mine = [f"{name} v{v.number}" for v, name in flagged if v.created_by == actor.username]
    others = [f"{name} v{v.number}" for v, name in flagged if v.created_by != actor.username]
    if Permission.EXCEPT_DATASET_PII in granted and others:
        items.append(
            AttentionItem(
                "warning",
                f"{len(others)} dataset version(s) flagged for personal data",
                f"Fine-tuning waits for your decision on {_names(others)}.",
                "registry",
            )
        )
    if Permission.MANAGE_REGISTRY in granted and mine:
        items.append(
            AttentionItem(
                "info",
                f"{len(mine)} of your dataset version(s) flagged for personal data",
                f"An approver must accept the findings of {_names(mine)} before fine-tuning.",
                "registry",
            )
        )
    return items


def job_items(db: Database, *, actor: Actor) -> list[AttentionItem]:
    """A data scientist's own jobs: running or queued, failed lately, finished but unregistered."""
    since = utcnow() - timedelta(days=7)
    with db.read() as session:
        require(session, actor, Permission.LAUNCH_JOBS)
        mine = session.exec(
            select(FineTuneJob).where(
                FineTuneJob.owner == actor.username,
                or_(
                    col(FineTuneJob.status).in_(ACTIVE_STATUSES),
                    col(FineTuneJob.finished_at) >= since,
                ),
            )
        ).all()
    active = [j.name for j in mine if j.status in ACTIVE_STATUSES]
    failed = [j.name for j in mine if j.status == JobStatus.FAILED.value]
    unregistered = [
        j.name for j in mine if j.status == JobStatus.COMPLETED.value and j.model_version_id is None
    ]
    items: list[AttentionItem] = []
    if failed:
        items.append(
            AttentionItem(
                "warning",
                f"{len(failed)} of your fine-tuning job(s) failed this week",
                f"{_names(failed)}: the job page says why.",
                "fine-tuning",
            )
        )
    if unregistered:
        items.append(
            AttentionItem(
                "info",
                f"{len(unregistered)} finished job(s) not registered yet",
                f"Register {_names(unregistered)} as model versions to compare and promote them.",
                "fine-tuning",
            )
        )
    if active:
        items.append(
            AttentionItem(
                "info",
                f"{len(active)} of your job(s) running or queued",
                f"{_names(active)}.",
                "fine-tuning",
            )
        )
    return items
