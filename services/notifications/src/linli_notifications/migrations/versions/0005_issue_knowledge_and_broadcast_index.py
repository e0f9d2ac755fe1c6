"""what each person knows of an issue; a broadcast's deliveries by state through an index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00

The column types of the times stay `timestamp with time zone` (the tables now read them back with
their offset on SQLite too, which changes nothing in the database).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issue_knowledge",
        sa.Column("issue_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=True),
        sa.Column("assignee", sa.String(length=80), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issue_id", "user_id", name="pk_issue_knowledge"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_broadcast_state",
            ["batch_key", "state"],
            unique=False,
            postgresql_where=sa.text("source_type = 'broadcast'"),
            sqlite_where=sa.text("source_type = 'broadcast'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_broadcast_state")
    op.drop_table("issue_knowledge")
