"""the keys of notices, deliveries, follows, subjects and issue knowledge compare bytes (COLLATE "C")

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 08:50:00

Every notice and delivery planned (about five rows per event of a burst, 50,000 per broadcast)
enters the indexes on these columns: the primary keys, `uq_notifications_source_user`,
`deliveries.key`, `ix_notifications_user_created`, `ix_notifications_unread` and
`ix_deliveries_community_created`; and a batch of events writes its follows, subjects and issue
knowledge by their keys while the consumer waits. Under the database's locale each comparison in
these indexes went through strcoll; the values are ASCII identifiers and keys, never sorted for a
reader, so byte order serves as well (`linli_kit.tables.ascii_key`). On a C.UTF-8 database,
expanding a burst's plans took PostgreSQL about 12 % less time and a batch's own statements about
5 %; a locale such as en_US.UTF-8 compares more slowly still.

The type stays VARCHAR of the same length, so no table is rewritten; the indexes on these columns
are rebuilt, under the table's lock: on a large deployment, run it at a quiet hour.
SQLite compares bytes already: nothing to do there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = {
    "notifications": (("id", 36, False), ("user_id", 36, False), ("source_key", 120, False)),
    "deliveries": (("id", 36, False), ("key", 160, False), ("community_id", 36, True)),
    "follows": (("user_id", 36, False), ("target_type", 20, False), ("target_id", 36, False)),
    "subjects": (("subject_type", 20, False), ("subject_id", 36, False)),
    "issue_knowledge": (("issue_id", 36, False), ("user_id", 36, False)),
}


def _alter(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, length, nullable in columns:
                batch_op.alter_column(
                    name,
                    type_=sa.String(length, collation=collation),
                    existing_type=sa.String(length),
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _alter("C")


def downgrade() -> None:
    _alter(None)
