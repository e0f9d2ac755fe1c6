"""activity proposals: residents propose activities, staff accept or decline them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity_proposals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('proposer_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('preferred_starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('place', sa.String(length=300), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=36), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('activity_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('activity_proposals', schema=None) as batch_op:
        batch_op.create_index('ix_activity_proposals_community_status', ['community_id', 'status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_proposals_proposer_id'), ['proposer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('activity_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_proposals_proposer_id'))
        batch_op.drop_index('ix_activity_proposals_community_status')
    op.drop_table('activity_proposals')
