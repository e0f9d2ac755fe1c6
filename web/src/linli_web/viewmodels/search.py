"""The search page: what was asked is checked here, and the gateway's merged hits are shaped for the
page (what each hit is, where it links, which parts of the platform did not answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext

# As the gateway accepts it (linli_kit.search): checked here first, so the page says it in words.
MAX_QUERY_CHARS = 100
MAX_WORDS = 8

KIND = {
    "issue": lazy_gettext("Issue"),
    "meeting": lazy_gettext("Meeting"),
    "activity": lazy_gettext("Activity"),
    "post": lazy_gettext("Service post"),
    "group": lazy_gettext("Mutual-aid group"),
    "talent": lazy_gettext("Talent"),
}
SERVICE = {
    "issues": lazy_gettext("issues"),
    "meetings": lazy_gettext("meetings"),
    "activities": lazy_gettext("activities, posts, groups and talents"),
}
STAFF = ("community_staff", "street_official", "city_admin")


def check_query(q: str, kind: str | None) -> dict[str, str]:
    """Errors by field name, in the page's words; empty when the search may be sent."""
    errors: dict[str, str] = {}
    if not q.strip():
        errors["q"] = str(lazy_gettext("Type what to look for."))
    elif len(q) > MAX_QUERY_CHARS:
        errors["q"] = str(lazy_gettext("At most %(count)d characters.", count=MAX_QUERY_CHARS))
    elif len(q.split()) > MAX_WORDS:
        errors["q"] = str(lazy_gettext("At most %(count)d words.", count=MAX_WORDS))
    if kind and kind not in KIND:
        errors["kind"] = str(lazy_gettext("Choose what to look for from the list."))
    return errors


@dataclass(frozen=True)
class Hit:
    kind: str
    kind_label: str
    title: str
    snippet: str
    community: str | None
    date: str | None
    endpoint: str
    arguments: dict[str, str]


def _link(hit: dict[str, Any], role: str | None) -> tuple[str, dict[str, str]]:
    """Where a hit leads: its own page where there is one, else the services page (posts, talents)."""
    kind, thing = hit["kind"], hit["id"]
    if kind == "issue":
        return ("desk.issue" if role in STAFF else "issues.show"), {"issue_id": thing}
    if kind == "meeting":
        return "meetings.show", {"meeting_id": thing}
    if kind == "activity":
        return "activities.show", {"activity_id": thing}
    if kind == "group":
        return "services.group", {"group_id": thing}
    return "services.index", {}


def build_results(answer: dict[str, Any], role: str | None) -> dict[str, Any]:
    """The hits as the page lists them, and the parts of the platform whose hits are missing."""
    hits = []
    for hit in answer.get("hits") or []:
        endpoint, arguments = _link(hit, role)
        hits.append(
            Hit(
                kind=hit["kind"],
                kind_label=str(KIND.get(hit["kind"], hit["kind"])),
                title=hit.get("title") or "",
                snippet=hit.get("snippet") or "",
                community=hit.get("community_name"),
                date=hit.get("date"),
                endpoint=endpoint,
                arguments=arguments,
            )
        )
    missing = [str(SERVICE.get(m.get("service"), m.get("service"))) for m in answer.get("missing") or []]
    return {"hits": hits, "missing": missing}
