"""meeting proposals: a resident proposes a meeting on an issue; staff accept or decline

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'meeting_proposals',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('community_id', sa.String(length=36), nullable=False),
        sa.Column('issue_id', sa.String(length=36), nullable=False),
        sa.Column('proposer_id', sa.String(length=36), nullable=False),
        sa.Column('meeting_type', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by', sa.String(length=36), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('meeting_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('meeting_proposals', schema=None) as batch_op:
        batch_op.create_index(
            'ix_meeting_proposals_community_status', ['community_id', 'status', 'created_at'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_meeting_proposals_proposer_id'), ['proposer_id'], unique=False)
        batch_op.create_index(
            'uq_meeting_proposals_pending',
            ['issue_id', 'proposer_id'],
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table('meeting_proposals', schema=None) as batch_op:
        batch_op.drop_index(
            'uq_meeting_proposals_pending',
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f('ix_meeting_proposals_proposer_id'))
        batch_op.drop_index('ix_meeting_proposals_community_status')
    op.drop_table('meeting_proposals')
