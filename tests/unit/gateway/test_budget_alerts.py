"""Budget alerts to a real HTTP receiver on loopback: one signed POST per warning level
crossed, the highest only when spend jumps past several, failures tried again with the same
delivery id, once however many checks run together, and who may check and see them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import col, select

from models.team import TeamCreate
from models.usage import BudgetAlert, UsageSource
from models.user import Role
from services import teams
from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database
from services.errors import PermissionDenied
from services.gateway import budget_alerts
from services.gateway.ingest import ingest
from services.webhooks import SIGNATURE_HEADER, verify
from tests.conftest import make_user
from tests.unit.gateway.support import litellm, write_lines
from tests.webhook_receiver import Receiver, serve_receiver

TODAY = date(2026, 11, 11)
SECRET = "budget-hook-secret-of-at-least-32-chars"
CLI = Actor.command_line()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver("/hooks/budget") as hook:
        yield hook


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> Settings:
    monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def payments(db: Database, admin: Actor) -> str:
    """A team with a $1.00 monthly budget and warnings at 80, 90 and 100 %."""
    teams.create_team(db, actor=admin, data=TeamCreate(name="Payments", monthly_budget=Decimal(1)))
    return "Payments"


def spend(db: Database, folder: Path, name: str, dollars: list[float]) -> None:
    """Requests of Payments on November 1st onwards, one a day, costing ``dollars``."""
    records = [
        litellm(f"{name}-{i}", datetime(2026, 11, 1 + i, 12, tzinfo=UTC).timestamp(),
                response_cost=cost)
        for i, cost in enumerate(dollars)
    ]  # fmt: skip
    location = str(write_lines(folder / f"{name}.jsonl", records))
    ingest(db, get_settings(), actor=CLI, location=location, source=UsageSource.LITELLM)


def events(receiver: Receiver) -> list[dict[str, object]]:
    return [json.loads(d.body) for d in receiver.deliveries]


def test_crossing_a_level_posts_one_signed_alert(
    db: Database, hooked: Settings, receiver: Receiver, payments: str, tmp_path: Path
) -> None:
    spend(db, tmp_path, "a", [0.50, 0.35])  # $0.85 of $1.00
    run = budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert run.summary() == "alerts_sent=1 alerts_failed=0"

    (delivery,) = receiver.deliveries
    assert delivery.path == "/hooks/budget"
    assert delivery.headers["X-Portal-Event"] == "budget.threshold_crossed"
    assert verify(SECRET, delivery.body, delivery.headers[SIGNATURE_HEADER])
    event = json.loads(delivery.body)
    assert (event["team"], event["period"], event["level_percent"]) == (
        "Payments", "November 2026", 80,
    )  # fmt: skip
    assert (event["budget_usd"], event["spent_usd"]) == ("1.00", "0.85")
    assert event["used_percent"] == 85.0
    assert (event["start"], event["end"]) == ("2026-11-01", "2026-11-30")

    again = budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert again.sent == [] and len(receiver.deliveries) == 1  # told once


def test_a_jump_past_several_levels_tells_the_highest_only(
    db: Database, hooked: Settings, receiver: Receiver, payments: str, tmp_path: Path
) -> None:
    spend(db, tmp_path, "a", [0.95])
    budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert [e["level_percent"] for e in events(receiver)] == [90]
    with db.read() as session:
        rows = session.exec(select(BudgetAlert).order_by(col(BudgetAlert.level))).all()
        assert [(r.level, r.status) for r in rows] == [(80, "superseded"), (90, "sent")]

    spend(db, tmp_path, "b", [0.0, 0.10])  # now $1.05: over budget
    budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert [e["level_percent"] for e in events(receiver)] == [90, 100]


def test_a_failed_delivery_is_tried_again_with_the_same_delivery_id(
    db: Database, hooked: Settings, receiver: Receiver, payments: str, tmp_path: Path
) -> None:
    spend(db, tmp_path, "a", [0.85])
    receiver.answers = [503]
    run = budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert run.sent == []
    (error,) = run.errors
    assert "Payments November 2026 80%" in error and "answered HTTP 503" in error
    with db.read() as session:
        (row,) = session.exec(select(BudgetAlert)).all()
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error is not None and "HTTP 503" in row.last_error

    retried = budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
    assert len(retried.sent) == 1 and retried.errors == []
    first, second = receiver.deliveries
    assert first.headers["X-Portal-Delivery"] == second.headers["X-Portal-Delivery"]
    with db.read() as session:
        (row,) = session.exec(select(BudgetAlert)).all()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_checks_running_together_alert_once(
    db: Database, hooked: Settings, receiver: Receiver, payments: str, tmp_path: Path
) -> None:
    spend(db, tmp_path, "a", [0.85])
    receiver.delay = 0.2  # a slow receiver widens the window a second check could use
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def check() -> None:
        start.wait()
        try:
            budget_alerts.check_alerts(db, hooked, actor=CLI, today=TODAY)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [e["level_percent"] for e in events(receiver)] == [80]


def test_without_a_webhook_nothing_is_recorded(db: Database, payments: str, tmp_path: Path) -> None:
    spend(db, tmp_path, "a", [0.95])
    run = budget_alerts.check_alerts(db, get_settings(), actor=CLI, today=TODAY)
    assert not run.configured
    assert run.summary() == "alerts=off (PORTAL_BUDGET_WEBHOOK_URL is not set)"
    with db.read() as session:
        assert session.exec(select(BudgetAlert)).all() == []


def test_a_webhook_url_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_URL", "http://127.0.0.1:9/hooks/budget")
    with pytest.raises(ValueError, match="PORTAL_BUDGET_WEBHOOK_SECRET"):
        Settings()


@pytest.mark.parametrize("role", [Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER])
def test_only_admins_and_the_command_line_check_alerts(
    db: Database, hooked: Settings, payments: str, role: Role
) -> None:
    person = make_user(db, f"someone.{role.value}", role)
    with pytest.raises(PermissionDenied):
        budget_alerts.check_alerts(db, hooked, actor=person, today=TODAY)


@pytest.mark.parametrize("role", [Role.DATA_SCIENTIST, Role.APPROVER])
def test_only_managers_and_admins_see_the_alerts(db: Database, role: Role) -> None:
    person = make_user(db, f"someone.{role.value}", role)
    with pytest.raises(PermissionDenied):
        budget_alerts.recent_alerts(db, actor=person)
    manager = make_user(db, "mo.manager", Role.MANAGER)
    assert budget_alerts.recent_alerts(db, actor=manager) == []
