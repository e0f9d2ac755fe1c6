"""statistics' read models: the streets' rows indexed on their own

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 01:00:00

The whole city's overview reads the streets' rows (`street:<id>`): some 15,000 breakdown rows
among 2,500,000 at 10,000 communities. A prefix LIKE cannot use the primary key's index under a
collation other than C (the platform's databases are C.UTF-8), so PostgreSQL scanned the whole
table (200 ms); partial indexes over the streets' rows alone answer it in a few milliseconds.
"""
import sqlalchemy as sa
from alembic import op


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

STREETS = sa.text("community_id LIKE 'street:%'")


def upgrade() -> None:
    op.create_index(
        "ix_issue_month_counts_streets",
        "issue_month_counts",
        ["month", "community_id"],
        postgresql_where=STREETS,
        sqlite_where=STREETS,
    )
    op.create_index(
        "ix_issue_month_breakdowns_streets",
        "issue_month_breakdowns",
        ["month", "kind", "key"],
        postgresql_include=["community_id", "count"],
        postgresql_where=STREETS,
        sqlite_where=STREETS,
    )


def downgrade() -> None:
    op.drop_index("ix_issue_month_breakdowns_streets", table_name="issue_month_breakdowns")
    op.drop_index("ix_issue_month_counts_streets", table_name="issue_month_counts")
