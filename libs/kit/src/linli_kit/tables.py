"""Tables services carry in their own databases: outbox and inbox, and the directory replica.

Each service adds them to its own MetaData, so its own Alembic history creates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


class UtcDateTime(TypeDecorator):
    """An instant stored in UTC and read back with its offset on PostgreSQL and SQLite alike (SQLite
    keeps no time zone and would hand back naive datetimes). Naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times are stored as instants with an offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# On PostgreSQL every statement that adds outbox rows notifies this channel (the payload: the
# table's name), from a trigger, so that no way of writing an event can forget to; the relay
# LISTENs and reads the outbox when told instead of polling an idle one many times a second.
# NOTIFY is sent at commit, and one transaction's notifications with the same payload are one.
NOTIFY_CHANNEL = "linli_outbox"
# A transaction that sets this setting to 'later' (`set_config(NOTIFY_SETTING, 'later', true)`)
# does not notify from the trigger: it wakes the relay itself after it commits
# (`linli_kit.events.waker`). A notifying commit holds PostgreSQL's one notification-queue lock
# through its WAL flush, so the commits of a busy writer that all notify are made one at a time.
NOTIFY_SETTING = "linli.outbox_notify"


def notify_trigger_ddl(table: str = "outbox") -> list[str]:
    """The statements (PostgreSQL) that make inserts into `table` notify NOTIFY_CHANNEL, unless the
    transaction said it wakes the relay itself (NOTIFY_SETTING)."""
    return [
        "CREATE OR REPLACE FUNCTION linli_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
        f"BEGIN IF current_setting('{NOTIFY_SETTING}', true) IS DISTINCT FROM 'later' THEN "
        f"PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME); END IF; RETURN NULL; END $fn$",
        f"DROP TRIGGER IF EXISTS {table}_notify ON {table}",
        f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION linli_outbox_notify()",
    ]


def drop_notify_trigger_ddl(table: str = "outbox") -> list[str]:
    """Undo `notify_trigger_ddl` (the function stays: other outboxes of the database may use it)."""
    return [f"DROP TRIGGER IF EXISTS {table}_notify ON {table}"]


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants a bigint for a busy outbox.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def ascii_key(length: int) -> TypeEngine:
    """A VARCHAR for identifiers and keys (UUIDs, "source|user|channel"), compared byte by byte on
    PostgreSQL (COLLATE "C"). Under the database's locale (C.UTF-8, en_US.UTF-8, ...) every
    comparison in their indexes goes through strcoll; these values are ASCII and never sorted
    for a reader, so bytes order them as well. A hot table's inserts gain most: each row walks
    its unique and primary key indexes. SQLite compares bytes already (BINARY)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table


@dataclass(frozen=True)
class ReplicaTables:
    streets: Table
    communities: Table
    compounds: Table
    # The register of organisations, for the services that replicate it (see add_directory_replica).
    organisations: Table | None = None


def add_messaging_tables(metadata: MetaData) -> MessagingTables:
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(120), nullable=False),
        Column("payload", Text, nullable=False),
        # UtcDateTime: the same column as DateTime(timezone=True) in the schema (no migration), but
        # read back aware on SQLite too, so the relay and the pruning compare instants.
        Column("created_at", UtcDateTime(), nullable=False),
        Column("published_at", UtcDateTime(), nullable=True),
    )
    # The relay reads only unpublished rows, oldest first: keep that index small.
    Index(
        "ix_outbox_unpublished",
        outbox.c.id,
        postgresql_where=outbox.c.published_at.is_(None),
        sqlite_where=outbox.c.published_at.is_(None),
    )
    Index("ix_outbox_published_at", outbox.c.published_at)
    # Tables made with create_all (tests, tools) get the relay's wake-up trigger as migrations do.
    for statement in notify_trigger_ddl(outbox.name):
        event.listen(outbox, "after_create", DDL(statement).execute_if(dialect="postgresql"))
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(80), nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(120), nullable=False),
        Column("handled_at", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    Index("ix_inbox_handled_at", inbox.c.handled_at)
    return MessagingTables(outbox, inbox)


def add_directory_replica(metadata: MetaData, *, organisations: bool = False) -> ReplicaTables:
    """community → street (and compound → community), kept from `directory.*.upserted` events; with
    `organisations`, the register of organisations too (table `directory_organisations`)."""
    streets = Table(
        "directory_streets",
        metadata,
        Column("street_id", String(36), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("city", String(200), nullable=True),
        Column("revision", Integer, nullable=False),
    )
    communities = Table(
        "directory_communities",
        metadata,
        Column("community_id", String(36), primary_key=True),
        Column("street_id", String(36), nullable=False, index=True),
        Column("name", String(200), nullable=False),
        Column("revision", Integer, nullable=False),
    )
    compounds = Table(
        "directory_compounds",
        metadata,
        Column("compound_id", String(36), primary_key=True),
        Column("community_id", String(36), nullable=False, index=True),
        Column("name", String(200), nullable=False),
        Column("latitude", Float, nullable=True),
        Column("longitude", Float, nullable=True),
        Column("revision", Integer, nullable=False),
    )
    register = None
    if organisations:
        register = Table(
            "directory_organisations",
            metadata,
            Column("organisation_id", String(36), primary_key=True),
            Column("kind", String(32), nullable=False),
            Column("name", String(200), nullable=False),
            Column("street_id", String(36), nullable=True),
            Column("community_id", String(36), nullable=True),
            Column("compound_ids", JSON, nullable=False),
            Column("parent_id", String(36), nullable=True),
            Column("active", Boolean, nullable=False),
            Column("revision", Integer, nullable=False),
        )
    return ReplicaTables(streets, communities, compounds, register)
