"""the outbox notifies the relay when rows are added (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:45:00

A trigger on the outbox NOTIFYs `linli_outbox` (linli_kit.tables.notify_trigger_ddl): the relay
LISTENs and no longer polls an idle outbox many times a second. Nothing on SQLite.
"""

from alembic import op

from linli_kit.tables import drop_notify_trigger_ddl, notify_trigger_ddl


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in notify_trigger_ddl("outbox"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in drop_notify_trigger_ddl("outbox"):
            op.execute(statement)
