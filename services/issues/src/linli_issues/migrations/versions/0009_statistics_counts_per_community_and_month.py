"""statistics' read models: counts per community and month, kept with every change

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:30:00

A database with no issues yet has its counts built at once (empty, in the zone of LINLI_TIMEZONE);
one with issues keeps reading its history in /stats until `linli-issues rebuild-counts` builds them.
"""
import os

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FIGURES = ['raised', 'done', 'overdue', 'accepted', 'resolved', 'ratings', 'rating_sum', 'escalated',
           'compound_to_community', 'community_to_street', 'street_to_city']


def upgrade() -> None:
    op.create_table(
        'issue_month_counts',
        sa.Column('community_id', sa.String(length=36), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in FIGURES],
        sa.PrimaryKeyConstraint('community_id', 'month', name='pk_issue_month_counts'),
    )
    op.create_index('ix_issue_month_counts_month', 'issue_month_counts', ['month', 'community_id'], unique=False)
    op.create_table(
        'issue_month_breakdowns',
        sa.Column('community_id', sa.String(length=36), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'month', 'kind', 'key', name='pk_issue_month_breakdowns'),
    )
    # A street's breakdowns read this index alone on PostgreSQL (INCLUDE); SQLite ignores INCLUDE.
    op.create_index(
        'ix_issue_month_breakdowns_covering', 'issue_month_breakdowns', ['community_id', 'month', 'kind', 'key'],
        unique=False, postgresql_include=['count'],
    )
    state = op.create_table(
        'issue_counts_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=True),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    empty = op.get_bind().execute(sa.text('SELECT NOT EXISTS (SELECT 1 FROM issues)')).scalar()
    zone = os.environ.get('LINLI_TIMEZONE', 'Asia/Shanghai') if empty else None
    op.bulk_insert(state, [{'id': 1, 'zone': zone, 'built_at': None}])


def downgrade() -> None:
    op.drop_table('issue_counts_state')
    op.drop_index('ix_issue_month_breakdowns_covering', table_name='issue_month_breakdowns')
    op.drop_index('ix_issue_month_counts_month', table_name='issue_month_counts')
    op.drop_table('issue_month_breakdowns')
    op.drop_table('issue_month_counts')
