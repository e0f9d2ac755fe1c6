"""Scope rules, merging and ranking of the street overview, without services."""

from __future__ import annotations

from datetime import date

import pytest

from linli_gateway.service_layer.statistics import (
    ScopeError,
    StatsScope,
    flatten,
    flatten_monthly,
    gather,
    merge,
    ranking,
    resolve_scope,
)
from linli_kit.auth import Principal, Role
from linli_kit.errors import Invalid

STREETS = {"c1": "s1", "c2": "s1", "c3": "s2"}
TODAY = date(2026, 11, 28)


def scope_for(principal, **kw):
    args = {"community_id": None, "street_id": None, "period_from": None, "period_to": None} | kw
    return resolve_scope(principal, street_of=STREETS.get, today=TODAY, **args)


def test_each_role_sees_its_own_scope_by_default_and_nothing_wider():
    official = Principal(user_id="o", role=Role.STREET_OFFICIAL, street_id="s1")
    assert scope_for(official).street_id == "s1"
    assert scope_for(official, community_id="c2").community_id == "c2"
    for kw in ({"street_id": "s2"}, {"community_id": "c3"}):
        with pytest.raises(ScopeError) as caught:
            scope_for(official, **kw)
        assert caught.value.kind == "forbidden"
    staff = Principal(user_id="s", role=Role.COMMUNITY_STAFF, community_ids=("c1",))
    assert scope_for(staff).community_id == "c1"
    with pytest.raises(ScopeError):
        scope_for(staff, community_id="c2")
    admin = Principal(user_id="a", role=Role.CITY_ADMIN)
    city = scope_for(admin)
    # The platform's one default period: the twelve calendar months ending with this one.
    assert city.describe()["level"] == "city"
    assert (city.period_from, city.period_to) == (date(2025, 12, 1), TODAY)
    only_to = scope_for(admin, period_to=date(2026, 3, 15))
    assert (only_to.period_from, only_to.period_to) == (date(2025, 4, 1), date(2026, 3, 15))
    with pytest.raises(ScopeError):
        scope_for(Principal(user_id="r", role=Role.RESIDENT, community_ids=("c1",)))
    with pytest.raises(ScopeError) as caught:
        scope_for(admin, community_id="nope")
    assert caught.value.kind == "not_found"
    with pytest.raises(Invalid) as backwards:
        scope_for(admin, period_from=date(2026, 2, 1), period_to=date(2026, 1, 1))
    assert "from" in backwards.value.fields
    with pytest.raises(Invalid) as ancient:
        scope_for(admin, period_from=date(1, 1, 1))
    assert "from" in ancient.value.fields


def test_a_service_that_fails_is_named_missing_and_the_rest_is_merged():
    scope = StatsScope(None, "s1", date(2026, 1, 1), date(2026, 11, 30))

    def fetch(service, query):
        assert query == {"from": "2026-01-01", "to": "2026-11-30", "street_id": "s1"}
        if service == "meetings":
            raise RuntimeError("answered 503")
        return {
            "totals": {"raised": 3},
            "by_community": [
                {"community_id": "c1", "raised": 2, "resolution_rate": 0.5},
                {"community_id": "c2", "raised": 1, "resolution_rate": 1.0},
            ],
            "monthly": [{"month": "2026-11", "raised": 3}],
        }

    answers, missing = gather(["issues", "meetings"], scope, fetch)
    overview = merge(scope, answers, missing, {"c1": "Xihu", "c2": "Yucai"})
    assert overview["missing"] == [{"service": "meetings", "reason": "answered 503"}]
    assert overview["complete"] is False and overview["totals"] == {"issues": {"raised": 3}}
    assert [e["community_name"] for e in overview["by_community"]] == ["Xihu", "Yucai"]
    assert overview["monthly"] == [{"month": "2026-11", "issues": {"raised": 3}}]
    ranked = ranking(overview, "resolution_rate")
    assert [(r["community_name"], r["rank"]) for r in ranked] == [("Yucai", 1), ("Xihu", 2)]
    with pytest.raises(ScopeError):
        ranking(overview, "happiness")
    header, rows = flatten(overview)
    assert header == ["community_id", "community_name", "issues.raised", "issues.resolution_rate"]
    assert rows[0] == ["c1", "Xihu", 2, 0.5]


def _headline_overview() -> dict:
    """An overview as the services answer it now: issues with escalations by tier, meetings by type
    (a community's own type too) and consultations."""
    scope = StatsScope(None, "s1", date(2026, 11, 1), date(2026, 12, 31))
    none = {"compound_to_community": 0, "community_to_street": 0, "street_to_city": 0}
    issues = {
        "totals": {
            "raised": 5,
            "escalated": 3,
            "escalated_by_tier": none | {"compound_to_community": 2, "community_to_street": 1},
        },
        "by_community": [
            {
                "community_id": "c1",
                "raised": 3,
                "escalated": 3,
                "escalated_by_tier": none | {"compound_to_community": 2, "community_to_street": 1},
            },
            {"community_id": "c2", "raised": 2, "escalated": 0, "escalated_by_tier": none},
        ],
        "monthly": [
            {"month": "2026-11", "raised": 5, "escalated": 1, "escalated_by_tier": none | {"compound_to_community": 1}},
            {
                "month": "2026-12",
                "raised": 0,
                "escalated": 2,
                "escalated_by_tier": none | {"compound_to_community": 1, "community_to_street": 1},
            },
        ],
    }
    meetings = {
        "totals": {
            "meetings_held": 4,
            "meetings_by_type": {"bench": 2, "round_table": 1, "tea_talk": 1},
            "consultations": 3,
        },
        "by_community": [
            {
                "community_id": "c1",
                "meetings_held": 3,
                "meetings_by_type": {"bench": 2, "tea_talk": 1},
                "consultations": 2,
            },
            {"community_id": "c2", "meetings_held": 1, "meetings_by_type": {"round_table": 1}, "consultations": 1},
        ],
        "monthly": [
            {
                "month": "2026-11",
                "meetings_held": 4,
                "meetings_by_type": {"bench": 2, "round_table": 1, "tea_talk": 1},
                "consultations": 3,
            },
            {"month": "2026-12", "meetings_held": 0, "meetings_by_type": {}, "consultations": 0},
        ],
    }
    return merge(scope, {"issues": issues, "meetings": meetings}, [], {"c1": "Xihu", "c2": "Yucai"})


def test_exports_spread_escalations_and_meeting_types_into_columns_monthly_too():
    overview = _headline_overview()
    # The overview passes the services' figures on as they are.
    assert overview["totals"]["issues"]["escalated"] == 3
    assert overview["totals"]["meetings"]["meetings_by_type"] == {"bench": 2, "round_table": 1, "tea_talk": 1}
    header, rows = flatten(overview)
    assert header == [
        "community_id",
        "community_name",
        "issues.raised",
        "issues.escalated",
        "issues.escalated_by_tier.compound_to_community",
        "issues.escalated_by_tier.community_to_street",
        "issues.escalated_by_tier.street_to_city",
        "meetings.meetings_held",
        "meetings.meetings_by_type.bench",
        "meetings.meetings_by_type.pavilion",
        "meetings.meetings_by_type.round_table",
        "meetings.meetings_by_type.tea_talk",
        "meetings.consultations",
    ]
    assert rows[0] == ["c1", "Xihu", 3, 3, 2, 1, 0, 3, 2, 0, 0, 1, 2]
    # A type only one community has is 0 for the others, as the headline types are.
    assert rows[1] == ["c2", "Yucai", 2, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1]
    header, rows = flatten_monthly(overview)
    assert header[0] == "month" and header[1:] == [
        "issues.raised",
        "issues.escalated",
        "issues.escalated_by_tier.compound_to_community",
        "issues.escalated_by_tier.community_to_street",
        "issues.escalated_by_tier.street_to_city",
        "meetings.meetings_held",
        "meetings.meetings_by_type.bench",
        "meetings.meetings_by_type.pavilion",
        "meetings.meetings_by_type.round_table",
        "meetings.meetings_by_type.tea_talk",
        "meetings.consultations",
    ]
    assert rows == [
        ["2026-11", 5, 1, 1, 0, 0, 4, 2, 0, 1, 1, 3],
        ["2026-12", 0, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    ]


def test_rankings_by_escalations_fewest_first_and_by_consultations():
    overview = _headline_overview()
    assert [(r["community_name"], r["value"], r["rank"]) for r in ranking(overview, "escalated")] == [
        ("Yucai", 0, 1),
        ("Xihu", 3, 2),
    ]
    assert [(r["community_name"], r["rank"]) for r in ranking(overview, "consultations")] == [("Xihu", 1), ("Yucai", 2)]
