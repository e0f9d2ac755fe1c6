"""A list page's rows, made in a few steps, say exactly what `present` says of each summary."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from flask import Flask

from linli_issues.domain.model import IssueSummary
from linli_issues.entrypoints.issues_api import _json_value, present, present_summary
from linli_issues.service_layer.issues import IssueView
from linli_kit import i18n

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
