"""The systems a promotion decision is mirrored into, one module each."""

from __future__ import annotations

from typing import Any

from models.promotion import SideEffectKind
from services.config import Settings


def carry_out(settings: Settings, kind: SideEffectKind, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply one side effect. Returns what changed (``summary`` plus references to keep);
    raises a ``PortalError`` saying what failed."""
    if kind is SideEffectKind.MLFLOW_ALIAS:
        from services.promotions.targets.mlflow_alias import set_alias

        return set_alias(settings, payload)
    if kind is SideEffectKind.SAGEMAKER_APPROVAL:
        from services.promotions.targets.sagemaker_approval import set_approval

        return set_approval(settings, payload)
    from services.promotions.targets.webhook import deliver

    return deliver(settings, payload)
