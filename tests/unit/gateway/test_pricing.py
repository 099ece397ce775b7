"""Prices: LiteLLM's bundled map under the names Bedrock and LiteLLM use, admin overrides that
win, and models nobody priced left unpriced instead of $0."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models.usage import PriceOverride, PriceUnit
from models.user import Role
from services.access import Actor
from services.db import Database
from services.errors import PermissionDenied
from services.gateway.admin import set_price_override
from services.gateway.pricing import PriceBook, bundled_cost_map
from services.gateway.records import parse_bedrock, parse_litellm
from tests.conftest import make_user
from tests.unit.gateway.support import bedrock, litellm

UTC_ZONE = ZoneInfo("UTC")
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def priced(book: PriceBook, record: dict) -> dict:
    row = parse_bedrock(record, UTC_ZONE, lambda arn, model: ("", ""))
    book.price_row(row)
    return row


def test_bundled_map_is_read_from_the_installed_package() -> None:
    # That reading it imports no litellm is checked in a fresh process, in test_cli.py.
    assert SONNET in bundled_cost_map()


@pytest.mark.parametrize(
    "model", [SONNET, f"us.{SONNET}", f"bedrock/{SONNET}", f"bedrock/converse/{SONNET}"]
)
def test_bedrock_ids_find_their_litellm_price(model: str) -> None:
    price = PriceBook().price_of(model)
    assert price is not None
    assert (price.input, price.output) == (Decimal("0.000003"), Decimal("0.000015"))


def test_bedrock_record_is_priced_from_tokens_including_cache_tokens() -> None:
    record = bedrock(
        "r1",
        input={
            "inputTokenCount": 1000,
            "cacheReadInputTokenCount": 2000,
            "cacheWriteInputTokenCount": 100,
        },
        output={"outputTokenCount": 200},
    )
    row = priced(PriceBook(), record)
    # 1000 × 3e-6 + 200 × 15e-6 + 2000 × 0.3e-6 + 100 × 3.75e-6
    assert row["priced"] and row["cost"] == Decimal("0.006975")


def test_model_without_any_price_is_unpriced_never_zero() -> None:
    row = priced(PriceBook(), bedrock("r1", modelId="acme.in-house-llm-v1"))
    assert row["priced"] is False and row["cost"] is None


def test_litellm_zero_cost_for_an_unknown_model_is_not_taken_as_a_price() -> None:
    row = parse_litellm(
        litellm("r1", 1795608208.0, model="in-house/llm", response_cost=0.0), UTC_ZONE
    )
    PriceBook().price_row(row)
    assert row["priced"] is False and row["cost"] is None


def test_litellm_cost_is_kept_and_a_cache_hit_costs_nothing() -> None:
    book = PriceBook()
    row = parse_litellm(litellm("r1", 1795608208.0, response_cost=0.0123), UTC_ZONE)
    book.price_row(row)
    assert row["cost"] == Decimal("0.0123") and row["priced"]
    hit = parse_litellm(litellm("r2", 1795608208.0, response_cost=0.0, cache_hit=True), UTC_ZONE)
    book.price_row(hit)
    assert hit["cost"] == 0 and hit["priced"] and hit["cache_hit"]


def test_admin_override_wins_over_the_bundled_price(db: Database, admin: Actor) -> None:
    set_price_override(
        db,
        actor=admin,
        model=SONNET,
        unit=PriceUnit.PER_1M,
        input_price=Decimal("1.50"),
        output_price=Decimal("7.50"),
        note="negotiated",
    )
    set_price_override(
        db,
        actor=admin,
        model="acme.in-house-llm-v1",
        unit=PriceUnit.PER_1K,
        input_price=Decimal("0.002"),
        output_price=Decimal("0.004"),
    )
    with db.read() as session:
        book = PriceBook(session.exec(select(PriceOverride)).all())
    # 1000 × 1.5e-6 + 100 × 7.5e-6, instead of the bundled 1000 × 3e-6 + 100 × 15e-6
    negotiated = priced(book, bedrock("r1", modelId=f"us.{SONNET}"))
    assert negotiated["cost"] == Decimal("0.00225")
    in_house = priced(book, bedrock("r2", modelId="acme.in-house-llm-v1"))
    assert in_house["priced"] and in_house["cost"] == Decimal("0.0024")


def test_only_admins_set_prices(db: Database, admin: Actor) -> None:
    manager = make_user(db, "mona", Role.MANAGER)
    with pytest.raises(PermissionDenied, match="admin"):
        set_price_override(
            db,
            actor=manager,
            model=SONNET,
            unit=PriceUnit.PER_1M,
            input_price=Decimal(1),
            output_price=Decimal(1),
        )
