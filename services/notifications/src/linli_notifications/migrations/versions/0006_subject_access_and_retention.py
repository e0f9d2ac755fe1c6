"""who may read an issue or a meeting; what a notice requires of its reader; retention of phones
and read notifications

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 10:00:00

Issues known before: their reporter and supporters come from the follows the issue events made
(reason `reporter`, `supporter`), so a private issue's readers are known from the start.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visibility", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("reporter_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("assignee_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("anonymous", sa.Boolean(), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("about", sa.JSON(), nullable=True))
        batch_op.create_index(
            "ix_notifications_read",
            ["read_at"],
            unique=False,
            postgresql_where=sa.text("read_at IS NOT NULL"),
            sqlite_where=sa.text("read_at IS NOT NULL"),
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_hint", sa.String(length=20), nullable=True))
        batch_op.create_index(
            "ix_deliveries_with_address_created",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("address IS NOT NULL"),
            sqlite_where=sa.text("address IS NOT NULL"),
        )
    _backfill_issue_people()


def _backfill_issue_people() -> None:
    connection = op.get_bind()
    subjects = sa.table(
        "subjects",
        sa.column("subject_type", sa.String),
        sa.column("subject_id", sa.String),
        sa.column("member_ids", sa.JSON),
        sa.column("reporter_id", sa.String),
    )
    follows = sa.table(
        "follows",
        sa.column("user_id", sa.String),
        sa.column("target_type", sa.String),
        sa.column("target_id", sa.String),
        sa.column("reason", sa.String),
    )
    people: dict[str, tuple[str | None, set[str]]] = {}
    rows = connection.execute(
        sa.select(follows.c.target_id, follows.c.user_id, follows.c.reason).where(
            follows.c.target_type == "issue", follows.c.reason.in_(["reporter", "supporter"])
        )
    )
    for issue_id, user_id, reason in rows:
        reporter, supporters = people.get(issue_id, (None, set()))
        if reason == "reporter":
            reporter = user_id
        else:
            supporters.add(user_id)
        people[issue_id] = (reporter, supporters)
    for issue_id, (reporter, supporters) in people.items():
        connection.execute(
            sa.update(subjects)
            .where(subjects.c.subject_type == "issue", subjects.c.subject_id == issue_id)
            .values(reporter_id=reporter, member_ids=sorted(supporters))
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_with_address_created")
        batch_op.drop_column("address_hint")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_read")
        batch_op.drop_column("about")
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_column("anonymous")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("reporter_id")
        batch_op.drop_column("visibility")
