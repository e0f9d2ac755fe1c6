"""statistics' read models: street rows instead of one whole-city row, hours to resolve counted

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:40:00

The whole city's row of counts (community "*"), which every change updated, gives way to a row per
street (`street:<street id>`); issues resolved are also counted by the whole hours they took. A
database with issues keeps reading its history in /stats until `linli-issues rebuild-counts` builds
the new counts; an empty one keeps its counts (empty) in use.
"""
from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('issue_month_counts', 'issue_month_breakdowns'):
        with op.batch_alter_table(table) as batch:
            batch.alter_column('community_id', type_=sa.String(length=48), existing_nullable=False)
    op.execute("DELETE FROM issue_month_counts WHERE community_id = '*'")
    op.execute("DELETE FROM issue_month_breakdowns WHERE community_id = '*'")
    op.execute("UPDATE issue_counts_state SET zone = NULL, built_at = NULL WHERE EXISTS (SELECT 1 FROM issues)")


def downgrade() -> None:
    op.execute("DELETE FROM issue_month_breakdowns WHERE kind = 'hours' OR community_id LIKE 'street:%'")
    op.execute("DELETE FROM issue_month_counts WHERE community_id LIKE 'street:%'")
    op.execute("UPDATE issue_counts_state SET zone = NULL, built_at = NULL WHERE EXISTS (SELECT 1 FROM issues)")
    for table in ('issue_month_counts', 'issue_month_breakdowns'):
        with op.batch_alter_table(table) as batch:
            batch.alter_column('community_id', type_=sa.String(length=36), existing_nullable=False)
