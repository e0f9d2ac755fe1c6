"""covering indexes for statistics (PostgreSQL INCLUDE; plain indexes on SQLite)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:45:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# name, columns, included columns (PostgreSQL only: the statistics then read the index alone)
COVERING = [
    ('ix_issues_community_created', ['community_id', 'created_at'], ['status', 'overdue_at', 'category', 'tier']),
    ('ix_issues_community_resolved', ['community_id', 'resolved_at'], ['created_at']),
    ('ix_issues_community_closed', ['community_id', 'closed_at'], ['rating']),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite has no INCLUDE; the plain indexes of 0002 and 0004 stay
    for name, columns, included in COVERING:
        op.drop_index(name, table_name='issues')
        op.create_index(name, 'issues', columns, unique=False, postgresql_include=included)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for name, columns, _included in COVERING:
        op.drop_index(name, table_name='issues')
        op.create_index(name, 'issues', columns, unique=False)
