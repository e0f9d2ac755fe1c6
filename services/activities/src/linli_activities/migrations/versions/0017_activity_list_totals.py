"""the totals of the lists of one community, kept by PostgreSQL with every change of their rows

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 02:30:00

A list of one community's activities said its exact total by counting all of that community's rows
of `activity_communities` with every page: thousands of rows for a busy community, more of the
database's time than the page itself. `activity_list_totals` holds the number of those rows per
community, kind and status (spread over a few shards), kept by triggers on `activity_communities`
in the transaction of every insert, update and delete (those of a deleted activity's cascade too),
whoever writes them; the list adds up a few of its rows instead (adapters/repository.py,
`ActivityPage`). An update's or delete's rows are added up per key and written in the keys' order,
so two statements touching the same communities take their rows' locks in the same order. Built here from the rows already
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
# Each total is kept on SHARDS rows (its activities spread by their id), so that new activities
# of one community written at once seldom wait for one another's row: a list adds them all up.
SHARDS = 8
_SHARD = f"abs(hashtext(activity_id::text)) % {SHARDS}"
_ADDED = f"SELECT community_id, kind, status, {_SHARD} AS shard, 1 AS change FROM new_links"  # an update's new rows
_REMOVED = f"SELECT community_id, kind, status, {_SHARD} AS shard, -1 AS change FROM old_links"
_KEEP = (
    "INSERT INTO activity_list_totals AS t (community_id, kind, status, shard, activities) "
    "SELECT community_id, kind, status, shard, sum(change) FROM ({changes}) AS changes "
    "GROUP BY community_id, kind, status, shard HAVING sum(change) <> 0 "
    "ORDER BY community_id, kind, status, shard "
    "ON CONFLICT (community_id, kind, status, shard) DO UPDATE SET activities = t.activities + excluded.activities"
)
FUNCTION = f"""CREATE OR REPLACE FUNCTION activity_list_totals_kept() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        {_KEEP.format(changes=_REMOVED)};
    ELSE
        {_KEEP.format(changes=_ADDED + " UNION ALL " + _REMOVED)};
    END IF;
    RETURN NULL;
END
$fn$"""
# An insert, the hot path (every new activity), by a row trigger: a plain upsert (under concurrent
# creates of one community, the statement trigger's query of its transition table, run while
# their counts' rows were held, cost them more than half their rate). A new activity's links are
# inserted in community order (Repository.insert_new_activity), so two inserts lock the totals
# they share in the same order.
ROW_FUNCTION = f"""CREATE OR REPLACE FUNCTION activity_list_totals_added() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO activity_list_totals AS t (community_id, kind, status, shard, activities)
    VALUES (NEW.community_id, NEW.kind, NEW.status, abs(hashtext(NEW.activity_id::text)) % {SHARDS}, 1)
    ON CONFLICT (community_id, kind, status, shard) DO UPDATE SET activities = t.activities + 1;
    RETURN NULL;
END
$fn$"""
TRIGGERS = {
    "insert": "AFTER INSERT ON activity_communities FOR EACH ROW EXECUTE FUNCTION activity_list_totals_added()",
    "update": "AFTER UPDATE ON activity_communities REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links "
    "FOR EACH STATEMENT EXECUTE FUNCTION activity_list_totals_kept()",
    "delete": "AFTER DELETE ON activity_communities REFERENCING OLD TABLE AS old_links "
    "FOR EACH STATEMENT EXECUTE FUNCTION activity_list_totals_kept()",
}
BUILD = (
    "INSERT INTO activity_list_totals (community_id, kind, status, shard, activities) "
    f"SELECT community_id, kind, status, {_SHARD}, count(*) FROM activity_communities "
    f"GROUP BY community_id, kind, status, {_SHARD}"
)


def upgrade() -> None:
    op.create_table(
        "activity_list_totals",
        sa.Column("community_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("activities", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "kind", "status", "shard"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)
        op.execute(ROW_FUNCTION)
        for event, definition in TRIGGERS.items():
            op.execute(f"CREATE TRIGGER activity_list_totals_{event} {definition}")
        op.execute(BUILD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS activity_list_totals_{event} ON activity_communities")
        op.execute("DROP FUNCTION IF EXISTS activity_list_totals_kept()")
        op.execute("DROP FUNCTION IF EXISTS activity_list_totals_added()")
    op.drop_table("activity_list_totals")
