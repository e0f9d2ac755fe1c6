"""statistics' read models in writers' shards; issues counted per community and status

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 14:00:00

Every report of a community added to its month's row of counts, which stayed locked until the
report committed (its WAL flush included): concurrent reports of one community committed one at a
time. The counts' rows gain a `shard`: each writer adds to the rows of the writers' slot it holds
(adapters/counters.py), and a key's figures are the sum of its shards. `issue_status_counts` holds
how many issues each community has in each status (the exact total of a list page filtered by
community and status), filled here from the issues.
"""
from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SHARD = sa.text("0")
FIGURES = ["raised", "done", "overdue", "accepted", "resolved", "ratings", "rating_sum", "escalated",
           "compound_to_community", "community_to_street", "street_to_city"]


def upgrade() -> None:
    with op.batch_alter_table("issue_month_counts") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default=SHARD))
        batch.drop_constraint("pk_issue_month_counts", type_="primary")
        batch.create_primary_key("pk_issue_month_counts", ["community_id", "month", "shard"])
    with op.batch_alter_table("issue_month_breakdowns") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default=SHARD))
        batch.drop_constraint("pk_issue_month_breakdowns", type_="primary")
        batch.create_primary_key("pk_issue_month_breakdowns", ["community_id", "month", "kind", "key", "shard"])
    op.create_table(
        "issue_status_counts",
        sa.Column("community_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False, server_default=SHARD),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community_id", "status", "shard", name="pk_issue_status_counts"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # No issue is added or moved while they are counted (writers wait for the migration).
        bind.exec_driver_sql("LOCK TABLE issues IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO issue_status_counts (community_id, status, shard, count) "
        "SELECT community_id, status, 0, count(*) FROM issues GROUP BY community_id, status"
    )


def downgrade() -> None:
    op.drop_table("issue_status_counts")
    for table, key in (
        ("issue_month_counts", ["community_id", "month"]),
        ("issue_month_breakdowns", ["community_id", "month", "kind", "key"]),
    ):
        columns = ", ".join(key)
        figures = FIGURES if table == "issue_month_counts" else ["count"]
        sums = ", ".join(f"sum({name}) AS {name}" for name in figures)
        # The shards summed into shard 0, then the column goes.
        op.execute(f"CREATE TEMPORARY TABLE folded AS SELECT {columns}, {sums} FROM {table} GROUP BY {columns}")
        op.execute(f"DELETE FROM {table}")
        op.execute(f"INSERT INTO {table} ({columns}, {', '.join(figures)}, shard) SELECT *, 0 FROM folded")
        op.execute("DROP TABLE folded")
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.drop_column("shard")
            batch.create_primary_key(f"pk_{table}", key)
