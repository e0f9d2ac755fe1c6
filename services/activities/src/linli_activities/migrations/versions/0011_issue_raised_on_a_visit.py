"""welfare visits: the issue raised on the spot

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 15:40:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('welfare_visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('issue_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('welfare_visits', schema=None) as batch_op:
        batch_op.drop_column('issue_id')
