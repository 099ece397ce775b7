"""What training costs: a bundled price table with its source and date, admin overrides that
win over it, and the estimate the launch form shows before anyone spends money.

SageMaker is priced per instance hour, Bedrock customization per 1,000 training tokens (times
epochs), and the local backend costs nothing beyond the machine the portal already runs on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlmodel import Session, select

from models.training import Backend, ComputePrice
from models.types import as_money, utcnow
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import NotFound, ValidationError
from services.permissions import Permission

HOUR = "hour"
THOUSAND_TOKENS = "1k tokens"

SAGEMAKER_SOURCE = "Amazon SageMaker pricing, on-demand training instances, US East (N. Virginia)"
SAGEMAKER_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
SAGEMAKER_HOURLY: dict[str, str] = {
    "ml.m5.xlarge": "0.23",
    "ml.m5.4xlarge": "0.922",
    "ml.c5.4xlarge": "0.816",
    "ml.g4dn.xlarge": "0.736",
    "ml.g4dn.12xlarge": "4.89",
    "ml.g5.xlarge": "1.408",
    "ml.g5.2xlarge": "1.515",
    "ml.g5.12xlarge": "7.09",
    "ml.g5.48xlarge": "20.36",
    "ml.p3.2xlarge": "3.825",
    "ml.p4d.24xlarge": "37.688",
    "ml.p5.48xlarge": "113.07",
    "ml.trn1.32xlarge": "24.725",
}
SPOT_DISCOUNT = Decimal("0.70")
"""What managed spot training typically saves; the real saving varies by hour and region."""


@dataclass(frozen=True)
class Price:
    backend: str
    item: str
    unit: str
    price: Decimal
    source: str
    as_of: datetime
    overridden_by: str | None = None

    @property
    def overridden(self) -> bool:
        return self.overridden_by is not None


@dataclass(frozen=True)
class Estimate:
    amount: Decimal | None  # None: no price is known, said in ``basis``
    basis: str  # how the amount was worked out, in words


def bundled_prices() -> list[Price]:
    from services.training import bedrock_models

    prices = [
        Price(Backend.SAGEMAKER.value, item, HOUR, Decimal(p), SAGEMAKER_SOURCE, SAGEMAKER_AS_OF)
        for item, p in SAGEMAKER_HOURLY.items()
    ]
    for model in bedrock_models.customizable_models():
        if model.training_price_per_1k_tokens is not None:
            prices.append(
                Price(
                    Backend.BEDROCK.value,
                    model.model_id,
                    THOUSAND_TOKENS,
                    Decimal(str(model.training_price_per_1k_tokens)),
                    bedrock_models.PRICE_SOURCE,
                    bedrock_models.PRICE_AS_OF,
                )
            )
    return prices


def price_table(session: Session) -> list[Price]:
    """Every price the portal uses: the bundled table with each admin override in its place,
    plus overrides for items the bundled table lacks."""
    overrides = {(row.backend, row.item): row for row in session.exec(select(ComputePrice))}
    table: list[Price] = []
    for price in bundled_prices():
        row = overrides.pop((price.backend, price.item), None)
        table.append(price if row is None else _from_row(row))
    table.extend(_from_row(row) for row in overrides.values())
    return sorted(table, key=lambda p: (p.backend, p.item))


def list_prices(db: Database, *, actor: Actor) -> list[Price]:
    """The price table as the Admin page shows it."""
    with db.read() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        return price_table(session)


def _from_row(row: ComputePrice) -> Price:
    return Price(
        row.backend, row.item, row.unit, row.price, row.source, row.as_of, row.overridden_by
    )


def price_of(session: Session, backend: str, item: str) -> Price | None:
    row = session.exec(
        select(ComputePrice).where(ComputePrice.backend == backend, ComputePrice.item == item)
    ).first()
    if row is not None:
        return _from_row(row)
    return next((p for p in bundled_prices() if (p.backend, p.item) == (backend, item)), None)


def parse_price(raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip().removeprefix("$"))
    except InvalidOperation:
        raise ValidationError(
            "Price: must be a number, such as 1.408.", fields={"price": "must be a number"}
        ) from None
    if not value.is_finite() or value < 0 or value >= 100_000:
        raise ValidationError(
            "Price: must be from 0 to 99,999.", fields={"price": "must be from 0 to 99,999"}
        )
    if value != value.quantize(Decimal("0.00000001")):
        raise ValidationError(
            "Price: at most eight decimal places.", fields={"price": "at most eight decimal places"}
        )
    return value


def set_price(
    db: Database, *, actor: Actor, backend: str, item: str, price: str, source: str
) -> Price:
    """Record an admin's price for an instance type or Bedrock base model (negotiated rates,
    other regions, items the bundled table lacks)."""
    value = parse_price(price)
    backend = Backend(backend).value
    item, source = item.strip(), source.strip()
    problems = {}
    if backend == Backend.LOCAL.value:
        problems["backend"] = "local training has no price"
    if not item or len(item) > 120:
        problems["item"] = "must be 1-120 characters"
    if not source or len(source) > 300:
        problems["source"] = "say where the price comes from (1-300 characters)"
    if problems:
        raise ValidationError(
            "; ".join(f"{k.capitalize()}: {v}" for k, v in problems.items()) + ".",
            fields=problems,
        )
    unit = HOUR if backend == Backend.SAGEMAKER.value else THOUSAND_TOKENS
    with db.write() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        before = price_of(session, backend, item)
        row = session.exec(
            select(ComputePrice).where(ComputePrice.backend == backend, ComputePrice.item == item)
        ).first() or ComputePrice(
            backend=backend, item=item, unit=unit, price=value, source=source, as_of=utcnow()
        )
        row.price, row.source, row.as_of, row.overridden_by = (
            value,
            source,
            utcnow(),
            actor.username,
        )
        session.add(row)
        audit.record(
            session,
            actor=actor.username,
            action="pricing.override",
            entity_type="compute_price",
            entity_id=f"{backend}:{item}",
            summary=f"Set the {backend} price of {item} to {value} per {unit}",
            before=None
            if before is None
            else {"price": str(before.price), "source": before.source},
            after={"price": str(value), "source": source},
        )
        return _from_row(row)


def clear_override(db: Database, *, actor: Actor, backend: str, item: str) -> None:
    """Go back to the bundled price (or no price, for an item only the override knew)."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        row = session.exec(
            select(ComputePrice).where(ComputePrice.backend == backend, ComputePrice.item == item)
        ).first()
        if row is None:
            raise NotFound(f"No price override for {item} on {backend}.")
        session.delete(row)
        audit.record(
            session,
            actor=actor.username,
            action="pricing.override_clear",
            entity_type="compute_price",
            entity_id=f"{backend}:{item}",
            summary=f"Removed the override of the {backend} price of {item}",
            before={"price": str(row.price), "source": row.source},
        )


def estimate(
    session: Session,
    *,
    backend: str,
    compute: dict[str, object],
    hours: float,
    tokens: int = 0,
    epochs: int = 1,
    base_model: str = "",
) -> Estimate:
    """The most a job can cost before it starts (or has cost so far, given elapsed hours)."""
    if backend == Backend.LOCAL.value:
        return Estimate(Decimal("0.00"), "Runs on the portal's own machine: no cloud charges.")
    if backend == Backend.BEDROCK.value:
        price = price_of(session, backend, base_model)
        if price is None:
            return Estimate(
                None,
                f"No training price is known for {base_model}; an admin can "
                "add one under Admin → Prices.",
            )
        amount = price.price * Decimal(tokens) / 1000 * epochs
        return Estimate(
            as_money(amount),
            f"{tokens:,} tokens × {epochs} epoch(s) × ${price.price} per 1,000 tokens "
            f"({_origin(price)}); model storage is billed monthly on top.",
        )
    instance = str(compute.get("instance_type", ""))
    count = int(str(compute.get("instance_count", 1)))
    price = price_of(session, backend, instance)
    if price is None:
        return Estimate(
            None, f"No price is known for {instance}; an admin can add one under Admin → Prices."
        )
    amount = price.price * Decimal(str(hours)) * count
    basis = f"${price.price}/hour × {hours:,.2f} h × {count} instance(s) ({_origin(price)})"
    if compute.get("spot"):
        amount *= 1 - SPOT_DISCOUNT
        basis += f", less a typical {SPOT_DISCOUNT:.0%} managed-spot saving"
    return Estimate(as_money(amount), basis)


def _origin(price: Price) -> str:
    if price.overridden_by:
        return f"set by {price.overridden_by} on {price.as_of:%Y-%m-%d}"
    return f"{price.source}, {price.as_of:%Y-%m-%d}"
