"""A new activity is written without reading what it cannot have yet (registrants, reminders, old
counts) and without the ORM's flush (on PostgreSQL in one statement): its row, its links, its
planned reminders, its counts and its event are those the general path writes. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select

from linli_activities.adapters import counts
from linli_activities.adapters.tables import (
    activities as activities_table,
)
from linli_activities.adapters.tables import (
    activity_communities,
    activity_counts,
    activity_kind_counts,
    activity_reminders,
    messaging,
    replica,
)
from linli_activities.service_layer import activities
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.events.catalogue import CATALOGUE

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
START = datetime(2026, 12, 20, 11, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"


def _statements(database):
    """The SQL statements run on `database` while the returned list is being filled."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(" ".join(statement.split()))

    event.listen(database.engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(database.engine, "before_cursor_execute", record)


def _stored_counts(database, scopes):
    with database.session() as s:
        wide = s.execute(
            select(activity_counts.c.scope, activity_counts.c.activities_held, activity_counts.c.activities_city).where(
                activity_counts.c.scope.in_(scopes)
            )
        ).all()
        kinds = s.execute(
            select(activity_kind_counts.c.scope, activity_kind_counts.c.held, activity_kind_counts.c.held_city).where(
                activity_kind_counts.c.scope.in_(scopes)
            )
        ).all()
    return sorted(map(tuple, wide)), sorted(map(tuple, kinds))


def test_a_new_published_activity_is_written_as_the_general_path_writes_it(any_database, any_world):
    database, world = any_database, any_world
    # A third community in another street, and one the directory does not know.
    other_street, third, unknown = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=other_street, name="other", revision=1))
        s.execute(insert(replica.communities).values(community_id=third, street_id=other_street, name="c", revision=1))
    communities = [third, world.community_a, unknown]
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=tuple(communities))
    seen, stop = _statements(database)
    autocommit: list[bool] = []

    def record(_conn, cursor, _statement, _parameters, _context, _executemany):
        autocommit.append(getattr(cursor.connection, "autocommit", None))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        activity = activities.create_activity(
            ActivitiesUnitOfWork(database, lambda: NOW, timezone=ZONE),
            staff,
            publish=True,
            community_ids=communities,
            kind="culture",
            title="Opera evening",
            starts_at=START,
            ends_at=START + timedelta(hours=2),
            capacity=10,
        )
    finally:
        stop()
        event.remove(database.engine, "before_cursor_execute", record)
    # Nothing read of registrations or reminders, no UPDATE or DELETE: one INSERT per table.
    written = [s for s in seen if not s.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "PRAGMA"))]
    assert not [s for s in written if "FROM registrations" in s or s.startswith(("UPDATE", "DELETE"))], written
    assert not [s for s in written if s.startswith("SELECT") and "activity_reminders" in s], written
    if database.engine.dialect.name == "postgresql":
        # The streets read, then one statement for the event, the counts, the links, the
        # reminders and the activity.
        assert [s.split(" ")[0] for s in written] == ["SELECT", "WITH"], written
        assert written[1].startswith("WITH events AS (INSERT INTO outbox ")
        assert "INSERT INTO activities SELECT" in written[1]
        # Read, then written by that one statement on its own: in autocommit (no BEGIN, no COMMIT).
        assert autocommit and all(autocommit), autocommit
    else:
        assert sum(s.startswith("INSERT INTO activities ") for s in written) == 1
        assert len(written) <= 7, written

    with database.session() as s:
        row = s.execute(select(activities_table).where(activities_table.c.id == activity.id)).one()
        links = s.execute(
            select(activity_communities.c.community_id, activity_communities.c.status).where(
                activity_communities.c.activity_id == activity.id
            )
        ).all()
        reminders = s.execute(
            select(activity_reminders.c.lead_minutes, activity_reminders.c.starts_at, activity_reminders.c.state)
            .where(activity_reminders.c.activity_id == activity.id)
            .order_by(activity_reminders.c.lead_minutes)
        ).all()
        payloads = [
            json.loads(p)
            for p in s.execute(
                select(messaging.outbox.c.payload).where(
                    messaging.outbox.c.event_type == "activities.activity.published"
                )
            ).scalars()
        ]
    assert row.status == "published" and row.revision == 2 and row.announced_at == NOW
    assert row.community_ids == communities and row.capacity == 10 and row.checkin_code == activity.checkin_code
    assert sorted(links) == sorted((c, "published") for c in communities)
    assert [(lead, starts.astimezone(UTC), state) for lead, starts, state in reminders] == [
        (60, START, "scheduled"),
        (1440, START, "scheduled"),
    ]
    (published,) = [p for p in payloads if p["data"]["activity_id"] == activity.id]
    CATALOGUE.validate(published["type"], published["version"], published["data"])
    assert published["data"]["registrant_ids"] == []
    assert published["street_id"] == other_street  # the street of its first community
    assert published["community_id"] is None  # for several communities

    # The counts: what rebuild-counts finds in the history for these scopes.
    scopes = [*communities, counts.street_key(other_street), counts.street_key(world.street_id), counts.STREET]
    kept = _stored_counts(database, scopes)
    assert kept[0]  # counted
    with database.transaction() as session:
        counts.rebuild(session, counts.ZoneInfo(ZONE))
    assert _stored_counts(database, scopes) == kept


def test_a_new_draft_reads_nothing_and_counts_nothing(any_database, any_world):
    database, world = any_database, any_world
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_b,))
    seen, stop = _statements(database)
    try:
        draft = activities.create_activity(
            ActivitiesUnitOfWork(database, lambda: NOW, timezone=ZONE),
            staff,
            community_ids=[world.community_b],
            kind="sports",
            title="Morning run",
            starts_at=START,
            ends_at=START + timedelta(hours=1),
        )
    finally:
        stop()
    written = [s for s in seen if not s.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "PRAGMA"))]
    if database.engine.dialect.name == "postgresql":
        assert len(written) == 1 and written[0].startswith("WITH counted AS"), written
    else:
        assert [s.split(" (")[0] for s in written] == ["INSERT INTO activities", "INSERT INTO activity_communities"]
    assert draft.status == "draft" and draft.announced_at is None
    assert _stored_counts(database, [world.community_b]) == ([], [])
