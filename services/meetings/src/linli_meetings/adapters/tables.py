"""The meetings service's own database schema, and the mapping of the domain onto it."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import registry, relationship

from linli_kit.tables import UtcDateTime, add_directory_replica, add_messaging_tables
from linli_meetings.domain.decision import ActionItem, CommunityDocument, Decision, Vote
from linli_meetings.domain.meeting import AgendaItem, Meeting, Participant
from linli_meetings.domain.proposal import MeetingProposal

metadata = MetaData()
messaging = add_messaging_tables(metadata)
replica = add_directory_replica(metadata, organisations=True)


Id = String(36)
When = UtcDateTime()

meeting_types = Table(
    "meeting_types",
    metadata,
    Column("community_id", Id, nullable=False),
    Column("key", String(40), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", When, nullable=False),
    PrimaryKeyConstraint("community_id", "key", name="pk_meeting_types"),
)

series = Table(
    "meeting_series",
    metadata,
    Column("id", Id, primary_key=True),
    Column("community_id", Id, nullable=False, index=True),
    Column("meeting_type", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("rrule", String(300), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_by", Id, nullable=False),
    Column("created_at", When, nullable=False),
)

meetings = Table(
    "meetings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("community_id", Id, nullable=False),
    Column("series_id", Id, ForeignKey("meeting_series.id"), nullable=True, index=True),
    Column("meeting_type", String(40), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=True),
    Column("place", String(300), nullable=True),
    Column("online_url", String(500), nullable=True),
    Column("starts_at", When, nullable=False),
    Column("ends_at", When, nullable=False),
    # The start's date in the city's time zone: statistics group by it without time-zone SQL.
    Column("local_date", Date, nullable=False),
    Column("convener_id", Id, nullable=False),
    Column("public", Boolean, nullable=False),
    Column("capacity", Integer, nullable=True),
    Column("status", String(20), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("previous_starts_at", When, nullable=True),
    Column("rescheduled_count", Integer, nullable=False),
    Column("checkin_code", String(12), nullable=True),
    Column("minutes", Text, nullable=True),
    Column("closing_report", Text, nullable=True),
    Column("attendees_count", Integer, nullable=True),
    Column("photo_urls", JSON, nullable=False),
    Column("started_at", When, nullable=True),
    Column("concluded_at", When, nullable=True),
    Column("announced_at", When, nullable=True),
    Column("revision", Integer, nullable=False),
    Column("created_at", When, nullable=False),
)
Index("ix_meetings_community_date", meetings.c.community_id, meetings.c.local_date)
Index("ix_meetings_status_date", meetings.c.status, meetings.c.local_date)
# The announcer looks for occurrences not yet announced, soonest first: keep that index small.
Index(
    "ix_meetings_unannounced",
    meetings.c.starts_at,
    postgresql_where=meetings.c.announced_at.is_(None),
    sqlite_where=meetings.c.announced_at.is_(None),
)

agenda_items = Table(
    "agenda_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("meeting_id", Id, ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("duration_minutes", Integer, nullable=True),
    Column("issue_id", Id, nullable=True, index=True),
    Column("notes", Text, nullable=True),
)

participants = Table(
    "participants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("meeting_id", Id, ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, nullable=True),
    Column("name", String(200), nullable=True),
    Column("organisation_id", Id, nullable=True),
    Column("organisation_name", String(200), nullable=True),
    Column("party_member", Boolean, nullable=False, server_default=false()),
    Column("role", String(40), nullable=False),
    Column("enrolment", String(20), nullable=False),
    Column("response", String(20), nullable=False),
    Column("enrolled_at", When, nullable=False),
    Column("checked_in_at", When, nullable=True),
    Column("check_in_method", String(10), nullable=True),
    UniqueConstraint("meeting_id", "user_id", name="uq_participants_meeting_user"),
)
Index("ix_participants_user", participants.c.user_id)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("meeting_id", Id, ForeignKey("meetings.id"), nullable=False, index=True),
    Column("community_id", Id, nullable=False),
    Column("agenda_item_id", Id, nullable=True),
    Column("issue_id", Id, nullable=True),
    Column("motion", Text, nullable=False),
    Column("method", String(20), nullable=False),
    Column("threshold", String(20), nullable=False),
    Column("issue_effect", String(20), nullable=False),
    Column("resolution_plan", Text, nullable=True),
    Column("proposed_actions", JSON, nullable=False),
    Column("document_kind", String(30), nullable=True),
    Column("document_title", String(300), nullable=True),
    Column("document_body", Text, nullable=True),
    Column("document_rules", JSON, nullable=True),
    Column("status", String(10), nullable=False),
    Column("outcome", String(20), nullable=True),
    Column("rule", Text, nullable=True),
    Column("votes_for", Integer, nullable=False),
    Column("votes_against", Integer, nullable=False),
    Column("abstentions", Integer, nullable=False),
    Column("voting_members", Integer, nullable=True),
    Column("present_voting_members", Integer, nullable=True),
    Column("opened_at", When, nullable=False),
    Column("recorded_at", When, nullable=True),
    # The meeting's local date, set when recorded: statistics read decisions without a join.
    Column("local_date", Date, nullable=True),
)
Index("ix_decisions_community_date", decisions.c.community_id, decisions.c.local_date)
# The city's days after a period's end (statistics subtract them from the month's counts).
Index("ix_decisions_date", decisions.c.local_date)

votes = Table(
    "votes",
    metadata,
    Column("decision_id", Id, ForeignKey("decisions.id", ondelete="CASCADE"), nullable=False),
    Column("voter_id", Id, nullable=False),
    Column("choice", String(10), nullable=False),
    Column("cast_at", When, nullable=False),
    # One vote per member per motion, whatever races the application layer loses.
    PrimaryKeyConstraint("decision_id", "voter_id", name="pk_votes"),
)

action_items = Table(
    "action_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision_id", Id, ForeignKey("decisions.id"), nullable=False, index=True),
    Column("meeting_id", Id, nullable=False),
    Column("community_id", Id, nullable=False),
    Column("issue_id", Id, nullable=True),
    Column("title", String(300), nullable=False),
    Column("owner_body", String(30), nullable=False),
    Column("owner_user_id", Id, nullable=True),
    Column("owner_organisation_id", Id, nullable=True, index=True),
    Column("owner_organisation_name", String(200), nullable=True),
    Column("due_date", Date, nullable=True),
    Column("status", String(20), nullable=False),
    Column("progress", Integer, nullable=False, server_default="0"),
    Column("note", Text, nullable=True),
    Column("created_at", When, nullable=False),
    Column("completed_at", When, nullable=True),
)
Index("ix_action_items_community_status", action_items.c.community_id, action_items.c.status)
# Statistics join action items to the meetings held in a period.
Index("ix_action_items_meeting", action_items.c.meeting_id)
# Statistics read the open items falling due this month from the history (adapters/counts.py).
Index("ix_action_items_due_date", action_items.c.due_date)

documents = Table(
    "community_documents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("community_id", Id, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("rules", JSON, nullable=True),
    Column("decision_id", Id, nullable=True),
    Column("meeting_id", Id, nullable=True),
    Column("adopted_at", When, nullable=False),
    UniqueConstraint("community_id", "kind", "version", name="uq_documents_version"),
)

# One row per issue per meeting held with it on the agenda, written when the meeting concludes:
# the read model behind "issues deliberated" and "consultations per resolved issue".
deliberations = Table(
    "deliberations",
    metadata,
    Column("meeting_id", Id, ForeignKey("meetings.id"), nullable=False),
    Column("issue_id", Id, nullable=False, index=True),
    Column("community_id", Id, nullable=False),
    Column("local_date", Date, nullable=False),
    # 1 for the first meeting that took the issue up, 2 for the second... (the roof needed six).
    Column("consultation_number", Integer, nullable=False),
    PrimaryKeyConstraint("meeting_id", "issue_id", name="pk_deliberations"),
)
Index("ix_deliberations_community_date", deliberations.c.community_id, deliberations.c.local_date)
Index("ix_deliberations_date", deliberations.c.local_date)

# The statistics' read model (adapters/counts.py): amounts per community (level "c") and per
# street (level "s", the street the directory replica gave the community when the change was
# written; "" for a community it did not know), month of the local date ("" for figures "as of
# now") and figure, with the figure's item (a meeting type, an outcome, a month...).
meeting_counts = Table(
    "meeting_counts",
    metadata,
    Column("level", String(1), nullable=False),
    Column("key", Id, nullable=False),
    Column("month", String(7), nullable=False),
    Column("figure", String(20), nullable=False),
    Column("item", String(40), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("level", "key", "month", "figure", "item", name="pk_meeting_counts"),
)
# Issues of each community as the issues service last described them (candidate agenda items).
issue_replica = Table(
    "issue_replica",
    metadata,
    Column("issue_id", Id, primary_key=True),
    Column("community_id", Id, nullable=False),
    Column("title", String(200), nullable=False),
    Column("category", String(80), nullable=False),
    Column("urgency", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("tier", String(10), nullable=False),
    Column("supporter_count", Integer, nullable=False),
    # Who may read it (public | community | private); a private issue's title is shown only to
    # the staff whose scope covers it, its reporter and its supporters.
    Column("visibility", String(10), nullable=False, server_default="community"),
    Column("reporter_id", Id, nullable=True),
    Column("revision", Integer, nullable=False),
    Column("updated_at", When, nullable=False),
)
Index("ix_issue_replica_community_status", issue_replica.c.community_id, issue_replica.c.status)

# The residents who support each issue (its snapshot's supporter_ids), replaced with every newer
# snapshot: who besides the reporter may read a private issue's title.
issue_supporters = Table(
    "issue_replica_supporters",
    metadata,
    Column("issue_id", Id, ForeignKey("issue_replica.issue_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Id, nullable=False),
    PrimaryKeyConstraint("issue_id", "user_id", name="pk_issue_replica_supporters"),
)
Index("ix_issue_replica_supporters_user", issue_supporters.c.user_id)

# A resident's proposal of a meeting on an issue, and the staff's answer.
proposals = Table(
    "meeting_proposals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("community_id", Id, nullable=False),
    Column("issue_id", Id, nullable=False),
    Column("proposer_id", Id, nullable=False, index=True),
    Column("meeting_type", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("decided_by", Id, nullable=True),
    Column("decided_at", When, nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("meeting_id", Id, ForeignKey("meetings.id"), nullable=True),
    Column("created_at", When, nullable=False),
)
Index("ix_meeting_proposals_community_status", proposals.c.community_id, proposals.c.status, proposals.c.created_at)
# One pending proposal per resident per issue, whatever races the application layer loses.
Index(
    "uq_meeting_proposals_pending",
    proposals.c.issue_id,
    proposals.c.proposer_id,
    unique=True,
    postgresql_where=proposals.c.status == "pending",
    sqlite_where=proposals.c.status == "pending",
)

mapper_registry = registry()
mapper_registry.map_imperatively(AgendaItem, agenda_items)
mapper_registry.map_imperatively(Participant, participants)
mapper_registry.map_imperatively(
    Meeting,
    meetings,
    properties={
        "agenda": relationship(
            AgendaItem, order_by=agenda_items.c.position, cascade="all, delete-orphan", lazy="selectin"
        ),
        "participants": relationship(
            Participant, order_by=participants.c.enrolled_at, cascade="all, delete-orphan", lazy="selectin"
        ),
    },
)
mapper_registry.map_imperatively(Decision, decisions)
mapper_registry.map_imperatively(Vote, votes)
mapper_registry.map_imperatively(ActionItem, action_items)
mapper_registry.map_imperatively(CommunityDocument, documents)
mapper_registry.map_imperatively(MeetingProposal, proposals)
