"""covering indexes for statistics (PostgreSQL INCLUDE; plain indexes on SQLite)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:15:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CHANGED = [
    ('activity_communities', 'ix_activity_communities_community_starts', ['community_id', 'starts_at'],
     ['activity_id', 'kind', 'status']),
    ('checkins', 'ix_checkins_community_at', ['community_id', 'checked_in_at'], ['participants', 'user_id']),
    ('help_logs', 'ix_help_logs_community_on', ['community_id', 'helped_on'], ['hours']),
]


def upgrade() -> None:
    for table, name, columns, include in CHANGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False, postgresql_include=include)


def downgrade() -> None:
    for table, name, columns, _include in CHANGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
