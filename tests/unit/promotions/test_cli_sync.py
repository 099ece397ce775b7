"""``python -m services.cli promotions sync``: what the worker does every half minute, on
demand: side effects that failed are tried again, and the exit code says if any still fail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from models.promotion import PromotionSideEffect
from models.types import utcnow
from services import promotions
from services.cli import main
from services.config import get_settings
from services.db import Database
from tests.processes import free_port
from tests.promotion_support import Cast, file_request, model_with_versions
from tests.webhook_receiver import serve_receiver

SECRET = "s" * 40


def test_sync_retries_a_webhook_that_was_down(
    db: Database,
    db_url: str,
    people: Cast,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", db_url)
    port = free_port()
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    settings = get_settings()
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1, "staging")
    promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)  # refused
    row = promotions.list_requests(
        db, actor=people.scientist, query=promotions.RequestFilter()
    ).rows[0]
    assert row.status_label == "Approved, sync pending"

    assert main(["promotions", "sync"]) == 0  # nothing due yet: the failure backs off
    assert capsys.readouterr().out.strip().splitlines()[-1] == "expired=0 failed=0"

    with db.transaction() as session:
        session.exec(update(PromotionSideEffect).values(next_attempt_at=utcnow() - timedelta(1)))
    with serve_receiver("/", port=port) as hook:
        assert main(["promotions", "sync"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "expired=0 failed=0"
    (delivery,) = hook.deliveries
    assert b'"event":"promotion.approved"' in delivery.body
    row = promotions.list_requests(
        db, actor=people.scientist, query=promotions.RequestFilter()
    ).rows[0]
    assert row.status_label == "Approved"


def test_sync_exits_1_naming_what_still_fails(
    db: Database,
    db_url: str,
    people: Cast,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", db_url)
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_URL", url)
    monkeypatch.setenv("PORTAL_PROMOTION_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    _, (v1, _) = model_with_versions(db, people.scientist)
    request_id = file_request(db, people.scientist, v1, "staging")
    promotions.approve(db, get_settings(), actor=people.approvers[0], request_id=request_id)
    with db.transaction() as session:
        session.exec(update(PromotionSideEffect).values(next_attempt_at=utcnow() - timedelta(1)))
    assert main(["promotions", "sync"]) == 1
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "expired=0 failed=1"
    assert f"Deployment webhook: The deployment webhook at {url} did not answer" in err
