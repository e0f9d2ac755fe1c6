"""GET /stats: figures for a community, a street and the city, by community and by month."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from linli_kit.events import new_event
from linli_meetings.service_layer.candidates import keep_issue

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def held(
    client,
    staff,
    meeting_body,
    *,
    start,
    meeting_type="round_table",
    issue_ids=(),
    attendees=None,
    tallies=(),
    actions=(),
    **extra,
):
    """A meeting that took place: agenda, decisions by show of hands, concluded."""
    agenda = [{"title": f"Issue {n}", "issue_id": i} for n, i in enumerate(issue_ids)]
    participants = [{"role": "resident_representative", "name": f"Rep {n}"} for n in range(3)]
    body = meeting_body(
        meeting_type=meeting_type,
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
        agenda=agenda,
        participants=participants,
        **extra,
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json():
        client.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff)
    for n, (f, a) in enumerate(tallies):
        motion = client.post(
            f"/{meeting['id']}/motions",
            json={"motion": f"Motion {n}", "method": "show_of_hands", "action_items": list(actions) if n == 0 else []},
            headers=staff,
        ).get_json()
        client.put(
            f"/{meeting['id']}/motions/{motion['id']}/tally",
            json={"votes_for": f, "votes_against": a, "abstentions": 0},
            headers=staff,
        )
        client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff)
    client.post(f"/{meeting['id']}/conclude", json={"attendees_count": attendees}, headers=staff)
    return meeting


@on_both
def test_stats_for_community_street_and_city(client, world, staff, meeting_body, database, clock, documented):
    roof, wall = str(uuid.uuid4()), str(uuid.uuid4())
    with database.transaction() as session:
        for issue_id, status in ((roof, "resolved"), (wall, "deliberating")):
            keep_issue(
                session,
                new_event(
                    "issues.issue.reported",
                    {
                        "issue_id": issue_id,
                        "community_id": world.community_id,
                        "title": "t",
                        "category": "c",
                        "urgency": "normal",
                        "status": status,
                        "tier": "community",
                        "reporter_id": str(uuid.uuid4()),
                        "revision": 1,
                    },
                    producer="issues",
                ),
            )
    # Meetings can be recorded after the fact: starts in the past are allowed.
    nov = datetime(2026, 11, 3, 11, tzinfo=UTC)
    oct_ = datetime(2026, 10, 14, 11, tzinfo=UTC)
    held(
        client,
        staff,
        meeting_body,
        start=oct_,
        issue_ids=[roof, wall],
        attendees=30,
        tallies=[(3, 0)],
        actions=[{"title": "Quote", "owner_body": "property_company", "due_date": "2026-10-20"}],
    )
    held(
        client,
        staff,
        meeting_body,
        start=nov,
        issue_ids=[roof],
        attendees=None,
        tallies=[(1, 2), (3, 0)],
        actions=[{"title": "Never adopted", "owner_body": "community"}],
    )
    held(client, staff, meeting_body, start=nov + timedelta(days=1), meeting_type="bench", attendees=10)
    client.post("/", json=meeting_body(), headers=staff)  # scheduled, not held: not counted
    other_staff = world.headers("community_staff", community_id=world.other_community_id)
    held(
        client,
        other_staff,
        meeting_body,
        start=nov,
        meeting_type="pavilion",
        attendees=7,
        community_id=world.other_community_id,
    )

    response = client.get(
        "/stats",
        query_string={"community_id": world.community_id, "from": "2026-10-01", "to": "2026-11-30"},
        headers=staff,
    )
    assert response.status_code == 200, response.get_json()
    documented(response, "/stats")
    stats = response.get_json()
    totals = stats["totals"]
    assert stats["scope"] == {"level": "community", "community_id": world.community_id}
    assert stats["period"] == {"from": "2026-10-01", "to": "2026-11-30"}
    assert totals["meetings_held"] == 3 and totals["meetings_by_type"] == {"round_table": 2, "bench": 1}
    assert totals["attendance_sum"] == 30 + 3 + 10 and totals["attendance_mean"] == round(43 / 3, 2)
    assert totals["issues_deliberated"] == 2
    assert totals["decisions_adopted"] == 2 and totals["decisions_rejected"] == 1
    # The roof (resolved) was on the agenda of two held meetings.
    assert totals["resolved_issues_deliberated"] == 1 and totals["consultations_per_resolved_issue"] == 2.0
    assert totals["action_items_open"] == 1 and totals["action_items_overdue"] == 1
    assert totals["communities_with_convention"] == 0
    assert [m["month"] for m in stats["monthly"]] == ["2026-10", "2026-11"]
    assert stats["monthly"][1]["meetings_held"] == 2 and stats["monthly"][1]["decisions_rejected"] == 1
    # The article's headline figures: meetings by type and consultations, in total and by month.
    assert totals["consultations"] == 3  # the roof twice, the wall once
    assert stats["by_community"][0]["consultations"] == 3
    assert [(m["meetings_by_type"], m["consultations"]) for m in stats["monthly"]] == [
        ({"round_table": 1}, 2),
        ({"round_table": 1, "bench": 1}, 1),
    ]

    official = world.headers("street_official")
    street = client.get(
        "/stats",
        query_string={"street_id": world.street_id, "from": "2026-10-01", "to": "2026-11-30"},
        headers=official,
    ).get_json()
    assert street["totals"]["meetings_held"] == 3 and [c["community_id"] for c in street["by_community"]] == [
        world.community_id
    ]
    admin = world.headers("city_admin")
    city = client.get("/stats", query_string={"from": "2026-10-01", "to": "2026-11-30"}, headers=admin).get_json()
    mine = {c["community_id"]: c for c in city["by_community"]}
    assert mine[world.other_community_id]["meetings_by_type"] == {"pavilion": 1}
    assert city["totals"]["meetings_held"] >= 4
    # Per street: each street's row is the sum of its communities' (an issue is one community's).
    per_street = client.get(
        "/stats", query_string={"from": "2026-10-01", "to": "2026-11-30", "by": "street"}, headers=admin
    )
    documented(per_street, "/stats")
    streets = {row["street_id"]: row for row in per_street.get_json()["by_street"]}
    assert per_street.get_json()["by_community"] == [] and per_street.get_json()["totals"] == city["totals"]
    ours = streets[world.street_id]
    assert (ours["meetings_held"], ours["meetings_by_type"], ours["consultations"]) == (
        3,
        {"round_table": 2, "bench": 1},
        3,
    )
    assert (ours["issues_deliberated"], ours["decisions_adopted"], ours["action_items_open"]) == (2, 2, 1)
    assert (ours["attendance_sum"], ours["communities_with_convention"]) == (43, 0)
    assert streets[world.other_street_id]["meetings_by_type"] == {"pavilion": 1}
    bad_by = client.get("/stats", query_string={"by": "compound"}, headers=admin)
    assert bad_by.status_code == 422 and "by" in bad_by.get_json()["error"]["fields"]

    only_october = client.get(
        "/stats",
        query_string={"community_id": world.community_id, "from": "2026-10-01", "to": "2026-10-31"},
        headers=staff,
    ).get_json()
    assert only_october["totals"]["meetings_held"] == 1

    # Scope: staff of another community, a street official of another street, a resident.
    assert (
        client.get("/stats", query_string={"community_id": world.community_id}, headers=other_staff).status_code == 403
    )
    other_official = world.headers("street_official", street_id=world.other_street_id)
    assert client.get("/stats", query_string={"street_id": world.street_id}, headers=other_official).status_code == 403
    assert client.get("/stats", headers=world.headers("resident")).status_code == 403
    bad = client.get("/stats", query_string={"from": "2026-13-01", "to": "2026-10-01"}, headers=admin)
    assert bad.status_code == 422 and "from" in bad.get_json()["error"]["fields"]
    backwards = client.get("/stats", query_string={"from": "2026-11-01", "to": "2026-10-01"}, headers=admin)
    assert backwards.status_code == 422
    default = client.get("/stats", query_string={"community_id": world.community_id}, headers=staff).get_json()
    today = clock().astimezone(ZoneInfo("Asia/Shanghai")).date()  # the city's today
    assert (
        default["period"]["to"] == today.isoformat()
        and default["period"]["from"] > (today - timedelta(days=367)).isoformat()
    )


def _shanghai_now_at(clock, local: datetime) -> None:
    """Move the service's clock so that it is `local` (naive, Shanghai wall-clock time) now."""
    clock.offset = local.replace(tzinfo=ZoneInfo("Asia/Shanghai")) - datetime.now(UTC)


@on_both
def test_default_period_is_the_twelve_calendar_months_ending_with_this_one(client, world, staff, clock, documented):
    """The platform's one rule (`linli_kit.periods`), in the city's time zone: on 15 November 2026
    the figures run from 1 December 2025; just after midnight on 1 December, from 1 January."""
    query = {"community_id": world.community_id}
    _shanghai_now_at(clock, datetime(2026, 11, 15, 10))
    response = client.get("/stats", query_string=query, headers=staff)
    documented(response, "/stats")
    assert response.get_json()["period"] == {"from": "2025-12-01", "to": "2026-11-15"}
    _shanghai_now_at(clock, datetime(2026, 12, 1, 0, 30))  # still 30 November in UTC
    assert client.get("/stats", query_string=query, headers=staff).get_json()["period"] == {
        "from": "2026-01-01",
        "to": "2026-12-01",
    }
    # Only a start: up to today; only an end: the twelve months ending with the end's month.
    only_from = client.get("/stats", query_string=query | {"from": "2026-06-10"}, headers=staff).get_json()
    assert only_from["period"] == {"from": "2026-06-10", "to": "2026-12-01"}
    only_to = client.get("/stats", query_string=query | {"to": "2026-03-31"}, headers=staff).get_json()
    assert only_to["period"] == {"from": "2025-04-01", "to": "2026-03-31"}


@on_both
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "0001-01-05"}, "to"),
        ({"from": "0001-01-01"}, "from"),
        ({"from": "2026-01-01", "to": "9999-12-31"}, "to"),
        ({"from": "1969-12-31", "to": "2026-01-01"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-31"}, "from"),
        ({"from": "2026-02-30"}, "from"),
    ],
)
def test_a_period_out_of_range_is_refused_naming_the_field(client, world, staff, query, field):
    response = client.get("/stats", query_string={"community_id": world.community_id} | query, headers=staff)
    assert response.status_code == 422, response.get_json()
    assert list(response.get_json()["error"]["fields"]) == [field]
