"""Services near home: posts within a 15-minute walk, door-to-door services to book (for myself or
a relative), mutual-aid groups, the talent pool."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from linli_web.viewmodels.forms import Form

SKILLS = ("repair", "medical", "legal", "teaching", "care", "massage", "haircut", "handcraft", "cooking", "other")
SLOT_MINUTES = 60


def post_markers(nearby: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in nearby:
        post = entry.get("post") or entry
        if post.get("latitude") is None or post.get("longitude") is None:
            continue
        out.append({"id": post.get("id"), "name": post.get("name"), "lat": post["latitude"], "lon": post["longitude"]})
    return out


def take_booking(data: Mapping[str, Any], timezone: str, today: date) -> tuple[Form, dict[str, Any]]:
    """A booking request: the day and time (local), where, for whom. A relative's booking is made in
    the resident's name with the relative named in the note (the API books for the caller only)."""
    form = Form.of(data, ["day", "time", "address", "for_whom", "relative", "note"])
    body: dict[str, Any] = {}
    raw_day = form.required("day", _("Choose the day"))
    raw_time = form.required("time", _("Choose the time"))
    start = None
    if raw_day:
        try:
            chosen = date.fromisoformat(raw_day)
        except ValueError:
            form.error("day", _("Enter the day like 2026-12-24"))
        else:
            if chosen < today:
                form.error("day", _("The day must be today or later"))
            elif chosen > today + timedelta(days=180):
                form.error("day", _("The day must be within six months"))
            elif raw_time:
                try:
                    at = time.fromisoformat(raw_time)
                except ValueError:
                    form.error("time", _("Enter the time like 09:30"))
                else:
                    start = datetime.combine(chosen, at, ZoneInfo(timezone)).astimezone(UTC)
    address = form.required("address", _("Enter the address where the service is given"))
    form.length("address", maximum=500, label=_("The address"))
    for_whom = form.choice("for_whom", ["me", "relative"], _("Say who the service is for"))
    relative = form.values.get("relative", "")
    if for_whom == "relative" and not relative:
        form.error("relative", _("Give the name of your relative"))
    form.length("relative", maximum=200, label=_("The name"))
    note = form.length("note", maximum=1500, label=_("The note"))
    if start is not None:
        body = {
            "slot_start": start.isoformat(),
            "slot_end": (start + timedelta(minutes=SLOT_MINUTES)).isoformat(),
            "door_to_door": True,
            "address": address,
            "note": (f"{_('For my relative:')} {relative}. " if for_whom == "relative" else "") + note,
        }
    return form, body


def take_help(data: Mapping[str, Any], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["helped_on", "hours", "helped_description", "note"])
    body: dict[str, Any] = {}
    raw_day = form.required("helped_on", _("Enter the day you helped"))
    helped_on = None
    if raw_day:
        try:
            helped_on = date.fromisoformat(raw_day)
            if helped_on > today:
                form.error("helped_on", _("The day cannot be in the future"))
        except ValueError:
            form.error("helped_on", _("Enter the day like 2026-12-24"))
    raw_hours = form.required("hours", _("Enter how many hours"))
    hours = None
    if raw_hours:
        try:
            hours = float(raw_hours.replace(",", "."))
            if not 0 < hours <= 24:
                raise ValueError
        except ValueError:
            form.error("hours", _("Hours must be a number between 0.5 and 24"))
    form.length("helped_description", maximum=300, label=_("Who you helped"))
    form.length("note", maximum=2000, label=_("The note"))
    if form.ok and helped_on is not None and hours is not None:
        body = {
            "helped_on": helped_on.isoformat(),
            "hours": hours,
            "helped_description": form.values["helped_description"],
            "note": form.values["note"],
        }
    return form, body


def take_talent(data: Any, display_name: str) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["availability", "description"])
    skills = [
        s for s in (data.getlist("skills") if hasattr(data, "getlist") else data.get("skills", [])) if s in SKILLS
    ]
    form.values["skills"] = ",".join(skills)
    if not skills:
        form.error("skills", _("Choose at least one thing you can do"))
    form.length("availability", maximum=500, label=_("When you are free"))
    form.length("description", maximum=2000, label=_("The description"))
    body = {
        "display_name": display_name,
        "skills": skills,
        "availability": form.values["availability"],
        "description": form.values["description"],
    }
    return form, body
