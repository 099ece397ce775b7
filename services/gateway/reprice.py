"""Pricing the past: when an admin sets a price for a model that had none, the requests
already stored as unpriced get their cost, and the rollups move with them in the same
transaction (unpriced count down, cost up), so every report agrees. Requests whose raw
events were pruned stay unpriced in the rollups; the result says how many were priced."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlmodel import select

from models.usage import ROLLUP_KEY, PriceOverride, UsageEvent
from services import audit
from services.access import Actor, require
from services.db import Database
from services.gateway import storage
from services.gateway.pricing import PriceBook
from services.permissions import Permission

BATCH = 5_000


def reprice_unpriced(db: Database, *, actor: Actor, model: str) -> int:
    """Cost the stored unpriced requests of ``model`` with its price now; returns how many."""
    with db.read() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        book = PriceBook(session.exec(select(PriceOverride)).all())
    price = book.price_of(model)
    if price is None:
        return 0
    done = 0
    while True:
        with db.transaction() as session:
            events = session.exec(
                select(UsageEvent)
                .where(UsageEvent.model == model, UsageEvent.priced == False)  # noqa: E712
                .limit(BATCH)
            ).all()
            if not events:
                break
            deltas: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
            for event in events:
                cost = price.cost(
                    event.input_tokens,
                    event.output_tokens,
                    event.cache_read_tokens,
                    event.cache_write_tokens,
                )
                session.exec(
                    update(UsageEvent)
                    .where(UsageEvent.id == event.id)  # type: ignore[arg-type]
                    .values(cost=cost, priced=True)
                )
                key = (
                    event.day, event.team, event.user, event.api_key_alias, event.model,
                    event.provider, storage.tag_key(event.tags),
                )  # fmt: skip
                deltas[key][0] += 1
                deltas[key][1] += cost
            storage.add_to_rollups(session, [_delta(k, n, c) for k, (n, c) in deltas.items()])
            done += len(events)
    if done:
        with db.write() as session:
            audit.record(
                session,
                actor=actor.username,
                action="usage.reprice",
                entity_type="price_override",
                entity_id=model,
                summary=f"priced {done:,} stored requests of {model} that had no price",
            )
    return done


def _delta(key: tuple[Any, ...], requests: int, cost: Decimal) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(ROLLUP_KEY, key, strict=True))
    row.update(dict.fromkeys(storage.COUNTERS, 0))
    row["unpriced_requests"] = -requests
    row["cost"] = cost
    return row
