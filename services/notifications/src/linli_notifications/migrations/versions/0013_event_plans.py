"""plans of a batch of events, expanded into notices and deliveries after its commit

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 05:00:00

A batch of events planned its notices and deliveries in its own transaction: one insert of about
4.5 rows per event, each into tables of 5 indexes, was 58-70 % of PostgreSQL's share of the batch,
and the consumer waited for it before the next batch. Now the batch commits the arrays those rows
are made from (one row here, with its inbox rows), and another connection expands committed plans
in their order (service_layer/deferred.py). Its text columns are stored uncompressed: they are
written once and read once, and compressing a batch's megabyte took the consumer's backend longer
than storing it.

A plan whose expansion fails with an error that retrying cannot fix (a value a column refuses, a
bug) is set aside after a few tries (`failed_at`, with its last `error`), as a bad event is
dead-lettered: the plans after it go on (service_layer/deferred.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ARRAYS = (
    "source_keys",
    "source_types",
    "kinds",
    "categories",
    "urgent",
    "titles",
    "bodies",
    "params",
    "community_ids",
    "subject_types",
    "subject_ids",
    "abouts",
    "locales",
    "batch_keys",
    "expires",
    "decided",
    "channels",
    "states",
    "reasons",
    "not_before",
    "finished",
    "ids",
    "user_ids",
    "phones",
    "groups",
)


def upgrade() -> None:
    op.create_table(
        "event_plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=False) for name in ARRAYS),
        sa.Column("tries", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for name in ARRAYS:
            op.execute(f'ALTER TABLE event_plans ALTER COLUMN "{name}" SET STORAGE EXTERNAL')


def downgrade() -> None:
    op.drop_table("event_plans")
