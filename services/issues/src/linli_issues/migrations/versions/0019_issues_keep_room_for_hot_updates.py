"""issues' pages keep room for their rows' next versions (fillfactor 70): updates stay HOT

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 23:10:00

Most changes to an issue touch no indexed column (its counts of consultations, action items and
supporters, `updated_at`, `revision`). PostgreSQL writes such an update as a heap-only tuple (HOT),
with no new entry in any of the table's indexes, only if the row's page has room for the new
version. With pages filled to the brim (the default, 100) nearly every such update of a batch went
to another page and added an entry to each of the issues' fourteen indexes (among them the title's
and description's trigram index): about 115 µs of PostgreSQL's CPU per row, against a few µs for a
HOT update. Pages are now filled to 70 % by inserts, the rest kept for updates.

Pages already full keep their rows until they are rewritten (`VACUUM FULL issues`, or as their rows
move); new and moved rows get the room. Nothing on SQLite.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE issues SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE issues RESET (fillfactor)")
