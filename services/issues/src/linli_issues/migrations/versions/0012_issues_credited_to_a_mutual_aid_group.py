"""issues: the mutual-aid group credited with finding one (a patrol finding)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:45:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credited_group_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('credited_group_name', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_column('credited_group_name')
        batch_op.drop_column('credited_group_id')
