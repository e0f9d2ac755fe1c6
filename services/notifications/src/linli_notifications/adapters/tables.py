"""The notifications service's own database schema.

Tables are used through SQLAlchemy Core: planning a broadcast writes tens of thousands of rows at
once and the delivery loop claims rows in bulk, which an identity map would only slow down.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    or_,
)
from sqlalchemy.sql.elements import ColumnElement

from linli_kit.tables import BigId, UtcDateTime, add_directory_replica, add_messaging_tables, ascii_key

metadata = MetaData()
messaging = add_messaging_tables(metadata)
replica = add_directory_replica(metadata)

recipients = Table(
    "recipients",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("role", String(40), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("phone", String(20), nullable=True, index=True),
    Column("locale", String(16), nullable=False),
    Column("timezone", String(64), nullable=True),  # null: the city's
    Column("quiet_start", String(5), nullable=False, server_default="22:00"),
    Column("quiet_end", String(5), nullable=False, server_default="08:00"),
    Column("street_id", String(36), nullable=True, index=True),
    Column("organisation_id", String(36), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Who belongs to which community, for staff look-ups and community broadcasts.
recipient_communities = Table(
    "recipient_communities",
    metadata,
    Column("community_id", String(36), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("role", String(40), nullable=False),
    PrimaryKeyConstraint("community_id", "user_id", name="pk_recipient_communities"),
)
Index("ix_recipient_communities_user", recipient_communities.c.user_id)

sms_opt_outs = Table(
    "sms_opt_outs",
    metadata,
    Column("phone", String(20), primary_key=True),
    Column("provider", String(20), nullable=False),
    Column("opted_out_at", UtcDateTime(), nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("platform", String(10), nullable=False),  # ios | android | web
    Column("provider", String(10), nullable=False),  # jpush | fcm | webpush
    # An app's push token, or a Web Push subscription's endpoint URL.
    Column("token", String(1024), nullable=False),
    Column("push_keys", JSON, nullable=True),  # Web Push: the browser's {p256dh, auth}
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("pruned_at", UtcDateTime(), nullable=True),
    Column("pruned_reason", String(200), nullable=True),
    UniqueConstraint("provider", "token", name="uq_devices_provider_token"),
)

preferences = Table(
    "preferences",
    metadata,
    Column("user_id", String(36), nullable=False),
    Column("category", String(30), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("enabled", Boolean, nullable=False),
    PrimaryKeyConstraint("user_id", "category", "channel", name="pk_preferences"),
)

follows = Table(
    "follows",
    metadata,
    Column("user_id", ascii_key(36), nullable=False),
    Column("target_type", ascii_key(20), nullable=False),  # community | issue | meeting
    Column("target_id", ascii_key(36), nullable=False),
    Column("reason", String(20), nullable=False),  # followed | reporter | supporter
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("target_type", "target_id", "user_id", name="pk_follows"),
)
Index("ix_follows_user", follows.c.user_id)

# The latest known state of the things reminders and stale-event checks depend on.
subjects = Table(
    "subjects",
    metadata,
    Column("subject_type", ascii_key(20), nullable=False),  # issue | meeting | activity
    Column("subject_id", ascii_key(36), nullable=False),
    Column("community_id", String(36), nullable=True),
    Column("title", String(300), nullable=False),
    Column("starts_at", UtcDateTime(), nullable=True),
    Column("place", String(300), nullable=True),
    Column("status", String(30), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("member_ids", JSON, nullable=False),  # participants / registrants; an issue's supporters
    # Who may read it (domain/access.py): an issue's `visibility` from its events, a meeting's
    # `public` ("community" or "private"); null for rows from before they were kept: "community".
    Column("visibility", String(12), nullable=True),
    Column("reporter_id", String(36), nullable=True),  # issues
    Column("assignee_id", String(36), nullable=True),  # issues: the organisation handling it
    Column("anonymous", Boolean, nullable=True),  # issues reported anonymously
    PrimaryKeyConstraint("subject_type", "subject_id", name="pk_subjects"),
)

# What each person last knew of an issue: its status and who handles it (told by a notice, or seen
# for themselves: the reporter, a supporter, whoever made the change). A progress notice goes only
# to those for whom something changed.
issue_knowledge = Table(
    "issue_knowledge",
    metadata,
    Column("issue_id", ascii_key(36), nullable=False),
    Column("user_id", ascii_key(36), nullable=False),
    Column("status", String(30), nullable=True),
    Column("assignee", String(80), nullable=True),  # "<assignee_type>:<assignee_id>"
    Column("revision", Integer, nullable=False),  # of the issue event it was learnt from
    PrimaryKeyConstraint("issue_id", "user_id", name="pk_issue_knowledge"),
)

reminders = Table(
    "reminders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject_type", String(20), nullable=False),
    Column("subject_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),  # day_before | hour_before
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("state", String(12), nullable=False),  # scheduled | fired | cancelled
    UniqueConstraint("subject_type", "subject_id", "kind", "starts_at", name="uq_reminders_occurrence"),
)
Index("ix_reminders_due", reminders.c.state, reminders.c.due_at)

broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), nullable=False, index=True),
    Column("author_id", String(36), nullable=False),
    Column("title", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("state", String(12), nullable=False),  # planning | planned
    Column("cursor", String(36), nullable=True),  # last user id planned, to resume after a crash
    Column("planned_count", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("planned_at", UtcDateTime(), nullable=True),
)

# One per recipient and source: the in-app inbox.
notifications = Table(
    "notifications",
    metadata,
    # The columns of its keys and indexes compare bytes (0014): a burst of events inserts about
    # two notices per event.
    Column("id", ascii_key(36), primary_key=True),
    Column("user_id", ascii_key(36), nullable=False),
    Column("source_key", ascii_key(120), nullable=False),
    Column("source_type", String(120), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("category", String(30), nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("community_id", String(36), nullable=True),
    Column("subject_type", String(20), nullable=True),
    Column("subject_id", String(36), nullable=True),
    # The subjects ([type, id] pairs) its recipient must still be allowed to read when it is sent.
    Column("about", JSON, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("read_at", UtcDateTime(), nullable=True),
    UniqueConstraint("source_key", "user_id", name="uq_notifications_source_user"),
)
Index("ix_notifications_user_created", notifications.c.user_id, notifications.c.created_at)


def reminders_only(source_type: ColumnElement) -> ColumnElement[bool]:
    """The notices and deliveries that are reminders (this service's own, and those the activities
    service asks for): the condition of the partial indexes below, in literals, so that a query
    repeating it is served by them (SQLite matches a partial index only on its own terms, and
    PostgreSQL proves a bound parameter nothing once its plan is generic)."""
    return or_(
        source_type.like(literal_column("'reminder.%'")),
        source_type == literal_column("'activities.activity.reminder'"),
    )


# A subject's reminders: a meeting or activity that changes expires the reminders planned for it
# (service_layer/handlers.py); without it, each such event scanned every pending delivery. Only
# reminders are read by subject: partial (0011), so the notices a burst of events plans (and a
# broadcast's 50,000) do not each add an entry to it.
Index(
    "ix_notifications_subject",
    notifications.c.subject_type,
    notifications.c.subject_id,
    postgresql_where=reminders_only(notifications.c.source_type),
    sqlite_where=reminders_only(notifications.c.source_type),
)
# Read notifications are pruned after their retention (service_layer/retention.py).
Index(
    "ix_notifications_read",
    notifications.c.read_at,
    postgresql_where=notifications.c.read_at.isnot(None),
    sqlite_where=notifications.c.read_at.isnot(None),
)
Index(
    "ix_notifications_unread",
    notifications.c.user_id,
    postgresql_where=notifications.c.read_at.is_(None),
    sqlite_where=notifications.c.read_at.is_(None),
)

deliveries = Table(
    "deliveries",
    metadata,
    # The columns of its keys and of the index every row enters compare bytes (0014): a burst
    # of events inserts about three deliveries per event, a broadcast 50,000.
    Column("id", ascii_key(36), primary_key=True),
    # source × recipient × channel: a redelivered event can never plan a second delivery.
    Column("key", ascii_key(160), nullable=False, unique=True),
    Column("notification_id", String(36), nullable=True),
    Column("user_id", String(36), nullable=True),  # null for one-time codes (a phone, no account yet)
    Column("channel", String(10), nullable=False),
    Column("address", String(20), nullable=True),  # the phone for SMS; push resolves devices at send
    # The phone masked (138****8000), kept once `address` is cleared after its retention.
    Column("address_hint", String(20), nullable=True),
    Column("locale", String(16), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("batch_key", String(80), nullable=False),  # same content: may share one provider call
    Column("params", JSON, nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("state", String(12), nullable=False),
    Column("reason", String(300), nullable=True),
    Column("community_id", ascii_key(36), nullable=True),
    Column("source_type", String(120), nullable=False),
    Column("provider", String(20), nullable=True),
    Column("providers_tried", JSON, nullable=False),
    Column("provider_message_id", String(120), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("segments", Integer, nullable=True),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("outcome_unknown", Boolean, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
)
# What is due, not urgent: pending only (0012), so a claimed delivery (a broadcast's 50,000 are
# written claimed) neither adds an entry nor is walked past by the loop's look for work.
Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    postgresql_where=(deliveries.c.state == "pending") & deliveries.c.urgent.is_(False),
    sqlite_where=(deliveries.c.state == "pending") & deliveries.c.urgent.is_(False),
)
# The delivery loop's other scans: urgent ones first, what expires, what a dead sender held.
Index(
    "ix_deliveries_urgent_due",
    deliveries.c.next_attempt_at,
    postgresql_where=(deliveries.c.state == "pending") & deliveries.c.urgent.is_(True),
    sqlite_where=(deliveries.c.state == "pending") & deliveries.c.urgent.is_(True),
)
Index(
    "ix_deliveries_expiring",
    deliveries.c.expires_at,
    postgresql_where=(deliveries.c.state == "pending") & deliveries.c.expires_at.isnot(None),
    sqlite_where=(deliveries.c.state == "pending") & deliveries.c.expires_at.isnot(None),
)
Index(
    "ix_deliveries_leased",
    deliveries.c.lease_until,
    postgresql_where=deliveries.c.state == "sending",
    sqlite_where=deliveries.c.state == "sending",
)
# Partial: a row enters these only once sent, so claiming a batch does not touch them.
Index(
    "ix_deliveries_address_sent",
    deliveries.c.address,
    deliveries.c.sent_at,
    postgresql_where=deliveries.c.sent_at.isnot(None),
    sqlite_where=deliveries.c.sent_at.isnot(None),
)
Index(
    "ix_deliveries_provider_message",
    deliveries.c.provider,
    deliveries.c.provider_message_id,
    postgresql_where=deliveries.c.provider_message_id.isnot(None),
    sqlite_where=deliveries.c.provider_message_id.isnot(None),
)
# The deliveries of the reminders expired above, by their notice. Partial (0011): other deliveries
# are found by their key (`delivery_key`: source, recipient, channel; see recipient.py), and a
# planned delivery, its claim and its record each skip this index (claim and record are not HOT
# updates: every index whose condition the row meets gets a new entry).
Index(
    "ix_deliveries_notification",
    deliveries.c.notification_id,
    postgresql_where=reminders_only(deliveries.c.source_type),
    sqlite_where=reminders_only(deliveries.c.source_type),
)
# A broadcast's progress (its deliveries by state) without reading every other delivery.
Index(
    "ix_deliveries_broadcast_state",
    deliveries.c.batch_key,
    deliveries.c.state,
    postgresql_where=deliveries.c.source_type == "broadcast",
    sqlite_where=deliveries.c.source_type == "broadcast",
)
Index("ix_deliveries_community_created", deliveries.c.community_id, deliveries.c.created_at)
# Deliveries still holding a phone number, oldest first: their retention (service_layer/retention.py).
Index(
    "ix_deliveries_with_address_created",
    deliveries.c.created_at,
    postgresql_where=deliveries.c.address.isnot(None),
    sqlite_where=deliveries.c.address.isnot(None),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), nullable=False, index=True),
    Column("provider", String(20), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("outcome", String(12), nullable=False),  # ok | retryable | permanent | unknown
    Column("request_id", String(120), nullable=True),
    Column("error_code", String(80), nullable=True),
    Column("error_message", String(500), nullable=True),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("provider", String(20), nullable=False),
    Column("dedup_key", String(200), nullable=False),
    Column("provider_message_id", String(120), nullable=True),
    Column("status", String(30), nullable=False),
    Column("error_code", String(80), nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
    UniqueConstraint("provider", "dedup_key", name="uq_receipts_provider_key"),
)

# The arrays a batch of events' notices and deliveries are made from (service_layer/planning.py,
# `_PLAN_FROM_GROUPS`), each as its text literal: committed with the batch's inbox rows, and
# expanded into the rows by `service_layer/deferred.py` on another connection, while the consumer
# goes on with the next batch. PostgreSQL only (SQLite plans in the batch's own transaction).
# Per group of recipients alike (its intent and rendering), per decision, per recipient.
PLAN_GROUP_ARRAYS = (
    "source_keys",
    "source_types",
    "kinds",
    "categories",
    "urgent",
    "titles",
    "bodies",
    "params",
    "community_ids",
    "subject_types",
    "subject_ids",
    "abouts",
    "locales",
    "batch_keys",
    "expires",
)
PLAN_DECISION_ARRAYS = ("decided", "channels", "states", "reasons", "not_before", "finished")
PLAN_RECIPIENT_ARRAYS = ("ids", "user_ids", "phones", "groups")
PLAN_ARRAYS = PLAN_GROUP_ARRAYS + PLAN_DECISION_ARRAYS + PLAN_RECIPIENT_ARRAYS
event_plans = Table(
    "event_plans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("planned_at", UtcDateTime(), nullable=False),  # the rows' created_at
    # Whether rows of the plan may collide (two intents of one source): then inserted in order.
    Column("ordered", Boolean, nullable=False),
    *(Column(name, Text, nullable=False) for name in PLAN_ARRAYS),
    # Expansions that failed with an error retrying cannot fix; set aside (skipped) at the last try.
    Column("tries", SmallInteger, server_default="0", nullable=False),
    Column("failed_at", UtcDateTime(), nullable=True),
    Column("error", Text, nullable=True),
)
