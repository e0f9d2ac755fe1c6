"""Concurrent requests on PostgreSQL and on SQLite: no seat given twice, no member voting twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def all_at_once(app, calls):
    """Run each (method, path, kwargs) on its own thread and client, released together."""
    barrier = threading.Barrier(len(calls))
    results: list[int] = [0] * len(calls)

    def run(n, method, path, kwargs):
        client = app.test_client()
        barrier.wait()
        results[n] = getattr(client, method)(path, **kwargs).status_code

    threads = [threading.Thread(target=run, args=(n, *call)) for n, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@on_both
def test_concurrent_registrations_never_exceed_capacity(app, client, world, staff, meeting_body):
    meeting = client.post("/", json=meeting_body(meeting_type="bench", capacity=3), headers=staff).get_json()
    residents = [world.person()[1] for _ in range(10)]
    statuses = all_at_once(
        app, [("post", f"/{meeting['id']}/registrations", {"json": {}, "headers": h}) for h in residents]
    )
    assert statuses == [201] * 10
    people = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    assert Counter(p["enrolment"] for p in people) == {"registered": 3, "waitlisted": 7}


@on_both
def test_one_member_voting_from_two_phones_at_once_counts_once(app, client, world, staff, meeting_body):
    voter_id, voter = world.person()
    meeting = client.post(
        "/",
        json=meeting_body(meeting_type="bench", participants=[{"role": "resident", "user_id": voter_id}]),
        headers=staff,
    ).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    [participant] = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    client.post(f"/{meeting['id']}/participants/{participant['id']}/check-in", headers=staff)
    motion = client.post(f"/{meeting['id']}/motions", json={"motion": "Plant trees"}, headers=staff).get_json()
    url = f"/{meeting['id']}/motions/{motion['id']}/votes"
    statuses = all_at_once(app, [("post", url, {"json": {"choice": "for"}, "headers": voter}) for _ in range(6)])
    assert sorted(statuses) == [201] + [409] * 5
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff).get_json()
    assert recorded["votes_for"] == 1 and recorded["outcome"] == "adopted"
