"""View models, forms, coordinates and photos: plain Python, no server."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from linli_web import geo
from linli_web.photos import PhotoError, to_jpeg
from linli_web.viewmodels import events, home, inbox, issues, report, services
from linli_web.viewmodels.forms import Form
from linli_web.viewmodels.signup import group_communities
from PIL import Image


@pytest.fixture(autouse=True)
def babel_context():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context(), force_locale("en"):
        yield


def test_report_steps_check_each_answer_and_name_the_field():
    draft = report.ReportDraft()
    form = report.take_category(draft, {"category": "nonsense"}, ["safety_hazard"])
    assert list(form.errors) == ["category"]
    assert report.take_category(draft, {"category": "safety_hazard"}, ["safety_hazard"]).ok

    form = report.take_place(draft, {"compound_id": "elsewhere"}, ["c1"])
    assert list(form.errors) == ["address"]  # somewhere else needs words or a point
    form = report.take_place(draft, {"compound_id": "c1", "latitude": "91", "longitude": "106"}, ["c1"])
    assert "compound_id" in form.errors and draft.latitude is None
    form = report.take_place(draft, {"compound_id": "c1", "latitude": "38.1021", "longitude": "106.3395"}, ["c1"])
    assert form.ok and (draft.latitude, draft.longitude) == (38.1021, 106.3395)

    form = report.take_details(draft, {"title": "ab", "description": "", "urgency": "soon"})
    assert list(form.errors) == ["title", "description", "urgency"]
    form = report.take_details(
        draft,
        {"title": "Cultural wall is unsafe", "description": "Tiles fall", "urgency": "urgent", "anonymous": "yes"},
    )
    assert form.ok and draft.anonymous
    body = draft.api_body("community-1")
    assert body == {
        "community_id": "community-1",
        "title": "Cultural wall is unsafe",
        "description": "Tiles fall",
        "category": "safety_hazard",
        "urgency": "urgent",
        "anonymous": True,
        "channel": "app",
        "compound_id": "c1",
        "latitude": 38.1021,
        "longitude": 106.3395,
    }


def test_report_draft_survives_the_session_and_says_what_is_missing():
    draft = report.ReportDraft(category="parking")
    assert draft.first_missing() == "place"
    again = report.ReportDraft.load({**draft.dump(), "unknown_key": 1})
    assert again == draft
    assert report.next_step("place", changing=False) == "details"
    assert report.next_step("place", changing=True) == "check"


def test_similar_issues_offer_open_ones_best_first():
    found = [
        {"score": 0.4, "issue": {"id": "a", "status": "accepted"}},
        {"score": 0.9, "issue": {"id": "b", "status": "closed"}},
        {"score": 0.7, "issue": {"id": "c", "status": "reported"}},
    ]
    assert [i["id"] for i in report.similar_choices(found)] == ["c", "a"]


def test_issue_detail_tells_the_story_in_words_and_offers_what_the_reporter_may_do():
    updates = [
        {"kind": "report", "created_at": "2026-12-01T01:00:00+00:00", "data": {}},
        {"kind": "status", "created_at": "2026-12-01T02:00:00+00:00", "data": {"from": "reported", "to": "accepted"}},
        {"kind": "note", "internal": True, "body": "secret", "created_at": "2026-12-01T02:30:00", "data": {}},
        {
            "kind": "decision",
            "body": "Dismantle the walls",
            "created_at": "2026-12-02T02:00:00+00:00",
            "data": {"outcome": "adopted", "votes_for": 5, "votes_against": 0, "meeting_id": "m1"},
        },
    ]
    issue = {"id": "i1", "status": "resolved", "reporter_id": "me", "supported_by_me": False}
    detail = issues.build_detail(issue, user_id="me", updates=updates, meetings=[], actions=[], photos=[], follows=[])
    texts = [t.text for t in detail.timeline]
    assert texts == ["Reported", "Now: Accepted", "Decision: Adopted"]
    assert "secret" not in str(detail.timeline)
    assert detail.decisions[0]["meeting_id"] == "m1"
    assert detail.can_rate and detail.can_reopen and not detail.can_support
    assert [reached for _name, reached in detail.steps] == [True, True, True, True, True]
    neighbour = issues.build_detail(
        {**issue, "status": "accepted"}, user_id="other", updates=[], meetings=[], actions=[], photos=[],
        follows=[{"target_type": "issue", "target_id": "i1"}],
    )  # fmt: skip
    assert neighbour.can_support and neighbour.following and not neighbour.can_rate


def test_my_issues_are_split_open_done_and_followed():
    mine = [{"id": "1", "status": "accepted"}, {"id": "2", "status": "closed"}]
    followed = [{"id": "2", "status": "closed"}, {"id": "3", "status": "deliberating"}]
    lists = issues.split_lists(mine, followed)
    assert [[i["id"] for i in lists[k]] for k in ("open", "done", "followed")] == [["1"], ["2"], ["3"]]


def test_home_keeps_what_is_coming_and_counts_what_became_of_decisions():
    now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    items = [
        {"id": "past", "status": "scheduled", "starts_at": "2026-12-01T01:00Z", "ends_at": "2026-12-01T02:00Z"},
        {"id": "later", "status": "scheduled", "starts_at": "2026-12-09T01:00Z"},
        {"id": "soon", "status": "in_progress", "starts_at": "2026-12-03T08:00Z", "ends_at": "2026-12-03T11:00Z"},
        {"id": "off", "status": "cancelled", "starts_at": "2026-12-05T01:00Z"},
    ]
    assert [i["id"] for i in home.upcoming(items, now)] == ["soon", "later"]
    motions = [
        {"status": "recorded", "motion": "Fix it", "outcome": "adopted", "issue_id": "i1",
         "action_items": [{"status": "done"}, {"status": "open"}, {"status": "cancelled"}]},
        {"status": "open", "motion": "Still voting"},
    ]  # fmt: skip
    [decision] = home.decisions_of({"id": "m1", "title": "Round-table", "starts_at": None}, motions)
    assert (decision.actions_done, decision.actions_total, decision.followed_through) == (1, 2, False)


def test_activity_sign_up_is_offered_only_while_it_can_be_taken():
    now = datetime(2026, 12, 3, 9, tzinfo=UTC)
    activity = {"id": "a1", "status": "published", "ends_at": "2026-12-03T12:00:00+00:00", "max_party_size": 2}
    assert events.can_register_activity(activity, None, now)
    assert not events.can_register_activity({**activity, "registration_closes_at": "2026-12-03T08:00:00Z"}, None, now)
    mine = events.my_registration(
        [{"activity_id": "a1", "status": "cancelled"}, {"activity_id": "a1", "status": "waitlisted"}], "a1"
    )
    assert mine["status"] == "waitlisted" and not events.can_register_activity(activity, mine, now)
    assert events.party_sizes(activity) == [1, 2]


def test_a_booking_for_a_relative_is_in_local_time_and_names_the_relative():
    data = {"day": "2026-12-24", "time": "09:30", "address": "Xihu Residences 3-501", "for_whom": "relative",
            "relative": "Grandpa Wang", "note": "Knock loudly"}  # fmt: skip
    form, body = services.take_booking(data, "Asia/Shanghai", date(2026, 12, 3))
    assert form.ok
    assert body["slot_start"] == "2026-12-24T01:30:00+00:00" and body["slot_end"] == "2026-12-24T02:30:00+00:00"
    assert body["note"].startswith("For my relative: Grandpa Wang.") and body["door_to_door"]
    form, _body = services.take_booking(
        {**data, "relative": "", "day": "2026-11-30"}, "Asia/Shanghai", date(2026, 12, 3)
    )
    assert set(form.errors) == {"day", "relative"}


def test_help_and_talent_forms():
    form, body = services.take_help({"helped_on": "2026-12-02", "hours": "2,5"}, date(2026, 12, 3))
    assert form.ok and body["hours"] == 2.5
    form, _ = services.take_help({"helped_on": "2026-12-09", "hours": "30"}, date(2026, 12, 3))
    assert set(form.errors) == {"helped_on", "hours"}

    class Multi(dict):
        def getlist(self, name):
            return self.get(name + "[]", [])

    form, body = services.take_talent(Multi({"skills[]": ["haircut", "hacking"]}), "Li Yumei")
    assert form.ok and body["skills"] == ["haircut"]
    form, _ = services.take_talent(Multi({}), "Li Yumei")
    assert "skills" in form.errors


def test_preferences_keep_mandatory_channels_and_check_quiet_hours():
    prefs = {"items": [
        {"category": "safety", "channel": "sms", "enabled": True, "mandatory": True},
        {"category": "meeting", "channel": "sms", "enabled": True, "mandatory": False},
        {"category": "meeting", "channel": "push", "enabled": True, "mandatory": False},
    ]}  # fmt: skip

    class Multi(dict):
        def getlist(self, name):
            return ["meeting:push"] if name == "on" else []

    form, body = inbox.take_preferences(Multi({"quiet_start": "22:00", "quiet_end": "07:00"}), prefs)
    assert form.ok
    assert [i["enabled"] for i in body["items"]] == [True, False, True]
    assert body["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    form, _ = inbox.take_preferences(Multi({"quiet_start": "25:00", "quiet_end": ""}), prefs)
    assert set(form.errors) == {"quiet_start", "quiet_end"}
    assert [r["category"] for r in inbox.preference_rows(prefs)] == ["safety", "meeting"]


def test_notices_link_to_what_they_are_about():
    def url_for(endpoint, **values):
        return f"{endpoint}:{values}"

    items = inbox.with_links([{"subject_type": "issue", "subject_id": "i1"}, {"subject_type": "broadcast"}], url_for)
    assert items[0]["link"] == "issues.show:{'issue_id': 'i1'}" and items[1]["link"] is None


def test_forms_check_phone_and_code_and_map_api_fields():
    form = Form.of({"phone": "138 1234 5678", "code": "12a456"}, ["phone", "code"])
    assert form.phone() == "13812345678" and form.code() == "12a456"
    assert list(form.errors) == ["code"]
    form = Form.of({"title": "x"}, ["title", "description"])
    form.api_fields({"description": ["Too long."], "unknown": ["?"]})
    assert set(form.errors) == {"description", "title"}


def test_communities_are_grouped_by_street_for_the_sign_up_list():
    grouped = group_communities(
        [{"id": "s2", "name": "Guojiaqiao"}, {"id": "s1", "name": "Chengqu"}],
        [{"id": "c1", "name": "Xihu", "street_id": "s1"}, {"id": "c2", "name": "Nanmen", "street_id": "s2"},
         {"id": "c3", "name": "Shangpinyuan", "street_id": "s1"}],
    )  # fmt: skip
    assert [(g["street"], [c["name"] for c in g["communities"]]) for g in grouped] == [
        ("Chengqu", ["Shangpinyuan", "Xihu"]),
        ("Guojiaqiao", ["Nanmen"]),
    ]


def test_gcj02_offsets_china_and_comes_back_within_a_metre():
    # Tiananmen, WGS-84 -> GCJ-02: the published offset is about +0.0014 lat, +0.0062 lon.
    lat, lon = geo.wgs84_to_gcj02(39.9087, 116.3975)
    assert abs(lat - 39.91010) < 0.0002 and abs(lon - 116.40374) < 0.0002
    back = geo.gcj02_to_wgs84(lat, lon)
    assert abs(back[0] - 39.9087) < 1e-5 and abs(back[1] - 116.3975) < 1e-5
    assert geo.wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12)  # outside China: unchanged


def test_photos_are_made_upright_small_jpeg_and_heic_is_read():
    from pillow_heif import from_pillow

    heic = io.BytesIO()
    from_pillow(Image.new("RGB", (64, 48), "orange")).save(heic, format="HEIF", quality=50)
    image = Image.open(io.BytesIO(to_jpeg(heic.getvalue())))
    assert image.format == "JPEG" and image.size == (64, 48)
    big = io.BytesIO()
    Image.new("RGB", (2400, 1800), "orange").save(big, "JPEG")
    assert Image.open(io.BytesIO(to_jpeg(big.getvalue()))).size == (1600, 1200)
    png = io.BytesIO()
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(png, "PNG")
    assert Image.open(io.BytesIO(to_jpeg(png.getvalue()))).mode == "RGB"
    with pytest.raises(PhotoError):
        to_jpeg(b"%PDF-1.4 not an image")
