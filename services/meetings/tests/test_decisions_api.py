"""Motions, votes and decisions under the rules of procedure; action items; versioned documents."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def running(client, world, staff, meeting_body):
    """A round table in progress with an issue on the agenda, five voting members invited (four
    checked in), a bureau and a resident present; returns (meeting, item, {name: (user_id, headers)})."""

    def start(meeting_type="round_table", present=4):
        issue_id = str(uuid.uuid4())
        people = {}
        invited = []
        for n, role in enumerate(
            ["resident_representative", "party_member", "property_company", "owners_committee", "community_staff"]
        ):
            people[f"v{n}"] = world.person()
            invited.append({"role": role, "user_id": people[f"v{n}"][0]})
        people["bureau"] = world.person("agency")
        invited.append({"role": "bureau", "user_id": people["bureau"][0]})
        body = meeting_body(
            meeting_type=meeting_type, agenda=[{"title": "Roof", "issue_id": issue_id}], participants=invited
        )
        meeting = client.post("/", json=body, headers=staff).get_json()
        client.post(f"/{meeting['id']}/start", headers=staff)
        participants = {
            p["user_id"]: p["id"] for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json()
        }
        for name in [f"v{n}" for n in range(present)] + ["bureau"]:
            client.post(f"/{meeting['id']}/participants/{participants[people[name][0]]}/check-in", headers=staff)
        return meeting, meeting["agenda"][0], people

    return start


def motion(client, staff, meeting, **body):
    response = client.post(f"/{meeting['id']}/motions", json={"motion": "Repair the roof"} | body, headers=staff)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@on_both
def test_roll_call_adopted_with_action_items_and_event(client, world, staff, running, outbox_events, documented):
    meeting, item, people = running()
    m = motion(
        client,
        staff,
        meeting,
        agenda_item_id=item["id"],
        issue_effect="resolution_plan",
        resolution_plan="Property company re-roofs Building 7 by December",
        action_items=[{"title": "Re-roof Building 7", "owner_body": "property_company", "due_date": "2026-12-20"}],
    )
    assert m["threshold"] == "two_thirds" and m["status"] == "open" and m["issue_id"] == item["issue_id"]
    url = f"/{meeting['id']}/motions/{m['id']}"
    cast = {}
    for name, choice in (("v0", "for"), ("v1", "for"), ("v2", "against"), ("v3", "abstain")):
        response = client.post(f"{url}/votes", json={"choice": choice}, headers=people[name][1])
        assert response.status_code == 201, response.get_json()
        documented(response, "/{meeting_id}/motions/{decision_id}/votes", "POST")
        cast[people[name][0]] = choice
    # While the vote is open, the counts are of the votes cast so far, as the chair sees them.
    still_open = client.get(url, headers=staff)
    documented(still_open, "/{meeting_id}/motions/{decision_id}")
    still_open = still_open.get_json()
    assert (still_open["votes_for"], still_open["votes_against"], still_open["abstentions"]) == (2, 1, 1)
    assert {v["voter_id"]: v["choice"] for v in still_open["votes"]} == cast

    twice = client.post(f"{url}/votes", json={"choice": "against"}, headers=people["v0"][1])
    assert twice.status_code == 409 and "already voted" in twice.get_json()["error"]["message"]
    absent = client.post(f"{url}/votes", json={"choice": "for"}, headers=people["v4"][1])
    assert absent.status_code == 409 and "present" in absent.get_json()["error"]["message"]
    advisory = client.post(f"{url}/votes", json={"choice": "for"}, headers=people["bureau"][1])
    assert advisory.status_code == 409
    assert client.post(f"{url}/votes", json={"choice": "maybe"}, headers=people["v3"][1]).status_code == 422
    assert (
        client.put(
            f"{url}/tally", json={"votes_for": 1, "votes_against": 0, "abstentions": 0}, headers=staff
        ).status_code
        == 409
    )
    assert client.post(f"{url}/record", headers=people["v0"][1]).status_code == 403

    response = client.post(f"{url}/record", headers=staff)
    documented(response, "/{meeting_id}/motions/{decision_id}/record", "POST")
    recorded = response.get_json()
    # 2 for, 1 against: exactly two-thirds of votes cast; 4 of 5 voting members present >= 2/3.
    assert (recorded["votes_for"], recorded["votes_against"], recorded["abstentions"]) == (2, 1, 1)
    # The chair sees who voted what, the votes the counts were made of.
    assert {v["voter_id"]: v["choice"] for v in recorded["votes"]} == cast
    assert all(v["cast_at"].endswith("+00:00") for v in recorded["votes"])
    assert recorded["outcome"] == "adopted"
    # The rule is worded in the language of the answer (English here, Chinese by default); the
    # event carries it in English, as stored.
    assert recorded["rule"] == (
        "quorum 2/3 of 5 voting members (4 present); two-thirds of votes cast: 2 for, 1 against, 1 abstaining"
    )
    in_chinese = client.get(url, headers=staff | {"Accept-Language": "zh-CN"}).get_json()["rule"]
    assert in_chinese == (
        "法定人数为 5 名有表决权成员的 2/3（到场 4 人）；三分之二多数（按所投票数计）：赞成 2 票，反对 1 票，弃权 1 票"
    )
    assert [a["owner_body"] for a in recorded["action_items"]] == ["property_company"]
    assert client.post(f"{url}/record", headers=staff).status_code == 409
    assert client.post(f"{url}/votes", json={"choice": "for"}, headers=people["v3"][1]).status_code == 409

    [event] = outbox_events("meetings.decision.recorded", world.community_id)
    data = event["data"]
    assert data["issue_ids"] == [item["issue_id"]] and data["outcome"] == "adopted"
    assert data["issue_effect"] == "resolution_plan" and data["resolution_plan"].startswith("Property company")
    assert data["action_items"][0]["due_date"] == "2026-12-20" and data["rule"] == recorded["rule"]
    [assigned] = outbox_events("meetings.action_item.assigned", world.community_id)
    assert assigned["data"]["issue_id"] == item["issue_id"] and assigned["data"]["status"] == "open"

    # Who voted how is for the chair (and the officials over the community); a member sees their
    # own vote, everyone who sees the motion the counts. The same on one motion and in the list.
    assert {v["voter_id"]: v["choice"] for v in client.get(url, headers=staff).get_json()["votes"]} == cast
    official = world.headers("street_official")
    assert len(client.get(url, headers=official).get_json()["votes"]) == 4
    assert [v["choice"] for v in client.get(url, headers=people["v2"][1]).get_json()["votes"]] == ["against"]
    listed = client.get(f"/{meeting['id']}/motions", headers=staff)
    documented(listed, "/{meeting_id}/motions")
    [listed] = listed.get_json()
    assert {v["voter_id"]: v["choice"] for v in listed["votes"]} == cast
    assert (listed["votes_for"], listed["votes_against"], listed["abstentions"]) == (2, 1, 1)
    [seen_by_voter] = client.get(f"/{meeting['id']}/motions", headers=people["v2"][1]).get_json()
    assert [v["voter_id"] for v in seen_by_voter["votes"]] == [people["v2"][0]]
    assert seen_by_voter["votes_for"] == 2


def test_no_quorum_and_rejection_carry_no_issue_effect(client, world, staff, running, outbox_events):
    meeting, item, people = running(present=3)  # 3 of 5 < 2/3
    m = motion(client, staff, meeting, agenda_item_id=item["id"], issue_effect="resolve")
    for name in ("v0", "v1", "v2"):
        client.post(f"/{meeting['id']}/motions/{m['id']}/votes", json={"choice": "for"}, headers=people[name][1])
    recorded = client.post(f"/{meeting['id']}/motions/{m['id']}/record", headers=staff).get_json()
    assert recorded["outcome"] == "no_quorum"
    assert recorded["rule"] == "quorum 2/3 of 5 voting members (3 present): not reached"
    in_chinese = client.get(
        f"/{meeting['id']}/motions/{m['id']}", headers=staff | {"Accept-Language": "zh"}
    ).get_json()["rule"]
    assert in_chinese == "法定人数为 5 名有表决权成员的 2/3（到场 3 人）：未达到"
    [event] = outbox_events("meetings.decision.recorded", world.community_id)
    assert event["data"]["issue_effect"] == "none" and event["data"]["outcome"] == "no_quorum"


def test_show_of_hands_and_threshold_override(client, staff, running):
    meeting, item, _ = running()
    refused = client.post(
        f"/{meeting['id']}/motions", json={"motion": "x", "threshold": "simple_majority"}, headers=staff
    )
    assert refused.status_code == 422 and "threshold" in refused.get_json()["error"]["fields"]
    m = motion(client, staff, meeting, method="show_of_hands", threshold="unanimous")
    url = f"/{meeting['id']}/motions/{m['id']}"
    too_many = client.put(f"{url}/tally", json={"votes_for": 5, "votes_against": 0, "abstentions": 0}, headers=staff)
    assert too_many.status_code == 200  # the tally itself is only checked when recorded
    assert client.post(f"{url}/record", headers=staff).status_code == 422  # 5 hands, 4 present
    client.put(f"{url}/tally", json={"votes_for": 3, "votes_against": 0, "abstentions": 1}, headers=staff)
    recorded = client.post(f"{url}/record", headers=staff).get_json()
    assert recorded["outcome"] == "rejected"
    assert "unanimity (an abstention prevents it): 3 for, 0 against, 1 abstaining" in recorded["rule"]
    # No Accept-Language at all: Chinese, the default.
    in_chinese = client.get(url, headers=staff | {"Accept-Language": ""}).get_json()["rule"]
    assert "全体一致（有弃权即不能通过）：赞成 3 票，反对 0 票，弃权 1 票" in in_chinese
    negative = client.put(f"{url}/tally", json={"votes_for": -1, "votes_against": 0, "abstentions": 0}, headers=staff)
    assert negative.status_code == 422
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 200


def test_open_motion_blocks_conclusion_and_can_be_withdrawn(client, staff, running):
    meeting, _, _ = running()
    m = motion(client, staff, meeting)
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 409
    assert client.delete(f"/{meeting['id']}/motions/{m['id']}", headers=staff).status_code == 204
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 200
    assert client.post(f"/{meeting['id']}/motions", json={"motion": "late"}, headers=staff).status_code == 409


def test_rules_and_convention_adopted_by_decision_are_versioned(client, world, staff, running, documented):
    resident = world.headers("resident")
    defaults = client.get("/rules", query_string={"community_id": world.community_id}, headers=resident)
    documented(defaults, "/rules")
    defaults = defaults.get_json()
    assert (
        defaults["version"] is None and defaults["rules"]["meeting_types"]["round_table"]["threshold"] == "two_thirds"
    )

    new_rules = {
        "default": {
            "voting_roles": ["resident", "resident_representative"],
            "quorum": "1/2",
            "threshold": "simple_majority",
        },
        "meeting_types": {
            "round_table": {
                # Party members attend this community's round tables without a vote.
                "voting_roles": ["resident_representative", "property_company", "owners_committee", "community_staff"],
                "quorum": "1/2",
                "threshold": "simple_majority",
                "may_override_to": ["unanimous"],
            }
        },
        "abstention_blocks_unanimity": False,
    }
    meeting, _, people = running()
    bad = client.post(
        f"/{meeting['id']}/motions",
        json={
            "motion": "x",
            "document": {"kind": "rules_of_procedure", "title": "R", "body": "B", "rules": {"default": {}}},
        },
        headers=staff,
    )
    assert bad.status_code == 422 and "rules.default.voting_roles" in bad.get_json()["error"]["fields"]
    for rules, field in (
        ({"default": {"voting_roles": 5}}, "rules.default.voting_roles"),
        ({"default": {"voting_roles": ["resident"], "may_override_to": "unanimous"}}, "rules.default.may_override_to"),
        (
            {"default": {"voting_roles": ["resident"]}, "abstention_blocks_unanimity": "no"},
            "rules.abstention_blocks_unanimity",
        ),
    ):
        document = {"kind": "rules_of_procedure", "title": "R", "body": "B", "rules": rules}
        wrong = client.post(f"/{meeting['id']}/motions", json={"motion": "x", "document": document}, headers=staff)
        assert wrong.status_code == 422 and list(wrong.get_json()["error"]["fields"]) == [field], wrong.get_json()
    m = motion(
        client,
        staff,
        meeting,
        motion="Adopt the rules of procedure",
        method="show_of_hands",
        document={"kind": "rules_of_procedure", "title": "议事规则 v1", "body": "Article 1 ...", "rules": new_rules},
    )
    client.put(
        f"/{meeting['id']}/motions/{m['id']}/tally",
        json={"votes_for": 4, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    assert client.post(f"/{meeting['id']}/motions/{m['id']}/record", headers=staff).get_json()["outcome"] == "adopted"
    c = motion(
        client,
        staff,
        meeting,
        motion="Adopt the convention",
        method="show_of_hands",
        document={"kind": "convention", "title": "居民公约", "body": "Keep the courtyard clean"},
    )
    client.put(
        f"/{meeting['id']}/motions/{c['id']}/tally",
        json={"votes_for": 3, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    client.post(f"/{meeting['id']}/motions/{c['id']}/record", headers=staff)

    in_force = client.get("/rules", query_string={"community_id": world.community_id}, headers=resident).get_json()
    assert in_force["version"] == 1 and in_force["rules"]["abstention_blocks_unanimity"] is False
    # The next motion at this round table counts under the adopted rules: simple majority.
    nxt = motion(client, staff, meeting, method="show_of_hands")
    assert nxt["threshold"] == "simple_majority"
    roll_call = motion(client, staff, meeting, motion="Plant trees")
    votes = f"/{meeting['id']}/motions/{roll_call['id']}/votes"
    assert client.post(votes, json={"choice": "for"}, headers=people["v1"][1]).status_code == 409  # party member
    assert client.post(votes, json={"choice": "for"}, headers=people["v0"][1]).status_code == 201
    assert client.delete(f"/{meeting['id']}/motions/{roll_call['id']}", headers=staff).status_code == 204
    client.put(
        f"/{meeting['id']}/motions/{nxt['id']}/tally",
        json={"votes_for": 2, "votes_against": 1, "abstentions": 0},  # three voting members present now
        headers=staff,
    )
    assert client.post(f"/{meeting['id']}/motions/{nxt['id']}/record", headers=staff).get_json()["outcome"] == "adopted"

    second = motion(
        client,
        staff,
        meeting,
        motion="Amend the convention",
        method="show_of_hands",
        document={
            "kind": "convention",
            "title": "居民公约 (2)",
            "body": "Keep the courtyard clean; no parking on lawns",
        },
    )
    client.put(
        f"/{meeting['id']}/motions/{second['id']}/tally",
        json={"votes_for": 3, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    client.post(f"/{meeting['id']}/motions/{second['id']}/record", headers=staff)
    docs = client.get(
        "/documents", query_string={"community_id": world.community_id, "kind": "convention"}, headers=resident
    ).get_json()
    assert docs["current"]["version"] == 2 and [d["version"] for d in docs["history"]] == [2, 1]
    assert docs["current"]["decision_id"] == second["id"]
    outsider = world.headers("resident", community_id=world.other_community_id)
    assert (
        client.get(
            "/documents", query_string={"community_id": world.community_id, "kind": "convention"}, headers=outsider
        ).status_code
        == 403
    )
    assert (
        client.get(
            "/documents", query_string={"community_id": world.community_id, "kind": "poem"}, headers=resident
        ).status_code
        == 422
    )


def test_action_items_progress_completion_and_overdue(client, world, staff, running, clock, outbox_events):
    meeting, item, _ = running()
    org = str(uuid.uuid4())
    m = motion(
        client,
        staff,
        meeting,
        agenda_item_id=item["id"],
        method="show_of_hands",
        action_items=[
            {
                "title": "Re-roof",
                "owner_body": "property_company",
                "owner_organisation_id": org,
                "due_date": "2026-12-01",
            },
            {"title": "Inspect", "owner_body": "bureau", "due_date": "2030-01-01"},
        ],
    )
    client.put(
        f"/{meeting['id']}/motions/{m['id']}/tally",
        json={"votes_for": 4, "votes_against": 0, "abstentions": 0},
        headers=staff,
    )
    actions = client.post(f"/{meeting['id']}/motions/{m['id']}/record", headers=staff).get_json()["action_items"]
    reroof = actions[0]["id"]
    manager = world.headers("property_manager", organisation_id=org)
    stranger = world.headers("agency", organisation_id=str(uuid.uuid4()))
    assert client.get(f"/action-items/{reroof}", headers=stranger).status_code == 404
    assert client.patch(f"/action-items/{reroof}", json={"due_date": "2027-01-01"}, headers=manager).status_code == 403
    assert (
        client.patch(
            f"/action-items/{reroof}", json={"status": "in_progress", "note": "scaffolding up"}, headers=manager
        ).status_code
        == 200
    )
    assert client.patch(f"/action-items/{reroof}", json={"status": "finished"}, headers=manager).status_code == 422

    clock.offset = timedelta(days=3650)  # ten years on, both are overdue
    overdue = client.get(
        "/action-items", query_string={"community_id": world.community_id, "overdue": "true"}, headers=staff
    )
    assert sorted(a["title"] for a in overdue.get_json()) == ["Inspect", "Re-roof"]
    done = client.patch(f"/action-items/{reroof}", json={"status": "done", "note": "roof replaced"}, headers=manager)
    assert done.status_code == 200 and done.get_json()["completed_at"]
    [completed] = outbox_events("meetings.action_item.completed", world.community_id)
    assert completed["data"]["status"] == "done" and completed["data"]["issue_id"] == item["issue_id"]
    overdue = client.get(
        "/action-items", query_string={"community_id": world.community_id, "overdue": "true"}, headers=staff
    )
    assert [a["title"] for a in overdue.get_json()] == ["Inspect"]
    assert client.patch(f"/action-items/{reroof}", json={"status": "cancelled"}, headers=staff).status_code == 409
