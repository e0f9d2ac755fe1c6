"""partial indexes on sent deliveries: address/sent_at and provider message id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_address_sent")
        batch_op.drop_index("ix_deliveries_provider_message")
        batch_op.create_index(
            "ix_deliveries_address_sent",
            ["address", "sent_at"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NOT NULL"),
            sqlite_where=sa.text("sent_at IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_deliveries_provider_message",
            ["provider", "provider_message_id"],
            unique=False,
            postgresql_where=sa.text("provider_message_id IS NOT NULL"),
            sqlite_where=sa.text("provider_message_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_provider_message")
        batch_op.drop_index("ix_deliveries_address_sent")
        batch_op.create_index("ix_deliveries_provider_message", ["provider", "provider_message_id"], unique=False)
        batch_op.create_index("ix_deliveries_address_sent", ["address", "sent_at"], unique=False)
