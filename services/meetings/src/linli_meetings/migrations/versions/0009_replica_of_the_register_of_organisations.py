"""replica of the register of organisations: party bodies named as participants and owners

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:31:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'directory_organisations',
        sa.Column('organisation_id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('street_id', sa.String(length=36), nullable=True),
        sa.Column('community_id', sa.String(length=36), nullable=True),
        sa.Column('compound_ids', sa.JSON(), nullable=False),
        sa.Column('parent_id', sa.String(length=36), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('organisation_id'),
    )


def downgrade() -> None:
    op.drop_table('directory_organisations')
