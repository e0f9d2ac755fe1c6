"""indexes of values an issue gets later hold only the issues that have them

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 10:45:00

An issue is reported without an assignee and without the times it is accepted, resolved and
closed; the seven indexes over those columns held an entry for every issue all the same, written
with each report (about a twentieth of PostgreSQL's work on a report: seven index insertions of
its fifteen, and their WAL). They now hold only the issues with a value: every query that reads
them compares the column with something (`=`, a period's bounds, a cut-off), which no NULL
satisfies, so PostgreSQL and SQLite still use them for those queries (both prove the index's
condition from such a comparison), and they are smaller.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# name, columns, included columns (PostgreSQL only), the column a new issue leaves empty
LATER_VALUES = [
    ("ix_issues_accepted", ["accepted_at"], [], "accepted_at"),
    ("ix_issues_resolved", ["resolved_at"], [], "resolved_at"),
    ("ix_issues_closed", ["closed_at"], [], "closed_at"),
    ("ix_issues_community_accepted", ["community_id", "accepted_at"], [], "accepted_at"),
    ("ix_issues_community_resolved", ["community_id", "resolved_at"], ["created_at"], "resolved_at"),
    ("ix_issues_community_closed", ["community_id", "closed_at"], ["rating"], "closed_at"),
    ("ix_issues_assignee", ["assignee_id"], [], "assignee_id"),
]


def _included(included: list[str]) -> dict:
    return {"postgresql_include": included} if included and op.get_bind().dialect.name == "postgresql" else {}


def upgrade() -> None:
    for name, columns, included, later in LATER_VALUES:
        op.drop_index(name, table_name="issues")
        where = sa.text(f"{later} IS NOT NULL")
        op.create_index(name, "issues", columns, postgresql_where=where, sqlite_where=where, **_included(included))


def downgrade() -> None:
    for name, columns, included, _later in LATER_VALUES:
        op.drop_index(name, table_name="issues")
        op.create_index(name, "issues", columns, **_included(included))
