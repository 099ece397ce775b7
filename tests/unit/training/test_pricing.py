"""Cost estimates before launch and the price table admins correct: what a SageMaker, Bedrock
or local job will cost, spot savings, overrides winning over the bundled table, refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.user import Role
from services.access import Actor
from services.db import Database
from services.errors import NotFound, PermissionDenied, ValidationError
from services.training import pricing
from tests.conftest import make_user


def estimate(db: Database, **kwargs: object) -> pricing.Estimate:
    with db.read() as session:
        return pricing.estimate(session, **kwargs)  # type: ignore[arg-type]


def test_sagemaker_is_price_per_hour_times_hours_times_instances(db: Database) -> None:
    result = estimate(
        db,
        backend="sagemaker",
        compute={"instance_type": "ml.g5.xlarge", "instance_count": 2},
        hours=1.5,
    )
    assert result.amount == Decimal("4.22")  # 1.408 × 1.5 × 2 = 4.224
    assert "$1.408/hour × 1.50 h × 2 instance(s)" in result.basis
    assert "SageMaker pricing" in result.basis and "2026-11-01" in result.basis


def test_managed_spot_takes_the_typical_saving_off(db: Database) -> None:
    on_demand = estimate(
        db,
        backend="sagemaker",
        hours=20.0,
        compute={"instance_type": "ml.g5.2xlarge", "instance_count": 1},
    )
    spot = estimate(
        db,
        backend="sagemaker",
        hours=20.0,
        compute={"instance_type": "ml.g5.2xlarge", "instance_count": 1, "spot": True},
    )
    assert on_demand.amount == Decimal("30.30")
    assert spot.amount == Decimal("9.09") and "managed-spot saving" in spot.basis


def test_an_unknown_instance_has_no_price_rather_than_zero(db: Database) -> None:
    result = estimate(
        db,
        backend="sagemaker",
        hours=1.0,
        compute={"instance_type": "ml.x99.huge", "instance_count": 1},
    )
    assert result.amount is None and "No price is known for ml.x99.huge" in result.basis


def test_local_jobs_cost_nothing_in_the_cloud(db: Database) -> None:
    assert estimate(db, backend="local", compute={}, hours=5.0).amount == Decimal("0.00")


def test_an_admin_override_wins_and_is_audited_and_can_be_cleared(
    db: Database, admin: Actor
) -> None:
    pricing.set_price(
        db,
        actor=admin,
        backend="sagemaker",
        item="ml.g5.xlarge",
        price="$1.00",
        source="Enterprise discount agreement 2026",
    )
    result = estimate(
        db,
        backend="sagemaker",
        hours=2.0,
        compute={"instance_type": "ml.g5.xlarge", "instance_count": 1},
    )
    assert result.amount == Decimal("2.00") and "set by root.admin" in result.basis
    with db.read() as session:
        row = next(p for p in pricing.price_table(session) if p.item == "ml.g5.xlarge")
    assert row.overridden and row.source == "Enterprise discount agreement 2026"
    pricing.clear_override(db, actor=admin, backend="sagemaker", item="ml.g5.xlarge")
    again = estimate(
        db,
        backend="sagemaker",
        hours=2.0,
        compute={"instance_type": "ml.g5.xlarge", "instance_count": 1},
    )
    assert again.amount == Decimal("2.82")
    with pytest.raises(NotFound):
        pricing.clear_override(db, actor=admin, backend="sagemaker", item="ml.g5.xlarge")


def test_an_override_can_price_an_instance_the_table_lacks(db: Database, admin: Actor) -> None:
    pricing.set_price(
        db,
        actor=admin,
        backend="sagemaker",
        item="ml.g6.xlarge",
        price="1.1",
        source="AWS price list API, eu-west-1",
    )
    result = estimate(
        db,
        backend="sagemaker",
        hours=1.0,
        compute={"instance_type": "ml.g6.xlarge", "instance_count": 1},
    )
    assert result.amount == Decimal("1.10")


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("cheap", "must be a number"),
        ("-1", "from 0 to 99,999"),
        ("1e9", "from 0 to 99,999"),
        ("0.123456789", "eight decimal places"),
        ("NaN", "from 0 to 99,999"),
    ],
)
def test_bad_prices_are_refused_and_nothing_changes(
    db: Database, admin: Actor, price: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        pricing.set_price(
            db, actor=admin, backend="sagemaker", item="ml.g5.xlarge", price=price, source="typo"
        )
    with db.read() as session:
        assert not any(p.overridden for p in pricing.price_table(session))


@pytest.mark.parametrize("role", [Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER])
def test_only_admins_set_prices(db: Database, admin: Actor, role: Role) -> None:
    actor = make_user(db, "someone", role)
    with pytest.raises(PermissionDenied):
        pricing.set_price(
            db,
            actor=actor,
            backend="sagemaker",
            item="ml.g5.xlarge",
            price="0.5",
            source="my guess",
        )
    pricing.set_price(
        db, actor=admin, backend="sagemaker", item="ml.g5.xlarge", price="0.5", source="contract"
    )
    with pytest.raises(PermissionDenied):
        pricing.clear_override(db, actor=actor, backend="sagemaker", item="ml.g5.xlarge")
