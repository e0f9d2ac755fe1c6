"""The list of activities, read as rows of its columns in one statement with its total and
serialised without the schema's walk, answers what the schema dumps of each activity as the
caller sees it, with the same total, for every form of scope and filter. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from sqlalchemy import insert, update

from linli_activities.adapters.tables import activities as activities_table
from linli_activities.adapters.tables import replica
from linli_activities.domain.activities import Activity
from linli_activities.entrypoints.activities_api import ActivitySchema
from linli_activities.entrypoints.common import Redacted

pytestmark = pytest.mark.integration

START = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


def _dumped(app, database, activity_ids, *, manages=False):
    """What ActivitySchema dumps of each activity as someone who does not manage it sees it (in
    English, as the tests' clients ask); `manages`: as its organisers see it."""
    schema = ActivitySchema()

    def seen(activity):
        return activity if manages else Redacted(activity, "checkin_code")

    with database.session() as s, app.test_request_context("/", headers={"Accept-Language": "en"}):
        return {a: json.loads(json.dumps(schema.dump(seen(s.get(Activity, a))))) for a in activity_ids}


def _listed(client, headers, query=""):
    response = client.get(f"/?page_size=100{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json(), json.loads(response.headers["X-Pagination"])["total"], response.data


def test_the_list_answers_what_the_schema_dumps_for_every_scope_and_filter(any_app, any_client, any_world):
    client, world = any_client, any_world
    database = any_app.extensions["linli.database"]
    a, b = world.community_a, world.community_b
    staff = world.headers("community_staff", communities=[a, b])
    made: dict[str, dict] = {}
    answered: dict[str, dict] = {}
    raw: dict[str, bytes] = {}

    def create(index: int, by: dict | None = None, **values) -> str:
        start = START + timedelta(days=index, hours=index % 5)
        body = {
            "community_ids": [a],
            "kind": "culture",
            "title": f"活动 {index}",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            **values,
        }
        response = client.post("/", json=body, headers=by or staff)
        assert response.status_code == 201, response.get_json()
        made[response.get_json()["id"]] = body
        answered[response.get_json()["id"]] = response.get_json()
        raw[response.get_json()["id"]] = response.data
        return response.get_json()["id"]

    create(0, publish=True, capacity=3, max_party_size=2, place="Hall 2", audience=["elderly", "families"])
    create(1, publish=True, community_ids=[a, b], description="Bring a brush", photos=["https://x.example/p.png"])
    create(2, publish=True, kind="sports", registration_opens_at=START.isoformat())
    cancelled = create(3, publish=True, registration_closes_at=(START + timedelta(days=3)).isoformat())
    assert client.post(f"/{cancelled}/cancel", json={"reason": "rain"}, headers=staff).status_code == 200
    draft = create(4, community_ids=[b])
    full = create(5, publish=True, capacity=1, max_party_size=1)
    resident = world.headers("resident", community=a)
    assert client.post(f"/{full}/registrations", json={"party_size": 1}, headers=resident).status_code == 201
    # An occurrence's own columns (a series, its date, an exception), as a series would write them.
    occurrence = create(6, publish=True, community_ids=[b])
    with database.transaction() as s:
        s.execute(
            update(activities_table)
            .where(activities_table.c.id == occurrence)
            .values(occurrence_date=date(2027, 3, 7), series_exception="moved")
        )
    # An activity of another street nobody here may see.
    elsewhere_street, elsewhere = str(uuid.uuid4()), str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=elsewhere_street, name="far", revision=1))
        s.execute(
            insert(replica.communities).values(community_id=elsewhere, street_id=elsewhere_street, name="f", revision=1)
        )
    outsider = create(7, world.headers("community_staff", community=elsewhere), publish=True, community_ids=[elsewhere])
    # The answer to each creation (serialised without the schema too) is what the schema dumps of
    # the activity as stored, seen by its organisers (its check-in code), for those not changed since.
    unchanged = [i for i in made if i not in (cancelled, full, occurrence)]
    assert {i: answered[i] for i in unchanged} == _dumped(any_app, database, unchanged, manages=True)
    assert {i: raw[i] for i in unchanged} == {
        i: orjson.dumps(d) for i, d in _dumped(any_app, database, unchanged, manages=True).items()
    }
    assert all(answered[i]["checkin_code"] for i in unchanged)
    dumped = _dumped(any_app, database, list(made))
    ordered = sorted(made, key=lambda i: (made[i]["starts_at"], i))

    def expect(ids):
        chosen = [i for i in ordered if i in ids]
        return [dumped[i] for i in chosen], len(chosen)

    mine = set(made) - {outsider}
    published = mine - {draft}
    official = world.headers("street_official")
    admin = world.headers("city_admin")
    nobody = world.headers("resident", communities=[])
    cases = [
        (resident, "", published - {occurrence}),  # a resident of a: drafts hidden, b's alone not seen
        (world.headers("resident", communities=[a, b]), "", published),
        (staff, "", mine),  # staff see drafts
        (staff, f"&community_id={b}", {i for i in mine if b in made[i]["community_ids"]}),
        (staff, "&kind=sports", {i for i in mine if made[i].get("kind") == "sports"}),
        (staff, "&status=cancelled", {cancelled}),
        (staff, "&status=draft", {draft}),
        (resident, "&status=draft", set()),
        (staff, f"&from={(START + timedelta(days=2)).isoformat()}".replace("+", "%2B"), {
            i for i in mine if made[i]["starts_at"] >= (START + timedelta(days=2)).isoformat()}),
        (staff, f"&to={(START + timedelta(days=2)).isoformat()}".replace("+", "%2B"), {
            i for i in mine if made[i]["starts_at"] < (START + timedelta(days=2)).isoformat()}),
        (official, "", mine),
        (admin, f"&community_id={elsewhere}", {outsider}),
        (nobody, "", set()),
        (staff, f"&series_id={uuid.uuid4()}", set()),
        (staff, f"&festival_id={uuid.uuid4()}", set()),
    ]  # fmt: skip
    for headers, query, ids in cases:
        items, total, data = _listed(client, headers, query)
        assert (items, total) == expect(ids), query
        # Byte for byte the schema's dump written by orjson: its keys in its order, its instants
        # as `isoformat` writes them.
        assert data == orjson.dumps(expect(ids)[0]), query
    # Everyone's answer checked field by field against the schema's dump, the check-in code hidden.
    items, _total, _data = _listed(client, staff)
    assert all(item["checkin_code"] is None for item in items)
    assert {item["id"]: item for item in items}[full]["free_places"] == 0
    # A page past the end still tells the total; the first page of nothing says 0.
    response = client.get("/?page=5&page_size=2", headers=staff)
    assert response.get_json() == [] and json.loads(response.headers["X-Pagination"])["total"] == len(mine)
    # A page in the middle: its rows, and the total of all.
    response = client.get("/?page=2&page_size=2", headers=staff)
    assert response.get_json() == expect(mine)[0][2:4]
    assert json.loads(response.headers["X-Pagination"])["total"] == len(mine)


def test_the_list_speaks_the_readers_language(any_client, any_world):
    client, world = any_client, any_world
    staff = world.headers("community_staff")
    body = {"community_ids": [world.community_a], "kind": "culture", "title": "x", "publish": True,
            "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert client.post("/", json=body, headers=staff).status_code == 201
    english = client.get("/", headers={**staff, "Accept-Language": "en"}).get_json()
    chinese = client.get("/", headers={**staff, "Accept-Language": "zh-CN"}).get_json()
    assert english[0]["status_label"] != chinese[0]["status_label"]
    assert english[0]["status"] == chinese[0]["status"] == "published"
