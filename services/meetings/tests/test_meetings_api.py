"""The meetings HTTP API on the real PostgreSQL: scheduling, life cycle, agenda, people, scope."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def create(client, headers, body):
    response = client.post("/", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_schedule_with_agenda_and_participants_publishes_a_snapshot(client, world, staff, meeting_body, outbox_events):
    issue_id = str(uuid.uuid4())
    rep = str(uuid.uuid4())
    body = meeting_body(
        agenda=[
            {"title": "Roof of Building 7", "duration_minutes": 30, "issue_id": issue_id},
            {"title": "Any other business", "duration_minutes": 10},
        ],
        participants=[
            {"role": "resident_representative", "user_id": rep},
            {"role": "bureau", "name": "Housing and Construction Bureau"},
        ],
    )
    meeting = create(client, staff, body)
    assert meeting["status"] == "scheduled" and meeting["revision"] == 1
    assert [i["position"] for i in meeting["agenda"]] == [1, 2]
    assert meeting["counts"]["invited"] == 2
    assert meeting["starts_at"].endswith("+00:00")

    [event] = outbox_events("meetings.meeting.scheduled", world.community_id)
    assert event["data"]["issue_ids"] == [issue_id]
    assert event["data"]["participant_ids"] == [rep]  # the bureau's representative has no account
    assert event["street_id"] == world.street_id and event["data"]["revision"] == 1

    fetched = client.get(f"/{meeting['id']}", headers=staff).get_json()
    assert fetched["title"] == body["title"] and fetched["agenda"][0]["issue_id"] == issue_id


@on_both
def test_a_plain_meeting_and_its_event_are_stored_together(client, world, staff, meeting_body, outbox_events):
    """Without agenda or people, the meeting and its event go in one statement (PostgreSQL: on its
    own, in autocommit when nothing was read before it): both are there, once."""
    meeting = create(client, staff, meeting_body())
    [event] = outbox_events("meetings.meeting.scheduled", world.community_id)
    assert event["data"]["meeting_id"] == meeting["id"] and event["data"]["agenda"] == []
    assert client.get(f"/{meeting['id']}", headers=staff).get_json() == meeting
    # The connection went back to the pool as it came: the next change is one transaction again.
    second = create(client, staff, meeting_body(agenda=[{"title": "Roof"}]))
    assert client.get(f"/{second['id']}", headers=staff).get_json()["agenda"][0]["title"] == "Roof"
    assert len(outbox_events("meetings.meeting.scheduled", world.community_id)) == 2


def test_bad_input_names_each_field_and_changes_nothing(client, world, staff, meeting_body, outbox_events):
    start = datetime.now(UTC) + timedelta(days=1)
    bad = meeting_body(
        meeting_type="Bench!",
        starts_at=start.replace(tzinfo=None).isoformat(),
        capacity=0,
        agenda=[{"duration_minutes": 5}],
    )
    del bad["title"]
    response = client.post("/", json=bad, headers=staff)
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert {"meeting_type", "starts_at", "capacity", "title", "agenda"} <= set(fields)

    ends_first = meeting_body(ends_at=(start - timedelta(hours=1)).isoformat(), starts_at=start.isoformat())
    response = client.post("/", json=ends_first, headers=staff)
    assert response.status_code == 422 and "ends_at" in response.get_json()["error"]["fields"]
    nowhere = meeting_body(place=None)
    assert client.post("/", json=nowhere, headers=staff).status_code == 422
    unknown_type = meeting_body(meeting_type="tea_party")
    response = client.post("/", json=unknown_type, headers=staff)
    assert response.status_code == 422 and "meeting_type" in response.get_json()["error"]["fields"]
    assert outbox_events("meetings.meeting.scheduled", world.community_id) == []
    assert client.get("/", query_string={"community_id": world.community_id}, headers=staff).get_json() == []


def test_life_cycle_and_illegal_transitions_are_409(client, world, staff, meeting_body, outbox_events):
    meeting = create(client, staff, meeting_body())
    mid = meeting["id"]
    assert client.post(f"/{mid}/conclude", json={}, headers=staff).status_code == 409

    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    response = client.post(
        f"/{mid}/reschedule",
        json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=1)).isoformat(), "reason": "typhoon"},
        headers=staff,
    )
    assert response.status_code == 200
    assert response.get_json()["previous_starts_at"] == meeting["starts_at"]
    [rescheduled] = outbox_events("meetings.meeting.rescheduled", world.community_id)
    assert rescheduled["data"]["reason"] == "typhoon" and rescheduled["data"]["revision"] == 2

    assert client.post(f"/{mid}/start", headers=staff).status_code == 200
    response = client.post(f"/{mid}/cancel", json={"reason": "too late"}, headers=staff)
    assert response.status_code == 409
    assert (
        response.get_json()["error"]["code"] == "conflict" and "in_progress" in response.get_json()["error"]["message"]
    )
    assert client.post(f"/{mid}/start", headers=staff).status_code == 409

    response = client.post(
        f"/{mid}/conclude", json={"minutes": "Agreed to repair", "attendees_count": 23}, headers=staff
    )
    assert response.status_code == 200 and response.get_json()["attendees_count"] == 23
    [concluded] = outbox_events("meetings.meeting.concluded", world.community_id)
    assert concluded["data"]["attendees_count"] == 23
    written_up = client.put(
        f"/{mid}/minutes",
        json={
            "closing_report": "Roof to be repaired by the property company",
            "photo_urls": ["https://img.example.org/1.jpg"],
        },
        headers=staff,
    )
    assert written_up.status_code == 200
    assert written_up.get_json()["minutes"] == "Agreed to repair" and len(written_up.get_json()["photo_urls"]) == 1
    assert client.put(f"/{mid}/minutes", json={"photo_urls": ["not a url"]}, headers=staff).status_code == 422
    assert (
        client.post(
            f"/{mid}/reschedule",
            json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=1)).isoformat()},
            headers=staff,
        ).status_code
        == 409
    )

    other = create(client, staff, meeting_body())
    assert client.put(f"/{other['id']}/minutes", json={"minutes": "too early"}, headers=staff).status_code == 409
    assert client.post(f"/{other['id']}/cancel", json={}, headers=staff).status_code == 422  # reason required
    response = client.post(f"/{other['id']}/cancel", json={"reason": "rain"}, headers=staff)
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert outbox_events("meetings.meeting.cancelled", world.community_id)[0]["data"]["reason"] == "rain"


def test_agenda_item_linked_to_an_issue_on_a_scheduled_meeting_is_announced(
    client, world, staff, meeting_body, outbox_events
):
    meeting = create(client, staff, meeting_body(agenda=[{"title": "Opening"}]))
    issue_id = str(uuid.uuid4())
    response = client.post(
        f"/{meeting['id']}/agenda", json={"title": "Cultural wall", "issue_id": issue_id, "position": 1}, headers=staff
    )
    assert response.status_code == 201 and response.get_json()["position"] == 1
    [added] = outbox_events("meetings.agenda_item.added", world.community_id)
    assert added["data"]["issue_id"] == issue_id and added["data"]["meeting_id"] == meeting["id"]
    assert added["data"]["title"] == meeting["title"] and added["data"]["item_title"] == "Cultural wall"
    again = client.post(f"/{meeting['id']}/agenda", json={"title": "Again", "issue_id": issue_id}, headers=staff)
    assert again.status_code == 409
    client.post(f"/{meeting['id']}/agenda", json={"title": "No issue"}, headers=staff)
    assert len(outbox_events("meetings.agenda_item.added", world.community_id)) == 1
    agenda = client.get(f"/{meeting['id']}", headers=staff).get_json()["agenda"]
    assert [i["title"] for i in agenda] == ["Cultural wall", "Opening", "No issue"]
    last = agenda[2]["id"]
    moved = client.patch(f"/{meeting['id']}/agenda/{last}", json={"position": 1, "duration_minutes": 15}, headers=staff)
    assert moved.status_code == 200 and moved.get_json()["position"] == 1
    assert (
        client.patch(f"/{meeting['id']}/agenda/{last}", json={"duration_minutes": 0}, headers=staff).status_code == 422
    )
    assert client.delete(f"/{meeting['id']}/agenda/{agenda[0]['id']}", headers=staff).status_code == 204
    agenda = client.get(f"/{meeting['id']}", headers=staff).get_json()["agenda"]
    assert [(i["title"], i["position"]) for i in agenda] == [("No issue", 1), ("Opening", 2)]
    # The snapshot without the item tells the issue side it left the agenda.
    assert outbox_events("meetings.meeting.scheduled", world.community_id)[-1]["data"]["issue_ids"] == []


def test_registration_capacity_and_waiting_list(client, world, staff, meeting_body):
    meeting = create(client, staff, meeting_body(meeting_type="bench", capacity=1))
    mid = meeting["id"]
    first_id, first = world.person()
    _, second = world.person()
    assert client.post(f"/{mid}/registrations", json={}, headers=first).get_json()["enrolment"] == "registered"
    response = client.post(f"/{mid}/registrations", json={}, headers=second)
    assert response.status_code == 201 and response.get_json()["enrolment"] == "waitlisted"
    assert client.post(f"/{mid}/registrations", json={}, headers=first).status_code == 409
    outsider = world.headers("resident", community_id=world.other_community_id)
    assert client.post(f"/{mid}/registrations", json={}, headers=outsider).status_code == 404

    mine = [p for p in client.get(f"/{mid}/participants", headers=staff).get_json() if p["user_id"] == first_id][0]
    assert client.delete(f"/{mid}/participants/{mine['id']}", headers=second).status_code == 403
    assert client.delete(f"/{mid}/participants/{mine['id']}", headers=first).status_code == 200
    counts = client.get(f"/{mid}", headers=staff).get_json()["counts"]
    assert counts["registered"] == 1 and counts["waitlisted"] == 0
    # A list counts people in the database instead of loading them; it must agree.
    [listed] = client.get("/", query_string={"community_id": world.community_id}, headers=staff).get_json()
    assert listed["counts"] == counts


def test_check_in_by_staff_and_by_code(client, world, staff, meeting_body):
    invitee_id, invitee = world.person()
    meeting = create(
        client,
        staff,
        meeting_body(meeting_type="bench", participants=[{"role": "party_member", "user_id": invitee_id}]),
    )
    mid = meeting["id"]
    assert (
        client.post(f"/{mid}/invitation", json={"response": "confirmed"}, headers=invitee).get_json()["response"]
        == "confirmed"
    )
    assert client.get(f"/{mid}/checkin-code", headers=staff).status_code == 409  # not started
    client.post(f"/{mid}/start", headers=staff)
    assert client.get(f"/{mid}/checkin-code", headers=invitee).status_code == 403
    code = client.get(f"/{mid}/checkin-code", headers=staff).get_json()["code"]
    wrong = "0" * 6 if code != "000000" else "111111"
    response = client.post(f"/{mid}/check-in", json={"code": wrong}, headers=invitee)
    assert response.status_code == 422 and "code" in response.get_json()["error"]["fields"]
    assert client.post(f"/{mid}/check-in", json={"code": code}, headers=invitee).get_json()["check_in_method"] == "code"
    assert client.post(f"/{mid}/check-in", json={"code": code}, headers=invitee).status_code == 409

    walker_id, walker = world.person()
    assert client.post(f"/{mid}/check-in", json={"code": code}, headers=walker).get_json()["enrolment"] == "walk_in"
    added = client.post(
        f"/{mid}/participants", json={"role": "resident", "name": "Grandma Li"}, headers=staff
    ).get_json()
    response = client.post(f"/{mid}/participants/{added['id']}/check-in", headers=staff)
    assert response.status_code == 200 and response.get_json()["check_in_method"] == "staff"
    concluded = client.post(f"/{mid}/conclude", json={}, headers=staff).get_json()
    assert concluded["attendees_count"] == 3


def test_scope_rules(client, world, staff, meeting_body):
    public = create(client, staff, meeting_body(title="Open bench", meeting_type="bench"))
    invitee_id, invitee = world.person()
    private = create(
        client,
        staff,
        meeting_body(
            title="Private", public=False, participants=[{"role": "resident_representative", "user_id": invitee_id}]
        ),
    )
    _, neighbour = world.person()
    outsider = world.headers("resident", community_id=world.other_community_id)
    other_staff = world.headers("community_staff", community_id=world.other_community_id)
    official = world.headers("street_official")
    other_official = world.headers("street_official", street_id=world.other_street_id)
    admin = world.headers("city_admin")
    agency_org = str(uuid.uuid4())
    agency = world.headers("agency", organisation_id=agency_org)

    def titles(headers):
        return sorted(
            m["title"]
            for m in client.get("/", query_string={"community_id": world.community_id}, headers=headers).get_json()
        )

    assert titles(staff) == ["Open bench", "Private"]
    assert titles(official) == ["Open bench", "Private"]
    assert titles(admin) == ["Open bench", "Private"]
    assert titles(neighbour) == ["Open bench"]
    assert titles(invitee) == ["Open bench", "Private"]
    assert (
        titles(outsider) == [] and titles(other_staff) == [] and titles(other_official) == [] and titles(agency) == []
    )
    assert client.get(f"/{private['id']}", headers=neighbour).status_code == 404
    assert client.get(f"/{public['id']}", headers=outsider).status_code == 404
    assert client.get(f"/{private['id']}", headers=invitee).status_code == 200

    # A bureau invited as an organisation sees that meeting only.
    client.post(
        f"/{public['id']}/participants",
        json={"role": "bureau", "name": "Housing bureau", "organisation_id": agency_org},
        headers=staff,
    )
    assert titles(agency) == ["Open bench"]

    # Managing needs staff of the community (or its street, or the city).
    assert client.post("/", json=meeting_body(), headers=neighbour).status_code == 403
    assert client.post("/", json=meeting_body(), headers=other_staff).status_code == 403
    assert client.post("/", json=meeting_body(), headers=other_official).status_code == 403
    assert client.post("/", json=meeting_body(), headers=official).status_code == 201
    assert client.post(f"/{public['id']}/start", headers=invitee).status_code == 403
    assert client.post(f"/{public['id']}/start", headers=other_staff).status_code == 404
    assert client.get("/", query_string={"community_id": world.community_id}).status_code == 401


@on_both
def test_dates_and_instants_out_of_range_are_refused_naming_the_field(client, world, staff, meeting_body):
    """Times the databases or Python cannot hold (year 1, year 9999 with an offset) are 422, not 500."""
    for starts_at, ends_at in (
        ("9999-12-31T20:00:00-05:00", "9999-12-31T21:00:00-05:00"),
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
    ):
        response = client.post("/", json=meeting_body(starts_at=starts_at, ends_at=ends_at), headers=staff)
        assert response.status_code == 422, response.get_json()
        assert set(response.get_json()["error"]["fields"]) == {"starts_at", "ends_at"}
    far = client.get("/", query_string={"starts_after": "9999-12-31T23:59:59-23:00"}, headers=staff)
    assert far.status_code == 422 and list(far.get_json()["error"]["fields"]) == ["starts_after"]
    series = {
        "community_id": world.community_id,
        "meeting_type": "bench",
        "title": "Daily",
        "place": "Courtyard",
        "frequency": "daily",
        "first_date": "0001-01-01",
        "start_time": "01:00",
        "duration_minutes": 60,
        "count": 2,
    }
    early = client.post("/series", json=series, headers=staff)
    assert early.status_code == 422 and list(early.get_json()["error"]["fields"]) == ["first_date"]
    page = client.get("/", query_string={"page": 10**12}, headers=staff)
    assert page.status_code == 422 and list(page.get_json()["error"]["fields"]) == ["page"]
    assert client.get("/", query_string={"community_id": world.community_id}, headers=staff).get_json() == []


def test_pagination_and_filters(client, world, staff, meeting_body):
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for n in range(5):
        start = base + timedelta(days=n)
        create(
            client,
            staff,
            meeting_body(
                title=f"M{n}",
                meeting_type="bench" if n % 2 else "pavilion",
                starts_at=start.isoformat(),
                ends_at=(start + timedelta(hours=1)).isoformat(),
            ),
        )
    response = client.get(
        "/", query_string={"community_id": world.community_id, "page": 1, "page_size": 2}, headers=staff
    )
    assert [m["title"] for m in response.get_json()] == ["M0", "M1"]
    assert '"total": 5' in response.headers["X-Pagination"]
    benches = client.get("/", query_string={"community_id": world.community_id, "meeting_type": "bench"}, headers=staff)
    assert [m["title"] for m in benches.get_json()] == ["M1", "M3"]
    bad = client.get("/", query_string={"status": "sleeping", "starts_after": "yesterday"}, headers=staff)
    assert bad.status_code == 422 and {"status", "starts_after"} <= set(bad.get_json()["error"]["fields"])


def test_community_meeting_types(client, world, staff, meeting_body):
    response = client.post(
        "/types", json={"community_id": world.community_id, "key": "tea_talk", "name": "Tea talk"}, headers=staff
    )
    assert response.status_code == 201
    assert (
        client.post(
            "/types", json={"community_id": world.community_id, "key": "tea_talk", "name": "x"}, headers=staff
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/types", json={"community_id": world.community_id, "key": "bench", "name": "x"}, headers=staff
        ).status_code
        == 409
    )
    keys = [
        t["key"]
        for t in client.get("/types", query_string={"community_id": world.community_id}, headers=staff).get_json()
    ]
    assert keys == ["bench", "pavilion", "round_table", "tea_talk"]
    assert create(client, staff, meeting_body(meeting_type="tea_talk"))["meeting_type"] == "tea_talk"
    other = world.headers("community_staff", community_id=world.other_community_id)
    response = client.post(
        "/", json=meeting_body(community_id=world.other_community_id, meeting_type="tea_talk"), headers=other
    )
    assert response.status_code == 422
