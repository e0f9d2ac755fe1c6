"""Private issues (anonymous reports, issues about a person, staff-marked): the meetings service
shows a private issue's title - as a candidate, on an agenda, on the noticeboard, on a proposal -
only to the staff and officials in scope, its reporter and its supporters; anyone else sees a
placeholder, never the title."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli_kit.events import new_event
from linli_meetings.adapters.tables import issue_replica, issue_supporters
from linli_meetings.service_layer.candidates import keep_issue
from linli_meetings.service_layer.issue_privacy import PRIVATE_ISSUE_TITLE

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)

SECRET = "Old Mr Zhang in 7-302 cannot pay his heating"


@pytest.fixture
def snapshot(database, world):
    """Keep an issue snapshot in the replica, as an issues.* event would bring it."""

    def keep(
        issue_id: str,
        title: str,
        *,
        visibility: str = "community",
        reporter_id: str | None = None,
        supporter_ids: tuple[str, ...] = (),
        revision: int = 1,
        community_id: str | None = None,
        event_type: str = "issues.issue.reported",
    ) -> str:
        data = {
            "issue_id": issue_id,
            "community_id": community_id or world.community_id,
            "title": title,
            "category": "elderly_care",
            "urgency": "normal",
            "status": "reported",
            "tier": "community",
            "reporter_id": reporter_id or str(uuid.uuid4()),
            "supporter_count": len(supporter_ids),
            "supporter_ids": list(supporter_ids),
            "visibility": visibility,
            "revision": revision,
        }
        with database.transaction() as session:
            keep_issue(session, new_event(event_type, data, producer="issues"))
        return issue_id

    return keep


@pytest.fixture
def people(world):
    """A reporter, a supporter and a neighbour (residents of the community), with their headers."""
    return {name: world.person() for name in ("reporter", "supporter", "neighbour")}


def private_issue(snapshot, people) -> str:
    return snapshot(
        str(uuid.uuid4()),
        SECRET,
        visibility="private",
        reporter_id=people["reporter"][0],
        supporter_ids=(people["supporter"][0],),
    )


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [c["title"] for c in response.get_json()]


@on_both
def test_private_candidates_are_offered_only_to_the_staff_in_scope_the_reporter_and_supporters(
    client, world, staff, snapshot, people, documented
):
    secret = private_issue(snapshot, people)
    snapshot(str(uuid.uuid4()), "Broken street lamp", visibility="public")
    snapshot(str(uuid.uuid4()), "Noisy square dancing")  # community
    query = {"community_id": world.community_id}

    official = world.headers("street_official")
    for headers in (staff, official, people["reporter"][1], people["supporter"][1]):
        response = client.get("/candidates", query_string=query, headers=headers)
        assert SECRET in titles(response)
        assert '"total": 3' in response.headers["X-Pagination"]
    response = client.get("/candidates", query_string=query, headers=people["neighbour"][1])
    documented(response, "/candidates")
    assert sorted(titles(response)) == ["Broken street lamp", "Noisy square dancing"]
    assert '"total": 2' in response.headers["X-Pagination"]  # counted without it, too
    assert secret not in response.get_data(as_text=True)

    # Scope before state: the staff of another community learn nothing, not even that it exists.
    other = world.headers("community_staff", community_id=world.other_community_id)
    assert client.get("/candidates", query_string=query, headers=other).status_code == 403

    # The next snapshot says who may read it now; an older one arriving late changes nothing.
    snapshot(secret, SECRET, visibility="community", reporter_id=people["reporter"][0], revision=2)
    snapshot(secret, SECRET, visibility="private", reporter_id=people["reporter"][0], revision=1)
    assert SECRET in titles(client.get("/candidates", query_string=query, headers=people["neighbour"][1]))
    # Marked private again, without the supporter (who withdrew): only the reporter and the staff.
    snapshot(secret, SECRET, visibility="private", reporter_id=people["reporter"][0], revision=3)
    for name, sees in (("reporter", True), ("supporter", False), ("neighbour", False)):
        shown = titles(client.get("/candidates", query_string=query, headers=people[name][1]))
        assert (SECRET in shown) is sees, name


def test_the_replica_keeps_visibility_reporter_and_supporters(database, snapshot, people):
    secret = private_issue(snapshot, people)
    snapshot(
        secret,
        SECRET,
        visibility="private",
        reporter_id=people["reporter"][0],
        revision=1,
        supporter_ids=(str(uuid.uuid4()),),
    )  # a duplicate of revision 1: ignored
    with database.session() as s:
        row = s.execute(select(issue_replica).where(issue_replica.c.issue_id == secret)).one()
        supporters = s.scalars(select(issue_supporters.c.user_id).where(issue_supporters.c.issue_id == secret)).all()
    assert row.visibility == "private" and row.reporter_id == people["reporter"][0]
    assert supporters == [people["supporter"][0]]


@on_both
def test_an_agenda_item_on_a_private_issue_shows_a_placeholder_to_those_who_may_not_read_it(
    client, world, staff, meeting_body, snapshot, people, documented
):
    secret = private_issue(snapshot, people)
    lamp = snapshot(str(uuid.uuid4()), "Broken street lamp", visibility="public")
    body = meeting_body(
        agenda=[
            {"title": SECRET, "issue_id": secret, "notes": "Heating debt of 3,000 yuan"},
            {"title": "Broken street lamp", "issue_id": lamp},
            {"title": "Any other business"},
        ]
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    assert meeting["agenda"][0]["title"] == SECRET  # the staff see what they wrote

    def agenda(headers, path=f"/{meeting['id']}") -> list[tuple[str, str | None]]:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.get_json()
        found = response.get_json()
        found = found if isinstance(found, dict) else next(m for m in found if m["id"] == meeting["id"])
        return [(i["title"], i["notes"]) for i in found["agenda"]]

    hidden = [(PRIVATE_ISSUE_TITLE, None), ("Broken street lamp", None), ("Any other business", None)]
    shown = [(SECRET, "Heating debt of 3,000 yuan"), *hidden[1:]]
    neighbour = people["neighbour"][1]
    response = client.get(f"/{meeting['id']}", headers=neighbour)
    documented(response, "/{meeting_id}")
    assert agenda(neighbour) == hidden and agenda(neighbour, "/") == hidden
    assert SECRET not in response.get_data(as_text=True)
    for headers in (staff, world.headers("street_official"), people["reporter"][1], people["supporter"][1]):
        assert agenda(headers) == shown and agenda(headers, "/") == shown
    # Officials of another street see the meeting not at all; a city admin sees everything.
    assert (
        client.get(
            f"/{meeting['id']}", headers=world.headers("street_official", street_id=world.other_street_id)
        ).status_code
        == 404
    )
    assert agenda(world.headers("city_admin")) == shown

    # The calendars: the public .ics and the community feed, read without a token.
    for path in (f"/{meeting['id']}.ics", f"/calendar/{world.community_id}.ics"):
        text = client.get(path).get_data(as_text=True)
        assert PRIVATE_ISSUE_TITLE in text and "Zhang" not in text and "Broken street lamp" in text
    assert "Zhang" in client.get(f"/{meeting['id']}.ics", headers=people["reporter"][1]).get_data(as_text=True)

    # The noticeboard's meetings to come.
    board = client.get("/noticeboard", query_string={"community_id": world.community_id}, headers=neighbour)
    [upcoming] = [m for m in board.get_json()["upcoming_meetings"] if m["id"] == meeting["id"]]
    assert upcoming["agenda"][0]["title"] == PRIVATE_ISSUE_TITLE and SECRET not in board.get_data(as_text=True)
    board = client.get("/noticeboard", query_string={"community_id": world.community_id}, headers=staff)
    [upcoming] = [m for m in board.get_json()["upcoming_meetings"] if m["id"] == meeting["id"]]
    assert upcoming["agenda"][0]["title"] == SECRET


@on_both
def test_the_noticeboard_withholds_the_words_of_decisions_on_a_private_issue(
    client, world, staff, meeting_body, snapshot, people, documented
):
    secret = private_issue(snapshot, people)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    body = meeting_body(
        meeting_type="bench",
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
        agenda=[{"title": SECRET, "issue_id": secret}],
        participants=[{"role": "resident", "name": f"Neighbour {n}"} for n in range(3)],
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json():
        client.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff)
    motion = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "Mr Zhang's heating is paid from the community fund",
            "method": "show_of_hands",
            "agenda_item_id": meeting["agenda"][0]["id"],
            "issue_effect": "resolution_plan",
            "resolution_plan": "The fund pays Mr Zhang's heating this winter",
            "action_items": [
                {"title": "Pay Mr Zhang's heating bill", "owner_body": "community"},
                {"title": "Visit Mr Zhang weekly", "owner_body": "residents", "owner_user_id": people["neighbour"][0]},
            ],
        },
        headers=staff,
    ).get_json()
    client.put(
        f"/{meeting['id']}/motions/{motion['id']}/tally",
        json={"votes_for": 3, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    recorded = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff)
    assert recorded.status_code == 200, recorded.get_json()
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 200

    query = {"community_id": world.community_id}
    _, passer_by = world.person()
    response = client.get("/noticeboard", query_string=query, headers=passer_by)
    documented(response, "/noticeboard")
    board = response.get_json()
    [decision] = board["decisions"]
    assert decision["motion"] == PRIVATE_ISSUE_TITLE and decision["resolution_plan"] is None
    assert (decision["votes_for"], decision["outcome"]) == (3, "adopted")  # the counts stay public
    assert {a["title"] for a in decision["action_items"]} == {PRIVATE_ISSUE_TITLE}
    assert {a["title"] for a in board["open_action_items"]} == {PRIVATE_ISSUE_TITLE}
    assert "Zhang" not in response.get_data(as_text=True)
    # Read without a sign-in (the public board): withheld the same way.
    anonymous = client.get("/noticeboard", query_string=query)
    assert anonymous.get_json()["decisions"] == board["decisions"] and "Zhang" not in anonymous.get_data(as_text=True)
    for headers in (staff, people["supporter"][1]):
        [decision] = client.get("/noticeboard", query_string=query, headers=headers).get_json()["decisions"]
        assert decision["motion"] == "Mr Zhang's heating is paid from the community fund"
        assert decision["action_items"][0]["title"] == "Pay Mr Zhang's heating bill"

    # The meeting's motions and the action items, read by a resident who may not read the issue,
    # and by one who owns an action item of it (an owner is told what to do).
    _, stranger = world.person()
    motions = client.get(f"/{meeting['id']}/motions", headers=stranger)
    documented(motions, "/{meeting_id}/motions")
    [shown] = motions.get_json()
    assert shown["motion"] == PRIVATE_ISSUE_TITLE and shown["resolution_plan"] is None
    assert {a["title"] for a in shown["action_items"]} == {PRIVATE_ISSUE_TITLE}
    assert {a["title"] for a in shown["proposed_actions"]} == {PRIVATE_ISSUE_TITLE}
    assert "Zhang" not in motions.get_data(as_text=True)
    listed = client.get("/action-items", query_string=query, headers=stranger)
    documented(listed, "/action-items")
    assert {a["title"] for a in listed.get_json()} == {PRIVATE_ISSUE_TITLE}
    mine = client.get("/action-items", query_string=query, headers=people["neighbour"][1]).get_json()
    assert sorted(a["title"] for a in mine) == sorted([PRIVATE_ISSUE_TITLE, "Visit Mr Zhang weekly"])
    visit = next(a for a in mine if a["owner_user_id"] == people["neighbour"][0])
    assert client.get(f"/action-items/{visit['id']}", headers=people["neighbour"][1]).get_json()["title"] == (
        "Visit Mr Zhang weekly"
    )
    assert client.get(f"/action-items/{visit['id']}", headers=stranger).get_json()["title"] == PRIVATE_ISSUE_TITLE
    [staff_view] = client.get(f"/{meeting['id']}/motions", headers=staff).get_json()
    assert staff_view["motion"].startswith("Mr Zhang") and staff_view["resolution_plan"]


@on_both
def test_proposals_on_a_private_issue(client, world, staff, snapshot, people, outbox_events, documented):
    secret = private_issue(snapshot, people)
    proposal = {"community_id": world.community_id, "issue_id": str(secret), "reason": "He is cold"}
    # A neighbour cannot propose a meeting on an issue they may not read: as if there were none.
    refused = client.post("/proposals", json=proposal, headers=people["neighbour"][1])
    assert refused.status_code == 422 and list(refused.get_json()["error"]["fields"]) == ["issue_id"]
    assert outbox_events("meetings.proposal.submitted", world.community_id) == []
    # Its supporter can, and sees the title.
    response = client.post("/proposals", json=proposal, headers=people["supporter"][1])
    assert response.status_code == 201, response.get_json()
    documented(response, "/proposals", "POST")
    assert response.get_json()["issue_title"] == SECRET
    proposal_id = response.get_json()["id"]
    listed = client.get("/proposals", query_string={"community_id": world.community_id}, headers=staff)
    documented(listed, "/proposals")
    assert [p["issue_title"] for p in listed.get_json()] == [SECRET]

    # No longer a supporter (the next snapshot says so): the proposer sees the placeholder.
    snapshot(secret, SECRET, visibility="private", reporter_id=people["reporter"][0], revision=2)
    mine = client.get("/proposals", headers=people["supporter"][1]).get_json()
    assert [p["issue_title"] for p in mine] == [PRIVATE_ISSUE_TITLE]
    assert client.get(f"/proposals/{proposal_id}", headers=people["supporter"][1]).get_json()["issue_title"] == (
        PRIVATE_ISSUE_TITLE
    )

    # Accepted: the meeting's default title, read by all who see the meeting, leaves the title out;
    # its agenda item keeps it for those who may read it.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4)
    accepted = client.post(
        f"/proposals/{proposal_id}/accept",
        json={
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
            "place": "Building 7 courtyard",
        },
        headers=staff,
    )
    assert accepted.status_code == 200, accepted.get_json()
    meeting = client.get(f"/{accepted.get_json()['meeting_id']}", headers=staff).get_json()
    assert SECRET not in meeting["title"] and PRIVATE_ISSUE_TITLE in meeting["title"]
    assert meeting["agenda"][0]["title"] == SECRET
    [scheduled] = [
        e
        for e in outbox_events("meetings.meeting.scheduled", world.community_id)
        if e["data"]["meeting_id"] == meeting["id"]
    ]
    assert SECRET not in scheduled["data"]["title"]
    assert scheduled["data"]["issue_ids"] == [secret]  # the issues side still learns of the consultation


@on_both
def test_the_list_shows_each_meeting_as_its_own_page_does(client, world, staff, meeting_body, snapshot, people):
    """The list and the create answer are written without marshmallow (schemas.listed_meetings):
    for meetings in every state, with people, a private issue and an issue the replica does not
    know, each listed meeting is what MeetingOut dumps for the same caller on its own page."""
    secret = private_issue(snapshot, people)
    guests = [{"role": "resident_representative", "user_id": str(uuid.uuid4())} for _ in range(3)]
    agenda = [
        {"title": SECRET, "issue_id": secret, "notes": "Heating debt", "duration_minutes": 10},
        {"title": "Unknown to the replica", "issue_id": str(uuid.uuid4())},
        {"title": "Any other business"},
    ]
    ids = []
    for n in range(4):
        body = meeting_body(title=f"Meeting {n}", agenda=agenda, participants=guests, description=f"d{n}")
        response = client.post("/", json=body, headers=staff | {"Accept-Language": "en"})
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
        # The answer to the create is written as a list's is: what the meeting's page dumps.
        page = client.get(f"/{ids[-1]}", headers=staff | {"Accept-Language": "en"}).get_json()
        assert response.get_json() == page
    scheduled, held, cancelled, moved = ids
    assert client.post(f"/{held}/start", headers=staff).status_code == 200
    [guest] = [p for p in client.get(f"/{held}/participants", headers=staff).get_json()][:1]
    assert client.post(f"/{held}/participants/{guest['id']}/check-in", headers=staff).status_code == 200
    conclusion = {"minutes": "Agreed", "attendees_count": 2, "photo_urls": ["https://example.org/1.jpg"]}
    assert client.post(f"/{held}/conclude", json=conclusion, headers=staff).status_code == 200
    assert client.post(f"/{cancelled}/cancel", json={"reason": "typhoon"}, headers=staff).status_code == 200
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=9)
    times = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(), "reason": "hall"}
    assert client.post(f"/{moved}/reschedule", json=times, headers=staff).status_code == 200

    neighbour = people["neighbour"][1]
    for headers in (staff, neighbour, people["reporter"][1], world.headers("city_admin")):
        listed = client.get(
            "/",
            query_string={"community_id": world.community_id, "page_size": 50},
            headers=headers | {"Accept-Language": "en"},
        )
        assert listed.status_code == 200, listed.get_json()
        by_id = {m["id"]: m for m in listed.get_json()}
        assert set(ids) <= set(by_id)
        for meeting_id in ids:
            page = client.get(f"/{meeting_id}", headers=headers | {"Accept-Language": "en"}).get_json()
            assert by_id[meeting_id] == page
        # The neighbour sees the placeholder; the staff, the reporter and the city admin the title.
        assert by_id[scheduled]["agenda"][0]["title"] == (PRIVATE_ISSUE_TITLE if headers is neighbour else SECRET)
