"""Residents start things: a resident's proposed activity, and the staff's answer (the activity made
from it, at a time they fix, or a reason for not), checked field by field before the API is asked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from linli_web.i18n import ACTIVITY_KIND
from linli_web.viewmodels.forms import Form


def take_proposal(data: Mapping[str, Any], community_id: str) -> tuple[Form, dict[str, Any]]:
    """What a resident proposes: the kind, a title, why, what it would be, where."""
    form = Form.of(data, ["kind", "title", "reason", "description", "place"])
    form.choice("kind", list(ACTIVITY_KIND), _("Choose what kind of activity it is"))
    form.required("title", _("Give the activity a name"))
    form.length("title", maximum=300, label=_("The name"))
    form.length("reason", maximum=2000, label=_("Why"))
    form.length("description", maximum=2000, label=_("The description"))
    form.length("place", maximum=300, label=_("The place"))
    body = {
        "community_id": community_id,
        "kind": form.values["kind"],
        "title": form.values["title"],
        "reason": form.values["reason"],
        "description": form.values["description"],
        "place": form.values["place"] or None,
    }
    return form, body


def take_acceptance(data: Mapping[str, Any], timezone: str) -> tuple[Form, dict[str, Any]]:
    """The staff's yes: the day with start and end (the city's wall clock, sent with its offset),
    the place and the places, a note for the proposer."""
    form = Form.of(data, ["day", "start", "end", "place", "capacity", "note"])
    day, times = form.day_and_times("day", "start", "end", missing_day=_("Enter the day of the activity"))
    form.length("place", maximum=300, label=_("The place"))
    form.length("note", maximum=2000, label=_("The note"))
    body: dict[str, Any] = {}
    if day and len(times) == 2:
        zone = ZoneInfo(timezone)
        starts, ends = datetime.combine(day, times["start"], zone), datetime.combine(day, times["end"], zone)
        if ends <= starts:
            form.error("end", _("The activity must end after it starts"))
        body = {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}
    capacity = form.values["capacity"]
    if capacity:
        if not capacity.isdigit() or not 1 <= int(capacity) <= 100_000:
            form.error("capacity", _("Enter how many people can come, like 30, or leave it empty for no limit"))
        else:
            body["capacity"] = int(capacity)
    if form.values["place"]:
        body["place"] = form.values["place"]
    if form.values["note"]:
        body["note"] = form.values["note"]
    return form, body


def take_decline(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["reason"])
    form.required("reason", _("Say why, for the resident who proposed it"))
    form.length("reason", maximum=2000, label=_("The reason"))
    return form, {"reason": form.values["reason"]}
