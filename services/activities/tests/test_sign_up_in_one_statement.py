"""A first sign-up takes its place with one conditional UPDATE (service_layer.activities.
_register_first_time; on PostgreSQL within the one statement of the whole sign-up): on SQLite and
PostgreSQL it decides exactly what the general path decides (the domain's Activity.register),
publishes the same events, and leaves every refusal to the general path, which names its reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import event, select

from linli_activities.adapters import counts, repository
from linli_activities.adapters.tables import activity_counts, messaging
from linli_activities.domain.activities import Activity
from linli_activities.service_layer import activities
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Invalid, NotFound

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
# Parties signing up one after the other: the line forms when the second party of 3 no longer fits,
# and the party of 1 after it, which would fit, still joins the line behind it.
PARTIES = [2, 3, 3, 1, 2]


def _activity(database, community: str, **values) -> Activity:
    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(community,))
    settings = {
        "publish": True,
        "community_ids": [community],
        "kind": "festival",
        "title": "Neighbourhood festival",
        "starts_at": NOW + timedelta(days=3),
        "ends_at": NOW + timedelta(days=3, hours=3),
        "capacity": 6,
        "max_party_size": 3,
    }
    return activities.create_activity(ActivitiesUnitOfWork(database, lambda: NOW), staff, **{**settings, **values})


def _sign_ups(database, community: str, activity_id: str, *, general_path: bool) -> list[tuple]:
    patch = (
        mock.patch.object(activities, "_register_first_time", lambda *a, **k: None)
        if general_path
        else mock.patch.object(activities, "_register_first_time", wraps=activities._register_first_time)
    )
    decided = []
    with patch as fast:
        for party in PARTIES:
            resident = Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,))
            view = activities.register(
                ActivitiesUnitOfWork(database, lambda: NOW), resident, activity_id, party_size=party
            )
            r = view.registration
            decided.append((r.party_size, r.status, r.waitlist_seq, view.waitlist_position))
        if not general_path:
            assert fast.call_count == len(PARTIES)
    return decided


def _state(database, activity_id: str) -> tuple:
    with database.session() as s:
        a = s.get(Activity, activity_id)
        events = [
            (
                e.event_type,
                {
                    k: v
                    for k, v in json.loads(e.payload)["data"].items()
                    if k not in ("registration_id", "user_id", "activity_id")
                },
            )
            for e in s.execute(select(messaging.outbox).order_by(messaging.outbox.c.id))
            if e.event_type.startswith("activities.registration.") and activity_id in e.payload
        ]
        return (a.confirmed_places, a.waiting_parties, a.waitlist_counter), events


def test_the_one_statement_sign_up_decides_as_the_domain_does_and_leaves_refusals_to_it(any_database, any_world):
    # One test on each database: a fresh SQLite database is migrated per test, which is the cost here.
    community = any_world.community_a
    for capacity in (6, None):
        fast = _activity(any_database, community, capacity=capacity)
        general = _activity(any_database, community, capacity=capacity)
        assert _sign_ups(any_database, community, fast.id, general_path=False) == _sign_ups(
            any_database, community, general.id, general_path=True
        )
        assert _state(any_database, fast.id) == _state(any_database, general.id)
        counters, events = _state(any_database, fast.id)
        if capacity is not None:
            assert counters == (5, 3, 3)  # 2 + 3 confirmed; the line: 3, 1, 2
            assert [e[0].rsplit(".", 1)[1] for e in events] == ["confirmed"] * 2 + ["waitlisted"] * 3
    _refusals(any_database, community)


REFUSED = [
    ({"registration_closes_at": NOW - timedelta(hours=1)}, 1, "registration has closed"),
    ({"registration_opens_at": NOW + timedelta(hours=1)}, 1, "registration opens at"),
    ({"publish": False}, 1, "not found"),  # a draft: the resident does not see it
    ({}, 4, "party size out of range"),
]


def _refusals(any_database, community: str) -> None:
    """What the one statement does not take, the general path refuses, naming why; nothing changes."""
    for values, party, refusal in REFUSED:
        activity = _activity(any_database, community, **values)
        resident = Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,))
        with pytest.raises((Conflict, Invalid, NotFound), match=refusal):
            activities.register(
                ActivitiesUnitOfWork(any_database, lambda: NOW), resident, activity.id, party_size=party
            )
        assert _state(any_database, activity.id) == ((0, 0, 0), [])  # nothing changed
    # A second sign-up of one person is refused too, and changes nothing.
    activity = _activity(any_database, community)
    resident = Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,))
    activities.register(ActivitiesUnitOfWork(any_database, lambda: NOW), resident, activity.id, party_size=2)
    with pytest.raises(Conflict, match="already registered"):
        activities.register(ActivitiesUnitOfWork(any_database, lambda: NOW), resident, activity.id, party_size=1)
    assert _state(any_database, activity.id)[0] == (2, 0, 0)


def test_a_first_sign_up_writes_its_counts_with_its_registration(any_database, any_world):
    """The sign-up's writes: on PostgreSQL one statement taking the place and writing the
    registration, the statistics' counts (an INSERT ... ON CONFLICT of its community's row and its
    street's) and the event, committed by itself (autocommit: the activity's row is held only
    while it runs and commits, with no round trip of the client's in between); on SQLite the
    conditional UPDATE, then the counts, the registration and the event."""
    community = any_world.community_a
    activity = _activity(any_database, community)
    written: list[str] = []
    idle_after: list[bool] = []
    postgres = any_database.engine.dialect.name == "postgresql"

    def seen(_conn, _cursor, statement, *_args) -> None:
        verb = statement.lstrip().split()[0].upper()
        if verb in ("UPDATE", "INSERT", "WITH", "DELETE"):
            written.append(statement)

    # PostgreSQL: the statements as the driver runs them (the sign-up's are run by psycopg itself,
    # not through SQLAlchemy's execution, whose events do not see them), and whether the
    # connection was left outside a transaction after the one statement (committed as it ended).
    execute = psycopg.Cursor.execute

    def run(cursor, query, *args, **kwargs):
        seen(None, cursor, query)
        result = execute(cursor, query, *args, **kwargs)
        if query.startswith("WITH place AS"):
            idle_after.append(cursor.connection.info.transaction_status == pq.TransactionStatus.IDLE)
        return result

    resident = Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(community,))
    if postgres:
        with mock.patch.object(psycopg.Cursor, "execute", run):
            activities.register(ActivitiesUnitOfWork(any_database, lambda: NOW), resident, activity.id, party_size=2)
    else:
        event.listen(any_database.engine, "before_cursor_execute", seen)
        try:
            activities.register(ActivitiesUnitOfWork(any_database, lambda: NOW), resident, activity.id, party_size=2)
        finally:
            event.remove(any_database.engine, "before_cursor_execute", seen)
    assert len(written) == (1 if postgres else 4), written
    assert sum("activity_counts" in statement for statement in written) == 1
    if postgres:
        assert written[0].startswith("WITH place AS (UPDATE activities")
        assert all(f"INSERT INTO {table}" in written[0] for table in ("registrations", "activity_counts", "outbox"))
        assert idle_after == [True]  # committed as it ended: no transaction left open holding the row
    else:
        assert written[0].lstrip().startswith("UPDATE activities")
    with any_database.session() as s:
        rows = s.execute(select(activity_counts.c.scope, activity_counts.c.registered_places)).all()
        places = {scope: n for scope, n in rows if scope in (community, f"street:{any_world.street_id}")}
        assert places == {community: 2, f"street:{any_world.street_id}": 2}


def test_a_first_sign_up_on_postgresql_is_one_read_and_one_write_psycopg_parses_once(database, world):
    """PostgreSQL: a first sign-up reads its activity (only what the common path uses) and its
    earlier registration in one statement, then writes in one; nothing else (an attribute it did
    not read and then needed would show here as a query of its own). The statements are seen as
    the driver runs them: the read is run by psycopg itself, not through SQLAlchemy. Both sign-up
    statements stay within psycopg's limits for keeping their parsing (4,096 characters, 50
    parameters): beyond them psycopg splits the text again at every execution."""
    activity = _activity(database, world.community_a)
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def seen(cursor, query, *args, **kwargs):
        statements.append(query)
        return execute(cursor, query, *args, **kwargs)

    with mock.patch.object(psycopg.Cursor, "execute", seen):
        resident = Principal(user_id=str(uuid.uuid4()), role=Role.RESIDENT, community_ids=(world.community_a,))
        view = activities.register(ActivitiesUnitOfWork(database, lambda: NOW), resident, activity.id, party_size=2)
    assert view.registration.status == "confirmed"
    assert len(statements) == 2, statements
    read, write = statements
    assert read.lstrip().startswith("SELECT") and "description" not in read
    assert write.startswith("WITH place AS")
    dialect = database.engine.dialect
    for statement in (repository.SIGN_UP_IN_ONE_STATEMENT, repository.SIGN_UPS_TOGETHER):
        compiled = statement.compile(dialect=dialect)
        assert len(str(compiled).encode()) <= 4096 and len(compiled.params) <= 50


def test_a_sign_up_s_counts_move_only_the_columns_its_statements_write():
    """The sign-up statements write only counts.REGISTRATION_COLUMNS: every figure a registration
    can contribute, in any status, is in one of them."""
    for status in ("confirmed", "waitlisted", "checked_in", "cancelled"):
        row = {"community_id": "c", "status": status, "party_size": 2}
        for _community, _month, column, _amount in counts.registration_figures(row, "published", NOW, UTC):
            assert column in counts.REGISTRATION_COLUMNS
