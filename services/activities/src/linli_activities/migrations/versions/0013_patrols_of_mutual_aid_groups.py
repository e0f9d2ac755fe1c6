"""patrols of mutual-aid groups: the rota's rounds and their findings

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:40:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patrol_rounds',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('route', sa.String(length=500), nullable=False),
    sa.Column('member_ids', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('walked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('walked_by', sa.String(length=36), nullable=True),
    sa.Column('report', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['mutual_aid_groups.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('patrol_rounds', schema=None) as batch_op:
        batch_op.create_index('ix_patrol_rounds_group_starts', ['group_id', 'starts_at'], unique=False)
        batch_op.create_index('ix_patrol_rounds_community_walked', ['community_id', 'walked_at'], unique=False)
    op.create_table('patrol_findings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('round_id', sa.String(length=36), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('community_id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('category', sa.String(length=80), nullable=False),
    sa.Column('urgency', sa.String(length=10), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issue_id', sa.String(length=36), nullable=True),
    sa.Column('raised_by', sa.String(length=36), nullable=True),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['round_id'], ['patrol_rounds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issue_id')
    )
    with op.batch_alter_table('patrol_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_findings_round_id'), ['round_id'], unique=False)
        batch_op.create_index('ix_patrol_findings_community_recorded', ['community_id', 'recorded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('patrol_findings', schema=None) as batch_op:
        batch_op.drop_index('ix_patrol_findings_community_recorded')
        batch_op.drop_index(batch_op.f('ix_patrol_findings_round_id'))
    op.drop_table('patrol_findings')
    with op.batch_alter_table('patrol_rounds', schema=None) as batch_op:
        batch_op.drop_index('ix_patrol_rounds_community_walked')
        batch_op.drop_index('ix_patrol_rounds_group_starts')
    op.drop_table('patrol_rounds')
