"""follow-up of decisions: the action items of the decisions taken on an issue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issues') as batch_op:
        batch_op.add_column(sa.Column('action_items', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('action_items_done', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'issue_decisions',
        sa.Column('issue_id', sa.String(length=36), nullable=False),
        sa.Column('decision_id', sa.String(length=36), nullable=False),
        sa.Column('issue_effect', sa.String(length=20), nullable=True),
        sa.Column('action_items', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('complete', sa.Boolean(), nullable=False),
        sa.Column('applied', sa.Boolean(), nullable=False),
        sa.Column('event_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id']),
        sa.PrimaryKeyConstraint('issue_id', 'decision_id', name='pk_issue_decisions'),
    )


def downgrade() -> None:
    op.drop_table('issue_decisions')
    with op.batch_alter_table('issues') as batch_op:
        batch_op.drop_column('action_items_done')
        batch_op.drop_column('action_items')
