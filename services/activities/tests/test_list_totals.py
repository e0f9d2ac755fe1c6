"""PostgreSQL keeps the totals of one community's list (`activity_list_totals`) with every change of
the rows they count (inserts, updates, deletes, those of a deleted activity's cascade), built from
the rows already there by migration 0017; a list of one community says the total counting those
rows gives, for every filter and scope its kept totals answer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from alembic import command
from sqlalchemy import create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import OperationalError

from linli_activities.adapters.tables import activities as activities_table
from linli_activities.adapters.tables import activity_communities, activity_list_totals
from linli_activities.definition import definition
from linli_kit.migrations import alembic_config, upgrade

pytestmark = pytest.mark.integration

START = datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
KEY = (activity_communities.c.community_id, activity_communities.c.kind, activity_communities.c.status)


def _kept_and_counted(connection, communities):
    """Per (community, kind, status): the kept totals (their shards added up), and the count of the rows."""
    t = activity_list_totals.c
    kept = {
        (c, k, s): n
        for c, k, s, n in connection.execute(
            select(t.community_id, t.kind, t.status, func.sum(t.activities))
            .where(t.community_id.in_(communities))
            .group_by(t.community_id, t.kind, t.status)
        )
        if n
    }
    counted = {
        (c, k, s): n
        for c, k, s, n in connection.execute(
            select(*KEY, func.count()).where(activity_communities.c.community_id.in_(communities)).group_by(*KEY)
        )
    }
    return kept, counted


def test_the_kept_totals_follow_every_change_of_the_lists_rows(app, client, world, database):
    a, b = world.community_a, world.community_b
    staff = world.headers("community_staff", communities=[a, b])

    def create(index: int, **values) -> str:
        start = START + timedelta(days=index)
        body = {"community_ids": [a], "kind": "culture", "title": f"activity {index}", "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(), **values}  # fmt: skip
        response = client.post("/", json=body, headers=staff)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    made = [create(0, publish=True), create(1, publish=True, community_ids=[a, b]), create(2, kind="sports")]
    made += [create(3, publish=True, community_ids=[b, a], kind="sports"), create(4)]
    with database.engine.connect() as connection:
        kept, counted = _kept_and_counted(connection, [a, b])
    assert kept == counted and sum(kept.values()) == 7
    # Published, cancelled, changed: through the service (the ORM's and Core's statements).
    assert client.post(f"/{made[2]}/publish", headers=staff).status_code == 200
    assert client.post(f"/{made[1]}/cancel", json={"reason": "rain"}, headers=staff).status_code == 200
    assert client.patch(f"/{made[3]}", json={"kind": "education"}, headers=staff).status_code == 200
    # Several rows in one statement, another key each; and an activity deleted, its rows by cascade.
    with database.transaction() as s:
        s.execute(update(activity_communities).where(activity_communities.c.community_id == b).values(kind="other"))
        s.execute(delete(activities_table).where(activities_table.c.id == made[0]))
        s.execute(
            update(activity_communities)
            .where(activity_communities.c.activity_id == made[4])
            .values(starts_at=START + timedelta(days=9))
        )
    # Rolled back: nothing kept.
    with database.engine.connect() as connection:
        with connection.begin() as transaction:
            connection.execute(delete(activity_communities).where(activity_communities.c.community_id == a))
            transaction.rollback()
        kept, counted = _kept_and_counted(connection, [a, b])
    assert kept == counted and sum(kept.values()) == 6
    assert ("other", "cancelled") in {(k, s) for (c, k, s) in kept if c == b}

    # Each list of one community says the total counting its rows gives.
    resident = world.headers("resident", community=a)
    outsider = world.headers("resident", community=str(uuid.uuid4()))
    official = world.headers("street_official")
    cases = [
        (staff, f"community_id={a}", 4),
        (staff, f"community_id={b}", 2),
        (staff, f"community_id={a}&kind=sports", 1),
        (staff, f"community_id={a}&status=draft", 1),
        (staff, f"community_id={a}&kind=culture&status=cancelled", 1),
        (resident, f"community_id={a}", 3),  # drafts hidden
        (resident, f"community_id={a}&status=draft", 0),
        (official, f"community_id={b}&kind=other", 2),
        (staff, f"community_id={a}&from={(START + timedelta(days=2)).isoformat()}".replace("+", "%2B"), 3),
    ]
    for headers, query, total in cases:
        response = client.get(f"/?{query}&page_size=2", headers=headers)
        assert response.status_code == 200, response.get_json()
        assert json.loads(response.headers["X-Pagination"])["total"] == total, query
        response = client.get(f"/?{query}&page=9&page_size=2", headers=headers)  # past the end: counted alone
        assert response.get_json() == [] and json.loads(response.headers["X-Pagination"])["total"] == total, query
    assert client.get(f"/?community_id={a}", headers=outsider).status_code == 403


def test_the_migration_builds_the_totals_of_the_rows_already_there(pg_databases):
    url = pg_databases.create("activities_totals")
    upgrade(definition.migrations_dir, url, "0016")
    engine = create_engine(url)
    community, other = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        with engine.begin() as connection:
            for index, (communities, kind, status) in enumerate(
                [([community], "culture", "published"), ([community, other], "culture", "published"),
                 ([community], "sports", "draft"), ([other], "culture", "cancelled")]
            ):  # fmt: skip
                activity_id = str(uuid.uuid4())
                starts = START + timedelta(days=index)
                connection.execute(
                    text(
                        "INSERT INTO activities (id, kind, title, description, audience, photos, community_ids, "
                        "starts_at, ends_at, capacity, max_party_size, status, organiser_type, organiser_id, "
                        "created_by, created_at, checkin_code, confirmed_places, waiting_parties, "
                        "waitlist_counter, revision) VALUES (:id, :kind, 't', '', '[]', '[]', :communities, :starts, "
                        ":ends, NULL, 4, :status, 'staff', 'x', 'x', :starts, '123456', 0, 0, 0, 1)"
                    ),
                    {"id": activity_id, "kind": kind, "communities": json.dumps(communities), "starts": starts,
                     "ends": starts + timedelta(hours=1), "status": status},
                )  # fmt: skip
                connection.execute(
                    insert(activity_communities),
                    [{"activity_id": activity_id, "community_id": c, "kind": kind, "status": status,
                      "starts_at": starts} for c in communities],
                )  # fmt: skip
        command.upgrade(alembic_config(definition.migrations_dir, url), "head")
        with engine.connect() as connection:
            kept, counted = _kept_and_counted(connection, [community, other])
        assert (
            kept
            == counted
            == {
                (community, "culture", "published"): 2,
                (community, "sports", "draft"): 1,
                (other, "culture", "published"): 1,
                (other, "culture", "cancelled"): 1,
            }
        )
        command.downgrade(alembic_config(definition.migrations_dir, url), "0016")
        with engine.connect() as connection:
            names = connection.execute(text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'activity_list%'"))
            assert names.all() == []
    finally:
        engine.dispose()


def test_the_driver_reads_a_page_as_sqlalchemy_reads_it_in_any_time_zone(app, database, world):
    """The page of the kept path is read by psycopg itself: the same rows as SQLAlchemy's reading
    of the counting statement, instants in UTC even in a session of another time zone, the same
    answer written; a connection lost on the way is SQLAlchemy's error (the 503 of any statement)."""
    from linli_activities.adapters.repository import Repository
    from linli_activities.entrypoints.activities_api import listed
    from linli_activities.service_layer import activities
    from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
    from linli_kit.auth import Principal, Role
    from linli_kit.db import Database

    staff = Principal(user_id=str(uuid.uuid4()), role=Role.COMMUNITY_STAFF, community_ids=(world.community_a,))
    for index in range(3):
        start = START + timedelta(days=index, microseconds=250_000 * index)
        activities.create_activity(
            ActivitiesUnitOfWork(database),
            staff,
            publish=index > 0,
            community_ids=[world.community_a],
            kind="culture",
            title=f"activity {index}",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            registration_opens_at=START - timedelta(days=1) if index == 2 else None,
        )
    statements = activities._listing("communities", ("community_id",), False)
    parameters = {"scope_communities": [world.community_a], "community_id": world.community_a}
    elsewhere = Database(database.url)

    @event.listens_for(elsewhere.engine, "connect")
    def _in_shanghai(dbapi_connection, _record):
        dbapi_connection.execute("SET TIME ZONE 'Asia/Shanghai'")
        dbapi_connection.commit()

    try:
        session = elsewhere.reading_session()
        try:
            connection = session.connection()
            assert connection.connection.driver_connection.info.timezone.key == "Asia/Shanghai"
            rows, total = Repository(session).activity_page(statements, parameters, offset=0, limit=10)
            counted = connection.execute(statements.page, {**parameters, "page_offset": 0, "page_limit": 10}).all()
        finally:
            session.close()
        assert total == 3 and [tuple(row) for row in counted] == rows
        instants = [value for row in rows for value in row if isinstance(value, datetime)]
        assert instants and all(value.utcoffset() == timedelta(0) for value in instants)
        with app.test_request_context("/", headers={"Accept-Language": "en"}):
            assert orjson.dumps(listed(rows)) == orjson.dumps(listed(counted))

        # The connection lost: SQLAlchemy's OperationalError, the connection invalidated.
        session = elsewhere.reading_session()
        try:
            pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with database.engine.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(OperationalError) as raised:
                Repository(session).activity_page(statements, parameters, offset=0, limit=10)
            assert raised.value.connection_invalidated
        finally:
            session.close()
        session = elsewhere.reading_session()  # the pool hands out a live one again
        try:
            assert Repository(session).activity_page(statements, parameters, offset=0, limit=10)[1] == 3
        finally:
            session.close()
    finally:
        elsewhere.dispose()
