"""A new activity is written without reading what it cannot have yet (registrants, reminders, old
counts) and without the ORM's flush (on PostgreSQL in one statement): its row, its links, its
planned reminders, its counts and its event are those the general path writes. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

import pytest
from sqlalchemy import insert, select

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
from linli_kit.testing.statements import statements_sent

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
START = datetime(2026, 12, 20, 11, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"


class _Seen(list):
    """The statements' texts, whitespace folded, as `statements_sent` sees them (with `autocommit`)."""

    autocommit: list[bool | None]


def _statements(database):
    """The SQL statements run on `database` while the returned list is being filled (on PostgreSQL
    where psycopg sends them: a new activity's statement is run by the driver itself)."""
    recording = ExitStack()
    sent = recording.enter_context(statements_sent(database.engine))
    seen = _Seen()

    def stop() -> None:
        recording.close()
        seen.extend(" ".join(statement.split()) for statement in sent)
        seen.autocommit = list(sent.autocommit)

    return seen, stop


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
    # Nothing read of registrations or reminders, no UPDATE or DELETE: one INSERT per table.
    written = [s for s in seen if not s.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "PRAGMA"))]
    assert not [s for s in written if "FROM registrations" in s or s.startswith(("UPDATE", "DELETE"))], written
    assert not [s for s in written if s.startswith("SELECT") and "activity_reminders" in s], written
    if database.engine.dialect.name == "postgresql":
        # The streets read (one community unknown: none held), then one statement for the event,
        # the counts, the links, the reminders and the activity, provided the streets still hold.
        assert [s.split(" ")[0] for s in written] == ["SELECT", "WITH"], written
        assert written[1].startswith("WITH ok AS MATERIALIZED (SELECT 1 AS ok WHERE NOT EXISTS")
        assert "events AS (INSERT INTO outbox " in written[1]
        assert "INSERT INTO activities SELECT" in written[1]
        # Read, then written by that one statement on its own: in autocommit (no BEGIN, no COMMIT).
        assert seen.autocommit and all(seen.autocommit), seen.autocommit
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
        assert len(written) == 1 and written[0].startswith("WITH ok AS"), written
        assert "INSERT INTO outbox" not in written[0]
    else:
        assert [s.split(" (")[0] for s in written] == ["INSERT INTO activities", "INSERT INTO activity_communities"]
    assert draft.status == "draft" and draft.announced_at is None
    assert _stored_counts(database, [world.community_b]) == ([], [])


def _create(database, principal, communities, **values):
    return activities.create_activity(
        ActivitiesUnitOfWork(database, lambda: NOW, timezone=ZONE),
        principal,
        publish=True,
        community_ids=communities,
        kind="culture",
        title="Opera evening",
        starts_at=START,
        ends_at=START + timedelta(hours=2),
        **values,
    )


def _published_event(database, activity_id):
    with database.session() as s:
        payloads = [
            json.loads(p)
            for p in s.execute(
                select(messaging.outbox.c.payload).where(
                    messaging.outbox.c.event_type == "activities.activity.published"
                )
            ).scalars()
        ]
    (published,) = [p for p in payloads if p["data"]["activity_id"] == activity_id]
    return published


def test_streets_held_from_the_last_activity_are_not_read_again_and_are_checked_when_written(database, world):
    """PostgreSQL: the second activity of the same communities reads nothing (the streets held from
    the first), and its one statement writes it; when the directory has moved a community to
    another street since its street was read, that statement writes nothing, the streets are read
    again and the activity written from them: counted in its new street, its event saying so,
    written once."""
    communities = [world.community_a, world.community_b]
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=tuple(communities))
    _create(database, staff, communities)
    seen, stop = _statements(database)
    try:
        second = _create(database, staff, communities)
    finally:
        stop()
    assert [s.split(" ")[0] for s in seen] == ["WITH"], seen  # nothing read, nothing but its statement
    assert _published_event(database, second.id)["street_id"] == world.street_id

    # A third community's street read (and held), then the directory moves it to another street
    # (before it has any activity: the history and the counts agree on where its activities are).
    third, moved_to = str(uuid.uuid4()), str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=moved_to, name="new street", revision=1))
        s.execute(
            insert(replica.communities).values(community_id=third, street_id=world.street_id, name="c", revision=1)
        )
    with ActivitiesUnitOfWork(database, lambda: NOW, timezone=ZONE) as uow:
        assert uow.repo.streets_of([third]) == {third: world.street_id}
    with database.transaction() as s:
        s.execute(
            replica.communities.update()
            .where(replica.communities.c.community_id == third)
            .values(street_id=moved_to, revision=2)
        )
    scopes = [world.community_a, third, counts.street_key(world.street_id), counts.street_key(moved_to)]
    before = {scope: held for scope, held, _city in _stored_counts(database, scopes)[0]}
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(third, world.community_a))
    seen, stop = _statements(database)
    try:
        made = _create(database, staff, [third, world.community_a])
    finally:
        stop()
    # Its statement made from the streets held wrote nothing; read, and written again.
    assert [s.split(" ")[0] for s in seen] == ["WITH", "SELECT", "WITH"], seen
    assert _published_event(database, made.id)["street_id"] == moved_to  # its first community's
    after = {scope: held for scope, held, _city in _stored_counts(database, scopes)[0]}
    assert {scope: after.get(scope, 0) - before.get(scope, 0) for scope in scopes} == dict.fromkeys(scopes, 1)
    with database.session() as s:
        assert s.execute(select(activities_table.c.id).where(activities_table.c.id == made.id)).all()
        links = s.execute(
            select(activity_communities.c.community_id).where(activity_communities.c.activity_id == made.id)
        ).all()
        reminders = s.execute(select(activity_reminders.c.id).where(activity_reminders.c.activity_id == made.id)).all()
        events = s.execute(
            select(messaging.outbox.c.event_id).where(messaging.outbox.c.payload.contains(made.id))
        ).all()
    assert sorted(c for (c,) in links) == sorted([third, world.community_a])
    assert len(reminders) == 2 and len(events) == 1


def test_an_activity_made_for_its_own_statements_is_the_one_its_class_makes():
    """`Repository.new_written` makes what `Activity(...)` makes (defaults, factories, the times
    normalised and the rules checked by __post_init__), without the ORM's events."""
    from dataclasses import fields

    from linli_activities.adapters.repository import Repository
    from linli_activities.domain.activities import Activity
    from linli_activities.domain.reminders import ActivityReminder, plan
    from linli_kit.errors import Invalid

    shanghai = timezone(timedelta(hours=8))
    values = {
        "community_ids": [str(uuid.uuid4())],
        "kind": "sports",
        "title": "Morning run",
        "starts_at": START.astimezone(shanghai),
        "ends_at": (START + timedelta(hours=1)).astimezone(shanghai),
        "organiser_type": "staff",
        "organiser_id": "someone",
        "created_by": "someone",
        "created_at": NOW,
        "registration_closes_at": START.astimezone(shanghai),
        "capacity": 3,
        "max_party_size": 2,
    }
    made, expected = Repository.new_written(Activity, **values), Activity(**values)
    for field in fields(Activity):
        if field.name not in ("id", "checkin_code"):
            assert getattr(made, field.name) == getattr(expected, field.name), field.name
    assert made.starts_at.tzinfo == UTC and made.registration_closes_at.tzinfo == UTC
    assert made.id != expected.id and len(made.checkin_code) == 6 and made.audience == [] and made.photos == []
    assert made.audience is not Repository.new_written(Activity, **values).audience  # a list each
    made.publish()
    assert (made.status, made.revision) == ("published", 2)
    with pytest.raises(Invalid):
        Repository.new_written(Activity, **{**values, "max_party_size": 5})
    with pytest.raises(TypeError):
        Repository.new_written(Activity, **{**values, "colour": "red"})
    with pytest.raises(TypeError):
        Repository.new_written(Activity, **{k: v for k, v in values.items() if k != "title"})
    reminders = plan("a", START, (60, 1440), NOW, make=partial(Repository.new_written, ActivityReminder))
    assert [(r.activity_id, r.lead_minutes, r.starts_at, r.due_at, r.state, r.sent_at) for r in reminders] == [
        (r.activity_id, r.lead_minutes, r.starts_at, r.due_at, r.state, r.sent_at)
        for r in plan("a", START, (60, 1440), NOW)
    ]
