"""The staff desk's and the overview's view models: plain Python, no server."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from linli_web.viewmodels import desk, overview
from werkzeug.datastructures import MultiDict

ORG = "77777777-7777-4777-8777-777777777777"
BUREAU = "12121212-1212-4121-8121-121212121212"


@pytest.fixture(autouse=True)
def babel_context():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context(), force_locale("en"):
        yield


def people():
    """The directory's register, as GET /api/v1/directory/organisations answers it."""
    return [
        {"id": ORG, "kind": "property_company", "name": "Shangpin Property Services", "active": True},
        {"id": ORG, "kind": "property_company", "name": "Shangpin Property Services", "active": True},
        {"id": BUREAU, "kind": "agency", "name": "Housing Bureau", "active": True},
        {"id": "p-1", "kind": "party_branch", "name": "Party branch", "active": True},
        {"id": "x-1", "kind": "bureau", "name": "Closed bureau", "active": False},
    ]


def test_organisations_are_named_once_with_the_body_they_are():
    orgs = desk.organisations(people())
    assert [(o.id, o.name, o.body) for o in orgs] == [
        (BUREAU, "Housing Bureau", "bureau"),
        (ORG, "Shangpin Property Services", "property_company"),
    ]
    assert ("org:" + ORG, "Shangpin Property Services") in desk.assignee_options(orgs)


def test_queue_filters_become_the_apis_query_and_bad_ones_are_named():
    filters, form = desk.take_queue_filters(
        {"view": "escalated", "community_id": "c1", "assignee": f"org:{ORG}", "q": "wall", "page": "3"},
        communities=["c1"],
        organisation_ids=[ORG],
        categories=["parking"],
    )
    assert form.ok
    assert filters.params() == {
        "tier": "street,city",
        "status": "reported,accepted,deliberating,resolving",
        "community_id": "c1",
        "assignee_id": ORG,
        "q": "wall",
        "sort": "-created_at",
        "page": 3,
        "page_size": desk.PAGE_SIZE,
    }
    # A link to another view keeps the filters and starts at page 1.
    assert filters.link(view="new") == {"view": "new", "community_id": "c1", "assignee": f"org:{ORG}", "q": "wall"}

    filters, form = desk.take_queue_filters(
        {"view": "mine", "community_id": "elsewhere", "assignee": "type:mafia", "page": "0", "q": "x" * 201},
        communities=["c1"],
        organisation_ids=[],
        categories=[],
    )
    assert list(form.errors) == ["view", "community_id", "assignee", "q", "page"]
    assert filters.params() == {"status": "reported", "sort": "-created_at", "page": 1, "page_size": desk.PAGE_SIZE}
    # An organisation the list does not name is still a fair filter; a body by type too.
    filters, form = desk.take_queue_filters(
        {"assignee": f"org:{BUREAU}"}, communities=[], organisation_ids=[], categories=[]
    )
    assert form.ok and filters.params()["assignee_id"] == BUREAU
    filters, _form = desk.take_queue_filters(
        {"view": "overdue", "assignee": "type:bureau"}, communities=[], organisation_ids=[], categories=[]
    )
    assert filters.params()["overdue"] == "true" and filters.params()["assignee_type"] == "bureau"


def test_the_pager_counts_pages():
    assert (desk.Pager(1, 0).pages, desk.Pager(1, 0).next) == (1, None)
    pager = desk.Pager(2, 51)
    assert (pager.pages, pager.previous, pager.next) == (3, 1, 3)


def staff(role="community_staff"):
    return {"id": "me", "role": role, "community_ids": ["c1"]}


def test_what_staff_may_do_follows_the_status_and_the_tier():
    new = desk.StaffIssue(issue={"status": "reported", "tier": "community"}, user=staff())
    assert new.can_triage and new.can_assign and new.can_escalate and new.next_tier == "street"
    assert new.progress_choices == [] and new.passed_up_note is None
    up = desk.StaffIssue(issue={"status": "accepted", "tier": "street"}, user=staff())
    assert not (up.can_triage or up.can_assign or up.can_escalate) and up.progress_choices == []
    assert "Street office" in up.passed_up_note
    official = desk.StaffIssue(issue={"status": "accepted", "tier": "street"}, user=staff("street_official"))
    assert official.can_assign and official.next_tier == "city"
    assert [c for c, _w in official.progress_choices] == ["deliberating", "resolving", "resolved"]
    city = desk.StaffIssue(issue={"status": "resolving", "tier": "city"}, user=staff("city_admin"))
    assert not city.can_escalate and [c for c, _w in city.progress_choices] == ["deliberating", "resolved"]
    done = desk.StaffIssue(issue={"status": "resolved", "tier": "community"}, user=staff())
    assert not (done.can_assign or done.can_escalate or done.can_triage) and done.passed_up_note is None


def test_the_staff_timeline_keeps_internal_notes_names_authors_newest_first():
    entries = desk.staff_timeline(
        [
            {"kind": "report", "author_id": "r", "created_at": "2026-03-01T01:00:00+00:00", "data": {}},
            {"kind": "note", "body": "Called them", "internal": True, "author_id": "me",
             "created_at": "2026-03-01T03:00:00+00:00"},
            {"kind": "assignment", "body": "Within a week", "author_id": "s", "created_at": "2026-03-01T02:00:00+00:00",
             "data": {"assignee_type": "property_company"}},
        ],
        {"r": "Yang Jing", "s": "Li Hua"},
        me="me",
    )  # fmt: skip
    assert [(e.kind, e.internal, e.author) for e in entries] == [
        ("note", True, "you"),
        ("assignment", False, "Li Hua"),
        ("report", False, "Yang Jing"),
    ]
    assert entries[1].detail == "Property company — Within a week"


def test_duplicate_candidates_are_similar_first_never_itself_each_once():
    similar = [{"issue": {"id": "b", "title": "B"}}, {"issue": {"id": "self", "title": "me"}}]
    recent = [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]
    assert [c["id"] for c in desk.duplicate_candidates("self", similar, recent)] == ["b", "a"]


def test_action_forms_check_what_the_api_needs():
    form, body = desk.take_reject({"reject_reason": " "})
    assert list(form.errors) == ["reject_reason"]
    form, body = desk.take_reject({"reject_reason": "Not ours"})
    assert form.ok and body == {"status": "rejected", "reason": "Not ours"}

    form, body = desk.take_duplicate({"duplicate_of": "x"}, ["a"])
    assert list(form.errors) == ["duplicate_of"]
    form, body = desk.take_duplicate({"duplicate_of": "a", "duplicate_reason": "See the first"}, ["a"])
    assert form.ok and body == {"status": "duplicate", "duplicate_of": "a", "reason": "See the first"}

    orgs = desk.organisations(people())
    form, body = desk.take_assignment({"assignee_type": "community"}, orgs)
    assert form.ok and body == {"assignee_type": "community"}
    form, body = desk.take_assignment({"assignee_type": "bureau", "organisation_id": ORG}, orgs)
    assert list(form.errors) == ["organisation_id"]  # a property company is no bureau
    form, body = desk.take_assignment({"assignee_type": "property_company", "organisation_id": "unknown"}, orgs)
    assert list(form.errors) == ["organisation_id"]
    form, body = desk.take_assignment({"assignee_type": "nobody"}, orgs)
    assert list(form.errors) == ["assignee_type"]

    form, body = desk.take_update(
        {"inspection_body": "Roof", "attendees": "Community, 物业；业委会\nBureau"}, "inspection"
    )
    assert form.ok and body == {
        "kind": "inspection",
        "body": "Roof",
        "attendees": ["Community", "物业", "业委会", "Bureau"],
    }
    form, _ = desk.take_update({"inspection_body": "", "attendees": " , "}, "inspection")
    assert list(form.errors) == ["inspection_body", "attendees"]
    form, body = desk.take_update({"reply_body": "On our way"}, "reply")
    assert form.ok and body == {"kind": "reply", "body": "On our way"}
    form, _ = desk.take_update({"note_body": "x" * 4001}, "note")
    assert list(form.errors) == ["note_body"]

    form, body = desk.take_progress({"progress_status": "resolved"}, ["resolving", "resolved"])
    assert list(form.errors) == ["summary"]
    form, body = desk.take_progress({"progress_status": "resolving", "plan": "Fix it"}, ["resolving", "resolved"])
    assert form.ok and body == {"status": "resolving", "plan": "Fix it"}
    form, body = desk.take_escalation({"escalate_reason": "Budget"})
    assert form.ok and body == {"reason": "Budget"}


def test_a_broadcast_needs_a_community_in_scope_a_short_title_and_a_channel():
    form, _ = desk.take_broadcast(MultiDict({"community_id": "c2", "title": "x" * 31, "body": ""}), ["c1"])
    assert list(form.errors) == ["community_id", "title", "body", "channels"]
    form, body = desk.take_broadcast(
        MultiDict([("community_id", "c1"), ("title", "Water off"), ("body", "9-12"), ("channels", "push"),
                   ("channels", "sms"), ("urgent", "yes")]),
        ["c1"],
    )  # fmt: skip
    assert form.ok and body == {"community_id": "c1", "title": "Water off", "body": "9-12", "urgent": True,
                                "channels": ["push", "sms"]}  # fmt: skip
    form, _ = desk.take_broadcast(
        MultiDict({"community_id": "c1", "title": "T", "body": "B", "channels": "fax"}), ["c1"]
    )
    assert list(form.errors) == ["channels"]


DATA = {
    "scope": {"level": "street"},
    "period": {"from": "2025-04-01", "to": "2026-03-31"},
    "totals": {
        "issues": {"raised": 1234, "resolved": 9, "resolution_rate": 0.7512, "average_satisfaction": 4.26,
                   "by_category": {"parking": 2, "safety_hazard": 5}, "by_tier": {"community": 3, "street": 2,
                                                                                   "city": 1}},
        "meetings": {"meetings_held": 3, "meetings_by_type": {"round_table": 2, "bench": 1}},
    },
    "by_community": [
        {"community_id": "c1", "community_name": "Xihu", "issues": {"raised": 4, "resolution_rate": None}}
    ],
    "monthly": [{"month": "2026-03", "issues": {"raised": 4, "resolved": 1}, "meetings": {"meetings_held": 1}}],
    "missing": [{"service": "activities", "reason": "timeout"}],
}  # fmt: skip


def test_the_overview_reads_each_figure_and_never_shows_a_missing_one_as_zero():
    page = overview.build(DATA)
    figures = {f"{f.service}.{f.name}": f.text for s in page.sections for f in s.figures}
    assert figures["issues.raised"] == "1,234"
    assert figures["issues.resolution_rate"] == "75.1%"
    assert figures["issues.average_satisfaction"] == "4.3"
    assert figures["issues.escalated"] == "3"  # at the street (2) or the city (1)
    assert figures["activities.help_hours"] == "—" and figures["meetings.attendance_sum"] == "—"
    assert [s.service for s in page.sections if s.missing] == ["activities", "notifications"]
    assert page.missing == ["Activities and services"]
    assert page.by_category[0] == ("Safety hazard", "5")
    assert ("Round-table meeting", "2") in page.meetings_by_type and ("Pavilion meeting", "0") in page.meetings_by_type
    assert page.communities[0].name == "Xihu" and page.communities[0].cells[2] == "—"  # no rate without issues
    assert page.communities[0].cells[5] == "0"  # the meetings service answered, and held none there
    assert page.months[0].cells[:3] == ["4", "1", "1"] and page.months[0].cells[3] == "—"
    # The chart has only what answered: no line of zeros for the missing service.
    assert [s["name"] for s in page.charts["trend"]["series"]] == ["Issues raised", "Issues resolved", "Meetings held"]
    with force_locale("zh"):
        assert overview.fmt(0.5, "rate") == "50%"


def test_the_whole_city_is_a_table_of_its_streets():
    city = {**DATA, "scope": {"level": "city"}, "by_community": [], "by_street": [
        {"street_id": "s1", "street_name": "Yucai Street", "issues": {"raised": 40, "resolution_rate": 0.5}},
        {"street_id": None, "street_name": None, "issues": {"raised": 2}}]}  # fmt: skip
    page = overview.build(city)
    assert page.communities == []
    assert [(row.key, row.name, row.cells[0], row.cells[2]) for row in page.streets] == [
        ("s1", "Yucai Street", "40", "50%"),
        ("", "Communities not yet in the directory", "2", "—"),
    ]
    assert overview.build(DATA).streets == []


def test_the_ranking_puts_communities_without_the_figure_last_and_charts_percentages():
    ranking = overview.build_ranking({"metric": "resolution_rate", "ranking": [
        {"community_id": "a", "community_name": "A", "value": 0.9, "rank": 1},
        {"community_id": "b", "community_name": "B", "value": None, "rank": None}]})  # fmt: skip
    assert ranking.rows == [("1", "a", "A", "90%"), ("—", "b", "B", "—")]
    assert ranking.chart == {"names": ["A"], "values": [90.0], "unit": "%"}


def test_the_period_is_two_dates_in_order():
    form, query = overview.take_period({"from": "2026-01-01", "to": "2026-03-31"})
    assert form.ok and query == {"from": "2026-01-01", "to": "2026-03-31"}
    form, query = overview.take_period({"from": "2026-13-01", "to": ""})
    assert list(form.errors) == ["from"] and query == {}
    form, query = overview.take_period({"from": "2026-03-01", "to": "2026-01-01"})
    assert list(form.errors) == ["from"] and query == {}
    form, query = overview.take_period({"to": "1999-12-31"})
    assert list(form.errors) == ["to"]
    assert overview.take_period({})[1] == {}
