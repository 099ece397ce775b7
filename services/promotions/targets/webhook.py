"""Tell a deployment pipeline about a decision: a JSON POST signed like GitHub's and
MLflow's webhooks, so the receiver can prove the portal sent it.

Headers: ``X-Portal-Event`` (``promotion.approved`` or ``promotion.rejected``),
``X-Portal-Delivery`` (the same id on every retry of one delivery, for de-duplication) and
``X-Portal-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the shared secret>``."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

from services.config import Settings
from services.errors import ConfigurationError, ExternalServiceError

SIGNATURE_HEADER = "X-Portal-Signature-256"
TIMEOUT = (3.05, 10.0)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison); used by the tests."""
    return hmac.compare_digest(sign(secret, body), signature)


def deliver(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    url, secret = settings.promotion_webhook_url, settings.promotion_webhook_secret
    if not url or secret is None:
        raise ConfigurationError(
            "The deployment webhook is no longer configured: set PORTAL_PROMOTION_WEBHOOK_URL "
            "and PORTAL_PROMOTION_WEBHOOK_SECRET, then retry."
        )
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ai-ops-portal",
        "X-Portal-Event": str(payload["event"]),
        "X-Portal-Delivery": f"promotion-{payload['request_id']}-{payload['event']}",
        SIGNATURE_HEADER: sign(secret.get_secret_value(), body),
    }
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ExternalServiceError(
            f"The deployment webhook at {url} did not answer ({type(exc).__name__}).",
            code="Unreachable",
            detail=repr(exc),
        ) from exc
    if not 200 <= answer.status_code < 300:
        raise ExternalServiceError(
            f"The deployment webhook at {url} answered HTTP {answer.status_code}.",
            code=str(answer.status_code),
            detail=answer.text[:500],
        )
    return {"summary": f"{url} answered HTTP {answer.status_code}"}
