"""the indexes by subject (notices) and by notice (deliveries) hold reminders only

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 14:00:00

Only a meeting or activity that changes reads them, for the reminders planned for it (0009). Every
other notice and delivery (a burst of events plans about 4.5 rows an event, a broadcast 100,000)
no longer adds an entry to them, nor does a delivery's claim and record (neither is a HOT update).
The deliveries of a notice are found by their keys instead (service_layer/recipient.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

REMINDERS_ONLY = "source_type LIKE 'reminder.%' OR source_type = 'activities.activity.reminder'"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_subject")
        batch_op.create_index(
            "ix_notifications_subject",
            ["subject_type", "subject_id"],
            unique=False,
            postgresql_where=sa.text(REMINDERS_ONLY),
            sqlite_where=sa.text(REMINDERS_ONLY),
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_notification")
        batch_op.create_index(
            "ix_deliveries_notification",
            ["notification_id"],
            unique=False,
            postgresql_where=sa.text(REMINDERS_ONLY),
            sqlite_where=sa.text(REMINDERS_ONLY),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_notification")
        batch_op.create_index("ix_deliveries_notification", ["notification_id"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_subject")
        batch_op.create_index("ix_notifications_subject", ["subject_type", "subject_id"], unique=False)
