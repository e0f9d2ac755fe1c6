"""The important paths on real gunicorn processes, once on SQLite (what `make run` uses, two workers)
and once on PostgreSQL: sign-up, waiting list, check-in, statistics; every time in a response with
its offset; every response as the OpenAPI document says; outsiders refused before any state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import schemathesis
from sqlalchemy import insert

from linli_activities.adapters.tables import replica
from linli_kit.db import Database
from linli_kit.periods import resolve_period, today_in

pytestmark = pytest.mark.integration


class Service:
    """The activities web process, every answer checked against its own OpenAPI document."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.document = schemathesis.openapi.from_dict(requests.get(f"{url}/openapi.json", timeout=10).json())

    def call(self, method: str, path: str, operation: str, headers: dict, **kwargs) -> requests.Response:
        response = requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        self.document[operation][method].validate_response(response)
        return response


def offsets_everywhere(value: object, key: str = "") -> None:
    """Every timestamp (a key ending in _at, or the slot bounds) carries its UTC offset."""
    if isinstance(value, dict):
        for k, v in value.items():
            offsets_everywhere(v, k)
    elif isinstance(value, list):
        for item in value:
            offsets_everywhere(item, key)
    elif isinstance(value, str) and (key.endswith("_at") or key.startswith("slot_")):
        assert datetime.fromisoformat(value).utcoffset() is not None, (key, value)


def test_sign_up_check_in_and_statistics_on_each_database(any_platform, token_signer):
    web = any_platform.start_web("activities")
    street, community, elsewhere = (str(uuid.uuid4()) for _ in range(3))
    database = Database(any_platform.database_url("activities"))
    with database.transaction() as session:
        session.execute(insert(replica.streets).values(street_id=street, name="S", revision=1))
        session.execute(
            insert(replica.communities).values(community_id=community, street_id=street, name="C", revision=1)
        )
    database.dispose()
    service = Service(web.url)

    def person(role: str, communities: list[str]) -> dict:
        token = token_signer.sign(user_id=str(uuid.uuid4()), role=role, community_ids=communities)
        return {"Authorization": f"Bearer {token}"}

    staff = person("community_staff", [community])
    now = datetime.now(UTC)
    body = {
        "community_ids": [community],
        "kind": "sports",
        "title": "Evening run",
        # Starting in half an hour: registration still open, check-in already open.
        "starts_at": (now + timedelta(minutes=30)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "capacity": 1,
        "max_party_size": 1,
        "publish": True,
    }
    created = service.call("POST", "/", "/", staff, json=body)
    assert created.status_code == 201, created.text
    activity = created.json()
    aid = activity["id"]
    unlimited = service.call("POST", "/", "/", staff, json={**body, "capacity": None}).json()
    assert (unlimited["capacity"], unlimited["free_places"]) == (None, None)

    first, second = person("resident", [community]), person("resident", [community])
    registration = service.call("POST", f"/{aid}/registrations", "/{activity_id}/registrations", first, json={})
    assert registration.json()["status"] == "confirmed"
    waiting = service.call("POST", f"/{aid}/registrations", "/{activity_id}/registrations", second, json={}).json()
    assert (waiting["status"], waiting["waitlist_position"]) == ("waitlisted", 1)

    # A resident of another street, code in hand: 404, not "you have no registration" (409).
    foreign = person("resident", [elsewhere])
    code = {"code": activity["checkin_code"]}
    refused = service.call("POST", f"/{aid}/checkins", "/{activity_id}/checkins", foreign, json=code)
    assert refused.status_code == 404, refused.text
    checked_in = service.call("POST", f"/{aid}/checkins", "/{activity_id}/checkins", first, json=code)
    assert checked_in.status_code == 201, checked_in.text
    # The check-in window and registration window were compared with aware times read back.
    assert service.call("POST", f"/{aid}/checkins", "/{activity_id}/checkins", first, json=code).status_code == 409

    seen = [
        service.call("GET", f"/{aid}", "/{activity_id}", staff).json(),
        service.call("GET", f"/{aid}/registrations", "/{activity_id}/registrations", staff).json(),
        service.call("GET", f"/{aid}/checkins", "/{activity_id}/checkins", staff).json(),
        service.call("GET", "/registrations/mine", "/registrations/mine", second).json(),
        service.call("GET", "/", "/", staff, params={"from": now.isoformat()}).json(),
    ]
    offsets_everywhere(seen)
    assert seen[0]["confirmed_places"] == 1 and len(seen[4]) == 2

    before = resolve_period(today_in("Asia/Shanghai")).as_dict()
    stats = service.call("GET", "/stats", "/stats", staff, params={"community_id": community})
    after = resolve_period(today_in("Asia/Shanghai")).as_dict()
    assert stats.status_code == 200, stats.text
    figures = stats.json()
    # The platform's one default period: the twelve calendar months ending with the current one.
    period = {"from": figures["period"]["from"], "to": figures["period"]["to"]}
    assert period in (before, after) and len(figures["monthly"]) == 12
    assert figures["totals"]["participant_times"] == 1
    extreme = service.call("GET", "/stats", "/stats", staff, params={"from": "0001-01-01", "to": "0001-01-02"})
    assert extreme.status_code == 422 and "from" in extreme.json()["error"]["fields"]
    too_far = service.call("GET", "/", "/", staff, params={"page": 10**9})
    assert too_far.status_code == 422 and "page" in too_far.json()["error"]["fields"]
