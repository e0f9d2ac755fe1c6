"""The activities service's own database schema, and the mapping of the domain objects onto it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry

from linli_activities.domain.activities import Activity, Checkin, Registration
from linli_activities.domain.care import (
    Booking,
    GroupMember,
    HelpLog,
    MutualAidGroup,
    ServiceOffering,
    SupportFlag,
    Talent,
    TalentMatch,
    VisitPlan,
    WelfareVisit,
)
from linli_activities.domain.patrols import PatrolFinding, PatrolRound
from linli_activities.domain.places import ServicePost
from linli_activities.domain.programmes import ActivitySeries, Festival
from linli_activities.domain.proposals import ActivityProposal
from linli_activities.domain.reminders import ActivityReminder
from linli_kit.tables import UtcDateTime, add_directory_replica, add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
replica = add_directory_replica(metadata)


class TagList(TypeDecorator):
    """A short list of tags stored as ",a,b," so that one tag is found with LIKE '%,a,%' on any database."""

    impl = String(500)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return "," + ",".join(value) + "," if value else ""

    def process_result_value(self, value: str | None, dialect: Dialect) -> list[str]:
        return [tag for tag in (value or "").split(",") if tag]


# The integer columns of `activity_counts` (help_hours, a sum of hours, is a float).
COUNTED_INTEGERS = (
    "activities_held",
    "activities_city",
    "participant_times",
    "registrations",
    "registered_places",
    "registrations_attended",
    "still_waitlisted",
    "service_posts",
    "residents_covered",
    "mutual_aid_groups",
    "group_members",
    "help_entries",
    "talents",
    "service_person_times",
    "door_to_door_person_times",
    "services_completed",
    "welfare_visits",
    "visit_plans",
    "patrol_rounds",
    "patrol_findings",
    "patrol_issues_raised",
)


def _id(name: str = "id", *args: Any, **kwargs: Any) -> Column:
    return Column(name, String(36), *args, **kwargs)


activities = Table(
    "activities",
    metadata,
    _id(primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("place", String(300)),
    _id("post_id"),
    Column("organiser_type", String(10), nullable=False),
    _id("organiser_id", nullable=False),
    Column("audience", JSON, nullable=False),
    Column("photos", JSON, nullable=False),
    Column("community_ids", JSON, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("capacity", Integer),
    Column("max_party_size", Integer, nullable=False),
    Column("registration_opens_at", UtcDateTime),
    Column("registration_closes_at", UtcDateTime),
    Column("status", String(12), nullable=False),
    Column("cancel_reason", Text),
    Column("checkin_code", String(12), nullable=False),
    Column("confirmed_places", Integer, nullable=False),
    Column("waiting_parties", Integer, nullable=False),
    Column("waitlist_counter", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    _id("created_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    _id("series_id", ForeignKey("activity_series.id")),
    Column("occurrence_date", Date),
    Column("series_exception", String(10)),
    _id("festival_id", ForeignKey("festivals.id")),
    Column("announced_at", UtcDateTime),
    # One occurrence per date of a series.
    UniqueConstraint("series_id", "occurrence_date", name="uq_activities_series_date"),
    Index("ix_activities_festival", "festival_id"),
)
# The announcing timer reads the occurrences not yet announced, by start: keep that index small.
Index(
    "ix_activities_unannounced",
    activities.c.starts_at,
    postgresql_where=activities.c.announced_at.is_(None),
    sqlite_where=activities.c.announced_at.is_(None),
)

activity_series = Table(
    "activity_series",
    metadata,
    _id(primary_key=True),
    Column("community_ids", JSON, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("place", String(300)),
    _id("post_id"),
    Column("audience", JSON, nullable=False),
    Column("capacity", Integer),
    Column("max_party_size", Integer, nullable=False),
    Column("organiser_type", String(10), nullable=False),
    _id("organiser_id", nullable=False),
    Column("frequency", String(10), nullable=False),
    Column("interval", Integer, nullable=False),
    Column("weekdays", JSON, nullable=False),
    Column("first_date", Date, nullable=False),
    Column("start_time", Time, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("count", Integer),
    Column("until", Date),
    Column("timezone", String(64), nullable=False),
    _id("festival_id", ForeignKey("festivals.id")),
    Column("status", String(10), nullable=False),
    Column("cancel_reason", Text),
    _id("created_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

festivals = Table(
    "festivals",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    _id("street_id"),  # None: city-wide
    _id("created_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_festivals_starts_on", "starts_on"),
)

# One row per (activity, community), with what lists and statistics filter on copied from the
# activity, so "activities of these communities in this period" is one index range per community.
activity_communities = Table(
    "activity_communities",
    metadata,
    _id("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
    _id("community_id", primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    # Covering (PostgreSQL INCLUDE): statistics of a street read the index alone.
    Index(
        "ix_activity_communities_community_starts",
        "community_id",
        "starts_at",
        postgresql_include=["activity_id", "kind", "status"],
    ),
    # City-wide statistics filter on the period alone.
    Index("ix_activity_communities_starts", "starts_at"),
)

registrations = Table(
    "registrations",
    metadata,
    _id(primary_key=True),
    _id("activity_id", ForeignKey("activities.id"), nullable=False),
    _id("user_id", nullable=False),
    _id("community_id", nullable=False),
    Column("party_size", Integer, nullable=False),
    Column("status", String(12), nullable=False),
    Column("waitlist_seq", Integer),
    _id("registered_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime),
    # The last line of defence against a double registration: one row per person and activity.
    UniqueConstraint("activity_id", "user_id", name="uq_registrations_activity_user"),
    Index("ix_registrations_activity_status_seq", "activity_id", "status", "waitlist_seq"),
    Index("ix_registrations_community_created", "community_id", "created_at"),
    Index("ix_registrations_user", "user_id"),
)

checkins = Table(
    "checkins",
    metadata,
    _id(primary_key=True),
    _id("activity_id", ForeignKey("activities.id"), nullable=False, index=True),
    # Unique: a registration checks in once, even if two volunteers tick it at the same moment.
    _id("registration_id", ForeignKey("registrations.id"), unique=True),
    _id("user_id"),
    _id("community_id", nullable=False),
    Column("participants", Integer, nullable=False),
    Column("method", String(10), nullable=False),
    _id("recorded_by", nullable=False),
    Column("checked_in_at", UtcDateTime, nullable=False),
    Index("ix_checkins_community_at", "community_id", "checked_in_at", postgresql_include=["participants", "user_id"]),
    Index("ix_checkins_at", "checked_in_at"),
)

service_posts = Table(
    "service_posts",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("address", String(300), nullable=False),
    Column("opening_hours", String(500), nullable=False),
    Column("facilities", JSON, nullable=False),
    Column("services", JSON, nullable=False),
    Column("compound_ids", JSON, nullable=False),
    Column("residents_served", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_service_posts_lat_lon", "latitude", "longitude"),
)

mutual_aid_groups = Table(
    "mutual_aid_groups",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False),
    Column("name", String(200), nullable=False),
    Column("purpose", Text, nullable=False),
    _id("coordinator_id", nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("community_id", "name", name="uq_groups_community_name"),
)

group_members = Table(
    "group_members",
    metadata,
    _id(primary_key=True),
    _id("group_id", ForeignKey("mutual_aid_groups.id"), nullable=False),
    _id("user_id", nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("joined_at", UtcDateTime, nullable=False),
    UniqueConstraint("group_id", "user_id", name="uq_group_members_group_user"),
)

help_logs = Table(
    "help_logs",
    metadata,
    _id(primary_key=True),
    _id("group_id", ForeignKey("mutual_aid_groups.id"), nullable=False, index=True),
    _id("community_id", nullable=False),
    _id("helper_id", nullable=False),
    _id("helped_id"),
    Column("helped_description", String(300), nullable=False),
    Column("helped_on", Date, nullable=False),
    Column("hours", Float, nullable=False),
    Column("note", Text, nullable=False),
    _id("recorded_by", nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_help_logs_community_on", "community_id", "helped_on", postgresql_include=["hours"]),
    # The city-wide check of what a period's cut-off days hold reads the day alone.
    Index("ix_help_logs_on", "helped_on"),
)

talents = Table(
    "talents",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False),
    _id("user_id", nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("skills", TagList, nullable=False),
    Column("availability", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("contact_note", String(500), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    _id("compound_id"),
    Column("vetting_status", String(10), nullable=False, server_default="pending"),
    Column("vetting_note", Text),
    _id("vetted_by"),
    Column("vetted_at", UtcDateTime),
    UniqueConstraint("community_id", "user_id", name="uq_talents_community_user"),
)

talent_matches = Table(
    "talent_matches",
    metadata,
    _id(primary_key=True),
    _id("talent_id", ForeignKey("talents.id"), nullable=False, index=True),
    _id("community_id", nullable=False),
    _id("issue_id"),
    _id("booking_id"),
    Column("note", Text, nullable=False),
    _id("matched_by", nullable=False),
    Column("matched_at", UtcDateTime, nullable=False),
    Column("status", String(10), nullable=False, server_default="proposed"),
    Column("responded_at", UtcDateTime),
    Column("decline_reason", Text),
)

service_offerings = Table(
    "service_offerings",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("description", Text, nullable=False),
    _id("post_id", ForeignKey("service_posts.id")),
    Column("provider_type", String(10), nullable=False),
    _id("provider_id"),
    Column("provider_name", String(200), nullable=False),
    Column("at_post", Boolean, nullable=False),
    Column("door_to_door", Boolean, nullable=False),
    Column("concurrent_slots", Integer, nullable=False, server_default="1"),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

bookings = Table(
    "bookings",
    metadata,
    _id(primary_key=True),
    _id("offering_id", ForeignKey("service_offerings.id"), nullable=False, index=True),
    _id("community_id", nullable=False),
    _id("resident_id", nullable=False, index=True),
    _id("booked_by", nullable=False),
    Column("slot_start", UtcDateTime, nullable=False),
    Column("slot_end", UtcDateTime, nullable=False),
    Column("door_to_door", Boolean, nullable=False),
    Column("address", String(500)),
    Column("note", Text, nullable=False),
    Column("status", String(12), nullable=False),
    _id("provider_talent_id"),
    # Whose slot the booking holds ("talent:<id>" or "offering:<id>"); overlaps are looked up by it.
    Column("provider_key", String(50), nullable=False, server_default=""),
    Column("person_times", Integer, nullable=False),
    Column("completed_at", UtcDateTime),
    Column("feedback_rating", Integer),
    Column("feedback_comment", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_bookings_community_completed", "community_id", "completed_at"),
    Index("ix_bookings_completed", "completed_at"),
    Index("ix_bookings_provider_slot", "provider_key", "slot_start"),
)

support_flags = Table(
    "support_flags",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False, index=True),
    _id("resident_id"),
    Column("display_name", String(200), nullable=False),
    Column("needs", TagList, nullable=False),
    Column("address", String(500), nullable=False),
    Column("note", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    _id("recorded_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

activity_reminders = Table(
    "activity_reminders",
    metadata,
    _id(primary_key=True),
    _id("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), nullable=False),
    Column("lead_minutes", Integer, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("state", String(10), nullable=False),
    Column("sent_at", UtcDateTime),
    # One reminder per lead time and start: planning again (a retry, a second publish) adds nothing.
    UniqueConstraint("activity_id", "lead_minutes", "starts_at", name="uq_activity_reminders_start"),
    Index("ix_activity_reminders_due", "state", "due_at"),
)

visit_plans = Table(
    "visit_plans",
    metadata,
    _id(primary_key=True),
    _id("flag_id", ForeignKey("support_flags.id"), nullable=False, unique=True),
    _id("community_id", nullable=False),
    Column("every_days", Integer, nullable=False),
    _id("visitor_id", nullable=False),
    Column("visitor_name", String(200), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("next_due_on", Date, nullable=False),
    Column("last_visited_on", Date),
    Column("active", Boolean, nullable=False),
    _id("created_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The overdue queue and figures: active plans of these communities due before today.
    Index("ix_visit_plans_community_due", "community_id", "next_due_on"),
    Index("ix_visit_plans_visitor", "visitor_id"),
)

welfare_visits = Table(
    "welfare_visits",
    metadata,
    _id(primary_key=True),
    _id("plan_id", ForeignKey("visit_plans.id"), nullable=False),
    _id("flag_id", ForeignKey("support_flags.id"), nullable=False, index=True),
    _id("community_id", nullable=False),
    _id("visitor_id", nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("condition", String(12), nullable=False),
    Column("note", Text, nullable=False),
    _id("booking_id", ForeignKey("bookings.id")),
    _id("recorded_by", nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    # The issue raised on the spot: made by the issues service, so no foreign key here.
    _id("issue_id"),
    Index("ix_welfare_visits_community_on", "community_id", "visited_on"),
    Index("ix_welfare_visits_on", "visited_on"),
)

activity_proposals = Table(
    "activity_proposals",
    metadata,
    _id(primary_key=True),
    _id("community_id", nullable=False),
    _id("proposer_id", nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("preferred_starts_at", UtcDateTime),
    Column("place", String(300)),
    Column("status", String(10), nullable=False),
    _id("decided_by"),
    Column("decided_at", UtcDateTime),
    Column("decision_reason", Text),
    _id("activity_id", ForeignKey("activities.id")),
    Column("created_at", UtcDateTime, nullable=False),
    # The staff's list: a community's proposals by status, newest first.
    Index("ix_activity_proposals_community_status", "community_id", "status", "created_at"),
)

# Patrols of mutual-aid groups (the "woodpecker patrol"): the rota's rounds and what they found.
patrol_rounds = Table(
    "patrol_rounds",
    metadata,
    _id(primary_key=True),
    _id("group_id", ForeignKey("mutual_aid_groups.id"), nullable=False),
    _id("community_id", nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("route", String(500), nullable=False),
    Column("member_ids", JSON, nullable=False),
    _id("created_by", nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("walked_at", UtcDateTime),
    _id("walked_by"),
    Column("report", Text, nullable=False),
    # A group's rota in time order; the figures: rounds walked in a period per community.
    Index("ix_patrol_rounds_group_starts", "group_id", "starts_at"),
    Index("ix_patrol_rounds_community_walked", "community_id", "walked_at"),
    Index("ix_patrol_rounds_walked", "walked_at"),
)

patrol_findings = Table(
    "patrol_findings",
    metadata,
    _id(primary_key=True),
    _id("round_id", ForeignKey("patrol_rounds.id"), nullable=False, index=True),
    _id("group_id", nullable=False),
    _id("community_id", nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", String(300), nullable=False),
    Column("category", String(80), nullable=False),
    Column("urgency", String(10), nullable=False),
    _id("recorded_by", nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    # The issue it became: made by the issues service from activities.patrol.finding_raised.
    _id("issue_id", unique=True),
    _id("raised_by"),
    Column("raised_at", UtcDateTime),
    Index("ix_patrol_findings_community_recorded", "community_id", "recorded_at"),
    Index("ix_patrol_findings_recorded", "recorded_at"),
    Index("ix_patrol_findings_raised", "raised_at"),
)

# How many activities each community's list holds, per kind and status: the total of a list of one
# community (`ActivityPage.of_one_community`) read from a few rows instead of counted over all of its
# activities' rows with each page. Kept by PostgreSQL itself, in the transaction of every change of
# `activity_communities` (triggers, migration 0017), so its rows of a key add up to
# exactly what counting those rows gives in any snapshot. Not kept (nor read) on SQLite.
activity_list_totals = Table(
    "activity_list_totals",
    metadata,
    _id("community_id", primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("status", String(12), primary_key=True),
    # Each total spread over a few rows by its activities' ids: concurrent writers seldom share one.
    Column("shard", SmallInteger, primary_key=True),
    Column("activities", Integer, nullable=False),
)

# --- the statistics' read models (adapters/counts.py): what `/stats` adds up, kept with every change ---
# A row per scope and month: the scope a community id, `street:<street id>` (`street:` alone: a
# community the directory does not know yet) or, for the figures counted once city-wide,
# `city:<shard>`; the month `YYYY-MM` of the city's time zone, `now` for the figures "as of now",
# `due:YYYY-MM-DD` for the visit plans in force by the day their next visit is due.
activity_counts = Table(
    "activity_counts",
    metadata,
    Column("scope", String(48), primary_key=True),
    Column("month", String(16), primary_key=True),
    *(Column(name, Integer, nullable=False, server_default="0") for name in COUNTED_INTEGERS),
    Column("help_hours", Float, nullable=False, server_default="0"),
)
# Activities held by kind (an activity counted once per street, and once city-wide in `held_city`).
activity_kind_counts = Table(
    "activity_kind_counts",
    metadata,
    Column("scope", String(48), primary_key=True),
    Column("month", String(16), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("held_city", Integer, nullable=False, server_default="0"),
)
# Per person and scope: check-ins in a month (month `YYYY-MM`), or memberships of active groups
# (month `member`): a reference count, so a person is counted once whatever the number of rows.
activity_people = Table(
    "activity_people",
    metadata,
    Column("scope", String(48), primary_key=True),
    _id("user_id", primary_key=True),
    Column("month", String(16), primary_key=True),
    Column("times", Integer, nullable=False),
)
# Distinct participants over any run of months: per scope and month, the people who checked in
# that month, by the last earlier month they had checked in within the scope (`since`, "" if
# never). People of months a..b = sum over months m in a..b of those whose `since` is before a.
activity_first_seen = Table(
    "activity_first_seen",
    metadata,
    Column("scope", String(48), primary_key=True),
    Column("month", String(16), primary_key=True),
    Column("since", String(16), primary_key=True),
    Column("people", Integer, nullable=False),
)
# The rows of streets and of the city's shards, beside every community's: what the whole city's
# figures read, in a partial index of their own (the primary key does not serve `LIKE 'street:%'`
# outside the C collation). Queries name this very condition (adapters/counts.py) so the planners
# of PostgreSQL and SQLite use it.
AGGREGATE_ROWS = "scope LIKE 'street:%' OR scope LIKE 'city:%'"
for _table in (activity_counts, activity_kind_counts, activity_first_seen):
    Index(
        f"ix_{_table.name}_streets_and_city",
        *(column for column in _table.primary_key.columns),
        postgresql_where=text(AGGREGATE_ROWS),
        sqlite_where=text(AGGREGATE_ROWS),
    )
# The zone the counts are kept in; NULL: not built (/stats reads the history).
activity_counts_state = Table(
    "activity_counts_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("zone", String(64)),
    Column("built_at", UtcDateTime),
)

mapper_registry = registry()
for _class, _table in (
    (Activity, activities),
    (Registration, registrations),
    (Checkin, checkins),
    (ServicePost, service_posts),
    (MutualAidGroup, mutual_aid_groups),
    (GroupMember, group_members),
    (HelpLog, help_logs),
    (Talent, talents),
    (TalentMatch, talent_matches),
    (ServiceOffering, service_offerings),
    (Booking, bookings),
    (SupportFlag, support_flags),
    (ActivityReminder, activity_reminders),
    (ActivitySeries, activity_series),
    (Festival, festivals),
    (VisitPlan, visit_plans),
    (WelfareVisit, welfare_visits),
    (ActivityProposal, activity_proposals),
    (PatrolRound, patrol_rounds),
    (PatrolFinding, patrol_findings),
):
    mapper_registry.map_imperatively(_class, _table)
