"""statistics' read models: counts per community, street and month, kept with every change

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 00:00:00

/stats adds up counts kept in the transaction of every change (adapters/counts.py) instead of
reading the history. A database with no activities, check-ins, bookings, groups or visits yet has
its counts built at once (empty, in the zone of LINLI_TIMEZONE); one with history keeps reading it
in /stats until `linli-activities rebuild-counts` builds them.
"""

import os

from alembic import op
import sqlalchemy as sa

from linli_kit.tables import UtcDateTime


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INTEGERS = (
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
HISTORY = (
    "activities",
    "registrations",
    "checkins",
    "service_posts",
    "mutual_aid_groups",
    "group_members",
    "help_logs",
    "talents",
    "bookings",
    "visit_plans",
    "welfare_visits",
    "patrol_rounds",
    "patrol_findings",
)


def upgrade() -> None:
    op.create_table(
        "activity_counts",
        sa.Column("scope", sa.String(length=48), primary_key=True),
        sa.Column("month", sa.String(length=16), primary_key=True),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in INTEGERS),
        sa.Column("help_hours", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_table(
        "activity_kind_counts",
        sa.Column("scope", sa.String(length=48), primary_key=True),
        sa.Column("month", sa.String(length=16), primary_key=True),
        sa.Column("kind", sa.String(length=20), primary_key=True),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("held_city", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "activity_people",
        sa.Column("scope", sa.String(length=48), primary_key=True),
        sa.Column("user_id", sa.String(length=36), primary_key=True),
        sa.Column("month", sa.String(length=16), primary_key=True),
        sa.Column("times", sa.Integer(), nullable=False),
    )
    op.create_table(
        "activity_first_seen",
        sa.Column("scope", sa.String(length=48), primary_key=True),
        sa.Column("month", sa.String(length=16), primary_key=True),
        sa.Column("since", sa.String(length=16), primary_key=True),
        sa.Column("people", sa.Integer(), nullable=False),
    )
    state = op.create_table(
        "activity_counts_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("zone", sa.String(length=64), nullable=True),
        sa.Column("built_at", UtcDateTime(), nullable=True),
    )
    bind = op.get_bind()
    empty = all(bind.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is None for table in HISTORY)
    zone = os.environ.get("LINLI_TIMEZONE", "Asia/Shanghai") if empty else None
    op.bulk_insert(state, [{"id": 1, "zone": zone, "built_at": None}])


def downgrade() -> None:
    for table in (
        "activity_counts_state",
        "activity_first_seen",
        "activity_people",
        "activity_kind_counts",
        "activity_counts",
    ):
        op.drop_table(table)
