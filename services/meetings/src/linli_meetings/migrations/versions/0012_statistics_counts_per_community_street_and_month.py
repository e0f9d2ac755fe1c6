"""statistics counts per community, street and month (meeting_counts), built from the history

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 00:10:00

`/stats` adds up these counts (linli_meetings.adapters.counts) instead of the history of every
meeting; they are kept with every change from now on and built here for the meetings already
there (`linli-meetings rebuild-counts` builds them again). Indexes on the local dates of
deliberations and decisions, and on the due dates of action items: `/stats` reads a few days of
those from the history.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_counts",
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("key", sa.String(length=36), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("figure", sa.String(length=20), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("level", "key", "month", "figure", "item", name="pk_meeting_counts"),
    )
    op.create_index("ix_action_items_due_date", "action_items", ["due_date"])
    op.create_index("ix_decisions_date", "decisions", ["local_date"])
    op.create_index("ix_deliberations_date", "deliberations", ["local_date"])
    # The counts of the meetings already there, with the code that keeps them (the tables are
    # those of this revision).
    from linli_meetings.adapters import counts

    counts.rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_deliberations_date", table_name="deliberations")
    op.drop_index("ix_decisions_date", table_name="decisions")
    op.drop_index("ix_action_items_due_date", table_name="action_items")
    op.drop_table("meeting_counts")
