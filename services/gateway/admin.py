"""What admins maintain for gateway usage: price overrides per model, and the mapping of IAM
principals and application inference profiles to teams for Bedrock traffic. Each change is
audited; ingestion reads both as they are when it starts."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from sqlmodel import Session, select

from models.types import utcnow
from models.usage import IdentityMapping, PriceOverride, PriceUnit
from services import audit
from services.access import Actor, require
from services.db import Database
from services.errors import NotFound, ValidationError
from services.gateway.records import TeamResolver, principal_of
from services.permissions import Permission


def set_price_override(
    db: Database,
    *,
    actor: Actor,
    model: str,
    unit: PriceUnit,
    input_price: Decimal,
    output_price: Decimal,
    cache_read_price: Decimal | None = None,
    cache_write_price: Decimal | None = None,
    note: str = "",
) -> PriceOverride:
    """Create or replace the price of ``model`` (dollars per ``unit`` of tokens)."""
    model, note = model.strip(), note.strip()
    ceiling = int(MAX_PRICE_PER_TOKEN * unit.tokens)
    problems = {
        name: f"must be from 0 to {ceiling:,}, with at most eight decimal places"
        for name, price in {
            "input_price": input_price,
            "output_price": output_price,
            "cache_read_price": cache_read_price,
            "cache_write_price": cache_write_price,
        }.items()
        if price is not None and not _fits(price, ceiling)
    }
    if not model or len(model) > 300 or _has_control_characters(model):
        problems["model"] = "required: at most 300 characters, no control characters"
    if _has_control_characters(note.replace("\n", "").replace("\t", "")):
        problems["note"] = "no control characters"
    if problems:
        summary = "; ".join(f"{name.replace('_', ' ')} {why}" for name, why in problems.items())
        raise ValidationError(
            f"Price override: {summary} (dollars per {unit.tokens:,} tokens).", fields=problems
        )
    with db.write() as session:
        user = require(session, actor, Permission.MANAGE_PRICES)
        row = session.exec(select(PriceOverride).where(PriceOverride.model == model)).one_or_none()
        before = row.model_dump(mode="json", exclude={"id"}) if row else None
        row = row or PriceOverride(
            model=model, input_price=input_price, output_price=output_price, updated_by=""
        )
        row.unit, row.input_price, row.output_price = unit.value, input_price, output_price
        row.cache_read_price, row.cache_write_price = cache_read_price, cache_write_price
        row.note, row.updated_by, row.updated_at = note, actor.username, utcnow()
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=user.username if user else actor.username,
            action="usage.price_override",
            entity_type="price_override",
            entity_id=model[:200],  # the audit column holds 200; `after` has it all
            summary=f"Set the price of {model}: {input_price} in, {output_price} out "
            f"per {unit.value} tokens",
            before=before,
            after=row.model_dump(mode="json", exclude={"id"}),
        )
        return row


MAX_PRICE_PER_TOKEN = Decimal("0.01")
"""$10,000 per million tokens, 16 times the dearest model LiteLLM prices: a higher override is
a typo, and it could cost one request more than a money column holds."""


def _fits(price: Decimal, ceiling: int) -> bool:
    """A price the ``PRICE`` column stores exactly (eight decimals) and no more than
    ``ceiling``."""
    return price.is_finite() and 0 <= price <= ceiling and price == round(price, 8)


def _has_control_characters(text: str) -> bool:
    """NUL (which PostgreSQL cannot store) and other control characters."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def set_identity_mapping(
    db: Database, *, actor: Actor, arn: str, team: str, user: str = ""
) -> IdentityMapping:
    """Map an IAM role/user ARN or an application inference profile ARN to a team."""
    arn, team, user = principal_of(arn.strip()), team.strip(), user.strip()
    if not arn.startswith("arn:") or len(arn) > 500:
        raise ValidationError(
            "Give an ARN (arn:aws:…), at most 500 characters.", fields={"arn": "not an ARN"}
        )
    if not team or len(team) > 100:
        raise ValidationError(
            "Name the team (at most 100 characters).", fields={"team": "required"}
        )
    with db.write() as session:
        acting = require(session, actor, Permission.MANAGE_TEAMS)
        row = session.exec(select(IdentityMapping).where(IdentityMapping.arn == arn)).one_or_none()
        before = row.model_dump(mode="json", exclude={"id"}) if row else None
        row = row or IdentityMapping(arn=arn, team=team, updated_by="")
        row.team, row.user, row.updated_by, row.updated_at = team, user, actor.username, utcnow()
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=acting.username if acting else actor.username,
            action="usage.identity_mapping",
            entity_type="identity_mapping",
            entity_id=arn[:200],
            summary=f"Mapped {arn} to team {team}" + (f", user {user}" if user else ""),
            before=before,
            after=row.model_dump(mode="json", exclude={"id"}),
        )
        return row


def team_resolver(session: Session) -> TeamResolver:
    """Looks a Bedrock record's team up: its application inference profile first, then its
    principal (an assumed-role session counts as its role)."""
    mappings = {m.arn: (m.team, m.user) for m in session.exec(select(IdentityMapping))}

    def resolve(arn: str, model_id: str) -> tuple[str, str]:
        if not mappings:
            return "", ""
        for key in (model_id, arn, principal_of(arn)):
            if key in mappings:
                return mappings[key]
        return "", ""

    return resolve


def list_price_overrides(db: Database, *, actor: Actor) -> list[PriceOverride]:
    with db.read() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        return list(session.exec(select(PriceOverride).order_by(PriceOverride.model)).all())


def list_identity_mappings(db: Database, *, actor: Actor) -> list[IdentityMapping]:
    with db.read() as session:
        require(session, actor, Permission.MANAGE_TEAMS)
        return list(session.exec(select(IdentityMapping).order_by(IdentityMapping.arn)).all())


def remove_price_override(db: Database, *, actor: Actor, model: str) -> None:
    """Drop an override: the model goes back to LiteLLM's price (or to unpriced). Requests
    already stored keep the cost they were ingested with."""
    with db.write() as session:
        require(session, actor, Permission.MANAGE_PRICES)
        row = session.exec(select(PriceOverride).where(PriceOverride.model == model)).one_or_none()
        if row is None:
            raise NotFound(f"No price override for {model!r}.")
        session.delete(row)
        audit.record(
            session,
            actor=actor.username,
            action="usage.price_override_removed",
            entity_type="price_override",
            entity_id=model[:200],  # the audit column holds 200; `after` has it all
            summary=f"Removed the price override of {model}",
        )


def remove_identity_mapping(db: Database, *, actor: Actor, arn: str) -> None:
    with db.write() as session:
        require(session, actor, Permission.MANAGE_TEAMS)
        row = session.exec(select(IdentityMapping).where(IdentityMapping.arn == arn)).one_or_none()
        if row is None:
            raise NotFound(f"No mapping for {arn}.")
        session.delete(row)
        audit.record(
            session,
            actor=actor.username,
            action="usage.identity_mapping_removed",
            entity_type="identity_mapping",
            entity_id=arn[:200],
            summary=f"Removed the team mapping of {arn}",
        )
