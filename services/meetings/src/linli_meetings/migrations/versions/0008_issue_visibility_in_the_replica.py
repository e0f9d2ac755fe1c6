"""issue visibility in the replica: visibility, reporter and supporters of each issue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issue_replica', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visibility', sa.String(length=10), server_default='community', nullable=False))
        batch_op.add_column(sa.Column('reporter_id', sa.String(length=36), nullable=True))
    op.create_table(
        'issue_replica_supporters',
        sa.Column('issue_id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issue_replica.issue_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('issue_id', 'user_id', name='pk_issue_replica_supporters'),
    )
    with op.batch_alter_table('issue_replica_supporters', schema=None) as batch_op:
        batch_op.create_index('ix_issue_replica_supporters_user', ['user_id'], unique=False)
    # Issues replicated before visibility existed do not say who may read them: until their next
    # event brings the snapshot (with its visibility), take them as private, the safe side.
    op.execute("UPDATE issue_replica SET visibility = 'private'")


def downgrade() -> None:
    with op.batch_alter_table('issue_replica_supporters', schema=None) as batch_op:
        batch_op.drop_index('ix_issue_replica_supporters_user')
    op.drop_table('issue_replica_supporters')
    with op.batch_alter_table('issue_replica', schema=None) as batch_op:
        batch_op.drop_column('reporter_id')
        batch_op.drop_column('visibility')
