"""The statistics' read models (adapters/counts.py): after a random run of everything that changes a
figure, `/stats` answered from the counts equals the history's aggregation (the queries /stats
used before, kept as the reference), for a community, a street, the city and per street, for the
usual period and for periods cut inside months; on SQLite and PostgreSQL. Then
`rebuild-counts` builds the very same counts from the history."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from linli_activities.adapters import counts
from linli_activities.adapters.tables import (
    activity_counts,
    activity_first_seen,
    activity_kind_counts,
    activity_people,
    replica,
)
from linli_activities.domain.care import SupportFlag, VisitPlan, WelfareVisit
from linli_activities.domain.patrols import PatrolFinding, PatrolRound
from linli_activities.entrypoints.stats_api import StatsSchema, as_sent
from linli_activities.service_layer import stats
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal, Role

pytestmark = pytest.mark.integration
ZONE = "Asia/Shanghai"
KINDS = ("sports", "culture", "festival", "education")
READ_MODELS = ("activity_counts", "activity_kind_counts", "activity_first_seen")


def ok(response, status=(200, 201)):
    assert response.status_code in status, response.get_json()
    return response.get_json()


def _answers(database, clock, street: str, others: list[str], community: str) -> list[tuple[str, dict, dict]]:
    """(what, from the counts, from the history) for every scope and a few periods."""
    admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
    today = clock.now.date()
    periods = [
        (None, None),  # the usual: twelve months to today
        (date(2026, 9, 1), date(2026, 11, 30)),  # whole months
        (date(2026, 9, 14), date(2026, 11, 3)),  # cut inside months
        (today.replace(day=1), today + timedelta(days=20)),  # to the future
    ]
    scopes = [
        {"community_id": community},
        {"street_id": street},
        {"street_id": others[0]},
        {},
    ]
    out = []
    for start, end in periods:
        for scope in scopes:
            for by in ("community", "street"):
                asked = dict(scope, period_from=start, period_to=end, by=by)
                answers = [
                    stats.statistics(
                        ActivitiesUnitOfWork(database, clock, timezone=ZONE),
                        admin,
                        timezone=ZONE,
                        from_history=history,
                        **asked,
                    )
                    for history in (False, True)
                ]
                out.append((repr(asked), *answers))
    return out


def _normal(answer: dict) -> dict:
    """The answer with rows of nothing but zeros left out (the history lists a community whose only
    registration was cancelled, with zeros; the counts have nothing to list)."""

    def nonzero(row: dict) -> bool:
        return any(v for k, v in row.items() if k not in ("community_id", "street_id") and v is not None)

    answer = dict(answer)
    answer["by_community"] = [row for row in answer["by_community"] if nonzero(row)]
    answer["by_street"] = [row for row in answer["by_street"] if nonzero(row)]
    answer["totals"] = dict(
        answer["totals"], activities_by_kind={k: v for k, v in answer["totals"]["activities_by_kind"].items() if v}
    )
    return answer


def _stored(database) -> dict:
    with database.transaction() as session:
        out = {}
        for table in (activity_counts, activity_kind_counts, activity_people, activity_first_seen):
            rows = session.execute(select(table)).all()
            out[table.name] = sorted(
                tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in rows
                if any(v for v in row if isinstance(v, int | float) and not isinstance(v, bool))
            )
        return out


def test_counts_answer_as_the_history_after_random_changes(any_app, any_client, any_world, clock):
    client, world = any_client, any_world
    database = any_app.extensions["linli.database"]
    rng = random.Random(20261204)
    a, b = world.community_a, world.community_b
    # A second street, and a community the directory does not know.
    other_street, c = str(uuid.uuid4()), str(uuid.uuid4())
    unknown = str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=other_street, name="other", revision=1))
        s.execute(insert(replica.communities).values(community_id=c, street_id=other_street, name="c", revision=1))
    communities = [a, b, c]
    staff = world.headers("community_staff", communities=[a, b, c, unknown])
    people = [world.person(community=rng.choice(communities)) for _ in range(8)]
    clock.now = datetime(2026, 9, 5, 2, 0, tzinfo=UTC)

    activities: list[str] = []
    registrations: list[tuple[str, str]] = []  # (activity, registration)
    groups: list[tuple[str, str]] = []  # (group, community)
    members: list[tuple[str, str, dict]] = []  # (group, user, headers)
    plans: list[tuple[str, str, str]] = []  # (plan, flag, community)
    rounds: list[tuple[str, str, str]] = []  # (round, group, community)
    offerings: dict[str, str] = {}

    def uow() -> ActivitiesUnitOfWork:
        return ActivitiesUnitOfWork(database, clock, timezone=ZONE)

    def create_activity() -> None:
        chosen = rng.sample(communities, rng.choice((1, 1, 2, 3)))
        start = clock.now + timedelta(days=rng.randint(-25, 30), hours=rng.randint(0, 23))
        body = {
            "community_ids": chosen,
            "kind": rng.choice(KINDS),
            "title": "x",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "capacity": rng.choice((3, 5, 10)),
            "publish": rng.random() < 0.9,
        }
        activities.append(ok(client.post("/", json=body, headers=staff))["id"])

    def cancel_activity() -> None:
        if activities:
            client.post(f"/{rng.choice(activities)}/cancel", json={"reason": "rain"}, headers=staff)

    def register() -> None:
        if activities:
            activity = rng.choice(activities)
            user, headers = rng.choice(people)
            response = client.post(
                f"/{activity}/registrations", json={"party_size": rng.randint(1, 3)}, headers=headers
            )
            if response.status_code == 201:
                registrations.append((activity, response.get_json()["id"]))

    def cancel_registration() -> None:
        if registrations:
            activity, registration = rng.choice(registrations)
            client.post(f"/{activity}/registrations/{registration}/cancel", json={}, headers=staff)

    def check_in() -> None:
        if registrations:
            activity, registration = rng.choice(registrations)
            client.post(f"/{activity}/checkins", json={"registration_id": registration}, headers=staff)

    def walk_in() -> None:
        if activities:
            body = {"community_id": rng.choice(communities), "participants": rng.randint(1, 4)}
            client.post(f"/{rng.choice(activities)}/walk-ins", json=body, headers=staff)

    def group() -> None:
        community = rng.choice(communities)
        body = {"community_id": community, "name": f"g{uuid.uuid4()}", "coordinator_id": people[0][0]}
        groups.append((ok(client.post("/groups", json=body, headers=staff))["id"], community))

    def join() -> None:
        if groups:
            group_id, _community = rng.choice(groups)
            user, headers = rng.choice(people)
            if (
                client.post(f"/groups/{group_id}/members", json={"display_name": "m"}, headers=headers).status_code
                == 201
            ):
                members.append((group_id, user, headers))

    def leave() -> None:
        if members:
            group_id, user, headers = members.pop(rng.randrange(len(members)))
            client.delete(f"/groups/{group_id}/members/{user}", headers=staff)

    def help_log() -> None:
        if members:
            group_id, _user, headers = rng.choice(members)
            day = (clock.now - timedelta(days=rng.randint(0, 40))).date()
            body = {"helped_description": "h", "helped_on": day.isoformat(), "hours": rng.choice((0.5, 1.25, 2, 3.75))}
            client.post(f"/groups/{group_id}/help", json=body, headers=headers)

    def talent() -> None:
        user, headers = rng.choice(people)
        client.post("/talents", json={"display_name": "t", "skills": ["repair"]}, headers=headers)

    def post() -> None:
        body = {
            "community_id": rng.choice(communities),
            "name": "p",
            "latitude": 37.0,
            "longitude": 105.0,
            "residents_served": rng.randint(1, 500),
        }
        client.post("/posts", json=body, headers=staff)

    def delivery() -> None:
        community = rng.choice(communities)
        if community not in offerings:
            body = {
                "community_id": community,
                "name": "o",
                "kind": "massage",
                "provider_type": "business",
                "provider_name": "Z",
                "at_post": False,
                "door_to_door": True,
                "concurrent_slots": 50,
            }
            offerings[community] = ok(client.post("/offerings", json=body, headers=staff))["id"]
        slot = clock.now + timedelta(hours=rng.randint(1, 48))
        door = rng.random() < 0.5
        body = {
            "offering_id": offerings[community],
            "resident_id": str(uuid.uuid4()),
            "door_to_door": door,
            "slot_start": slot.isoformat(),
            "slot_end": (slot + timedelta(hours=1)).isoformat(),
            **({"address": "B1"} if door else {}),
        }
        response = client.post("/bookings", json=body, headers=staff)
        if response.status_code == 201 and rng.random() < 0.8:
            booking = response.get_json()["id"]
            client.post(f"/bookings/{booking}/confirm", json={}, headers=staff)
            client.post(f"/bookings/{booking}/complete", json={"person_times": rng.randint(1, 3)}, headers=staff)

    def visit() -> None:
        # Through the unit of work (the counts are kept by the flush, whoever writes).
        with uow() as w:
            if not plans or rng.random() < 0.3:
                community = rng.choice(communities)
                flag = SupportFlag(community, ["living_alone"], "staff", clock.now, display_name="Old Wang")
                plan = VisitPlan(flag.id, community, 7, "v", clock.now.date(), clock.now.date(), "staff", clock.now)
                w.session.add_all([flag, plan])
                plans.append((plan.id, flag.id, community))
            else:
                plan_id, flag_id, community = rng.choice(plans)
                plan = w.session.get(VisitPlan, plan_id)
                day = clock.now.date() - timedelta(days=rng.randint(0, 5))
                condition = rng.choice(("well", "not_home", "needs_help"))
                w.session.add(WelfareVisit(plan_id, flag_id, community, "v", day, condition, "v", clock.now))
                plan.record(day, condition)
                if rng.random() < 0.15:
                    plan.active = False
            w.commit()

    def patrol() -> None:
        if not groups:
            return
        with uow() as w:
            if not rounds or rng.random() < 0.4:
                group_id, community = rng.choice(groups)
                start = clock.now - timedelta(hours=rng.randint(0, 30))
                walk = PatrolRound(group_id, community, start, start + timedelta(hours=1), ["m"], "staff", clock.now)
                w.session.add(walk)
                rounds.append((walk.id, group_id, community))
            else:
                round_id, group_id, community = rng.choice(rounds)
                walk = w.session.get(PatrolRound, round_id)
                if walk.walked_at is None:
                    walk.walked_at = clock.now
                finding = PatrolFinding(round_id, group_id, community, "lamp", "out", "m", clock.now)
                if rng.random() < 0.5:
                    finding.issue_id, finding.raised_by, finding.raised_at = str(uuid.uuid4()), "m", clock.now
                w.session.add(finding)
            w.commit()

    def deactivate_group() -> None:
        if groups:
            from linli_activities.domain.care import MutualAidGroup

            with uow() as w:
                found = w.session.get(MutualAidGroup, rng.choice(groups)[0])
                found.active = not found.active
                w.commit()

    operations = [
        (create_activity, 4),
        (cancel_activity, 1),
        (register, 6),
        (cancel_registration, 2),
        (check_in, 4),
        (walk_in, 1),
        (group, 1),
        (join, 3),
        (leave, 1),
        (help_log, 2),
        (talent, 1),
        (post, 1),
        (delivery, 2),
        (visit, 2),
        (patrol, 2),
        (deactivate_group, 1),
    ]
    chosen = rng.choices([op for op, _ in operations], weights=[w for _, w in operations], k=160)
    for operation in chosen:
        operation()
        clock.advance(hours=rng.randint(1, 30))

    with database.transaction() as session:  # the counts are in use (else both answers are the history's)
        assert counts.zone_of_counts(session.connection()).key == ZONE
    schema = StatsSchema()
    for what, counted, history in _answers(database, clock, world.street_id, [other_street], a):
        assert _normal(counted) == _normal(history), what
        # The endpoint sends the answer as built: what the schema that documents it would dump.
        for answer in (counted, history):
            assert json.loads(any_app.json.dumps(as_sent(answer))) == schema.dump(answer), what

    # rebuild-counts builds the same counts from the history.
    kept = _stored(database)
    with database.transaction() as session:
        counts.rebuild(session, counts.ZoneInfo(ZONE))
    assert _stored(database) == kept


def _read_model(statement: str) -> str | None:
    found = re.search(r"FROM (activity_counts|activity_kind_counts|activity_first_seen)\b", statement)
    return found and found.group(1)


def test_the_city_reads_its_streets_rows_through_their_index(any_database, clock):
    """The whole city's figures by street read the streets' and the city's rows of the read models
    through their partial index (its predicate is the text the queries use): not every
    community's rows, which made the city's overview slow on 10,000 communities."""
    database = any_database
    read: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany):
        if _read_model(statement) is not None:
            read.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
        uow = ActivitiesUnitOfWork(database, clock, timezone=ZONE)
        stats.statistics(uow, admin, timezone=ZONE, by="street")
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert {table for statement, _ in read for table in READ_MODELS if f"FROM {table}" in statement} == set(READ_MODELS)
    postgresql = database.engine.dialect.name == "postgresql"
    with database.engine.connect() as connection:
        if postgresql:  # the tables are nearly empty: make a scan the last resort, as on a city
            connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in read:
            explain = "EXPLAIN " if postgresql else "EXPLAIN QUERY PLAN "
            plan = " ".join(str(row) for row in connection.exec_driver_sql(explain + statement, parameters))
            assert f"ix_{_read_model(statement)}_streets_and_city" in plan, (statement, plan)
