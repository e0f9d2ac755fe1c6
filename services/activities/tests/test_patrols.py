"""Patrols (the article's "woodpecker patrol"): a mutual-aid group's rota of rounds with the members
on each, findings recorded on a round, a finding raised as an issue in one step (the event the
issues service reports it from, credited to the group), and the figures. SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import messaging
from linli_kit.events.catalogue import CATALOGUE

pytestmark = pytest.mark.integration

ROUND = {"starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-01T09:30:00+08:00"}
FINDING = {"title": "Manhole cover loose", "description": "The cover by Building 2 rocks underfoot",
           "location": "Lane between Buildings 2 and 3"}  # fmt: skip


def answer(response, status: int):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def refused(response, status: int, field: str | None = None) -> None:
    body = response.get_json()
    assert response.status_code == status, body
    if field is not None:
        assert field in body["error"]["fields"], body


def raised_events(database) -> list[dict]:
    with database.session() as s:
        rows = s.scalars(
            select(messaging.outbox.c.payload)
            .where(messaging.outbox.c.event_type == "activities.patrol.finding_raised")
            .order_by(messaging.outbox.c.id)
        )
        return [json.loads(p) for p in rows]


def patrol_group(client, world) -> tuple[dict, dict]:
    """A woodpecker patrol: its coordinator and two members, and everyone's headers."""
    staff = world.headers("community_staff")
    coordinator, coordinator_h = world.person()
    group = answer(
        client.post(
            "/groups",
            json={"community_id": world.community_a, "name": "Woodpecker patrol 啄木鸟巡逻队",
                  "purpose": "walk the compound, find what is broken", "coordinator_id": coordinator},
            headers=staff,
        ),
        201,
    )  # fmt: skip
    people = {"staff": staff, "coordinator": coordinator_h, "coordinator_id": coordinator}
    for name in ("li", "zhang"):
        user, headers = world.person()
        answer(client.post(f"/groups/{group['id']}/members", json={"display_name": name}, headers=headers), 201)
        people[name], people[f"{name}_id"] = headers, user
    return group, people


def test_a_patrol_rota_its_findings_and_an_issue_raised_in_one_step(any_client, any_world, any_database, clock):
    client, world = any_client, any_world  # clock: 1 December 2026, 10:00 in Shanghai
    group, people = patrol_group(client, world)
    rota = f"/groups/{group['id']}/patrols"
    on_round = [people["li_id"], people["zhang_id"]]

    # The rota: the coordinator (or staff) makes it, with members of the group only.
    refused(client.post(rota, json={**ROUND, "member_ids": on_round}, headers=people["li"]), 403)
    refused(client.post(rota, json={**ROUND, "member_ids": [world.person()[0]]}, headers=people["coordinator"]),
            422, "member_ids")  # fmt: skip
    refused(client.post(rota, json={**ROUND, "member_ids": []}, headers=people["coordinator"]), 422, "member_ids")
    backwards = {"starts_at": ROUND["ends_at"], "ends_at": ROUND["starts_at"], "member_ids": on_round}
    refused(client.post(rota, json=backwards, headers=people["coordinator"]), 422, "ends_at")
    morning = answer(
        client.post(rota, json={**ROUND, "member_ids": on_round, "route": "Buildings 1-6, the bike shed"},
                    headers=people["coordinator"]),
        201,
    )  # fmt: skip
    assert morning["walked_at"] is None and morning["member_ids"] == on_round
    tomorrow = {"starts_at": "2026-12-02T08:00:00+08:00", "ends_at": "2026-12-02T09:00:00+08:00"}
    later = answer(client.post(rota, json={**tomorrow, "member_ids": [people["li_id"]]}, headers=people["staff"]), 201)
    listed = answer(client.get(rota, headers=people["zhang"]), 200)
    assert [r["id"] for r in listed] == [morning["id"], later["id"]]
    assert [r["id"] for r in answer(client.get(rota, query_string={"starts_from": tomorrow["starts_at"]},
                                               headers=people["li"]), 200)] == [later["id"]]  # fmt: skip
    refused(client.post(f"/patrols/{later['id']}/walked", json={}, headers=people["li"]), 409)  # not yet begun

    # Findings: by the members on the round (someone else of the community may read them).
    findings = f"/patrols/{morning['id']}/findings"
    outsider = world.headers()
    refused(client.post(findings, json=FINDING, headers=outsider), 403)
    refused(client.post(findings, json={**FINDING, "title": "  x "}, headers=people["li"]), 422, "title")
    refused(client.post(findings, json={**FINDING, "urgency": "now"}, headers=people["li"]), 422, "urgency")
    cover = answer(client.post(findings, json=FINDING, headers=people["li"]), 201)
    assert cover["issue_id"] is None and cover["category"] == "safety_hazard"
    walked = answer(client.get(f"/patrols/{morning['id']}", headers=outsider), 200)
    assert walked["walked_at"] is not None and walked["walked_by"] == people["li_id"]
    clock.advance(minutes=5)  # the next finding, a few minutes on (findings are listed in time order)
    lane = {**FINDING, "title": "Fire lane blocked", "description": "Three cars park in the fire lane",
            "category": "parking", "urgency": "high", "raise_issue": True}  # fmt: skip
    blocked = answer(client.post(findings, json=lane, headers=people["zhang"]), 201)
    assert blocked["issue_id"] is not None and blocked["raised_by"] == people["zhang_id"]

    # One step: the finding becomes an issue (once; again is a conflict naming it).
    refused(client.post(f"/patrols/findings/{cover['id']}/issue", headers=outsider), 403)
    raised = answer(client.post(f"/patrols/findings/{cover['id']}/issue", headers=people["zhang"]), 200)
    assert raised["issue_id"] is not None and raised["raised_by"] == people["zhang_id"]
    again = client.post(f"/patrols/findings/{cover['id']}/issue", headers=people["li"])
    refused(again, 409, "issue_id")
    assert again.get_json()["error"]["fields"]["issue_id"] == [raised["issue_id"]]
    report = answer(client.post(f"/patrols/{morning['id']}/walked", json={"report": "All lamps lit"},
                                headers=people["li"]), 200)  # fmt: skip
    assert (report["walked_by"], report["report"]) == (people["li_id"], "All lamps lit")

    # (The PostgreSQL database is shared by the tests: this group's events only.)
    events = [e for e in raised_events(any_database) if e["data"]["group_id"] == group["id"]]
    assert [e["data"]["finding_id"] for e in events] == [blocked["id"], cover["id"]]
    for event in events:
        CATALOGUE.validate(event["type"], event["version"], event["data"])
        assert (event["data"]["group_id"], event["data"]["group_name"]) == (group["id"], group["name"])
        assert event["community_id"] == world.community_a and event["street_id"] == world.street_id
    cover_event = events[1]["data"]
    assert (cover_event["issue_id"], cover_event["raised_by"]) == (raised["issue_id"], people["zhang_id"])
    assert (cover_event["category"], cover_event["urgency"]) == ("safety_hazard", "normal")
    assert cover_event["address"] == "Lane between Buildings 2 and 3"  # a public place: kept
    assert [f["id"] for f in answer(client.get(findings, headers=outsider), 200)] == [cover["id"], blocked["id"]]

    # The figures: the group's own, and the community's in /stats.
    figures = answer(client.get(f"/groups/{group['id']}/patrols/figures", headers=people["li"]), 200)
    assert figures == {"group_id": group["id"], "rounds": 2, "rounds_walked": 1, "findings": 2, "issues_raised": 2}
    stats = answer(client.get("/stats", query_string={"community_id": world.community_a}, headers=people["staff"]), 200)
    totals = stats["totals"]
    assert (totals["patrol_rounds"], totals["patrol_findings"], totals["patrol_issues_raised"]) == (1, 2, 2)
    december = {m["month"]: m for m in stats["monthly"]}["2026-12"]
    assert (december["patrol_rounds"], december["patrol_findings"], december["patrol_issues_raised"]) == (1, 2, 2)
    other = world.headers("community_staff", community=world.community_b)
    refused(client.get(f"/groups/{group['id']}/patrols/figures", headers=other), 404)
    refused(client.get(f"/patrols/{morning['id']}", headers=other), 404)


def test_a_finding_raised_twice_at_once_becomes_one_issue(client, world, database, simultaneously):
    group, people = patrol_group(client, world)
    morning = answer(
        client.post(f"/groups/{group['id']}/patrols", json={**ROUND, "member_ids": [people["li_id"]]},
                    headers=people["coordinator"]),
        201,
    )  # fmt: skip
    cover = answer(client.post(f"/patrols/{morning['id']}/findings", json=FINDING, headers=people["li"]), 201)
    url = f"/patrols/findings/{cover['id']}/issue"
    results = simultaneously([lambda: client.post(url, headers=people["li"]),
                              lambda: client.post(url, headers=people["coordinator"])])  # fmt: skip
    assert sorted(r.status_code for r in results) == [200, 409]
    assert [e["data"]["finding_id"] for e in raised_events(database)].count(cover["id"]) == 1
