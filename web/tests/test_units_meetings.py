"""The staff's meeting pages' view models: plain Python, no server."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from linli_web.viewmodels import meetings_desk as vm
from werkzeug.datastructures import MultiDict

COMMUNITY = "22222222-2222-4222-8222-222222222222"
WALL = "55555555-5555-4555-8555-555555555555"
ROOF = "66666666-6666-4666-8666-666666666666"
ITEM = "cdcdcdcd-cdcd-4dcd-8dcd-cdcdcdcdcdcd"
CANDIDATES = [{"issue_id": WALL, "title": "Cultural wall is unsafe"}, {"issue_id": ROOF, "title": "Roof leaks"}]


@pytest.fixture(autouse=True)
def babel_context():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context(), force_locale("en"):
        yield


def schedule(**changes: str) -> MultiDict:
    data = {"community_id": COMMUNITY, "meeting_type": "round_table", "title": "Wall", "day": "2026-12-10",
            "start": "19:30", "end": "21:00", "place": "Hall", **changes}  # fmt: skip
    return MultiDict(data)


def test_a_meeting_is_sent_at_the_citys_wall_clock_with_its_offset():
    form, body = vm.take_schedule(schedule(), [COMMUNITY], "Asia/Shanghai")
    assert form.ok
    assert body["starts_at"] == "2026-12-10T19:30:00+08:00" and body["ends_at"] == "2026-12-10T21:00:00+08:00"
    assert body["public"] is True and body["place"] == "Hall"
    form, body = vm.take_schedule(schedule(private="yes", place=""), [COMMUNITY], "Europe/London")
    assert body["starts_at"] == "2026-12-10T19:30:00+00:00" and body["public"] is False and body["place"] is None


def test_a_meeting_schedule_names_each_bad_field_in_order():
    form, _body = vm.take_schedule(
        schedule(community_id="elsewhere", meeting_type="party", title="", day="10/12/2026", start="7pm", end=""),
        [COMMUNITY],
        "Asia/Shanghai",
    )
    assert list(form.errors) == ["community_id", "meeting_type", "title", "day", "start", "end"]
    form, _body = vm.take_schedule(schedule(start="21:00", end="20:00"), [COMMUNITY], "Asia/Shanghai")
    assert list(form.errors) == ["end"]
    form, _body = vm.take_schedule(schedule(start="24:00"), [COMMUNITY], "Asia/Shanghai")
    assert form.errors == {"start": "Enter a time like 14:30"}


def test_the_chosen_issues_become_agenda_items_and_unknown_ones_are_left_out():
    data = schedule()
    data.setlist("issue_id", [ROOF, "not-a-candidate", WALL])
    form, _body = vm.take_schedule(data, [COMMUNITY], "Asia/Shanghai")
    chosen = form.values["issue_id"].split(",")
    assert vm.agenda_from(chosen, CANDIDATES) == [
        {"title": "Roof leaks", "issue_id": ROOF},
        {"title": "Cultural wall is unsafe", "issue_id": WALL},
    ]


def test_an_agenda_item_is_a_candidate_issue_or_a_subject_in_words():
    form, body = vm.take_agenda({"issue_id": WALL, "title": "", "duration": "30"}, CANDIDATES)
    assert form.ok and body == {"title": "Cultural wall is unsafe", "issue_id": WALL, "duration_minutes": 30}
    form, body = vm.take_agenda({"issue_id": "", "title": "Parking"}, CANDIDATES)
    assert form.ok and body == {"title": "Parking"}
    form, _body = vm.take_agenda({"issue_id": "", "title": ""}, CANDIDATES)
    assert list(form.errors) == ["title"]
    form, _body = vm.take_agenda({"issue_id": ITEM, "title": "x", "duration": "0"}, CANDIDATES)
    assert list(form.errors) == ["issue_id", "duration"]


def test_an_invitation_is_a_person_of_the_community_or_a_name_in_a_role():
    people = {WALL: "Yang Jing"}
    form, body = vm.take_invitation({"role": "resident_representative", "user_id": WALL}, people)
    assert form.ok and body == {"role": "resident_representative", "user_id": WALL, "name": "Yang Jing"}
    form, body = vm.take_invitation({"role": "bureau", "name": "Housing Bureau"}, people)
    assert form.ok and body == {"role": "bureau", "name": "Housing Bureau"}
    form, _body = vm.take_invitation({"role": "mayor", "user_id": ROOF}, people)
    assert list(form.errors) == ["role", "user_id"]


def motion(**changes: str) -> dict[str, str]:
    return {"motion": "Take the wall down", "agenda_item_id": ITEM, "method": "show_of_hands", "threshold": "",
            "issue_effect": "resolution_plan", "resolution_plan": "The company does it", **changes}  # fmt: skip


def test_a_motion_with_a_plan_and_a_task():
    form, body = vm.take_motion(
        motion(action_title="Take it down", owner_body="property_company", due_date="2026-12-31"), [ITEM]
    )
    assert form.ok
    assert body == {
        "motion": "Take the wall down",
        "method": "show_of_hands",
        "issue_effect": "resolution_plan",
        "agenda_item_id": ITEM,
        "threshold": None,
        "resolution_plan": "The company does it",
        "action_items": [{"title": "Take it down", "owner_body": "property_company", "due_date": "2026-12-31"}],
    }


def test_a_motion_changing_an_issue_needs_its_agenda_item_and_a_plan_its_words():
    form, _body = vm.take_motion(motion(agenda_item_id="", resolution_plan=""), [ITEM])
    assert list(form.errors) == ["agenda_item_id", "resolution_plan"]
    form, _body = vm.take_motion(motion(method="secret", threshold="most", owner_body="mayor"), [ITEM])
    assert list(form.errors) == ["method", "threshold", "action_title", "owner_body"]
    form, body = vm.take_motion(motion(issue_effect="none", agenda_item_id="", resolution_plan=""), [ITEM])
    assert form.ok and body["action_items"] == [] and body["agenda_item_id"] is None


def test_counts_and_progress_are_whole_numbers_in_range():
    form, body = vm.take_tally({"votes_for": "5", "votes_against": "0", "abstentions": "1"})
    assert form.ok and body == {"votes_for": 5, "votes_against": 0, "abstentions": 1}
    form, _body = vm.take_tally({"votes_for": "-1", "votes_against": "two", "abstentions": ""})
    assert list(form.errors) == ["votes_for", "votes_against", "abstentions"]
    assert vm.take_progress({"progress": "100", "note": "Done"})[1] == {"progress": 100, "note": "Done"}
    assert list(vm.take_progress({"progress": "101"})[0].errors) == ["progress"]
    assert vm.take_minutes({"minutes": "Agreed", "attendees": "7"})[1] == {"minutes": "Agreed", "attendees_count": 7}


def test_the_meeting_page_lists_who_is_present_first_and_leaves_out_who_declined():
    participants = [
        {"id": "1", "user_id": "u1", "name": None, "role": "property_company", "checked_in_at": None},
        {"id": "2", "user_id": "u2", "name": None, "role": "resident_representative",
         "checked_in_at": "2026-12-10T11:00:00+00:00", "check_in_method": "code"},
        {"id": "3", "user_id": "u3", "name": "Lao Zhou", "role": "resident", "response": "declined"},
        {"id": "4", "user_id": None, "name": "Housing Bureau", "role": "bureau"},
    ]  # fmt: skip
    motions = [{"id": "m1", "status": "open"}, {"id": "m2", "status": "recorded"}]
    shown = vm.desk_meeting({"status": "in_progress", "agenda": [{"id": ITEM, "position": 1, "title": "Wall"}]},
                            participants, motions, {"u1": "Zhao Lei", "u2": "Yang Jing"}, "042917")  # fmt: skip
    assert [(p.name, p.present, p.how) for p in shown.participants] == [
        ("Yang Jing", True, "code"),
        ("Zhao Lei", False, None),
        ("Housing Bureau", False, None),
    ]
    assert shown.running and not shown.planning and shown.present == 1
    assert [m["id"] for m in shown.open_motions] == ["m1"] and [m["id"] for m in shown.decisions] == ["m2"]
    assert shown.agenda_options == [(ITEM, "1. Wall")]
    assert (
        vm.checkin_link("https://linli.example/", "m-1", "042917") == "https://linli.example/m/m-1/checkin?code=042917"
    )


def test_a_resident_is_offered_the_open_roll_calls_with_their_own_vote():
    from linli_web.viewmodels.events import roll_calls

    motions = [
        {"id": "a", "status": "open", "method": "roll_call", "votes": [{"voter_id": "me", "choice": "against"}]},
        {"id": "b", "status": "open", "method": "roll_call", "votes": []},
        {"id": "c", "status": "open", "method": "show_of_hands", "votes": []},
        {"id": "d", "status": "recorded", "method": "roll_call", "votes": []},
    ]
    assert [(b["id"], b["mine"]) for b in roll_calls(motions, "me")] == [("a", "against"), ("b", None)]
