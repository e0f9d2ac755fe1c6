"""reminders of an activity's registrants before its start

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_reminders',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('activity_id', sa.String(length=36), nullable=False),
    sa.Column('lead_minutes', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('activity_id', 'lead_minutes', 'starts_at', name='uq_activity_reminders_start')
    )
    with op.batch_alter_table('activity_reminders', schema=None) as batch_op:
        batch_op.create_index('ix_activity_reminders_due', ['state', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('activity_reminders', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_reminders_due')
    op.drop_table('activity_reminders')
