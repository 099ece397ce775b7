"""Acceptance: security properties of issue #8.

- No secret (a password, the cookie key, the AWS secret key, the webhook secret) appears in a
  page, a log line, an error message or the audit log, whatever fails.
- The login cookie: what the portal controls (signed with its key, expiry from settings, a
  tampered, foreign or expired cookie refused) and, honestly, what it cannot set.
- Lockout after five failures is proven by tests/unit/test_auth.py (service) and
  tests/e2e/test_browser.py (browser); here only what the locked-out user reads is checked
  for secrets.
- The audit chain: ``python -m services.cli audit verify`` exits 1 naming the edited or
  deleted event, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jwt
import pytest
import streamlit as st
from sqlalchemy import text
from sqlmodel import select

from models.promotion import PolicyUpdate, PromotionSideEffect
from models.team import TeamCreate
from models.usage import UsageSource
from models.user import Role, UserCreate
from pages.components.auth_views import build_authenticator
from services import audit, auth, cli, promotions, teams, users
from services.access import Actor
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.errors import AuthenticationFailed, PortalError
from services.gateway import billing, budget_alerts
from services.gateway.ingest import ingest
from services.portal_home import cookie_key
from services.promotions import policies
from tests.conftest import make_user
from tests.promotion_support import file_request, model_with_versions
from tests.ui.conftest import signed_in
from tests.unit.gateway.support import litellm, write_lines

ROOT = Path(__file__).resolve().parents[2]
COOKIE_KEY = "cookie-key-Zq8vN3xT5wLp2KmR7sYd-0123456789"
AWS_SECRET = "aws-secret-Hk4Jt9Wq2Zx7Cv1Bn6Mm"
WEBHOOK_SECRET = "webhook-secret-Pq3Rs8Tu1Vw6Xy0Za4-0123456789"
BUDGET_HOOK_SECRET = "budget-hook-secret-Wd2Fg7Hj4Kl9-0123456789"
DB_PASSWORD = "db-password-Lm5Nb2Vc8Xz"
USER_PASSWORD = "user-password-Gf7Hd3Sa9Qw"
TYPED_WRONG = "typed-wrong-Ty6Ui1Op4As"
SECRETS = (
    COOKIE_KEY,
    AWS_SECRET,
    WEBHOOK_SECRET,
    BUDGET_HOOK_SECRET,
    DB_PASSWORD,
    USER_PASSWORD,
    TYPED_WRONG,
)


def leaked(*texts: object) -> list[str]:
    joined = "\n".join(str(t) for t in texts)
    return [secret for secret in SECRETS if secret in joined]


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every secret the portal takes, set; outside services point at closed ports."""
    for name, value in {
        "PORTAL_COOKIE_KEY": COOKIE_KEY,
        "PORTAL_PROMOTION_WEBHOOK_URL": "http://127.0.0.1:9/deploy-hook",
        "PORTAL_PROMOTION_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PORTAL_BUDGET_WEBHOOK_URL": "http://127.0.0.1:9/budget-hook",
        "PORTAL_BUDGET_WEBHOOK_SECRET": BUDGET_HOOK_SECRET,
        "PORTAL_AWS_REGION": "us-east-1",
        "PORTAL_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "PORTAL_AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_no_secret_in_errors_logs_or_the_audit_log(
    db: Database,
    tmp_path: Path,
    secrets_set: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = get_settings()
    admin = make_user(db, "root.admin", Role.ADMIN)
    errors: list[str] = []
    # user creation and failed logins, up to and past the lockout
    users.create_user(
        db,
        actor=admin,
        data=UserCreate(username="dana", display_name="Dana", password=USER_PASSWORD,
                        roles=[Role.DATA_SCIENTIST]),
    )  # fmt: skip
    for password in [TYPED_WRONG] * 5 + [USER_PASSWORD]:
        with pytest.raises(AuthenticationFailed) as failed:
            auth.authenticate(db, username="dana", password=password)
        errors.append(str(failed.value))
    assert "locked" in errors[-1].lower()
    with pytest.raises(AuthenticationFailed) as unknown:
        auth.authenticate(db, username=USER_PASSWORD, password=USER_PASSWORD)
    errors.append(str(unknown.value))
    # a promotion decision whose deployment webhook cannot be reached
    dana = make_user(db, "dana.ds", Role.DATA_SCIENTIST)
    approver = make_user(db, "priya", Role.APPROVER)
    policies.save_policy(
        db, actor=admin, target_stage="staging", update=PolicyUpdate(required_approvals=1)
    )
    _, versions = model_with_versions(db, dana)
    request_id = file_request(db, dana, versions[0], stage="staging")
    promotions.approve(db, settings, actor=approver, request_id=request_id, comment="Fine.")
    errors += promotions.retry(db, settings, actor=dana, request_id=request_id)
    with db.read() as session:
        effects = session.exec(select(PromotionSideEffect)).all()
    assert any(e.last_error for e in effects), "the webhook should have failed"
    errors += [e.model_dump_json() for e in effects]
    # a budget alert whose webhook cannot be reached
    teams.create_team(db, actor=admin, data=TeamCreate(name="Payments", monthly_budget=Decimal(1)))
    spend = [litellm("r1", "2026-11-02T09:00:00Z", response_cost=0.9)]  # 90 % of $1
    usage = write_lines(tmp_path / "usage.jsonl", spend)
    cli_actor = Actor.command_line()
    ingest(db, settings, actor=cli_actor, location=str(usage), source=UsageSource.LITELLM)
    alerts = budget_alerts.check_alerts(db, settings, actor=cli_actor, today=date(2026, 11, 11))
    assert alerts.errors, "the budget webhook should have failed"
    errors += alerts.errors
    errors += [a.model_dump_json() for a in budget_alerts.recent_alerts(db, actor=admin)]
    # an AWS call that fails (nothing listens at the endpoint)
    with pytest.raises(PortalError) as aws_failure:
        billing.billed(
            settings, start=datetime(2026, 11, 1).date(), end=datetime(2026, 11, 2).date()
        )
    errors.append(f"{aws_failure.value} {aws_failure.value.detail}")
    # the command line with bad input, and with a database it cannot reach
    codes = [
        cli.main(["users", "add", "eve", "--role", "root", "--password-stdin"]),
        cli.main(["users", "disable"]),
    ]
    monkeypatch.setenv(
        "PORTAL_DATABASE_URL", f"postgresql+psycopg://portal:{DB_PASSWORD}@127.0.0.1:9/portal"
    )
    get_settings.cache_clear()
    codes.append(cli.main(["users", "list"]))
    out, err = capsys.readouterr()
    assert codes == [2, 2, 1] and "***" in err
    events, _ = audit.search_events(db, actor=admin, query=audit.AuditFilter(), limit=500, offset=0)
    audit_text = [e.model_dump_json() for e in events]
    print(
        f"tried {len(errors)} error messages, {len(caplog.records)} log records, "
        f"{len(audit_text)} audit events and the output of 3 CLI runs"
    )
    assert leaked(*errors, caplog.text, out, err, *audit_text) == []


@pytest.fixture
def app_db(secrets_set: None) -> Iterator[Database]:
    db = Database(get_settings().resolved_database_url)
    upgrade_schema(db)
    yield db
    db.dispose()


def rendered(at: object) -> str:
    """Everything an AppTest page shows, tables included."""
    parts = []
    for element in at.main:  # type: ignore[attr-defined]
        parts.append(repr(element))
    parts += [d.value.to_string() for d in at.dataframe]  # type: ignore[attr-defined]
    parts += [str(e.value) for e in at.code]  # type: ignore[attr-defined]
    return "\n".join(parts)


def test_no_secret_on_the_admin_pages(app_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """The admin page shows the settings in effect (System); secrets appear masked or not at
    all, and a user's password nowhere."""
    admin = make_user(app_db, "root.admin", Role.ADMIN)
    make_user(app_db, "dana", Role.DATA_SCIENTIST, password=USER_PASSWORD)
    teams.create_team(app_db, actor=admin, data=TeamCreate(name="Payments"))
    at = signed_in("root.admin").run()
    at.switch_page("pages/views/admin.py").run()
    assert not at.exception and at.title[0].value == "Admin"
    shown = rendered(at)
    assert "dana" in shown and "Payments" in shown  # the page did render its tables
    print(f"admin page: {len(at.dataframe)} tables, {len(shown)} characters checked")
    assert leaked(shown, caplog.text) == []


def test_the_login_cookie_is_signed_and_expires(
    db: Database, secrets_set: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the portal controls of its login cookie. The cookie itself is written by
    streamlit-authenticator's JavaScript cookie component (extra-streamlit-components): it is
    SameSite=Strict with a one-day expiry (checked in a real browser by
    tests/e2e/test_browser.py), but being written by JavaScript it cannot be HttpOnly, and it
    is not marked Secure: serve the portal over HTTPS (README). What it holds is a JWT signed
    with HS256 by the portal's key, carrying only the username and an expiry."""
    settings = get_settings()
    make_user(db, "dana", Role.DATA_SCIENTIST)
    st.session_state["logout"] = None
    cookies: dict[str, str] = {}
    monkeypatch.setattr(type(st.context), "cookies", property(lambda self: cookies))
    model = build_authenticator(db, settings).cookie_controller.cookie_model
    assert model.cookie_key == cookie_key(settings) == COOKIE_KEY
    assert model.cookie_name == settings.cookie_name
    assert model.cookie_expiry_days == settings.cookie_expiry_days == 1.0
    expiry = model._set_exp_date()
    assert abs(expiry - (time.time() + 86400)) < 60

    def token(payload: dict[str, object], key: str = COOKIE_KEY) -> str:
        return jwt.encode(payload, key, algorithm="HS256")

    good = token({"username": "dana", "exp_date": expiry})
    cases = {
        "valid": good,
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "other username, same signature": token(
            {"username": "root.admin", "exp_date": expiry}
        ).rsplit(".", 1)[0]
        + "."
        + good.rsplit(".", 1)[1],
        "signed with another key": token(
            {"username": "dana", "exp_date": expiry}, "another-portal-key-0123456789-abcdefgh"
        ),
        "expired": token(
            {"username": "dana", "exp_date": (datetime.now() - timedelta(minutes=1)).timestamp()}
        ),
        "unsigned": jwt.encode({"username": "dana", "exp_date": expiry}, "", algorithm="none"),
    }
    accepted = []
    for case, value in cases.items():
        cookies[settings.cookie_name] = value
        if model.get_cookie():
            accepted.append(case)
    print(f"login cookie: tried {', '.join(cases)}; accepted {', '.join(accepted)}")
    assert accepted == ["valid"]
    assert COOKIE_KEY not in good


def cli_process(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {"PORTAL_DATABASE_URL": url, "PORTAL_HOME": os.environ["PORTAL_HOME"]}
    env["PORTAL_COOKIE_KEY"] = COOKIE_KEY
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_audit_verify_on_the_command_line_names_the_edited_and_deleted_event(
    db: Database, db_url: str, admin: Actor
) -> None:
    for i in range(4):
        teams.create_team(db, actor=admin, data=TeamCreate(name=f"Team {i}"))
    with db.engine.begin() as conn:
        original = conn.execute(text("SELECT summary FROM audit_event WHERE seq = 3")).scalar()
        conn.execute(text("UPDATE audit_event SET summary = 'nothing happened' WHERE seq = 3"))
    edited = cli_process(db_url, "audit", "verify")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET summary = :s WHERE seq = 3"), {"s": original})
        conn.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    deleted = cli_process(db_url, "audit", "verify")
    for what, done in (("an edit", edited), ("a deletion", deleted)):
        print(f"audit verify after {what}: exit {done.returncode}: {done.stderr.strip()}")
    assert (
        edited.returncode == 1 and "BROKEN at event #3 (team.create by root.admin" in edited.stderr
    )
    assert "altered" in edited.stderr
    assert deleted.returncode == 1 and "BROKEN at event #4" in deleted.stderr
    assert "deleted" in deleted.stderr
