"""The statistics' read model (adapters/counts.py) answers as the history does.

After a random run of what happens to meetings (scheduled, held with people checked in, cancelled,
motions recorded with action items and documents, action items changing state, issues taken up by
two communities, issue snapshots finishing and reopening, a community moving to another street),
`/stats` answers from the counts exactly what the history query (`stats.history`, the query /stats
ran before the counts) answers, for a community, a street, the city and the city by street, over
whole months, months ending mid-month and the default period; and `rebuild` builds the very rows
kept along the way.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from linli_kit.events import new_event
from linli_meetings.adapters import counts, tables
from linli_meetings.definition import definition
from linli_meetings.service_layer import stats
from linli_meetings.service_layer.candidates import keep_issue

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)

OWNERS = ("community", "party_organisation", "property_company")


def _issue(session, issue_id: str, community_id: str, status: str, revision: int) -> None:
    data = {
        "issue_id": issue_id,
        "community_id": community_id,
        "title": "t",
        "category": "c",
        "urgency": "normal",
        "status": status,
        "tier": "community",
        "reporter_id": str(uuid.uuid4()),
        "revision": revision,
    }
    keep_issue(session, new_event("issues.issue.reported", data, producer="issues"))


def _rows(database, keys: set[str]) -> dict[tuple, int]:
    t = tables.meeting_counts.c
    with database.transaction() as session:
        found = session.execute(select(t.level, t.key, t.month, t.figure, t.item, t.count).where(t.key.in_(keys)))
        return {tuple(row[:5]): row[5] for row in found}


@on_both
def test_counts_answer_as_the_history_after_random_operations(
    client, world, meeting_body, database, monkeypatch, register_organisation
):
    rng = random.Random(20261204)
    today = datetime.now(UTC).date()
    communities = [world.community_id, world.other_community_id]
    staff = {c: world.headers("community_staff", community_id=c) for c in communities}
    issues = {c: [str(uuid.uuid4()) for _ in range(4)] for c in communities}
    revisions: dict[str, int] = {}
    branches = {c: register_organisation(community_id=c) for c in communities}

    def snapshot(issue_id: str, community_id: str) -> None:
        revisions[issue_id] = revisions.get(issue_id, 0) + 1
        with database.transaction() as session:
            status = rng.choice(("reported", "deliberating", "resolved", "closed"))
            _issue(session, issue_id, community_id, status, revisions[issue_id])

    for c in communities:
        for issue_id in issues[c]:
            snapshot(issue_id, c)

    scheduled: list[tuple[str, str]] = []  # (meeting id, community)
    running: list[tuple[str, str]] = []
    held: list[tuple[str, str]] = []

    def schedule(c: str) -> None:
        day = today + timedelta(days=rng.randint(-80, 12))
        start = datetime.combine(day, time(3, rng.choice((0, 30))), tzinfo=UTC)
        pool = list(issues[c])
        if rng.random() < 0.2:  # now and then an issue of the other community: taken up by both
            pool.append(rng.choice(issues[communities[1 - communities.index(c)]]))
        agenda = [{"title": f"Item {n}", "issue_id": i} for n, i in enumerate(rng.sample(pool, rng.randint(0, 3)))]
        people = [
            {"role": "resident_representative", "name": "Li", "party_member": rng.random() < 0.5},
            {"role": "party_organisation", "organisation_id": branches[c]},
            {"role": "resident_representative", "name": "Wang"},
        ]
        body = meeting_body(
            community_id=c,
            meeting_type=rng.choice(("round_table", "bench", "pavilion")),
            starts_at=start.isoformat(),
            ends_at=(start + timedelta(hours=1)).isoformat(),
            agenda=agenda,
            participants=people,
        )
        response = client.post("/", json=body, headers=staff[c])
        assert response.status_code == 201, response.get_json()
        scheduled.append((response.get_json()["id"], c))

    def start_meeting() -> None:
        mid, c = scheduled.pop(rng.randrange(len(scheduled)))
        assert client.post(f"/{mid}/start", headers=staff[c]).status_code == 200
        for p in client.get(f"/{mid}/participants", headers=staff[c]).get_json():
            if rng.random() < 0.7:
                client.post(f"/{mid}/participants/{p['id']}/check-in", headers=staff[c])
        running.append((mid, c))

    def motion() -> None:
        mid, c = rng.choice(running)
        body: dict = {"motion": "M", "method": "show_of_hands", "action_items": []}
        for _ in range(rng.randint(0, 2)):
            due = today + timedelta(days=rng.randint(-40, 30))
            item = {"title": "Do", "owner_body": rng.choice(OWNERS)}
            if item["owner_body"] == "party_organisation":
                item["owner_organisation_id"] = branches[c]
            if rng.random() < 0.8:
                item["due_date"] = due.isoformat()
            body["action_items"].append(item)
        if rng.random() < 0.2:
            body["document"] = {"kind": rng.choice(("convention", "rules_of_procedure")), "title": "D", "body": "B"}
            body["action_items"] = []
        made = client.post(f"/{mid}/motions", json=body, headers=staff[c])
        if made.status_code != 201:
            return
        decision = made.get_json()["id"]
        votes = rng.choice(((2, 0), (0, 2), (1, 1), (1, 0)))
        client.put(
            f"/{mid}/motions/{decision}/tally",
            json={"votes_for": votes[0], "votes_against": votes[1], "abstentions": 0},
            headers=staff[c],
        )
        if client.post(f"/{mid}/motions/{decision}/record", headers=staff[c]).status_code != 200:
            # A tally the people present cannot have given: the motion is withdrawn.
            assert client.delete(f"/{mid}/motions/{decision}", headers=staff[c]).status_code == 204

    def conclude() -> None:
        mid, c = running.pop(rng.randrange(len(running)))
        attendees = rng.choice((None, rng.randint(1, 40)))
        response = client.post(f"/{mid}/conclude", json={"attendees_count": attendees}, headers=staff[c])
        assert response.status_code == 200, response.get_json()
        held.append((mid, c))

    def cancel() -> None:
        mid, c = scheduled.pop(rng.randrange(len(scheduled)))
        assert client.post(f"/{mid}/cancel", json={"reason": "rain"}, headers=staff[c]).status_code == 200

    def action_item_moves() -> None:
        c = rng.choice(communities)
        items = client.get("/action-items", query_string={"community_id": c}, headers=staff[c]).get_json()
        if items:
            item = rng.choice(items)
            target = rng.choice(("in_progress", "done", "cancelled", "open"))
            client.patch(f"/action-items/{item['id']}", json={"status": target, "note": "n"}, headers=staff[c])

    move = definition.handlers(None, None)["directory.community.upserted"]
    moves = [world.street_id, world.other_street_id]

    def community_moves() -> None:
        # The directory moves the other community to the other street and back.
        street = moves[len(moves) % 2]
        moves.append(street)
        data = {"community_id": world.other_community_id, "street_id": street, "name": "B", "revision": len(moves)}
        with database.transaction() as session:
            move(session, new_event("directory.community.upserted", data, producer="gateway"))

    def issue_changes() -> None:
        c = rng.choice(communities)
        snapshot(rng.choice(issues[c]), c)

    for _ in range(6):
        schedule(rng.choice(communities))
    for _ in range(45):
        choice = rng.random()
        if choice < 0.2:
            schedule(rng.choice(communities))
        elif choice < 0.35 and scheduled:
            start_meeting()
        elif choice < 0.55 and running:
            motion()
        elif choice < 0.7 and running:
            conclude()
        elif choice < 0.75 and scheduled:
            cancel()
        elif choice < 0.85:
            action_item_moves()
        elif choice < 0.9:
            community_moves()
        else:
            issue_changes()
    while running:
        conclude()
    assert held, "the run held no meeting"

    # The questions: scopes x periods (whole months, ending mid-month, the default; one starting
    # mid-month is read from the history either way).
    admin, official = world.headers("city_admin"), world.headers("street_official")
    first = (today - timedelta(days=80)).replace(day=1)
    month_ends = [first]
    while month_ends[-1] <= today + timedelta(days=40):
        month_ends.append((month_ends[-1] + timedelta(days=32)).replace(day=1))
    periods: list[dict] = [{}]
    for n in range(len(month_ends) - 1):
        periods.append({"from": month_ends[n].isoformat(), "to": (month_ends[n + 1] - timedelta(days=1)).isoformat()})
        periods.append({"from": first.isoformat(), "to": (month_ends[n] + timedelta(days=9)).isoformat()})
    periods.append({"from": first.isoformat(), "to": (month_ends[-1] - timedelta(days=1)).isoformat()})
    periods.append({"from": (first + timedelta(days=5)).isoformat(), "to": today.isoformat()})
    scopes = [
        ({"community_id": world.community_id}, staff[world.community_id]),
        ({"community_id": world.other_community_id}, admin),
        ({"street_id": world.street_id}, official),
        ({"street_id": world.street_id, "by": "street"}, official),
        ({}, admin),
        ({"by": "street"}, admin),
    ]

    def answers() -> list:
        out = []
        for scope, headers in scopes:
            for period in periods:
                response = client.get("/stats", query_string=scope | period, headers=headers)
                assert response.status_code == 200, response.get_json()
                out.append(_mine(response.get_json(), world))
        return out

    from_counts = answers()
    monkeypatch.setattr(stats, "_from_counts", lambda *args, **kwargs: None)
    from_history = answers()
    for n, (counted, reference) in enumerate(zip(from_counts, from_history, strict=True)):
        where = scopes[n // len(periods)][0] | periods[n % len(periods)]
        assert counted == reference, where

    # Built again from the history: the very rows kept along the way.
    keys = {*communities, world.street_id, world.other_street_id}
    kept = _rows(database, keys)
    assert kept, "no counts were kept"
    with database.transaction() as session:
        counts.rebuild(session)
    assert _rows(database, keys) == kept


def _mine(answer: dict, world) -> dict:
    """The answer, the city's rows narrowed to this test's communities and streets (the
    PostgreSQL database is shared with other tests: the city's totals are not this test's)."""
    mine = {world.community_id, world.other_community_id}
    streets = {world.street_id, world.other_street_id}
    if answer["scope"]["level"] != "city":
        return answer
    return {
        "by_community": [row for row in answer["by_community"] if row["community_id"] in mine],
        "by_street": [row for row in answer["by_street"] if row["street_id"] in streets],
    }


@on_both
def test_a_counted_change_first_flushed_by_the_commit_is_counted(client, world, meeting_body, database, staff):
    """The session flushes what is pending after its before_commit hooks: a change nothing flushed
    before the commit (no query, no event after it) is counted all the same."""
    from linli_meetings.domain.meeting import Participant

    body = meeting_body(participants=[{"role": "resident_representative", "name": "Li", "party_member": False}])
    meeting = client.post("/", json=body, headers=staff).get_json()
    assert client.post(f"/{meeting['id']}/start", headers=staff).status_code == 200
    [person] = client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
    assert client.post(f"/{meeting['id']}/participants/{person['id']}/check-in", headers=staff).status_code == 200
    assert client.post(f"/{meeting['id']}/conclude", json={"attendees_count": 1}, headers=staff).status_code == 200
    keys = {world.community_id, world.street_id}
    before = _rows(database, keys)

    with database.transaction() as session:
        session.get(Participant, person["id"]).party_member = True  # committed without a flush before

    kept = _rows(database, keys)
    assert kept != before
    with database.transaction() as session:
        counts.rebuild(session)
    assert _rows(database, keys) == kept
