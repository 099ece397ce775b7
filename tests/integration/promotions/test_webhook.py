"""The deployment webhook, against a local HTTP receiver: one signed POST per decision,
failures kept pending until Retry, and each delivery made once however many runners race."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from models.promotion import PromotionSideEffect, SideEffectStatus
from models.registry import Stage
from models.types import utcnow
from services import promotions
from services.config import Settings, get_settings
from services.db import Database
from services.webhooks import SIGNATURE_HEADER, verify
from tests.integration.promotions.conftest import (
    WEBHOOK_SECRET,
    Receiver,
    effects,
    portal_version,
    status_label,
    version_row,
    webhook_settings,
)
from tests.processes import free_port
from tests.promotion_support import Cast, file_request


def approved_to_staging(db: Database, settings: Settings, people: Cast, model: str) -> int:
    """One approval takes a new version of ``model`` to staging (the seeded policy)."""
    version_id = portal_version(db, people.scientist, model)
    request_id = file_request(db, people.scientist, version_id, "staging")
    promotions.approve(db, settings, actor=people.approvers[0], request_id=request_id)
    return request_id


def test_an_approval_posts_one_signed_event_the_pipeline_can_verify(
    db: Database, hook_settings: Settings, people: Cast, receiver: Receiver
) -> None:
    version_id = portal_version(db, people.scientist, "Support Assistant")
    request_id = file_request(db, people.scientist, version_id, "production")
    promotions.approve(db, hook_settings, actor=people.approvers[0], request_id=request_id)
    assert receiver.deliveries == []  # one approval of the two production needs

    promotions.approve(db, hook_settings, actor=people.approvers[1], request_id=request_id)

    (delivery,) = receiver.deliveries
    assert delivery.path == "/hooks/promotion"
    signature = delivery.headers[SIGNATURE_HEADER]
    assert verify(WEBHOOK_SECRET, delivery.body, signature)
    assert not verify("some-other-secret-of-thirty-two-chars!!", delivery.body, signature)
    assert delivery.headers["X-Portal-Event"] == "promotion.approved"
    event = json.loads(delivery.body)
    assert event["event"] == "promotion.approved"
    assert (event["model"], event["version"], event["stage"]) == (
        "Support Assistant",
        1,
        "production",
    )
    assert event["approved_by"] == ["approver0", "approver1"]
    assert event["request_id"] == request_id
    assert status_label(db, people, request_id) == "Approved"


def test_a_rejection_posts_a_rejected_event_with_the_reason(
    db: Database, hook_settings: Settings, people: Cast, receiver: Receiver
) -> None:
    version_id = portal_version(db, people.scientist, "Support Assistant")
    request_id = file_request(db, people.scientist, version_id, "production")

    promotions.reject(
        db,
        hook_settings,
        actor=people.approvers[0],
        request_id=request_id,
        comment="Toxicity eval not run yet",
    )

    (delivery,) = receiver.deliveries
    assert verify(WEBHOOK_SECRET, delivery.body, delivery.headers[SIGNATURE_HEADER])
    event = json.loads(delivery.body)
    assert (event["event"], event["request_id"], event["approved_by"]) == (
        "promotion.rejected",
        request_id,
        [],
    )
    assert event["comment"] == "Toxicity eval not run yet"
    assert delivery.headers["X-Portal-Event"] == "promotion.rejected"


def test_a_failing_receiver_keeps_the_delivery_pending_until_retry(
    db: Database, hook_settings: Settings, people: Cast, receiver: Receiver
) -> None:
    receiver.answers = [500]
    request_id = approved_to_staging(db, hook_settings, people, "Support Assistant")

    effect = effects(db, request_id)["webhook"]
    assert effect.status == SideEffectStatus.PENDING.value
    assert "HTTP 500" in str(effect.last_error)
    assert effect.next_attempt_at > utcnow() + timedelta(seconds=30)  # backs off
    assert status_label(db, people, request_id) == "Approved, sync pending"
    assert promotions.run_due(db, hook_settings) == []  # not due yet: nothing sent
    assert len(receiver.deliveries) == 1

    assert promotions.retry(db, hook_settings, actor=people.scientist, request_id=request_id) == []

    first, second = receiver.deliveries
    assert first.body == second.body  # the same event, resent
    assert first.headers["X-Portal-Delivery"] == second.headers["X-Portal-Delivery"]
    effect = effects(db, request_id)["webhook"]
    assert (effect.status, effect.attempts, effect.last_error) == (
        SideEffectStatus.DONE.value,
        2,
        None,
    )
    assert status_label(db, people, request_id) == "Approved"


def test_a_receiver_that_is_down_is_named_in_the_error(
    db: Database, people: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/promotion"  # nothing listens there
    settings = webhook_settings(monkeypatch, url)

    request_id = approved_to_staging(db, settings, people, "Support Assistant")

    effect = effects(db, request_id)["webhook"]
    assert effect.status == SideEffectStatus.PENDING.value
    assert f"The deployment webhook at {url} did not answer" in str(effect.last_error)
    errors = promotions.retry(db, settings, actor=people.scientist, request_id=request_id)
    assert len(errors) == 1 and errors[0].startswith("Deployment webhook: ")
    assert effects(db, request_id)["webhook"].attempts == 2


def test_two_runners_at_once_deliver_each_event_exactly_once(
    db: Database, hook_settings: Settings, people: Cast, receiver: Receiver
) -> None:
    receiver.answers = [500] * 4
    requests = [approved_to_staging(db, hook_settings, people, f"Model {i}") for i in range(4)]
    assert len(receiver.deliveries) == 4
    with db.transaction() as session:  # all due again now, and the receiver is back
        session.exec(update(PromotionSideEffect).values(next_attempt_at=utcnow()))
    receiver.deliveries.clear()
    receiver.delay = 0.05  # widen the window in which both runners look at the same rows

    start = threading.Barrier(2)
    errors: list[list[str]] = []

    def runner() -> None:
        start.wait()
        errors.append(promotions.run_due(db, hook_settings))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == [[], []]
    delivered = sorted(json.loads(d.body)["request_id"] for d in receiver.deliveries)
    assert delivered == sorted(requests)
    for request_id in requests:
        effect = effects(db, request_id)["webhook"]
        assert (effect.status, effect.attempts) == (SideEffectStatus.DONE.value, 2)
        assert status_label(db, people, request_id) == "Approved"


def test_nothing_is_sent_for_a_version_that_left_the_stage_since(
    db: Database, hook_settings: Settings, people: Cast, receiver: Receiver
) -> None:
    """v1's delivery failed; v2 went to staging since. A late retry must not tell the
    pipeline to deploy v1 to staging again."""
    receiver.answers = [500]
    v1 = portal_version(db, people.scientist, "Support Assistant")
    v2 = portal_version(db, people.scientist, "Support Assistant")
    first = file_request(db, people.scientist, v1, "staging")
    promotions.approve(db, hook_settings, actor=people.approvers[0], request_id=first)
    second = file_request(db, people.scientist, v2, "staging")
    promotions.approve(db, hook_settings, actor=people.approvers[0], request_id=second)

    assert promotions.retry(db, hook_settings, actor=people.scientist, request_id=first) == []

    sent = [json.loads(d.body)["version"] for d in receiver.deliveries]
    assert sent == [1, 2]  # the failed first try of v1, then v2; no late v1
    assert version_row(db, v1).stage == Stage.ARCHIVED.value
    assert effects(db, first)["webhook"].status == SideEffectStatus.DONE.value
    assert status_label(db, people, first) == "Approved"


def test_no_webhook_configured_means_no_delivery_and_plain_approved(
    db: Database, settings: Settings, people: Cast
) -> None:
    request_id = approved_to_staging(db, settings, people, "Support Assistant")
    assert effects(db, request_id) == {}
    assert status_label(db, people, request_id) == "Approved"


def test_unconfigured_between_decision_and_retry_says_which_settings_to_set(
    db: Database,
    hook_settings: Settings,
    people: Cast,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.answers = [500]
    request_id = approved_to_staging(db, hook_settings, people, "Support Assistant")
    monkeypatch.delenv("PORTAL_PROMOTION_WEBHOOK_URL")
    monkeypatch.delenv("PORTAL_PROMOTION_WEBHOOK_SECRET")
    get_settings.cache_clear()

    errors = promotions.retry(db, get_settings(), actor=people.scientist, request_id=request_id)

    assert errors and "PORTAL_PROMOTION_WEBHOOK_URL" in errors[0]
    assert effects(db, request_id)["webhook"].status == SideEffectStatus.PENDING.value
