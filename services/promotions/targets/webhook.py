"""Tell a deployment pipeline about a decision: a signed JSON POST (``services.webhooks``)
whose event is ``promotion.approved`` or ``promotion.rejected``."""

from __future__ import annotations

from typing import Any

from services.config import Settings
from services.errors import ConfigurationError
from services.webhooks import post_signed


def deliver(settings: Settings, payload: dict[str, Any]) -> dict[str, Any]:
    url, secret = settings.promotion_webhook_url, settings.promotion_webhook_secret
    if not url or secret is None:
        raise ConfigurationError(
            "The deployment webhook is no longer configured: set PORTAL_PROMOTION_WEBHOOK_URL "
            "and PORTAL_PROMOTION_WEBHOOK_SECRET, then retry."
        )
    summary = post_signed(
        url,
        secret.get_secret_value(),
        payload,
        delivery=f"promotion-{payload['request_id']}-{payload['event']}",
        receiver="The deployment webhook",
    )
    return {"summary": summary}
