"""the index of what is due holds pending non-urgent deliveries only

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 02:30:00

`ix_deliveries_due` held `sending` deliveries too (from before `ix_deliveries_leased`, 0003), though
every query it serves asks for pending ones not urgent (the urgent have `ix_deliveries_urgent_due`):
the delivery loop's look for work walked past every claimed delivery's entry and read its row to
find it was not pending (a broadcast's 15,000 in flight: 15 ms of the server's time each look, and
the loop looks every 0.2 s), and every delivery claimed as it is planned (a broadcast's 50,000)
added an entry to it. Now its condition is that of the queries (service_layer/delivery.py,
`_pending_due`), written in literals so SQLite matches it too.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")
        batch_op.create_index(
            "ix_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending' AND urgent IS false"),
            sqlite_where=sa.text("state = 'pending' AND urgent IS 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")
        batch_op.create_index(
            "ix_deliveries_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("state IN ('pending', 'sending')"),
            sqlite_where=sa.text("state IN ('pending', 'sending')"),
        )
