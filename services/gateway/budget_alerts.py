"""Budget alerts: when a team's spend crosses a warning level of one of its budgets (the
month's or a custom period's), a signed POST to ``PORTAL_BUDGET_WEBHOOK_URL``, once per team,
period and level.

A check claims each newly crossed level in a row of its own (``BudgetAlert``, unique per team,
period and level) before telling the webhook, so two checks at once alert once. When spend
jumps past several levels between two checks, only the highest is told and the lower ones are
recorded as superseded. A delivery that fails stays ``failed`` and is tried again by the next
check, with the same delivery id, so a receiver can drop a repeat.

``usage ingest`` checks after loading; ``usage alerts`` checks alone (from cron, say, for
usage that arrives through the LiteLLM callback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from models.types import utcnow
from models.usage import BudgetAlert
from services import audit
from services.access import Actor, require
from services.config import Settings
from services.db import Database
from services.errors import ExternalServiceError
from services.gateway.budgets import BudgetStatus, team_budgets, today_in
from services.permissions import Permission
from services.webhooks import post_signed

MAX_ATTEMPTS = 5
"""Deliveries of one alert before checks stop trying it (it stays listed as failed)."""
STALE_SENDING = timedelta(minutes=10)
"""How long an alert stays with a check that took it and never said how the delivery went."""
EVENT = "budget.threshold_crossed"


@dataclass
class AlertRun:
    """What one check did: alerts told, and the errors of those that could not be."""

    sent: list[BudgetAlert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    configured: bool = True

    def summary(self) -> str:
        if not self.configured:
            return "alerts=off (PORTAL_BUDGET_WEBHOOK_URL is not set)"
        return f"alerts_sent={len(self.sent)} alerts_failed={len(self.errors)}"


def check_alerts(
    db: Database, settings: Settings, *, actor: Actor, today: date | None = None
) -> AlertRun:
    """Tell the webhook of every budget warning level crossed and not yet told."""
    with db.read() as session:
        require(session, actor, Permission.INGEST_USAGE)
    if not settings.budget_webhook_url or settings.budget_webhook_secret is None:
        return AlertRun(configured=False)
    today = today or today_in(settings)
    for status in team_budgets(db, settings, actor=actor, today=today):
        _claim(db, status)
    run = AlertRun()
    with db.read() as session:
        due = session.exec(
            select(BudgetAlert)
            .where(col(BudgetAlert.status).in_(("pending", "failed", "sending")))
            .where(BudgetAlert.attempts < MAX_ATTEMPTS)
            .order_by(col(BudgetAlert.id))
        ).all()
    for alert in due:
        if _take(db, alert):
            _deliver(db, settings, alert, run)
    return run


def recent_alerts(db: Database, *, actor: Actor, limit: int = 50) -> list[BudgetAlert]:
    """The latest alerts, newest first, for the people who see every team's budget."""
    with db.read() as session:
        require(session, actor, Permission.VIEW_ALL_USAGE)
        return list(
            session.exec(
                select(BudgetAlert).order_by(col(BudgetAlert.id).desc()).limit(limit)
            ).all()
        )


def _claim(db: Database, status: BudgetStatus) -> None:
    """Rows for the levels ``status`` has crossed that have none yet: the highest pending,
    the others superseded. A level another check claimed first is left to it."""
    crossed = status.reached
    if not crossed:
        return
    with db.read() as session:
        known = set(
            session.exec(
                select(BudgetAlert.level).where(
                    BudgetAlert.team == status.team,
                    BudgetAlert.period == status.period,
                    BudgetAlert.period_start == status.start,
                    BudgetAlert.period_end == status.end,
                )
            ).all()
        )
    for level in (level for level in crossed if level not in known):
        try:
            with db.transaction() as session:
                session.add(
                    BudgetAlert(
                        team=status.team,
                        period=status.period,
                        period_start=status.start,
                        period_end=status.end,
                        level=level,
                        amount=status.amount,
                        spent=status.spent,
                        forecast=status.forecast,
                        status="pending" if level == crossed[-1] else "superseded",
                    )
                )
        except IntegrityError:
            continue  # another check claimed it at the same moment


def _take(db: Database, alert: BudgetAlert) -> bool:
    """Mark ``alert`` as being sent by this check; False if another check has it (one that
    stopped half-way gives it up after ``STALE_SENDING``)."""
    now = utcnow()
    with db.transaction() as session:
        taken = session.connection().execute(
            update(BudgetAlert)
            .where(col(BudgetAlert.id) == alert.id)
            .where(
                col(BudgetAlert.status).in_(("pending", "failed"))
                | (
                    (col(BudgetAlert.status) == "sending")
                    & (col(BudgetAlert.claimed_at) < now - STALE_SENDING)
                )
            )
            .values(status="sending", claimed_at=now)
        )
        return bool(taken.rowcount)


def payload(alert: BudgetAlert) -> dict[str, Any]:
    """The JSON the webhook receives."""
    used = float(alert.spent / alert.amount * 100) if alert.amount else 0.0
    return {
        "event": EVENT,
        "team": alert.team,
        "period": alert.period,
        "start": alert.period_start.isoformat(),
        "end": alert.period_end.isoformat(),
        "level_percent": alert.level,
        "budget_usd": f"{alert.amount:.2f}",
        "spent_usd": f"{alert.spent:.2f}",
        "used_percent": round(used, 1),
        "forecast_usd": f"{alert.forecast:.2f}",
        "crossed_at": alert.crossed_at.isoformat(timespec="seconds"),
    }


def _deliver(db: Database, settings: Settings, alert: BudgetAlert, run: AlertRun) -> None:
    url, secret = settings.budget_webhook_url, settings.budget_webhook_secret
    assert url and secret is not None and alert.id is not None
    try:
        post_signed(
            url,
            secret.get_secret_value(),
            payload(alert),
            delivery=f"budget-{alert.id}",
            receiver="The budget alert webhook",
        )
    except ExternalServiceError as exc:
        error = str(exc)
        run.errors.append(f"{alert.team} {alert.period} {alert.level}%: {error}")
        with db.transaction() as session:
            row = session.get(BudgetAlert, alert.id)
            assert row is not None
            row.status, row.attempts, row.last_error = "failed", row.attempts + 1, error[:500]
        return
    with db.write() as session:
        row = session.get(BudgetAlert, alert.id)
        assert row is not None
        row.status, row.attempts, row.last_error, row.sent_at = (
            "sent",
            row.attempts + 1,
            None,
            utcnow(),
        )
        audit.record(
            session,
            actor="system",
            action="usage.budget_alert",
            entity_type="team",
            entity_id=alert.team,
            summary=f"told the budget webhook: {alert.team} crossed {alert.level}% of its "
            f"{alert.period} budget (${alert.spent:,.2f} of ${alert.amount:,.2f})",
        )
    run.sent.append(alert)
