"""the outbox's trigger lets a transaction wake the relay itself, after its commit

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 17:40:00

A commit that notifies holds PostgreSQL's one notification-queue lock through its WAL flush: every
report, whose event the outbox's trigger notified, committed one at a time. The trigger's function
now leaves out a transaction that set `linli.outbox_notify` to 'later'; such a writer (a report in
one statement) wakes the relay after commit (linli_kit.events.waker). Every other writer notifies as
before. Nothing on SQLite.
"""

from alembic import op

from linli_kit.tables import NOTIFY_CHANNEL, notify_trigger_ddl


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in notify_trigger_ddl("outbox"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The function as migration 0013 made it: every insert notifies.
        op.execute(
            "CREATE OR REPLACE FUNCTION linli_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
            f"BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $fn$"
        )
