"""The street office's overview (and a city admin's, and a community's for its staff): the gateway's
`/api/v1/stats/overview` and `/stats/rankings` made into plain tables — the figures each service
answered, the months, the communities, the ranking — and the same numbers as chart data for
ECharts when JavaScript runs. A service that did not answer is named, never shown as zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import format_decimal, format_percent, lazy_gettext
from flask_babel import gettext as _
from linli_web.i18n import CATEGORY, MEETING_TYPE, TIER, label
from linli_web.viewmodels.forms import Form

SERVICES = {
    "issues": lazy_gettext("Issues"),
    "meetings": lazy_gettext("Meetings"),
    "activities": lazy_gettext("Activities and services"),
    "notifications": lazy_gettext("Messages to residents"),
}

# (service, figure, words, kind): kind says how a value reads (count, rate, hours, score).
TOTALS: list[tuple[str, str, Any, str]] = [
    ("issues", "raised", lazy_gettext("Issues raised"), "count"),
    ("issues", "accepted", lazy_gettext("Issues accepted"), "count"),
    ("issues", "resolved", lazy_gettext("Issues resolved"), "count"),
    ("issues", "resolution_rate", lazy_gettext("Resolution rate"), "rate"),
    ("issues", "escalated", lazy_gettext("Passed up to the street or city"), "count"),
    ("issues", "overdue", lazy_gettext("Went overdue"), "count"),
    ("issues", "average_satisfaction", lazy_gettext("Satisfaction (of 5)"), "score"),
    ("issues", "ratings", lazy_gettext("Ratings given"), "count"),
    ("issues", "median_hours_to_resolve", lazy_gettext("Median hours to resolve"), "hours"),
    ("issues", "consultations_held", lazy_gettext("Consultations held on issues"), "count"),
    ("meetings", "meetings_held", lazy_gettext("Meetings held"), "count"),
    ("meetings", "attendance_sum", lazy_gettext("Participant-times at meetings"), "count"),
    ("meetings", "issues_deliberated", lazy_gettext("Issues deliberated"), "count"),
    ("meetings", "decisions_adopted", lazy_gettext("Decisions adopted"), "count"),
    ("meetings", "action_items_done", lazy_gettext("Tasks done"), "count"),
    ("meetings", "action_items_open", lazy_gettext("Tasks still open"), "count"),
    ("meetings", "action_items_overdue", lazy_gettext("Tasks overdue"), "count"),
    ("activities", "activities_held", lazy_gettext("Activities held"), "count"),
    ("activities", "participant_times", lazy_gettext("Participant-times at activities"), "count"),
    ("activities", "distinct_participants", lazy_gettext("Different participants"), "count"),
    ("activities", "service_person_times", lazy_gettext("Services delivered (person-times)"), "count"),
    ("activities", "door_to_door_person_times", lazy_gettext("Of those, door to door"), "count"),
    ("activities", "help_hours", lazy_gettext("Hours of mutual help"), "hours"),
    ("activities", "mutual_aid_groups", lazy_gettext("Mutual-aid groups"), "count"),
    ("activities", "group_members", lazy_gettext("Members of mutual-aid groups"), "count"),
    ("activities", "talents", lazy_gettext("Talents offering their skills"), "count"),
    ("activities", "service_posts", lazy_gettext("Service posts"), "count"),
    ("notifications", "planned", lazy_gettext("Messages planned"), "count"),
    ("notifications", "delivered", lazy_gettext("Messages delivered"), "count"),
    ("notifications", "failed", lazy_gettext("Messages failed"), "count"),
]
# The columns of the table of communities.
COMMUNITY_COLUMNS: list[tuple[str, str, Any, str]] = [
    ("issues", "raised", lazy_gettext("Raised"), "count"),
    ("issues", "resolved", lazy_gettext("Resolved"), "count"),
    ("issues", "resolution_rate", lazy_gettext("Resolution rate"), "rate"),
    ("issues", "overdue", lazy_gettext("Overdue"), "count"),
    ("issues", "average_satisfaction", lazy_gettext("Satisfaction"), "score"),
    ("meetings", "meetings_held", lazy_gettext("Meetings"), "count"),
    ("activities", "participant_times", lazy_gettext("Participant-times"), "count"),
    ("activities", "service_person_times", lazy_gettext("Person-times"), "count"),
    ("activities", "help_hours", lazy_gettext("Help hours"), "hours"),
]
MONTH_COLUMNS: list[tuple[str, str, Any, str]] = [
    ("issues", "raised", lazy_gettext("Issues raised"), "count"),
    ("issues", "resolved", lazy_gettext("Issues resolved"), "count"),
    ("meetings", "meetings_held", lazy_gettext("Meetings held"), "count"),
    ("activities", "participant_times", lazy_gettext("Participant-times"), "count"),
    ("activities", "service_person_times", lazy_gettext("Person-times"), "count"),
    ("activities", "help_hours", lazy_gettext("Help hours"), "hours"),
]
# The gateway's ranking metrics (statistics.RANKING_METRICS): words and how a value reads.
METRICS: dict[str, tuple[Any, str]] = {
    "resolution_rate": (lazy_gettext("Resolution rate"), "rate"),
    "overdue": (lazy_gettext("Fewest overdue issues"), "count"),
    "issues_raised": (lazy_gettext("Issues raised"), "count"),
    "satisfaction": (lazy_gettext("Satisfaction"), "score"),
    "meetings_held": (lazy_gettext("Meetings held"), "count"),
    "participant_times": (lazy_gettext("Participant-times"), "count"),
    "services_delivered": (lazy_gettext("Services delivered (person-times)"), "count"),
}
MISSING = "—"
UNKNOWN_STREET = lazy_gettext("Communities not yet in the directory")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def fmt(value: Any, kind: str) -> str:
    """A figure for reading: a count, a share as a percentage, hours or a score to one decimal;
    no value (no data, or a service that did not answer) is a dash."""
    if value is None or isinstance(value, dict | list):
        return MISSING
    if kind == "rate":
        return format_percent(value, "#,##0.#%")
    if kind in ("hours", "score"):
        return format_decimal(round(float(value), 1), "#,##0.#")
    return format_decimal(value)


@dataclass
class Figure:
    service: str
    name: str
    words: str
    value: Any
    text: str


@dataclass
class Section:
    service: str
    title: str
    figures: list[Figure]
    missing: bool = False


@dataclass
class Row:
    cells: list[str]
    raw: list[Any]
    key: str = ""
    name: str = ""


@dataclass
class Overview:
    level: str
    period_from: str
    period_to: str
    sections: list[Section] = field(default_factory=list)
    by_category: list[tuple[str, str]] = field(default_factory=list)
    by_tier: list[tuple[str, str]] = field(default_factory=list)
    meetings_by_type: list[tuple[str, str]] = field(default_factory=list)
    community_header: list[str] = field(default_factory=list)
    communities: list[Row] = field(default_factory=list)
    # The whole city's streets (the gateway lists them instead of its ten thousand communities).
    streets: list[Row] = field(default_factory=list)
    month_header: list[str] = field(default_factory=list)
    months: list[Row] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the services that did not answer, in words
    charts: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing


def _escalated(issues: Mapping[str, Any]) -> int | None:
    tiers = issues.get("by_tier")
    if not isinstance(tiers, dict):
        return None
    return int(tiers.get("street", 0) or 0) + int(tiers.get("city", 0) or 0)


def _value(row: Mapping[str, Any], service: str, name: str, kind: str, totals: Mapping[str, Any]) -> Any:
    """One figure of a community's or a month's row. A service lists only the communities and months
    it has figures for: when it answered, a count it left out is 0; a rate or a score stays without
    a value (nothing to divide); a service that did not answer gives nothing at all."""
    value = (row.get(service) or {}).get(name)
    if value is None and service in totals and kind in ("count", "hours"):
        return 0
    return value


def build(data: Mapping[str, Any]) -> Overview:
    totals = data.get("totals") or {}
    missing_services = [m.get("service") for m in data.get("missing") or []]
    view = Overview(
        level=(data.get("scope") or {}).get("level", ""),
        period_from=(data.get("period") or {}).get("from", ""),
        period_to=(data.get("period") or {}).get("to", ""),
        missing=[label(SERVICES, s) for s in missing_services],
    )
    issues = dict(totals.get("issues") or {})
    if "issues" in totals:
        issues["escalated"] = _escalated(issues)
    answered = {**totals, "issues": issues} if "issues" in totals else dict(totals)
    for service in SERVICES:
        figures = [
            Figure(s, name, str(words), (answered.get(s) or {}).get(name), fmt((answered.get(s) or {}).get(name), kind))
            for s, name, words, kind in TOTALS
            if s == service
        ]
        view.sections.append(Section(service, str(SERVICES[service]), figures, missing=service not in totals))
    view.by_category = [
        (label(CATEGORY, k), fmt(v, "count"))
        for k, v in sorted((issues.get("by_category") or {}).items(), key=lambda kv: -kv[1])
    ]
    view.by_tier = [(label(TIER, k), fmt(v, "count")) for k, v in (issues.get("by_tier") or {}).items()]
    by_type = (totals.get("meetings") or {}).get("meetings_by_type") or {}
    view.meetings_by_type = [(label(MEETING_TYPE, k), fmt(by_type.get(k, 0), "count")) for k in MEETING_TYPE] + [
        (label(MEETING_TYPE, k), fmt(v, "count")) for k, v in by_type.items() if k not in MEETING_TYPE
    ]
    view.community_header = [str(c[2]) for c in COMMUNITY_COLUMNS]
    for entry in data.get("by_community") or []:
        raw = [_value(entry, s, name, kind, totals) for s, name, _w, kind in COMMUNITY_COLUMNS]
        cells = [fmt(v, kind) for v, (_s, _n, _w, kind) in zip(raw, COMMUNITY_COLUMNS, strict=True)]
        view.communities.append(
            Row(cells, raw, entry.get("community_id", ""), entry.get("community_name") or entry.get("community_id", ""))
        )
    for entry in data.get("by_street") or []:
        raw = [_value(entry, s, name, kind, totals) for s, name, _w, kind in COMMUNITY_COLUMNS]
        cells = [fmt(v, kind) for v, (_s, _n, _w, kind) in zip(raw, COMMUNITY_COLUMNS, strict=True)]
        key = entry.get("street_id") or ""
        view.streets.append(Row(cells, raw, key, entry.get("street_name") or key or str(UNKNOWN_STREET)))
    view.month_header = [str(c[2]) for c in MONTH_COLUMNS]
    for month in data.get("monthly") or []:
        raw = [_value(month, s, name, kind, totals) for s, name, _w, kind in MONTH_COLUMNS]
        cells = [fmt(v, kind) for v, (_s, _n, _w, kind) in zip(raw, MONTH_COLUMNS, strict=True)]
        view.months.append(Row(cells, raw, month.get("month", ""), month.get("month", "")))
    view.charts["trend"] = {
        "months": [m.key for m in view.months],
        "series": [
            {"name": str(words), "data": [m.raw[index] for m in view.months], "kind": kind}
            for index, (service, _n, words, kind) in enumerate(MONTH_COLUMNS)
            if service in totals
        ],
    }
    view.charts["meetings"] = {
        "names": [name for name, _v in view.meetings_by_type],
        "values": [by_type.get(k, 0) for k in MEETING_TYPE] + [v for k, v in by_type.items() if k not in MEETING_TYPE],
    }
    return view


@dataclass
class Ranking:
    metric: str
    words: str
    rows: list[tuple[str, str, str, str]]  # (rank, community id, name, value)
    chart: dict[str, Any]


def build_ranking(data: Mapping[str, Any]) -> Ranking:
    metric = str(data.get("metric") or "")
    words, kind = METRICS.get(metric, (metric, "count"))
    rows = []
    names, values = [], []
    for entry in data.get("ranking") or []:
        name = entry.get("community_name") or entry.get("community_id", "")
        rank = entry.get("rank")
        rows.append((str(rank) if rank is not None else MISSING, entry.get("community_id", ""), name,
                     fmt(entry.get("value"), kind)))  # fmt: skip
        if entry.get("value") is not None:
            names.append(name)
            values.append(entry["value"] * 100 if kind == "rate" else entry["value"])
    return Ranking(metric, str(words), rows, {"names": names, "values": values, "unit": "%" if kind == "rate" else ""})


def take_period(args: Mapping[str, Any]) -> tuple[Form, dict[str, str]]:
    """The period asked for in the address (local dates, both days included); empty means the
    platform's default (the twelve months ending with this one)."""
    form = Form.of(args, ["from", "to"])
    days: dict[str, date] = {}
    for name, message in (("from", _("Enter the first day as a date")), ("to", _("Enter the last day as a date"))):
        value = form.values[name]
        if not value:
            continue
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            form.error(name, message)
            continue
        if not date(2000, 1, 1) <= days[name] <= date(2100, 12, 31):
            form.error(name, _("Choose a day between 2000 and 2100"))
    if "from" in days and "to" in days and days["from"] > days["to"] and form.ok:
        form.error("from", _("The first day must not be after the last day"))
    query = {} if not form.ok else {k: v.isoformat() for k, v in days.items()}
    return form, query
