"""Cost per model version: gateway model names linked to registry versions, and what those
names were used for and cost, for the model card. Totals across teams only (no per-person
breakdown: that stays on the Usage page, under its own rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import col, select

from models.registry import ModelVersion
from models.usage import GatewayModelLink, UsageDailyTeamModel
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import Conflict, NotFound, ValidationError
from services.permissions import Permission

GATEWAY_MODEL = re.compile(r"^[A-Za-z0-9_.:/@+-]{1,300}$")


@dataclass(frozen=True)
class VersionUsage:
    gateway_models: list[str]
    start: date
    end: date
    requests: int
    cost: Decimal
    unpriced_requests: int
    daily: list[tuple[date, Decimal, int]]  # day, cost, requests


def link_gateway_model(
    db: Database, *, actor: Actor, version_id: int, gateway_model: str
) -> GatewayModelLink:
    """Say that ``gateway_model`` (as the gateway logs it) is served by this version."""
    name = gateway_model.strip()
    if not GATEWAY_MODEL.match(name):
        raise ValidationError(
            "Gateway model: the name as the gateway logs it (letters, digits and _ . : / @ + -).",
            fields={"gateway_model": "invalid name"},
        )
    with db.write() as session:
        require(session, actor, Permission.MANAGE_REGISTRY)
        if session.get(ModelVersion, version_id) is None:
            raise NotFound(f"No model version with id {version_id}.")
        taken = session.exec(
            select(GatewayModelLink).where(GatewayModelLink.gateway_model == name)
        ).first()
        if taken is not None:
            raise Conflict(f"{name!r} is already linked to another model version.")
        link = GatewayModelLink(
            gateway_model=name, model_version_id=version_id, linked_by=actor.username
        )
        session.add(link)
        session.flush()
        audit.record(
            session,
            actor=actor.username,
            action="registry.link_gateway_model",
            entity_type="model_version",
            entity_id=version_id,
            summary=f"gateway model {name!r} linked to model version {version_id}",
        )
        return link


def version_usage(
    db: Database, *, actor: Actor, version_id: int, end: date, days: int = 30
) -> VersionUsage:
    """Requests and cost of the version's gateway models over the ``days`` up to ``end``."""
    start = end - timedelta(days=days - 1)
    with db.read() as session:
        require(session, actor, Permission.VIEW_REGISTRY)
        names = list(
            session.exec(
                select(GatewayModelLink.gateway_model)
                .where(GatewayModelLink.model_version_id == version_id)
                .order_by(col(GatewayModelLink.gateway_model))
            ).all()
        )
        table = UsageDailyTeamModel.__table__  # type: ignore[attr-defined]
        rows = (
            session.execute(
                select_columns(
                    table.c.day,
                    func.sum(table.c.cost),
                    func.sum(table.c.requests),
                    func.sum(table.c.unpriced_requests),
                )
                .where(table.c.model.in_(names), table.c.day >= start, table.c.day <= end)
                .group_by(table.c.day)
                .order_by(table.c.day)
            ).all()
            if names
            else []
        )
    daily = [(day, Decimal(cost or 0), int(requests)) for day, cost, requests, _ in rows]
    return VersionUsage(
        gateway_models=names,
        start=start,
        end=end,
        requests=sum(r for _, _, r in daily),
        cost=sum((c for _, c, _ in daily), Decimal(0)).quantize(Decimal("0.01")),
        unpriced_requests=sum(int(u) for *_, u in rows),
        daily=daily,
    )
