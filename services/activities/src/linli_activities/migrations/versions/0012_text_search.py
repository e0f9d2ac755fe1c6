"""text search of activities, service posts, mutual-aid groups and talents, Chinese included

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:45:00

SQLite: an FTS5 table per table with the trigram tokenizer, filled from the rows already there and
kept by triggers. PostgreSQL: a pg_trgm GIN index over each table's text columns (built over the
existing rows). See linli_kit.search for why trigrams.
"""
from alembic import op

from linli_kit.search import TextIndex


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Frozen here as they were when this migration was written.
INDEXES = [
    TextIndex('activities', 'id', ('title', 'description')),
    TextIndex('service_posts', 'id', ('name', 'address')),
    TextIndex('mutual_aid_groups', 'id', ('name', 'purpose')),
    TextIndex('talents', 'id', ('display_name', 'skills', 'description')),
]


def upgrade() -> None:
    for index in INDEXES:
        for statement in index.create_statements(op.get_bind().dialect.name):
            op.execute(statement)


def downgrade() -> None:
    for index in reversed(INDEXES):
        for statement in index.drop_statements(op.get_bind().dialect.name):
            op.execute(statement)
