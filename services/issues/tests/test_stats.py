"""`GET /stats` for the street-office overview: figures per scope, community and month, in the city's time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from linli_issues.definition import definition, handlers, timers
from linli_kit.db import Database
from linli_kit.events import Event, new_event

pytestmark = pytest.mark.integration


@pytest.fixture
def city(client, tokens, report, clock, database):
    """Six issues over two streets; the clock starts on 2 November 2026, 01:00 UTC."""
    staff_a1 = tokens.staff()
    staff_a2 = tokens.staff(community_id=tokens.d.community_a2)
    made = {}

    def walk(issue: dict, headers, hours_to_resolve: float | None, rating: int | None, reporter=None) -> None:
        client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=headers)
        if hours_to_resolve is not None:
            clock.advance(hours=hours_to_resolve)
            client.post(f"/{issue['id']}/status", json={"status": "resolved", "summary": "done"}, headers=headers)
            if rating is not None:
                client.post(f"/{issue['id']}/rating", json={"rating": rating}, headers=reporter)
            clock.advance(hours=-hours_to_resolve)

    made["i1"], r1 = report()
    walk(made["i1"], staff_a1, 10, 4, r1)
    made["i2"], r2 = report(category="parking", compound_id=None)
    walk(made["i2"], staff_a1, 30, 2, r2)
    made["i3"], _ = report(urgency="urgent")  # 24 hours: will go overdue
    made["i4"], _ = report(community_id=tokens.d.community_a2, compound_id=None, category="neighbour_dispute")
    walk(made["i4"], staff_a2, 20, None)
    made["i5"], _ = report(community_id=tokens.d.community_b1, compound_id=None)
    clock.advance(hours=30)
    settings = definition.settings()
    db = Database(settings.database_url)
    escalate = {t.name: t for t in timers(settings, db, clock=clock)}["escalate-overdue"]
    escalate.run()
    db.dispose()
    # 17:00 UTC on 30 November is already 1 December in Shanghai.
    clock.now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    made["i6"], _ = report()
    # One round table on issue 1, concluded.
    meeting = {
        "meeting_id": str(uuid.uuid4()),
        "community_id": tokens.d.community_a1,
        "meeting_type": "round_table",
        "title": "Round table",
        "starts_at": datetime(2026, 11, 3, 2, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 3, 4, tzinfo=UTC),
        "convener_id": str(uuid.uuid4()),
        "issue_ids": [made["i1"]["id"]],
        "revision": 2,
        "attendees_count": 12,
        "concluded_at": datetime(2026, 11, 3, 4, tzinfo=UTC),
    }
    event = Event.from_json(new_event("meetings.meeting.concluded", meeting, producer="meetings").to_json())
    with database.transaction() as session:
        handlers(settings, database)["meetings.meeting.concluded"](session, event)
    return made


NOVEMBER = "from=2026-11-01&to=2026-11-30"


def test_city_totals_by_community_and_month(client, tokens, city):
    response = client.get(f"/stats?{NOVEMBER}", headers=tokens.admin())
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["scope"] == {"level": "city", "community_id": None, "street_id": None}
    assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30", "timezone": "Asia/Shanghai"}
    totals = body["totals"]
    assert totals["raised"] == 5  # the sixth was raised on 1 December, city time
    assert totals["accepted"] == 3 and totals["resolved"] == 3
    assert totals["resolution_rate"] == 0.6
    assert totals["median_hours_to_resolve"] == 20.0 and totals["p90_hours_to_resolve"] == 28.0
    assert totals["overdue"] == 1
    assert totals["average_satisfaction"] == 3.0 and totals["ratings"] == 2
    assert totals["consultations_held"] == 1
    assert totals["by_category"] == {"repairs_facilities": 3, "parking": 1, "neighbour_dispute": 1}
    assert totals["by_tier"] == {"compound": 3, "community": 2}  # the overdue repair escalated
    by_community = {c["community_id"]: c for c in body["by_community"]}
    assert by_community[tokens.d.community_a1]["raised"] == 3
    assert by_community[tokens.d.community_a1]["consultations_held"] == 1
    assert by_community[tokens.d.community_a2]["median_hours_to_resolve"] == 20.0
    assert by_community[tokens.d.community_b1]["raised"] == 1
    assert [m["month"] for m in body["monthly"]] == ["2026-11"]
    assert body["monthly"][0]["raised"] == 5

    december = client.get("/stats?from=2026-12-01&to=2026-12-31", headers=tokens.admin()).get_json()
    assert december["totals"]["raised"] == 1 and december["monthly"][0]["month"] == "2026-12"


def test_street_and_community_scopes_and_who_may_ask(client, tokens, city):
    official = client.get(f"/stats?{NOVEMBER}", headers=tokens.street_official()).get_json()
    assert official["scope"]["level"] == "street" and official["scope"]["street_id"] == tokens.d.street_a
    assert official["totals"]["raised"] == 4
    assert {c["community_id"] for c in official["by_community"]} == {tokens.d.community_a1, tokens.d.community_a2}
    one = client.get(f"/stats?{NOVEMBER}&community_id={tokens.d.community_a2}", headers=tokens.street_official())
    assert one.get_json()["totals"]["raised"] == 1
    staff = client.get(f"/stats?{NOVEMBER}", headers=tokens.staff()).get_json()
    assert staff["scope"]["level"] == "community" and staff["totals"]["raised"] == 3
    assert staff["totals"]["resolution_rate"] == round(2 / 3, 3)

    street_b = f"/stats?street_id={tokens.d.street_b}"
    assert client.get(street_b, headers=tokens.street_official()).status_code == 403
    assert client.get(street_b, headers=tokens.staff()).status_code == 403
    assert client.get(f"/stats?community_id={tokens.d.community_b1}", headers=tokens.staff()).status_code == 403
    assert client.get("/stats", headers=tokens.resident()).status_code == 403
    assert client.get("/stats", headers=tokens.property_manager()).status_code == 403
    assert client.get("/stats").status_code == 401


def test_default_period_is_the_twelve_calendar_months_to_today_and_bad_periods_are_refused(client, tokens, city, clock):
    # The platform's one rule (linli_kit.periods): the 12 calendar months ending with the current one.
    clock.now = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    body = client.get("/stats", headers=tokens.admin()).get_json()
    assert body["period"]["from"] == "2026-01-01" and body["period"]["to"] == "2026-12-05"
    assert [m["month"] for m in body["monthly"]][:2] == ["2026-01", "2026-02"] and len(body["monthly"]) == 12
    assert body["totals"]["raised"] == 6
    # Local dates: 1 January in Shanghai starts at 16:00 UTC on 31 December.
    clock.now = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
    assert client.get("/stats", headers=tokens.admin()).get_json()["period"] == {
        "from": "2026-02-01", "to": "2027-01-01", "timezone": "Asia/Shanghai",
    }  # fmt: skip
    empty = next(m for m in body["monthly"] if m["month"] == "2026-01")
    assert empty["raised"] == 0 and empty["median_hours_to_resolve"] is None

    bad = client.get("/stats?from=yesterday&community_id=nope", headers=tokens.admin())
    assert bad.status_code == 422 and {"from", "community_id"} <= set(bad.get_json()["error"]["fields"])
    backwards = client.get("/stats?from=2026-11-30&to=2026-11-01", headers=tokens.admin())
    assert backwards.status_code == 422 and "from" in backwards.get_json()["error"]["fields"]
    for query, field in [
        ("from=0001-01-01&to=0001-01-02", "from"),
        ("from=1969-12-31", "from"),
        ("to=9999-12-31", "to"),
        ("from=3000-01-01&to=3000-01-02", "from"),
    ]:
        extreme = client.get(f"/stats?{query}", headers=tokens.admin())
        assert extreme.status_code == 422, (query, extreme.get_json())
        assert field in extreme.get_json()["error"]["fields"], query
    # The range's own ends are fine, however empty.
    edges = client.get("/stats?from=1970-01-01&to=1970-01-31", headers=tokens.admin())
    assert edges.status_code == 200 and edges.get_json()["totals"]["raised"] == 0
    late = client.get("/stats?from=2999-12-01&to=2999-12-31", headers=tokens.admin())
    assert late.status_code == 200 and [m["month"] for m in late.get_json()["monthly"]] == ["2999-12"]
    both = client.get(
        f"/stats?community_id={tokens.d.community_a1}&street_id={tokens.d.street_a}", headers=tokens.admin()
    )
    assert both.status_code == 422


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_escalations_by_from_and_to_tier_when_they_happened(client, tokens, city, clock):
    # The urgent repair of community A1 went overdue and moved from the compound to the community
    # on 3 November; in December staff take the 1 December repair up by hand, twice.
    staff = tokens.staff()
    for reason in ("the property company does not answer", "the community cannot fund it"):
        escalated = client.post(f"/{city['i6']['id']}/escalations", json={"reason": reason}, headers=staff)
        assert escalated.status_code == 200, escalated.get_json()
    november = client.get(f"/stats?{NOVEMBER}", headers=tokens.admin()).get_json()
    none = {"compound_to_community": 0, "community_to_street": 0, "street_to_city": 0}
    assert november["totals"]["escalated"] == 1
    assert november["totals"]["escalated_by_tier"] == none | {"compound_to_community": 1}
    by_community = {c["community_id"]: c for c in november["by_community"]}
    assert by_community[tokens.d.community_a1]["escalated"] == 1
    assert by_community[tokens.d.community_b1]["escalated"] == 0
    assert by_community[tokens.d.community_b1]["escalated_by_tier"] == none
    assert november["monthly"][0]["escalated"] == 1

    both = client.get("/stats?from=2026-11-01&to=2026-12-31", headers=tokens.admin()).get_json()
    assert both["totals"]["escalated"] == 3
    assert both["totals"]["escalated_by_tier"] == {
        "compound_to_community": 2,
        "community_to_street": 1,
        "street_to_city": 0,
    }
    assert [(m["month"], m["escalated"]) for m in both["monthly"]] == [("2026-11", 1), ("2026-12", 2)]
    # A street sees only its own: street B had none.
    street_b = client.get(f"/stats?{NOVEMBER}&street_id={tokens.d.street_b}", headers=tokens.admin()).get_json()
    assert street_b["totals"]["escalated"] == 0
