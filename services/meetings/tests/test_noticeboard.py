"""The community's noticeboard (公示): what was decided, with its votes, what became of it, what comes
next and the documents in force; residents see what public meetings did, and nothing private."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration
on_both = pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)


def hold(client, staff, meeting_body, *, motions, public=True, start=None, community_id=None):
    """A bench meeting held (its start in the past), each motion a show of hands (for, against)
    with its extra fields; returns (meeting, [recorded decisions])."""
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    body = meeting_body(
        meeting_type="bench",
        public=public,
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
        agenda=[{"title": "Cracked wall", "issue_id": str(uuid.uuid4())}],
        participants=[{"role": "resident", "name": f"Neighbour {n}"} for n in range(3)],
        **({"community_id": community_id} if community_id else {}),
    )
    meeting = client.post("/", json=body, headers=staff).get_json()
    client.post(f"/{meeting['id']}/start", headers=staff)
    for p in client.get(f"/{meeting['id']}/participants", headers=staff).get_json():
        client.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff)
    recorded = []
    for (votes_for, votes_against), extra in motions:
        motion = client.post(
            f"/{meeting['id']}/motions",
            json={"method": "show_of_hands", "agenda_item_id": meeting["agenda"][0]["id"]} | extra,
            headers=staff,
        ).get_json()
        client.put(
            f"/{meeting['id']}/motions/{motion['id']}/tally",
            json={"votes_for": votes_for, "votes_against": votes_against, "abstentions": 3 - votes_for - votes_against},
            headers=staff,
        )
        response = client.post(f"/{meeting['id']}/motions/{motion['id']}/record", headers=staff)
        assert response.status_code == 200, response.get_json()
        recorded.append(response.get_json())
    assert client.post(f"/{meeting['id']}/conclude", json={}, headers=staff).status_code == 200
    return meeting, recorded


@on_both
def test_the_noticeboard_shows_decisions_follow_up_meetings_and_conventions(
    client, world, staff, meeting_body, documented, register_organisation
):
    party_branch = register_organisation()
    public_meeting, (adopted, rejected, convention) = hold(
        client,
        staff,
        meeting_body,
        motions=[
            (
                (3, 0),
                {
                    "motion": "Take the wall down and rebuild it",
                    "issue_effect": "resolution_plan",
                    "resolution_plan": "Rebuild by spring",
                    "action_items": [
                        {"title": "Take it down", "owner_body": "property_company", "due_date": "2020-01-10"},
                        {
                            "title": "Organise the volunteers",
                            "owner_body": "party_organisation",
                            "owner_organisation_id": party_branch,
                            "owner_organisation_name": "Building 7 party branch",
                            "due_date": "2090-02-01",
                        },
                    ],
                },
            ),
            ((1, 2), {"motion": "Paint it pink"}),
            (
                (3, 0),
                {
                    "motion": "Adopt the residents' convention",
                    "document": {"kind": "convention", "title": "Residents' convention", "body": "Be kind."},
                },
            ),
        ],
    )
    private_meeting, (secret,) = hold(
        client,
        staff,
        meeting_body,
        public=False,
        motions=[
            ((3, 0), {"motion": "A private matter", "action_items": [{"title": "Quiet", "owner_body": "community"}]})
        ],
    )
    hold(
        client,
        world.headers("community_staff", community_id=world.other_community_id),
        meeting_body,
        community_id=world.other_community_id,
        motions=[((3, 0), {"motion": "Elsewhere"})],
    )
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    upcoming = client.post(
        "/",
        json=meeting_body(starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat()),
        headers=staff,
    ).get_json()
    hidden = client.post(
        "/",
        json=meeting_body(public=False, starts_at=soon.isoformat(), ends_at=(soon + timedelta(hours=1)).isoformat()),
        headers=staff,
    ).get_json()
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    client.post(
        "/",
        json=meeting_body(starts_at=past.isoformat(), ends_at=(past + timedelta(hours=1)).isoformat()),
        headers=staff,
    )  # scheduled but long over: not to come
    down, volunteers = (i["id"] for i in adopted["action_items"])
    client.patch(f"/action-items/{volunteers}", json={"progress": 30, "note": "twelve signed up"}, headers=staff)

    resident = world.headers("resident")
    response = client.get("/noticeboard", query_string={"community_id": world.community_id}, headers=resident)
    assert response.status_code == 200, response.get_json()
    documented(response, "/noticeboard")
    board = response.get_json()
    assert board["community_id"] == world.community_id and board["public_only"] is True
    assert [d["id"] for d in board["decisions"]] == [convention["id"], rejected["id"], adopted["id"]]
    wall = board["decisions"][2]
    assert (wall["outcome"], wall["votes_for"], wall["votes_against"], wall["abstentions"]) == ("adopted", 3, 0, 0)
    assert wall["meeting_title"] == public_meeting["title"] and wall["meeting_type"] == "bench"
    assert wall["issue_effect"] == "resolution_plan" and wall["resolution_plan"] == "Rebuild by spring"
    assert "votes" not in wall  # who voted how is not posted
    assert wall["follow_up"] == {"action_items": 2, "done": 0, "complete": False}
    shown = {i["id"]: i for i in wall["action_items"]}
    assert shown[down]["overdue"] is True and shown[down]["due_date"] == "2020-01-10"
    assert shown[volunteers]["owner_organisation_name"] == "Building 7 party branch"
    assert (shown[volunteers]["status"], shown[volunteers]["progress"], shown[volunteers]["overdue"]) == (
        "in_progress",
        30,
        False,
    )
    pink = board["decisions"][1]
    assert (pink["outcome"], pink["issue_effect"], pink["action_items"]) == ("rejected", "none", [])
    # Open action items, soonest due first; the private meeting's are not there.
    assert [i["id"] for i in board["open_action_items"]] == [down, volunteers]
    assert [m["id"] for m in board["upcoming_meetings"]] == [upcoming["id"]]
    assert board["convention"]["title"] == "Residents' convention" and board["convention"]["version"] == 1
    assert board["rules_of_procedure"] is None
    assert secret["id"] not in str(board) and private_meeting["id"] not in str(board) and hidden["id"] not in str(board)

    # Without a sign-in: the same public board (the gateway passes an anonymous read on).
    anonymous = client.get("/noticeboard", query_string={"community_id": world.community_id})
    assert anonymous.status_code == 200, anonymous.get_json()
    public = anonymous.get_json()
    assert public["public_only"] is True and public["decisions"] == board["decisions"]
    assert public["open_action_items"] == board["open_action_items"]
    # The meetings to come are for the community (their agendas name its issues); visitors have the .ics.
    assert public["upcoming_meetings"] == [] and board["upcoming_meetings"]
    # A resident of the next community, signed in, reads exactly what a visitor reads.
    neighbour = world.headers("resident", community_id=world.other_community_id)
    from_next_door = client.get("/noticeboard", query_string={"community_id": world.community_id}, headers=neighbour)
    assert from_next_door.status_code == 200
    assert {k: v for k, v in from_next_door.get_json().items() if k != "generated_at"} == {
        k: v for k, v in public.items() if k != "generated_at"
    }

    # Staff see the public board too, and the private part when they ask for it.
    assert (
        client.get("/noticeboard", query_string={"community_id": world.community_id}, headers=staff).get_json()[
            "decisions"
        ]
        == board["decisions"]
    )
    full = client.get(
        "/noticeboard", query_string={"community_id": world.community_id, "include_private": "true"}, headers=staff
    )
    documented(full, "/noticeboard")
    full = full.get_json()
    assert full["public_only"] is False and full["decisions"][0]["id"] == secret["id"]
    assert {m["id"] for m in full["upcoming_meetings"]} == {upcoming["id"], hidden["id"]}
    assert len(full["open_action_items"]) == 3
    official = world.headers("street_official")
    assert (
        client.get(
            "/noticeboard",
            query_string={"community_id": world.community_id, "include_private": "true"},
            headers=official,
        ).status_code
        == 200
    )
    limited = client.get(
        "/noticeboard", query_string={"community_id": world.community_id, "limit": 1}, headers=resident
    )
    assert [d["id"] for d in limited.get_json()["decisions"]] == [convention["id"]]


@on_both
def test_the_noticeboard_is_for_the_community_and_its_public_part_for_anyone(client, world, staff):
    query = {"community_id": world.community_id}
    resident = world.headers("resident")
    private = client.get("/noticeboard", query_string=query | {"include_private": "true"}, headers=resident)
    assert private.status_code == 403
    # Without a sign-in: the public board of a community that exists, never the private part.
    assert client.get("/noticeboard", query_string=query | {"include_private": "true"}).status_code == 401
    assert client.get("/noticeboard", query_string={"community_id": str(uuid.uuid4())}).status_code == 404
    visitor = client.get("/noticeboard", query_string=query)
    assert visitor.status_code == 200
    # Signed in from elsewhere: the same public board a visitor reads (signing in never shows less),
    # and still never the private part.
    for outsider in (
        world.headers("resident", community_id=world.other_community_id),
        world.headers("community_staff", community_id=world.other_community_id),
        world.headers("street_official", street_id=world.other_street_id),
        world.headers("agency", organisation_id=str(uuid.uuid4())),
    ):
        board = client.get("/noticeboard", query_string=query, headers=outsider)
        assert board.status_code == 200
        assert {k: v for k, v in board.get_json().items() if k != "generated_at"} == {
            k: v for k, v in visitor.get_json().items() if k != "generated_at"
        }
        private_asked = client.get("/noticeboard", query_string=query | {"include_private": "true"}, headers=outsider)
        assert private_asked.status_code == 403
        unknown = client.get("/noticeboard", query_string={"community_id": str(uuid.uuid4())}, headers=outsider)
        assert unknown.status_code == 404
    for bad, field in (
        ({}, "community_id"),
        ({"community_id": "wall"}, "community_id"),
        (query | {"limit": 0}, "limit"),
        (query | {"limit": 101}, "limit"),
        (query | {"include_private": "perhaps"}, "include_private"),
    ):
        response = client.get("/noticeboard", query_string=bad, headers=staff)
        assert response.status_code == 422 and list(response.get_json()["error"]["fields"]) == [field], bad
    empty = client.get("/noticeboard", query_string=query, headers=resident).get_json()
    assert (empty["decisions"], empty["open_action_items"], empty["upcoming_meetings"], empty["convention"]) == (
        [],
        [],
        [],
        None,
    )
