"""The staff's meeting pages: checking each form (schedule, agenda, invitation, motion, tally, minutes,
an action item's progress) into the meetings API's body, and shaping a meeting for the page.

Plain Python: no Flask request, no gateway; the API decides again on every call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from linli_web.viewmodels.forms import Form

TYPES = ("bench", "pavilion", "round_table")
ROLE = {
    "resident_representative": lazy_gettext("Resident representative"),
    "party_member": lazy_gettext("Party member"),
    "property_company": lazy_gettext("Property company"),
    "owners_committee": lazy_gettext("Owners' committee"),
    "bureau": lazy_gettext("A city bureau"),
    "community_staff": lazy_gettext("Community staff"),
    "resident": lazy_gettext("Resident"),
}
OWNER_BODY = {
    "property_company": lazy_gettext("Property company"),
    "owners_committee": lazy_gettext("Owners' committee"),
    "community": lazy_gettext("The community itself"),
    "bureau": lazy_gettext("A city bureau"),
    "party_members": lazy_gettext("Party members"),
    "residents": lazy_gettext("Residents"),
}
THRESHOLD = {
    "": lazy_gettext("As the rules of procedure say"),
    "simple_majority": lazy_gettext("Simple majority"),
    "two_thirds": lazy_gettext("Two-thirds"),
    "unanimous": lazy_gettext("Unanimous"),
}
METHOD = {
    "show_of_hands": lazy_gettext("Show of hands: staff count and enter the numbers"),
    "roll_call": lazy_gettext("Roll call: each person present votes on their phone"),
}
EFFECT = {
    "none": lazy_gettext("Nothing changes on the issue"),
    "resolution_plan": lazy_gettext("Adopt a plan: the issue is being fixed"),
    "resolve": lazy_gettext("The issue is resolved"),
    "escalate": lazy_gettext("Pass the issue up to the street"),
    "reconsult": lazy_gettext("Discuss it again at another meeting"),
}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def take_schedule(data: Mapping[str, Any], communities: list[str], timezone: str) -> tuple[Form, dict[str, Any]]:
    """A meeting: community, type, title, the day with start and end times (the city's wall clock,
    sent with its offset), place, public or not; issues chosen for the agenda (`issue_id`, repeated)."""
    form = Form.of(data, ["community_id", "meeting_type", "title", "day", "start", "end", "place", "private"])
    issues = [i for i in (data.getlist("issue_id") if hasattr(data, "getlist") else data.get("issue_id") or []) if i]
    form.values["issue_id"] = ",".join(issues)
    form.choice("community_id", communities, _("Choose the community"))
    form.choice("meeting_type", list(TYPES), _("Choose the kind of meeting"))
    form.required("title", _("Give the meeting a title"))
    form.length("title", maximum=300, label=_("The title"))
    form.length("place", maximum=300, label=_("The place"))
    day, times = form.day_and_times("day", "start", "end", missing_day=_("Enter the day of the meeting"))
    body: dict[str, Any] = {}
    if day and len(times) == 2:
        zone = ZoneInfo(timezone)
        starts = datetime.combine(day, times["start"], zone)
        ends = datetime.combine(day, times["end"], zone)
        if ends <= starts:
            form.error("end", _("The meeting must end after it starts"))
        body = {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}
    body.update(
        community_id=form.values["community_id"],
        meeting_type=form.values["meeting_type"],
        title=form.values["title"],
        place=form.values["place"] or None,
        public=form.values["private"] != "yes",
    )
    return form, body


def agenda_from(issue_ids: list[str], candidates: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Agenda items for the chosen candidate issues (unknown ids are left out: the list decides)."""
    by_id = {c["issue_id"]: c for c in candidates}
    return [{"title": by_id[i]["title"][:300], "issue_id": i} for i in issue_ids if i in by_id]


def take_agenda(data: Mapping[str, Any], candidates: list[Mapping[str, Any]]) -> tuple[Form, dict[str, Any]]:
    """An agenda item: a candidate issue, or a subject in words (or both: the words title it)."""
    form = Form.of(data, ["issue_id", "title", "duration"])
    by_id = {c["issue_id"]: c for c in candidates}
    issue_id, title = form.values["issue_id"], form.values["title"]
    if issue_id and issue_id not in by_id:
        form.error("issue_id", _("Choose one of the issues waiting for a meeting"))
    if not issue_id and not title:
        form.error("title", _("Choose an issue or write the subject"))
    form.length("title", maximum=300, label=_("The subject"))
    duration = None
    if form.values["duration"]:
        if not form.values["duration"].isdigit() or not 1 <= int(form.values["duration"]) <= 600:
            form.error("duration", _("Enter the minutes as a number from 1 to 600"))
        else:
            duration = int(form.values["duration"])
    body: dict[str, Any] = {"title": title or (by_id[issue_id]["title"][:300] if issue_id in by_id else "")}
    if issue_id in by_id:
        body["issue_id"] = issue_id
    if duration:
        body["duration_minutes"] = duration
    return form, body


def take_invitation(data: Mapping[str, Any], people: Mapping[str, str]) -> tuple[Form, dict[str, Any]]:
    """Someone invited in a role: a person with an account (chosen from the community's people), or
    a name for someone without one."""
    form = Form.of(data, ["role", "user_id", "name"])
    form.choice("role", [r for r in ROLE if r != "resident"] + ["resident"], _("Choose the role they take part in"))
    user_id, name = form.values["user_id"], form.values["name"]
    if user_id and user_id not in people:
        form.error("user_id", _("Choose one of the community's people"))
    if not user_id and not name:
        form.error("user_id", _("Choose a person, or write the name of someone without an account"))
    form.length("name", maximum=200, label=_("The name"))
    body: dict[str, Any] = {"role": form.values["role"]}
    if user_id:
        body["user_id"] = user_id
        body["name"] = name or people.get(user_id) or None
    else:
        body["name"] = name
    return form, body


def take_motion(data: Mapping[str, Any], agenda_ids: list[str]) -> tuple[Form, dict[str, Any]]:
    """A motion put to the meeting: its words, the agenda item, how it is voted, the threshold, what
    it does to the item's issue, and at most one action item (more are added to the decision later
    by the API's PATCH, or by another motion)."""
    names = ["motion", "agenda_item_id", "method", "threshold", "issue_effect", "resolution_plan"]
    names += ["action_title", "owner_body", "due_date"]
    form = Form.of(data, names)
    form.required("motion", _("Write the motion put to the vote"))
    form.length("motion", maximum=2000, label=_("The motion"))
    if form.values["agenda_item_id"]:
        form.choice("agenda_item_id", agenda_ids, _("Choose an item of the agenda"))
    form.choice("method", list(METHOD), _("Choose how the meeting votes"))
    form.choice("threshold", list(THRESHOLD), _("Choose the majority needed"))
    effect = form.choice("issue_effect", list(EFFECT), _("Choose what the decision does to the issue"))
    if effect != "none" and not form.values["agenda_item_id"]:
        form.error("agenda_item_id", _("Choose the agenda item whose issue the decision changes"))
    if effect == "resolution_plan" and not form.values["resolution_plan"]:
        form.error("resolution_plan", _("Write the plan the meeting adopts"))
    form.length("resolution_plan", maximum=4000, label=_("The plan"))
    body: dict[str, Any] = {
        "motion": form.values["motion"],
        "method": form.values["method"],
        "issue_effect": effect,
        "agenda_item_id": form.values["agenda_item_id"] or None,
        "threshold": form.values["threshold"] or None,
        "action_items": [],
    }
    if form.values["resolution_plan"]:
        body["resolution_plan"] = form.values["resolution_plan"]
    title = form.values["action_title"]
    form.length("action_title", maximum=300, label=_("The task"))
    if title or form.values["owner_body"] or form.values["due_date"]:
        if not title:
            form.error("action_title", _("Write the task, or leave its owner and date empty"))
        form.choice("owner_body", list(OWNER_BODY), _("Choose who does the task"))
        due = None
        if form.values["due_date"]:
            due = _date(form.values["due_date"])
            if due is None:
                form.error("due_date", _("Enter the day as year-month-day, like 2026-12-24"))
        item: dict[str, Any] = {"title": title, "owner_body": form.values["owner_body"]}
        if due:
            item["due_date"] = due.isoformat()
        body["action_items"].append(item)
    return form, body


def _count(form: Form, name: str, label: str) -> int:
    value = form.values[name]
    if not value.isdigit():
        form.error(name, _("Enter %(what)s as a number, 0 or more", what=label))
        return 0
    return int(value)


def take_tally(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    """The hands counted: for, against, abstaining."""
    form = Form.of(data, ["votes_for", "votes_against", "abstentions"])
    return form, {
        "votes_for": _count(form, "votes_for", _("the votes for")),
        "votes_against": _count(form, "votes_against", _("the votes against")),
        "abstentions": _count(form, "abstentions", _("those abstaining")),
    }


def take_minutes(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["minutes", "attendees"])
    form.length("minutes", maximum=100_000, label=_("The minutes"))
    body: dict[str, Any] = {"minutes": form.values["minutes"]}
    if form.values["attendees"]:
        body["attendees_count"] = _count(form, "attendees", _("the people who came"))
    return form, body


def take_progress(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    """An action item's progress in percent (100: done) and a note on what was done."""
    form = Form.of(data, ["progress", "note"])
    value = form.values["progress"]
    if not value.isdigit() or int(value) > 100:
        form.error("progress", _("Enter the progress as a number from 0 to 100"))
    form.length("note", maximum=2000, label=_("The note"))
    body: dict[str, Any] = {"progress": int(value) if value.isdigit() else 0}
    if form.values["note"]:
        body["note"] = form.values["note"]
    return form, body


@dataclass
class Person:
    id: str
    name: str
    role: str
    present: bool
    how: str | None
    answer: str
    enrolment: str


@dataclass
class DeskMeeting:
    """What the staff's meeting page shows and which of its forms apply now."""

    meeting: dict[str, Any]
    participants: list[Person] = field(default_factory=list)
    open_motions: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    code: str | None = None

    @property
    def status(self) -> str:
        return str(self.meeting.get("status"))

    @property
    def planning(self) -> bool:
        return self.status == "scheduled"

    @property
    def running(self) -> bool:
        return self.status == "in_progress"

    @property
    def held(self) -> bool:
        return self.status == "concluded"

    @property
    def agenda_options(self) -> list[tuple[str, str]]:
        return [(a["id"], f"{a['position']}. {a['title']}") for a in self.meeting.get("agenda") or []]

    @property
    def present(self) -> int:
        return sum(1 for p in self.participants if p.present)


def desk_meeting(
    meeting: dict[str, Any],
    participants: list[dict[str, Any]],
    motions: list[dict[str, Any]],
    names: Mapping[str, str],
    code: str | None = None,
) -> DeskMeeting:
    people = [
        Person(
            id=p["id"],
            name=p.get("name") or names.get(p.get("user_id") or "", "") or p.get("organisation_name") or "—",
            role=p.get("role") or "resident",
            present=bool(p.get("checked_in_at")),
            how=p.get("check_in_method"),
            answer=p.get("response") or "",
            enrolment=p.get("enrolment") or "",
        )
        for p in participants
        if p.get("response") not in ("declined", "cancelled")
    ]
    people.sort(key=lambda p: (not p.present, list(ROLE).index(p.role) if p.role in ROLE else 99, p.name))
    return DeskMeeting(
        meeting=meeting,
        participants=people,
        open_motions=[m for m in motions if m.get("status") == "open"],
        decisions=[m for m in motions if m.get("status") == "recorded"],
        code=code,
    )


def checkin_link(base_url: str, meeting_id: str, code: str) -> str:
    """The address a meeting's QR code would open: the resident's check-in page, the code filled in."""
    return f"{base_url.rstrip('/')}/m/{meeting_id}/checkin?code={code}"
