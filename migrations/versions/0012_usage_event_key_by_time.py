"""usage events keyed by time, source and request id

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:40:00.000000

The unique key that makes an ingest idempotent was (source, request_id): request ids are
random, so every stored event landed on a random page of its index, and once the index
outgrew the page cache each transaction rewrote most of it (an ingest into a database of 3
million events ran at under half the speed of one into an empty database). Led by the
request's time, the key grows at its end as events arrive in the order they are logged.
The same record logged twice has the same time, so it still counts once.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_event") as batch_op:
        batch_op.drop_constraint("uq_usage_event_request", type_="unique")
        batch_op.create_unique_constraint(
            "uq_usage_event_record", ["occurred_at", "source", "request_id"]
        )


def downgrade() -> None:
    # Fails if the same request id was stored at two times (two records, by this key).
    with op.batch_alter_table("usage_event") as batch_op:
        batch_op.drop_constraint("uq_usage_event_record", type_="unique")
        batch_op.create_unique_constraint("uq_usage_event_request", ["source", "request_id"])
