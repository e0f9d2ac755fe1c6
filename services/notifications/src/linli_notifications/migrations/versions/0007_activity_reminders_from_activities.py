"""activity reminders come from the activities service: longer source keys, and the activity
reminders scheduled here cancelled

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:40:00

A reminder the activities service asks for is kept once per activity, lead time and start
(`activity-reminder:<activity>:<minutes>:<start>`, up to about 90 characters). The reminders this
service scheduled for activities would remind a second time: those still waiting are cancelled.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("source_key", existing_type=sa.String(length=80), type_=sa.String(length=120))
    op.execute("UPDATE reminders SET state = 'cancelled' WHERE subject_type = 'activity' AND state = 'scheduled'")


def downgrade() -> None:
    # PostgreSQL refuses while notices with keys over 80 characters (activity reminders) remain;
    # the cancelled reminders stay cancelled (the activities service sends them).
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("source_key", existing_type=sa.String(length=120), type_=sa.String(length=80))
