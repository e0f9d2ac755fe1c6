"""Web Push subscriptions as devices: their keys, and room for a push service's endpoint URL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:45:00

A Web Push device (provider `webpush`, platform `web`) keeps its subscription's endpoint URL as
its token and the browser's keys (p256dh, auth) in `push_keys`; an endpoint URL can be longer than
the app push tokens the column was sized for.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_keys", sa.JSON(), nullable=True))
        batch_op.alter_column(
            "token", existing_type=sa.String(length=512), type_=sa.String(length=1024), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.alter_column(
            "token", existing_type=sa.String(length=1024), type_=sa.String(length=512), existing_nullable=False
        )
        batch_op.drop_column("push_keys")
