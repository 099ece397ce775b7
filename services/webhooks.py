"""Signed JSON POSTs to a receiver the organisation runs (a deployment pipeline, a chat
channel's bridge), signed like GitHub's and MLflow's webhooks so the receiver can prove the
portal sent them.

Headers: ``X-Portal-Event`` (what happened), ``X-Portal-Delivery`` (the same id on every retry
of one delivery, for de-duplication) and ``X-Portal-Signature-256: sha256=<hex HMAC-SHA256 of
the raw body with the shared secret>``."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import requests

from services.errors import ExternalServiceError

SIGNATURE_HEADER = "X-Portal-Signature-256"
TIMEOUT = (3.05, 10.0)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (constant-time comparison); used by the tests."""
    return hmac.compare_digest(sign(secret, body), signature)


def post_signed(
    url: str, secret: str, payload: dict[str, Any], *, delivery: str, receiver: str
) -> str:
    """POST ``payload`` (its ``event`` names the event) to ``url``; returns a summary of the
    answer. ``receiver`` names it in errors ("The deployment webhook")."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ai-ops-portal",
        "X-Portal-Event": str(payload["event"]),
        "X-Portal-Delivery": delivery,
        SIGNATURE_HEADER: sign(secret, body),
    }
    try:
        answer = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ExternalServiceError(
            f"{receiver} at {url} did not answer ({type(exc).__name__}).",
            code="Unreachable",
            detail=repr(exc),
        ) from exc
    if not 200 <= answer.status_code < 300:
        raise ExternalServiceError(
            f"{receiver} at {url} answered HTTP {answer.status_code}.",
            code=str(answer.status_code),
            detail=answer.text[:500],
        )
    return f"{url} answered HTTP {answer.status_code}"
