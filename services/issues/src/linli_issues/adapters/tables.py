"""The issues service's own database schema, and the mapping of the domain objects onto it."""

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.orm import column_property, registry

from linli_issues.domain.model import Category, Issue, TimelineEntry
from linli_kit.tables import UtcDateTime as When
from linli_kit.tables import add_directory_replica, add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
replica = add_directory_replica(metadata, organisations=True)


categories = Table(
    "categories",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("default_tier", String(20), nullable=False),
    Column("responsible_body", String(40), nullable=False),
    Column("deadline_hours", JSON, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("position", Integer, nullable=False, default=0),
    Column("publication", String(12), nullable=False, default="community", server_default="community"),
)

issues = Table(
    "issues",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), nullable=False),
    Column("compound_id", String(36), nullable=True),
    Column("building", String(100), nullable=True),
    Column("address", String(300), nullable=True),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(80), ForeignKey("categories.key"), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("tier", String(20), nullable=False),
    Column("reporter_id", String(36), nullable=False),
    Column("reported_by", String(36), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("client_name", String(100), nullable=True),
    # The mutual-aid group credited with finding it (a patrol finding, activities.patrol.finding_raised).
    Column("credited_group_id", String(36), nullable=True),
    Column("credited_group_name", String(200), nullable=True),
    Column("anonymous", Boolean, nullable=False, default=False),
    # The category's publication (narrowed with it) and the staff's mark: domain/privacy.py.
    Column("publication", String(12), nullable=False, default="community", server_default="community"),
    Column("marked_private", Boolean, nullable=False, default=False, server_default=false()),
    Column("assignee_type", String(40), nullable=True),
    Column("assignee_id", String(36), nullable=True),
    Column("supporter_count", Integer, nullable=False, default=0),
    Column("consultation_count", Integer, nullable=False, default=0),
    Column("action_items", Integer, nullable=False, default=0, server_default="0"),
    Column("action_items_done", Integer, nullable=False, default=0, server_default="0"),
    Column("duplicate_of", String(36), nullable=True),
    Column("reason", Text, nullable=True),
    Column("resolution_plan", Text, nullable=True),
    Column("resolution_summary", Text, nullable=True),
    Column("rating", Integer, nullable=True),
    Column("rating_comment", Text, nullable=True),
    Column("created_at", When(), nullable=False),
    Column("due_at", When(), nullable=True),
    Column("accepted_at", When(), nullable=True),
    Column("resolved_at", When(), nullable=True),
    Column("closed_at", When(), nullable=True),
    Column("overdue_at", When(), nullable=True),
    Column("updated_at", When(), nullable=True),
    Column("revision", Integer, nullable=False),
    # Room in each page for its rows' next versions: an update of no indexed column (counts,
    # updated_at, revision) then stays HOT, adding nothing to the indexes (migration 0019).
    postgresql_with={"fillfactor": 70},
)
# Lists and statistics always filter by community (or a street's communities) and time.
# Covering (PostgreSQL INCLUDE): the statistics of a street read these indexes alone, no table rows.
Index(
    "ix_issues_community_created",
    issues.c.community_id,
    issues.c.created_at,
    postgresql_include=["status", "overdue_at", "category", "tier"],
)
Index("ix_issues_created", issues.c.created_at)


def _of_those_set(name: str, *columns: Column, later: Column, **options: Any) -> Index:
    """An index of a value an issue gets after its report, over the issues that have it (migration
    0020): a report writes no entry in it, and every query of it compares `later` with something,
    which no NULL satisfies."""
    where = later.is_not(None)
    return Index(name, *columns, postgresql_where=where, sqlite_where=where, **options)


_of_those_set("ix_issues_resolved", issues.c.resolved_at, later=issues.c.resolved_at)
_of_those_set("ix_issues_accepted", issues.c.accepted_at, later=issues.c.accepted_at)
_of_those_set("ix_issues_closed", issues.c.closed_at, later=issues.c.closed_at)
# A street's statistics read each of its communities' issues accepted, resolved or closed in a period.
_of_those_set("ix_issues_community_accepted", issues.c.community_id, issues.c.accepted_at, later=issues.c.accepted_at)
_of_those_set(
    "ix_issues_community_resolved",
    issues.c.community_id,
    issues.c.resolved_at,
    later=issues.c.resolved_at,
    postgresql_include=["created_at"],
)
_of_those_set(
    "ix_issues_community_closed",
    issues.c.community_id,
    issues.c.closed_at,
    later=issues.c.closed_at,
    postgresql_include=["rating"],
)
Index("ix_issues_status_due", issues.c.status, issues.c.due_at)
_of_those_set("ix_issues_assignee", issues.c.assignee_id, later=issues.c.assignee_id)
Index("ix_issues_reporter", issues.c.reporter_id)
Index("ix_issues_publication_created", issues.c.publication, issues.c.created_at)

issue_updates = Table(
    "issue_updates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("issue_id", String(36), ForeignKey("issues.id"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("body", Text, nullable=True),
    Column("internal", Boolean, nullable=False, default=False),
    Column("author_id", String(36), nullable=True),
    Column("data", JSON, nullable=False),
    Column("created_at", When(), nullable=False),
)
Index("ix_issue_updates_issue_created", issue_updates.c.issue_id, issue_updates.c.created_at)
Index("ix_issue_updates_created", issue_updates.c.created_at)

supporters = Table(
    "issue_supporters",
    metadata,
    Column("issue_id", String(36), ForeignKey("issues.id"), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("created_at", When(), nullable=False),
    PrimaryKeyConstraint("issue_id", "user_id", name="pk_issue_supporters"),
)
# A resident's lists read the private issues they support.
Index("ix_issue_supporters_user", supporters.c.user_id, supporters.c.issue_id)

# The meetings that put an issue on their agenda: its consultation history.
issue_meetings = Table(
    "issue_meetings",
    metadata,
    Column("issue_id", String(36), ForeignKey("issues.id"), nullable=False),
    Column("meeting_id", String(36), nullable=False),
    Column("community_id", String(36), nullable=False),
    Column("meeting_type", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("starts_at", When(), nullable=False),
    Column("status", String(20), nullable=False),  # scheduled | cancelled | concluded
    Column("concluded_at", When(), nullable=True),
    Column("meeting_revision", Integer, nullable=False),
    Column("linked_at", When(), nullable=False),
    PrimaryKeyConstraint("issue_id", "meeting_id", name="pk_issue_meetings"),
)
Index("ix_issue_meetings_meeting", issue_meetings.c.meeting_id)
Index("ix_issue_meetings_community_concluded", issue_meetings.c.community_id, issue_meetings.c.concluded_at)

# The decisions taken on an issue and how far their action items are (meetings.action_item.*):
# `applied`, the issue was moved on when they were all done; `event_at`, the instant of the newest
# event counted (an older one arriving late changes nothing).
issue_decisions = Table(
    "issue_decisions",
    metadata,
    Column("issue_id", String(36), ForeignKey("issues.id"), nullable=False),
    Column("decision_id", String(36), nullable=False),
    Column("issue_effect", String(20), nullable=True),
    Column("action_items", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("event_at", When(), nullable=False),
    PrimaryKeyConstraint("issue_id", "decision_id", name="pk_issue_decisions"),
)

photos = Table(
    "issue_photos",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("issue_id", String(36), ForeignKey("issues.id"), nullable=False, index=True),
    Column("content_type", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    Column("file_name", String(100), nullable=False),  # a name in the photo store (adapters/photo_store.py)
    Column("thumbnail_file_name", String(100)),  # null: stored before thumbnails were made
    Column("width", Integer),
    Column("height", Integer),
    Column("uploaded_by", String(36), nullable=False),
    Column("created_at", When(), nullable=False),
)

# Read models of the statistics (adapters/counters.py): what `/stats` adds up, per community
# and month of the city's time zone, kept in the transaction of every change to an issue, so a
# street's or the city's overview reads a few thousand rows instead of the history. Months are
# "YYYY-MM" in the zone recorded in `issue_counts_state`; counts whose zone is not the one asked for
# are not used. A key's figures are the sum of its rows over `shard`: each writer adds to the rows
# of the writers' slot it holds (counters.py), so concurrent writers of one community never wait for
# each other's commit; the worker folds the other shards into shard 0 now and then.
issue_month_counts = Table(
    "issue_month_counts",
    metadata,
    Column("community_id", String(48), nullable=False),  # a community's id, or `street:<street id>`
    Column("month", String(7), nullable=False),
    Column("raised", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),  # of the month's raised, resolved or closed by now
    Column("overdue", Integer, nullable=False, default=0),  # of the month's raised, overdue once
    Column("accepted", Integer, nullable=False, default=0),
    Column("resolved", Integer, nullable=False, default=0),
    Column("ratings", Integer, nullable=False, default=0),  # ratings of the issues closed in the month
    Column("rating_sum", Integer, nullable=False, default=0),
    Column("escalated", Integer, nullable=False, default=0),
    Column("compound_to_community", Integer, nullable=False, default=0),
    Column("community_to_street", Integer, nullable=False, default=0),
    Column("street_to_city", Integer, nullable=False, default=0),
    Column("shard", SmallInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("community_id", "month", "shard", name="pk_issue_month_counts"),
)
Index("ix_issue_month_counts_month", issue_month_counts.c.month, issue_month_counts.c.community_id)

# Breakdowns of the same months: issues raised by category and by (current) tier, escalations
# other than the three one-tier moves (none are made today; kept so the figures stay exact), and
# issues resolved by the whole hours they took (the median and 90th percentile come from these).
issue_month_breakdowns = Table(
    "issue_month_breakdowns",
    metadata,
    # A community's id, `street:<street id>` (a street's rows) or `*` (the city's hours to resolve).
    Column("community_id", String(48), nullable=False),
    Column("month", String(7), nullable=False),
    Column("kind", String(20), nullable=False),  # category | tier | escalation | hours (whole hours to resolve)
    Column("key", String(80), nullable=False),
    Column("count", Integer, nullable=False, default=0),
    Column("shard", SmallInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("community_id", "month", "kind", "key", "shard", name="pk_issue_month_breakdowns"),
)
# A street's breakdowns read this index alone (PostgreSQL INCLUDE): its rows are scattered in the table.
Index(
    "ix_issue_month_breakdowns_covering",
    issue_month_breakdowns.c.community_id,
    issue_month_breakdowns.c.month,
    issue_month_breakdowns.c.kind,
    issue_month_breakdowns.c.key,
    postgresql_include=["count"],
)

# The streets' rows alone (the whole city's overview reads them: a few thousand among millions); the
# condition is the one the queries use (`counters.STREET` prefix), so the planner matches it.
STREET_ROWS = "community_id LIKE 'street:%'"
Index(
    "ix_issue_month_counts_streets",
    issue_month_counts.c.month,
    issue_month_counts.c.community_id,
    postgresql_where=text(STREET_ROWS),
    sqlite_where=text(STREET_ROWS),
)
Index(
    "ix_issue_month_breakdowns_streets",
    issue_month_breakdowns.c.month,
    issue_month_breakdowns.c.kind,
    issue_month_breakdowns.c.key,
    postgresql_include=["community_id", "count"],
    postgresql_where=text(STREET_ROWS),
    sqlite_where=text(STREET_ROWS),
)

# How many issues each community has in each status (summed over `shard`, as the month counts):
# the exact total of a list page filtered by community and status, without counting its thousands
# of issues (adapters/repository.py). Kept with the month counts, whatever the zone.
issue_status_counts = Table(
    "issue_status_counts",
    metadata,
    Column("community_id", String(36), nullable=False),
    Column("status", String(20), nullable=False),
    Column("shard", SmallInteger, nullable=False, server_default=text("0")),
    Column("count", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("community_id", "status", "shard", name="pk_issue_status_counts"),
)

# Consultations held (adapters/consultation_counts.py): per scope (a community's id, `street:<street
# id>`, `*` the whole city), month and item ('' a month's meetings; a later month: the meetings that
# concluded in both, counted off), how many distinct meetings; and per meeting, the rows it adds now.
issue_consultation_counts = Table(
    "issue_consultation_counts",
    metadata,
    Column("scope", String(48), nullable=False),
    Column("month", String(7), nullable=False),
    Column("item", String(7), nullable=False),
    Column("held", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("scope", "month", "item", name="pk_issue_consultation_counts"),
)
CONSULTATION_STREET_ROWS = "scope LIKE 'street:%'"
Index(
    "ix_issue_consultation_counts_streets",
    issue_consultation_counts.c.month,
    issue_consultation_counts.c.scope,
    postgresql_include=["item", "held"],
    postgresql_where=text(CONSULTATION_STREET_ROWS),
    sqlite_where=text(CONSULTATION_STREET_ROWS),
)
issue_meeting_consultations = Table(
    "issue_meeting_consultations",
    metadata,
    Column("meeting_id", String(36), nullable=False),
    Column("scope", String(48), nullable=False),
    Column("month", String(7), nullable=False),
    Column("item", String(7), nullable=False),
    PrimaryKeyConstraint("meeting_id", "scope", "month", "item", name="pk_issue_meeting_consultations"),
)
# The meetings concluded over more than one month (rare: links updated by events out of order).
SPANNING_ROWS = "item <> ''"
Index(
    "ix_issue_meeting_consultations_spanning",
    issue_meeting_consultations.c.scope,
    issue_meeting_consultations.c.meeting_id,
    postgresql_where=text(SPANNING_ROWS),
    sqlite_where=text(SPANNING_ROWS),
)
# The links concluded in a few days of the whole city (the edge of a period that is not a whole month).
CONCLUDED_LINKS = "status = 'concluded'"
Index(
    "ix_issue_meetings_concluded",
    issue_meetings.c.concluded_at,
    postgresql_include=["meeting_id", "community_id"],
    postgresql_where=text(CONCLUDED_LINKS),
    sqlite_where=text(CONCLUDED_LINKS),
)

# One row (id 1): the zone the months of the counts are in; none (or no row): the counts are not
# built, /stats reads the history (`linli-issues rebuild-counts` builds them).
issue_counts_state = Table(
    "issue_counts_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("zone", String(64), nullable=True),
    Column("built_at", When(), nullable=True),
)

mapper_registry = registry()
mapper_registry.map_imperatively(Category, categories)
# The fields the statistics' counts depend on (adapters/counters.py). Their old value is loaded
# before a change even when it was not read, so the counts can take back what it contributed.
COUNTED_ISSUE_FIELDS = (
    "community_id",
    "created_at",
    "status",
    "overdue_at",
    "category",
    "tier",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "rating",
)
mapper_registry.map_imperatively(
    Issue,
    issues,
    properties={name: column_property(issues.c[name], active_history=True) for name in COUNTED_ISSUE_FIELDS},
)
mapper_registry.map_imperatively(TimelineEntry, issue_updates)
