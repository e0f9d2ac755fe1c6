"""photos: a thumbnail and the picture's size, made at upload

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:30:00

Photos stored before have no thumbnail (null): theirs is the photo itself.
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issue_photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thumbnail_file_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('width', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('height', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('issue_photos', schema=None) as batch_op:
        batch_op.drop_column('height')
        batch_op.drop_column('width')
        batch_op.drop_column('thumbnail_file_name')
