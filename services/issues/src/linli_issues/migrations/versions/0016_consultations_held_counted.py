"""statistics' read models: consultations held per community, street, city and month

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 06:00:00

The whole city's overview counted its consultations held from the history (the meetings' links,
distinct meetings grouped three ways, joined to the directory replica): 126 ms of its 234 at
2,000,000 issues. `issue_consultation_counts` holds them per scope (community, `street:<id>`, `*`)
and month, `issue_meeting_consultations` what each meeting adds (adapters/consultation_counts.py);
an index on the concluded links serves the days of a month a period covers in part. A database
whose counts are built gets these built at once from its links (the issues' counts stay as they
are); one whose counts are not built gets them with `linli-issues rebuild-counts`.
"""
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

STREETS = sa.text("scope LIKE 'street:%'")
SPANNING = sa.text("item <> ''")
CONCLUDED = sa.text("status = 'concluded'")


def upgrade() -> None:
    op.create_table(
        "issue_consultation_counts",
        sa.Column("scope", sa.String(length=48), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("item", sa.String(length=7), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "month", "item", name="pk_issue_consultation_counts"),
    )
    op.create_index(
        "ix_issue_consultation_counts_streets",
        "issue_consultation_counts",
        ["month", "scope"],
        postgresql_include=["item", "held"],
        postgresql_where=STREETS,
        sqlite_where=STREETS,
    )
    op.create_table(
        "issue_meeting_consultations",
        sa.Column("meeting_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=48), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("item", sa.String(length=7), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "scope", "month", "item", name="pk_issue_meeting_consultations"),
    )
    op.create_index(
        "ix_issue_meeting_consultations_spanning",
        "issue_meeting_consultations",
        ["scope", "meeting_id"],
        postgresql_where=SPANNING,
        sqlite_where=SPANNING,
    )
    op.create_index(
        "ix_issue_meetings_concluded",
        "issue_meetings",
        ["concluded_at"],
        postgresql_include=["meeting_id", "community_id"],
        postgresql_where=CONCLUDED,
        sqlite_where=CONCLUDED,
    )
    bind = op.get_bind()
    zone = bind.execute(sa.text("SELECT zone FROM issue_counts_state WHERE id = 1")).scalar()
    if zone:
        from linli_issues.adapters import consultation_counts

        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql("LOCK TABLE issue_meetings IN SHARE ROW EXCLUSIVE MODE")
        consultation_counts.rebuild(bind, ZoneInfo(zone))


def downgrade() -> None:
    op.drop_index("ix_issue_meetings_concluded", table_name="issue_meetings")
    op.drop_index("ix_issue_meeting_consultations_spanning", table_name="issue_meeting_consultations")
    op.drop_table("issue_meeting_consultations")
    op.drop_index("ix_issue_consultation_counts_streets", table_name="issue_consultation_counts")
    op.drop_table("issue_consultation_counts")
