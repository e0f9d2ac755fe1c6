"""A list page's rows, made in a few steps, say exactly what `present` says of each summary."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import orjson
from flask import Flask

from linli_issues.domain.model import Issue, IssueSummary
from linli_issues.entrypoints.issues_api import _json_value, detail_json, present, present_summary
from linli_issues.entrypoints.schemas import IssueSchema
from linli_issues.service_layer.access import person_id
from linli_issues.service_layer.issues import IssueView, _view_of, _views_of
from linli_kit import i18n
from linli_kit.auth import Principal, Role

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def summary(**changes: object) -> IssueSummary:
    values: dict[str, object] = {
        "id": "i1", "community_id": "c1", "compound_id": None, "title": "Call 13812345678 about the roof",
        "category": "repairs_facilities", "urgency": "normal", "status": "reported", "tier": "compound",
        "reporter_id": "r1", "anonymous": False, "publication": "community", "marked_private": False,
        "assignee_type": "property_company", "assignee_id": None, "supporter_count": 2, "consultation_count": 0,
        "action_items": 3, "action_items_done": 1, "resolution_summary": None, "rating": None,
        "created_at": NOW - timedelta(days=20), "updated_at": None, "due_at": NOW - timedelta(days=1),
        "resolved_at": None,
    }  # fmt: skip
    values.update(changes)
    return IssueSummary(**values)  # type: ignore[arg-type]


def test_rows_equal_present_for_every_kind_of_summary_and_view() -> None:
    app = Flask("rows")
    app.extensions["linli.messages"] = i18n.Catalogue([i18n.KIT_TRANSLATIONS])
    variants = [
        summary(),
        summary(status="resolved", resolution_summary="Fixed; call 13812345678", rating=4, resolved_at=NOW),
        summary(updated_at=datetime(2026, 1, 1, 0, 0), due_at=None, anonymous=True, compound_id="k1"),
        summary(status="closed", marked_private=True, assignee_id="o1", created_at=NOW.astimezone()),
    ]
    for language in ("zh", "en"):
        with app.test_request_context(headers={"Accept-Language": language}):
            for issue, (show, masked) in itertools.product(variants, itertools.product((True, False), repeat=2)):
                view = IssueView(issue, show_reporter=show, internal=False, masked=masked)
                expected = json.dumps(present(view, NOW, summary=True), default=_json_value, ensure_ascii=False)
                labels: dict[str, str] = {}
                assert json.dumps(present_summary(view, NOW, labels), ensure_ascii=False) == expected


def test_views_decided_per_kind_of_issue_equal_views_decided_per_issue() -> None:
    """`_views_of` decides once per `_view_key`: for every role, scope and kind of issue it gives
    what `_view_of` gives row by row (the page mixes issues so that keys repeat and differ)."""
    me = "7d0c9d1e-0000-4000-8000-000000000001"
    streets = {"c1": "s1", "c2": "s1", "c3": "s2"}
    principals = [
        Principal(me, Role.RESIDENT, community_ids=("c1",)),
        Principal(me, Role.RESIDENT, community_ids=("c1",), organisation_id="o1"),
        Principal(me, Role.COMMUNITY_STAFF, community_ids=("c1", "c3")),
        Principal(me, Role.STREET_OFFICIAL, street_id="s1"),
        Principal(me, Role.CITY_ADMIN),
        Principal(me, Role.PROPERTY_MANAGER, organisation_id="o1"),
        Principal(me, Role.AGENCY, organisation_id="o2"),
        Principal("key-963b5197e99f", Role.API_CLIENT, street_id="s1", community_ids=("c3",)),
        Principal("key-963b5197e99f", Role.API_CLIENT),
    ]
    page = [
        summary(id=f"i{n}", community_id=community, reporter_id=reporter, anonymous=anonymous,
                assignee_id=assignee, assignee_type=kind)
        for n, (community, reporter, anonymous, assignee, kind) in enumerate(
            itertools.product(
                ("c1", "c2", "c3"),
                (me, "r2", person_id(principals[-1])),
                (False, True),
                (None, "o1", "o2"),
                ("property_company", "owners_committee"),
            )
        )
    ]  # fmt: skip
    page += page[::7]  # the same kinds again, later in the page
    for principal in principals:
        expected = [_view_of(principal, issue, streets.get) for issue in page]
        assert _views_of(principal, page, streets.get) == expected, principal


def test_a_whole_issue_written_without_marshmallow_equals_its_schema_dump() -> None:
    """`detail_json` (a report's answer) says what `IssueSchema().dump` says of `present`'s body."""
    app = Flask("detail")
    app.extensions["linli.messages"] = i18n.Catalogue([i18n.KIT_TRANSLATIONS])
    plain = {"community_id": "c1", "title": "Roof leaks, call 13812345678", "description": "Rain comes in",
             "category": "repairs_facilities", "urgency": "high", "tier": "compound", "reporter_id": "r1",
             "created_at": NOW - timedelta(days=3)}  # fmt: skip
    issues = [
        Issue(**plain, due_at=NOW + timedelta(days=1), assignee_type="property_company"),
        Issue(**{**plain, "created_at": datetime(2026, 1, 1, 8, 0)}, latitude=31, longitude=121.5, anonymous=True,
              compound_id="k1", building="7", address="1 Road", updated_at=NOW.astimezone(), status="resolved",
              resolved_at=NOW, resolution_summary="Fixed", rating=5, supporter_count=3, action_items=2,
              action_items_done=1, reported_by="s1", channel="phone"),
    ]  # fmt: skip
    for language in ("zh", "en"):
        with app.test_request_context(headers={"Accept-Language": language}):
            views = itertools.product((True, False), repeat=3)
            for issue, (show, internal, masked) in itertools.product(issues, views):
                body = present(IssueView(issue, show_reporter=show, internal=internal, masked=masked), NOW)
                assert orjson.loads(detail_json(body)) == IssueSchema().dump(body)
                assert list(orjson.loads(detail_json(body))) == list(IssueSchema().dump(body))
