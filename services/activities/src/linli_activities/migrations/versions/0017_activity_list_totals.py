"""the totals of the lists of one community, kept by PostgreSQL with every change of their rows

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 02:30:00

A list of one community's activities said its exact total by counting all of that community's rows
of `activity_communities` with every page: thousands of rows for a busy community, more of the
database's time than the page itself. `activity_list_totals` holds the number of those rows per
community, kind and status, kept by statement triggers on `activity_communities` in the transaction
of every insert, update and delete (those of a deleted activity's cascade too), whoever writes
them; the list adds up a few of its rows instead (adapters/repository.py, `ActivityPage`). Each
statement's rows are added up per key and written in the keys' order, so two statements touching
the same communities take their rows' locks in the same order. Built here from the rows already
there, after the triggers are made: creating a trigger locks out writes of the table until this
migration commits, so nothing is counted twice or missed. The table exists on SQLite too, unused.
"""

from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The rows a statement added (+1) and removed (-1), per key, changes of nothing left out.
_ADDED = "SELECT community_id, kind, status, 1 AS change FROM new_links"
_REMOVED = "SELECT community_id, kind, status, -1 AS change FROM old_links"
_KEEP = (
    "INSERT INTO activity_list_totals AS t (community_id, kind, status, activities) "
    "SELECT community_id, kind, status, sum(change) FROM ({changes}) AS changes "
    "GROUP BY community_id, kind, status HAVING sum(change) <> 0 ORDER BY community_id, kind, status "
    "ON CONFLICT (community_id, kind, status) DO UPDATE SET activities = t.activities + excluded.activities"
)
FUNCTION = f"""CREATE OR REPLACE FUNCTION activity_list_totals_kept() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_KEEP.format(changes=_ADDED)};
    ELSIF TG_OP = 'DELETE' THEN
        {_KEEP.format(changes=_REMOVED)};
    ELSE
        {_KEEP.format(changes=_ADDED + " UNION ALL " + _REMOVED)};
    END IF;
    RETURN NULL;
END
$fn$"""
TRIGGERS = {
    "insert": "AFTER INSERT ON activity_communities REFERENCING NEW TABLE AS new_links",
    "update": "AFTER UPDATE ON activity_communities REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links",
    "delete": "AFTER DELETE ON activity_communities REFERENCING OLD TABLE AS old_links",
}
BUILD = (
    "INSERT INTO activity_list_totals (community_id, kind, status, activities) "
    "SELECT community_id, kind, status, count(*) FROM activity_communities GROUP BY community_id, kind, status"
)


def upgrade() -> None:
    op.create_table(
        "activity_list_totals",
        sa.Column("community_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("activities", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "kind", "status"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)
        for event, timing in TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER activity_list_totals_{event} {timing} "
                "FOR EACH STATEMENT EXECUTE FUNCTION activity_list_totals_kept()"
            )
        op.execute(BUILD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS activity_list_totals_{event} ON activity_communities")
        op.execute("DROP FUNCTION IF EXISTS activity_list_totals_kept()")
    op.drop_table("activity_list_totals")
