"""delivery loop indexes: urgent due, expiring, leased

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_urgent_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending' AND urgent IS true"),
            sqlite_where=sa.text("state = 'pending' AND urgent IS 1"),
        )
        batch_op.create_index(
            "ix_deliveries_expiring",
            ["expires_at"],
            unique=False,
            postgresql_where=sa.text("state = 'pending' AND expires_at IS NOT NULL"),
            sqlite_where=sa.text("state = 'pending' AND expires_at IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_deliveries_leased",
            ["lease_until"],
            unique=False,
            postgresql_where=sa.text("state = 'sending'"),
            sqlite_where=sa.text("state = 'sending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_leased")
        batch_op.drop_index("ix_deliveries_expiring")
        batch_op.drop_index("ix_deliveries_urgent_due")
