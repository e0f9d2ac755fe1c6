"""indexes for the whole city's statistics: the streets' and city's rows of the read models, and
the moments the city-wide checks read

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 06:00:00

The whole city's `/stats` reads the rows of its streets (`street:<id>`) and of the city's shards
(`city:<n>`) of the read models: a hundred streets of a city of 10,000 communities, beside their
10,000 communities' rows. Without an index on them every read scanned every community's rows (the
primary key does not serve `LIKE 'street:%'` outside the C collation): a partial index holds just
those rows. The city-wide check of what the period's cut-off days hold (StatsQueries.present) reads
help, visits and patrol records by their moment alone: indexed too.
"""

from alembic import op
import sqlalchemy as sa


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The same text as adapters/counts.py's AGGREGATE_ROWS: the planners use a partial index when the
# query's condition matches its predicate.
AGGREGATE_ROWS = "scope LIKE 'street:%' OR scope LIKE 'city:%'"
READ_MODELS = {
    "activity_counts": ("scope", "month"),
    "activity_kind_counts": ("scope", "month", "kind"),
    "activity_first_seen": ("scope", "month", "since"),
}
MOMENTS = {
    "ix_help_logs_on": ("help_logs", "helped_on"),
    "ix_welfare_visits_on": ("welfare_visits", "visited_on"),
    "ix_patrol_rounds_walked": ("patrol_rounds", "walked_at"),
    "ix_patrol_findings_recorded": ("patrol_findings", "recorded_at"),
    "ix_patrol_findings_raised": ("patrol_findings", "raised_at"),
}


def upgrade() -> None:
    for table, columns in READ_MODELS.items():
        op.create_index(
            f"ix_{table}_streets_and_city",
            table,
            list(columns),
            postgresql_where=sa.text(AGGREGATE_ROWS),
            sqlite_where=sa.text(AGGREGATE_ROWS),
        )
    for name, (table, column) in MOMENTS.items():
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, (table, _column) in MOMENTS.items():
        op.drop_index(name, table_name=table)
    for table in READ_MODELS:
        op.drop_index(f"ix_{table}_streets_and_city", table_name=table)
