"""The street office's view: every service's `/stats` for one scope and period, merged.

The gateway asks every service in parallel and answers with what it got, naming the services that
did not answer instead of failing whole. Merging is by community (for rankings and comparisons)
and by month (for trends); the figures themselves belong to the services.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from linli_kit.auth import Principal, Role
from linli_kit.errors import Text
from linli_kit.periods import resolve_period

# The figures a ranking may be by: (service, figure, higher is better).
RANKING_METRICS: dict[str, tuple[str, str, bool]] = {
    "resolution_rate": ("issues", "resolution_rate", True),
    "overdue": ("issues", "overdue", False),
    "issues_raised": ("issues", "raised", True),
    "satisfaction": ("issues", "average_satisfaction", True),
    "escalated": ("issues", "escalated", False),
    "meetings_held": ("meetings", "meetings_held", True),
    "consultations": ("meetings", "consultations", True),
    "participant_times": ("activities", "participant_times", True),
    "services_delivered": ("activities", "service_person_times", True),
}


class ScopeError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class StatsScope:
    community_id: str | None
    street_id: str | None
    period_from: date
    period_to: date
    # The rows beside the totals and months: per community, or per street (the whole city's
    # default: a hundred rows instead of ten thousand).
    by: str = "community"

    def query(self) -> dict[str, str]:
        params = {"from": self.period_from.isoformat(), "to": self.period_to.isoformat()}
        if self.community_id:
            params["community_id"] = self.community_id
        if self.street_id:
            params["street_id"] = self.street_id
        if self.by != "community":
            params["by"] = self.by
        return params

    def per_street(self) -> StatsScope:
        return replace(self, by="street")

    def describe(self) -> dict[str, Any]:
        level = "community" if self.community_id else "street" if self.street_id else "city"
        return {"level": level, "community_id": self.community_id, "street_id": self.street_id}


def resolve_scope(
    principal: Principal,
    *,
    community_id: str | None,
    street_id: str | None,
    period_from: date | None,
    period_to: date | None,
    street_of: Callable[[str], str | None],
    today: date,
) -> StatsScope:
    """What this person may look at: a street official their street, community staff their community,
    a city admin anything; the default is the widest they may see, over the platform's one default
    period (`linli_kit.periods`: the twelve calendar months ending with the current one), the same
    the services apply, so the overview adds up. A period out of range or backwards is `Invalid`."""
    period = resolve_period(today, period_from, period_to)
    if community_id is not None and street_of(community_id) is None:
        raise ScopeError("not_found", Text("no community {community_id}", community_id=community_id))
    if principal.role == Role.CITY_ADMIN:
        pass
    elif principal.role == Role.STREET_OFFICIAL:
        if street_id is not None and street_id != principal.street_id:
            raise ScopeError("forbidden", "outside your street")
        if community_id is not None and street_of(community_id) != principal.street_id:
            raise ScopeError("forbidden", "outside your street")
        street_id = street_id or (None if community_id else principal.street_id)
    elif principal.role == Role.COMMUNITY_STAFF:
        if street_id is not None or (community_id is not None and community_id not in principal.community_ids):
            raise ScopeError("forbidden", "outside your community")
        community_id = principal.community_ids[0]
    else:
        raise ScopeError("forbidden", "statistics are for community staff, street officials and city admins")
    if community_id is not None:
        street_id = None  # a community is the narrower scope
    return StatsScope(community_id, street_id, period.start, period.end)


Fetch = Callable[[str, dict[str, str]], dict[str, Any]]


# One pool for the process: a pool made per request started four threads for every overview.
_ASKING = ThreadPoolExecutor(max_workers=32, thread_name_prefix="stats-fan-out")


def gather(services: list[str], scope: StatsScope, fetch: Fetch) -> tuple[dict[str, dict], list[dict[str, str]]]:
    """Ask every service at once; a service that fails is reported as missing, not fatal."""
    answers: dict[str, dict] = {}
    missing: list[dict[str, str]] = []
    futures = {name: _ASKING.submit(fetch, name, scope.query()) for name in services}
    for name, future in futures.items():
        try:
            answers[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - any failure marks the part missing
            missing.append({"service": name, "reason": str(exc) or type(exc).__name__})
    return answers, missing


def merge(
    scope: StatsScope, answers: dict[str, dict], missing: list[dict[str, str]], names: dict[str, str]
) -> dict[str, Any]:
    """The services' answers as one overview; `names` are the communities' (or with `by` street,
    the streets') names."""
    groups: dict[str, dict[str, Any]] = {}
    monthly: dict[str, dict[str, Any]] = {}
    key = f"{scope.by}_id"
    for service, answer in answers.items():
        for row in answer.get(f"by_{scope.by}") or []:
            group_id = str(row.get(key)) if row.get(key) is not None else ""
            entry = groups.setdefault(group_id, {key: group_id or None, f"{scope.by}_name": names.get(group_id)})
            entry[service] = {k: v for k, v in row.items() if k != key}
        for row in answer.get("monthly") or []:
            month = str(row.get("month"))
            monthly.setdefault(month, {"month": month})[service] = {k: v for k, v in row.items() if k != "month"}
    return {
        "scope": scope.describe(),
        "period": {"from": scope.period_from.isoformat(), "to": scope.period_to.isoformat()},
        "totals": {service: answer.get("totals", {}) for service, answer in answers.items()},
        "by_community": _sorted(groups, "community") if scope.by == "community" else [],
        "by_street": _sorted(groups, "street") if scope.by == "street" else [],
        "monthly": [monthly[m] for m in sorted(monthly)],
        "missing": missing,
        "complete": not missing,
    }


def _sorted(groups: dict[str, dict[str, Any]], by: str) -> list[dict[str, Any]]:
    return sorted(groups.values(), key=lambda e: (e[f"{by}_name"] or "", e[f"{by}_id"] or ""))


def ranking(overview: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Communities of the scope ordered by one figure, best first; those without it last."""
    if metric not in RANKING_METRICS:
        raise ScopeError(
            "invalid",
            Text(
                "unknown metric {metric!r}; one of {metrics}", metric=metric, metrics=", ".join(sorted(RANKING_METRICS))
            ),
        )
    service, figure, higher_is_better = RANKING_METRICS[metric]
    rows = []
    for entry in overview["by_community"]:
        value = (entry.get(service) or {}).get(figure)
        rows.append({"community_id": entry["community_id"], "community_name": entry["community_name"], "value": value})
    present = [r for r in rows if r["value"] is not None]
    absent = [r for r in rows if r["value"] is None]
    present.sort(key=lambda r: r["value"], reverse=higher_is_better)
    ranked = present + absent
    for position, row in enumerate(ranked, start=1):
        row["rank"] = position if row["value"] is not None else None
    return ranked


# Figures a service gives as a breakdown, which the exports spread into one column per key
# (`<service>.<figure>.<key>`): these keys always, in this order (the street's headline figures),
# any other key a service adds after them. Other nested figures are left to the overview.
BREAKDOWNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("issues", "escalated_by_tier"): ("compound_to_community", "community_to_street", "street_to_city"),
    ("meetings", "meetings_by_type"): ("bench", "pavilion", "round_table"),
}


def _cells(service: str, figures: dict[str, Any]) -> list[tuple[str, Any]]:
    cells: list[tuple[str, Any]] = []
    for figure, value in figures.items():
        keys = BREAKDOWNS.get((service, figure))
        if keys is not None and isinstance(value, dict):
            for key in (*keys, *sorted(k for k in value if k not in keys)):
                cells.append((f"{service}.{figure}.{key}", value.get(key, 0)))
        elif not isinstance(value, dict | list):
            cells.append((f"{service}.{figure}", value))
    return cells


def _table(entries: list[dict[str, Any]], leading: list[str]) -> tuple[list[str], list[list[Any]]]:
    columns: list[str] = []
    found: list[dict[str, Any]] = []
    for entry in entries:
        cells: dict[str, Any] = {}
        for service in sorted(k for k in entry if k not in leading):
            for column, value in _cells(service, entry[service] or {}):
                cells[column] = value
                if column not in columns:
                    columns.append(column)
        found.append(cells)
    rows = [
        [entry.get(k) for k in leading] + [cells.get(c, _absent(entry, c)) for c in columns]
        for entry, cells in zip(entries, found, strict=True)
    ]
    return [*leading, *columns], rows


def _absent(entry: dict[str, Any], column: str) -> Any:
    """A breakdown's key that one entry lacks (a meeting type it never held) is 0 where the entry
    has the breakdown; any other figure it lacks is empty."""
    service, figure, *key = column.split(".", 2)
    breakdown = (entry.get(service) or {}).get(figure)
    return 0 if key and isinstance(breakdown, dict) else None


def flatten(overview: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per community, one column per figure: what a spreadsheet reporting upward wants."""
    return _table(overview["by_community"], ["community_id", "community_name"])


def flatten_monthly(overview: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per month, one column per figure (the trend sheet)."""
    return _table(overview["monthly"], ["month"])
