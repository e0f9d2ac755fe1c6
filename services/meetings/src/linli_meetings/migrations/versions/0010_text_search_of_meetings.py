"""text search of meetings: title and description, Chinese included

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:45:00

SQLite: an FTS5 table with the trigram tokenizer, filled from the meetings already there and kept
by triggers. PostgreSQL: a pg_trgm GIN index over the two columns (built over the existing rows).
See linli_kit.search for why trigrams.
"""
from alembic import op

from linli_kit.search import TextIndex


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Frozen here as it was when this migration was written.
MEETING_TEXT = TextIndex('meetings', 'id', ('title', 'description'))


def upgrade() -> None:
    for statement in MEETING_TEXT.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in MEETING_TEXT.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
