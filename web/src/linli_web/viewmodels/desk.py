"""The staff desk: the queue of issues in a staff member's scope, one issue as staff handle it (what
they may do next, the whole timeline with internal notes), and the forms of each action, checked
here before anything is sent to the issues API.

Who may do what follows the issues service (DESIGN §4): community staff handle issues at the
compound and community tiers of their community; a street official every issue of their street; a
city admin any. The API decides in the end; these rules only choose which forms a page offers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from linli_web.i18n import ISSUE_STATUS, TIER, label, parse_instant
from linli_web.viewmodels.forms import Form
from linli_web.viewmodels.issues import timeline_entry

STAFF_ROLES = ("community_staff", "street_official", "city_admin")
DASHBOARD_ROLES = ("community_staff", "street_official", "city_admin")
OPEN = ("reported", "accepted", "deliberating", "resolving")
PAGE_SIZE = 25

# The queue's views: what each asks the issues API for.
VIEWS: dict[str, dict[str, str]] = {
    "new": {"status": "reported"},
    "overdue": {"overdue": "true", "status": ",".join(OPEN)},
    "escalated": {"tier": "street,city", "status": ",".join(OPEN)},
    "open": {"status": ",".join(OPEN)},
    "all": {},
}
VIEW_NAMES = {
    "new": lazy_gettext("New"),
    "overdue": lazy_gettext("Overdue"),
    "escalated": lazy_gettext("Passed up"),
    "open": lazy_gettext("All open"),
    "all": lazy_gettext("Everything"),
}
SORTS = {
    "-created_at": lazy_gettext("Newest first"),
    "created_at": lazy_gettext("Oldest first"),
    "due_at": lazy_gettext("Due soonest"),
    "-supporter_count": lazy_gettext("Most support"),
}
BODY = {
    "property_company": lazy_gettext("Property company"),
    "owners_committee": lazy_gettext("Owners' committee"),
    "community": lazy_gettext("The community itself"),
    "bureau": lazy_gettext("A city bureau"),
}
CHANNEL_IN = {
    "app": lazy_gettext("in the app"),
    "phone": lazy_gettext("by telephone, written down by staff"),
    "doorstep": lazy_gettext("at the door, written down by staff"),
    "open311": lazy_gettext("through the city hotline"),
}
DELIVERY_STATE = {
    "pending": lazy_gettext("waiting"),
    "sending": lazy_gettext("being sent"),
    "sent": lazy_gettext("sent"),
    "delivered": lazy_gettext("delivered"),
    "failed": lazy_gettext("failed"),
    "suppressed": lazy_gettext("not sent (quiet hours or choice)"),
    "expired": lazy_gettext("expired"),
}
# The people who act for an organisation, by the body they are.
TIERS = ("compound", "community", "street", "city")


def is_staff(user: Mapping[str, Any] | None) -> bool:
    return bool(user) and user.get("role") in STAFF_ROLES  # type: ignore[union-attr]


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass
class Organisation:
    id: str
    name: str
    body: str


# The directory's kinds of organisation, as the body an issue is given to.
ORGANISATION_KINDS = {
    "property_company": "property_company",
    "owners_committee": "owners_committee",
    "bureau": "bureau",
    "agency": "bureau",
}


def organisations(registered: list[Mapping[str, Any]]) -> list[Organisation]:
    """The organisations an issue may be given to: the directory's register (each once), by name."""
    found: dict[str, Organisation] = {}
    for record in registered:
        org_id = record.get("id")
        body = ORGANISATION_KINDS.get(str(record.get("kind")))
        if not org_id or body is None or org_id in found or record.get("active") is False:
            continue
        found[org_id] = Organisation(str(org_id), str(record.get("name") or org_id), body)
    return sorted(found.values(), key=lambda o: (o.body, o.name))


def assignee_options(orgs: list[Organisation]) -> list[tuple[str, str]]:
    """Who issues are given to, as the queue's filter offers it: a kind of body, or an organisation by
    name (the API filters by either; not by "nobody")."""
    options = [(f"type:{key}", str(name)) for key, name in BODY.items()]
    options += [(f"org:{o.id}", o.name) for o in orgs]
    return options


@dataclass
class QueueFilters:
    view: str = "new"
    community_id: str = ""
    assignee: str = ""  # "", "type:<body>" or "org:<organisation id>"
    category: str = ""
    q: str = ""
    sort: str = "-created_at"
    page: int = 1

    def params(self) -> dict[str, Any]:
        """The issues API's query for this view of the queue."""
        params: dict[str, Any] = dict(VIEWS[self.view])
        if self.community_id:
            params["community_id"] = self.community_id
        if self.assignee.startswith("type:"):
            params["assignee_type"] = self.assignee[5:]
        elif self.assignee.startswith("org:"):
            params["assignee_id"] = self.assignee[4:]
        if self.category:
            params["category"] = self.category
        if self.q:
            params["q"] = self.q
        params["sort"] = self.sort
        params["page"] = self.page
        params["page_size"] = PAGE_SIZE
        return params

    def link(self, **changes: Any) -> dict[str, Any]:
        """The query string of this view with some filters changed (page back to 1 unless given)."""
        values = {
            "view": self.view,
            "community_id": self.community_id,
            "assignee": self.assignee,
            "category": self.category,
            "q": self.q,
            "sort": self.sort,
            "page": 1,
        }
        values.update(changes)
        defaults = {"page": 1, "sort": "-created_at"}
        return {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}


def take_queue_filters(
    args: Mapping[str, Any], *, communities: list[str], organisation_ids: list[str], categories: list[str]
) -> tuple[QueueFilters, Form]:
    """The queue's filters from the address; a value that is not one of the choices is named (the
    queue then shows that view without it)."""
    form = Form.of(args, ["view", "community_id", "assignee", "category", "q", "sort", "page"])
    v = form.values
    filters = QueueFilters()
    if v["view"]:
        if form.choice("view", list(VIEWS), _("Choose one of the lists")) in VIEWS:
            filters.view = v["view"]
    if v["community_id"]:
        if form.choice("community_id", communities, _("Choose a community of your area")) in communities:
            filters.community_id = v["community_id"]
    if v["assignee"]:
        allowed = [*(f"type:{b}" for b in BODY), *(f"org:{o}" for o in organisation_ids)]
        if v["assignee"].startswith("org:") and _uuid(v["assignee"][4:]):
            allowed.append(v["assignee"])  # an organisation the list does not name is still a fair filter
        if form.choice("assignee", allowed, _("Choose who the issues are given to")) in allowed:
            filters.assignee = v["assignee"]
    if v["category"]:
        if form.choice("category", categories, _("Choose a category from the list")) in categories:
            filters.category = v["category"]
    if v["q"]:
        if len(v["q"]) > 200:
            form.error("q", _("Search for at most 200 characters"))
        else:
            filters.q = v["q"]
    if v["sort"]:
        if form.choice("sort", list(SORTS), _("Choose an order from the list")) in SORTS:
            filters.sort = v["sort"]
    if v["page"]:
        if v["page"].isdigit() and 1 <= int(v["page"]) <= 10_000:
            filters.page = int(v["page"])
        else:
            form.error("page", _("There is no such page of the list"))
    return filters, form


@dataclass
class Pager:
    page: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


# --- one issue ------------------------------------------------------------------------------------


def may_handle(user: Mapping[str, Any], issue: Mapping[str, Any]) -> bool:
    """Accept, reject, assign, escalate, resolve: the office responsible for the issue's tier."""
    role = user.get("role")
    if role in ("city_admin", "street_official"):
        return True
    if role == "community_staff":
        return issue.get("tier") in ("compound", "community")
    return False


@dataclass
class StaffEntry:
    at: datetime | None
    kind: str
    text: str
    detail: str = ""
    internal: bool = False
    author: str = ""
    meeting_id: str | None = None


def staff_timeline(updates: list[dict[str, Any]], names: Mapping[str, str], *, me: str) -> list[StaffEntry]:
    """Every entry, newest first, internal notes marked, with who wrote it when known."""
    entries = []
    for update in updates:
        author_id = update.get("author_id") or ""
        author = _("you") if author_id == me else names.get(author_id, "")
        at = parse_instant(update.get("created_at"))
        kind = update.get("kind") or ""
        if kind == "note":
            entries.append(StaffEntry(at, kind, _("Internal note"), update.get("body") or "", True, author))
            continue
        found = timeline_entry({**update, "internal": False})
        if found is None:
            continue
        data = update.get("data") or {}
        detail = found.detail
        if kind == "assignment":
            body = label(BODY, data.get("assignee_type"))
            detail = " — ".join(x for x in (body, update.get("body") or "") if x)
        entries.append(StaffEntry(at, kind, found.text, detail, bool(update.get("internal")), author, found.meeting_id))
    entries.sort(key=lambda e: e.at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return entries


@dataclass
class StaffIssue:
    issue: dict[str, Any]
    user: Mapping[str, Any]
    reporter: str = ""
    assignee: str = ""
    timeline: list[StaffEntry] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # candidates for "the same as"
    organisations: list[Organisation] = field(default_factory=list)
    meetings: list[dict[str, Any]] = field(default_factory=list)
    photos: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.issue.get("status"))

    @property
    def handles(self) -> bool:
        return may_handle(self.user, self.issue)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def can_triage(self) -> bool:
        """Accept, reject or mark duplicate: only a new issue."""
        return self.handles and self.status == "reported"

    @property
    def can_assign(self) -> bool:
        return self.handles and self.is_open

    @property
    def can_escalate(self) -> bool:
        return self.handles and self.is_open and self.issue.get("tier") != "city"

    @property
    def next_tier(self) -> str | None:
        tier = self.issue.get("tier")
        if tier not in TIERS or tier == "city":
            return None
        return TIERS[TIERS.index(tier) + 1]

    @property
    def progress_choices(self) -> list[tuple[str, str]]:
        """The moves after acceptance the staff may make here (a meeting moves it too)."""
        if not self.handles:
            return []
        moves = {
            "accepted": ["deliberating", "resolving", "resolved"],
            "deliberating": ["resolving", "resolved"],
            "resolving": ["deliberating", "resolved"],
        }.get(self.status, [])
        return [(m, label(ISSUE_STATUS, m)) for m in moves]

    @property
    def passed_up_note(self) -> str | None:
        """Why community staff see no triage forms on an issue of their community."""
        if self.user.get("role") == "community_staff" and not self.handles and self.is_open:
            return _(
                "This issue was passed up to: %(tier)s. That office decides it now; you can still add notes,"
                " inspections and replies.",
                tier=label(TIER, self.issue.get("tier")),
            )
        return None


def duplicate_candidates(issue_id: str, similar: list[dict[str, Any]], recent: list[dict[str, Any]]) -> list[dict]:
    """Issues this one may repeat: the similar ones first (best first), then recent ones, each once,
    never itself."""
    seen = {issue_id}
    out = []
    for entry in [s.get("issue") or {} for s in similar] + recent:
        if entry.get("id") and entry["id"] not in seen:
            seen.add(entry["id"])
            out.append(entry)
    return out[:20]


# --- the action forms -----------------------------------------------------------------------------


def take_reason(data: Mapping[str, Any], message: str, name: str = "reason") -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, [name])
    form.required(name, message)
    form.length(name, maximum=2000, label=_("The reason"))
    return form, {"reason": form.values[name]}


def take_reject(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    form, body = take_reason(data, _("Say why the issue is not accepted: the resident is told"), "reject_reason")
    return form, {"status": "rejected", **body}


def take_duplicate(data: Mapping[str, Any], candidates: list[str]) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["duplicate_of", "duplicate_reason"])
    form.choice("duplicate_of", candidates, _("Choose the issue this one repeats"))
    form.length("duplicate_reason", maximum=2000, label=_("The note"))
    body: dict[str, Any] = {"status": "duplicate", "duplicate_of": form.values["duplicate_of"]}
    if form.values["duplicate_reason"]:
        body["reason"] = form.values["duplicate_reason"]
    return form, body


def take_assignment(data: Mapping[str, Any], orgs: list[Organisation]) -> tuple[Form, dict[str, Any]]:
    """A body, and for a property company or a bureau the organisation by name when the list has it."""
    form = Form.of(data, ["assignee_type", "organisation_id", "assign_note"])
    kind = form.choice("assignee_type", list(BODY), _("Choose who handles the issue"))
    org_id = form.values["organisation_id"]
    body: dict[str, Any] = {"assignee_type": kind}
    if org_id:
        org = next((o for o in orgs if o.id == org_id), None)
        if org is None:
            form.error("organisation_id", _("Choose an organisation from the list"))
        elif kind in BODY and org.body != kind:
            form.error(
                "organisation_id", _("%(name)s is not a %(body)s", name=org.name, body=label(BODY, kind).lower())
            )
        else:
            body["assignee_id"] = org_id
    form.length("assign_note", maximum=2000, label=_("The note"))
    if form.values["assign_note"]:
        body["note"] = form.values["assign_note"]
    return form, body


def _lines(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[\n,，、;；]+", text) if part.strip()]


def take_update(data: Mapping[str, Any], kind: str) -> tuple[Form, dict[str, Any]]:
    """A public reply, an internal note, or an on-site inspection (who attended, what was found)."""
    if kind == "inspection":
        form = Form.of(data, ["inspection_body", "attendees", "findings"])
        form.required("inspection_body", _("Say what was inspected"))
        form.length("inspection_body", maximum=4000, label=_("What was inspected"))
        attendees = _lines(form.values["attendees"])
        if not attendees:
            form.error("attendees", _("Name at least one person or body who attended"))
        elif any(len(a) > 200 for a in attendees) or len(attendees) > 50:
            form.error("attendees", _("Name at most 50 attendees, each in at most 200 characters"))
        form.length("findings", maximum=4000, label=_("What was found"))
        body: dict[str, Any] = {"kind": "inspection", "body": form.values["inspection_body"], "attendees": attendees}
        if form.values["findings"]:
            body["findings"] = form.values["findings"]
        return form, body
    name = {"reply": "reply_body", "note": "note_body"}[kind]
    form = Form.of(data, [name])
    if kind == "reply":
        form.required(name, _("Write the reply the resident will read"))
    else:
        form.required(name, _("Write the note"))
    form.length(name, maximum=4000, label=_("The text"))
    return form, {"kind": kind, "body": form.values[name]}


def take_escalation(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    return take_reason(data, _("Say why the issue must be passed up"), "escalate_reason")


def take_progress(data: Mapping[str, Any], choices: list[str]) -> tuple[Form, dict[str, Any]]:
    """Move an accepted issue on: being discussed, being fixed (with the plan), resolved (with what
    was done: the resident reads it and is asked to rate it)."""
    form = Form.of(data, ["progress_status", "plan", "summary"])
    status = form.choice("progress_status", choices, _("Choose the issue's next step"))
    form.length("plan", maximum=4000, label=_("The plan"))
    form.length("summary", maximum=4000, label=_("What was done"))
    body: dict[str, Any] = {"status": status}
    if status == "resolved":
        form.required("summary", _("Say what was done: the resident reads it"))
        body["summary"] = form.values["summary"]
    elif status == "resolving" and form.values["plan"]:
        body["plan"] = form.values["plan"]
    return form, body


# --- sign-ups and notices -------------------------------------------------------------------------


def take_broadcast(data: Mapping[str, Any], communities: list[str]) -> tuple[Form, dict[str, Any]]:
    """A notice to every member of a community: a short title, the text, urgent or not, by app alert
    and/or text message (the notifications service keeps an SMS's text short: it names `body`)."""
    form = Form.of(data, ["community_id", "title", "body", "urgent"])
    channels = [c for c in (data.getlist("channels") if hasattr(data, "getlist") else data.get("channels") or [])]
    form.values["channels"] = ",".join(channels)
    form.choice("community_id", communities, _("Choose the community to tell"))
    form.required("title", _("Write a short title"))
    form.length("title", maximum=30, label=_("The title"))
    form.required("body", _("Write the notice"))
    form.length("body", maximum=500, label=_("The notice"))
    if not channels or any(c not in ("push", "sms") for c in channels):
        form.error("channels", _("Choose how residents are told: app alert, text message or both"))
    return form, {
        "community_id": form.values["community_id"],
        "title": form.values["title"],
        "body": form.values["body"],
        "urgent": form.values["urgent"] == "yes",
        "channels": channels,
    }
