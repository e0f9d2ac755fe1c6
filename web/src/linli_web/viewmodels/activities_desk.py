"""Community staff's activities and care: an activity's form (the city's wall clock, sent with its
offset), signing a resident up, walk-ins, door-to-door bookings as staff handle them, residents who
need support and the welfare visits to them. Each `take_*` checks a form field by field and returns
the form (errors by field) and the body for the activities API, which decides again."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from linli_web.viewmodels.forms import Form

KINDS = ("festival", "sports", "culture", "volunteering", "education", "service_day", "other")
AUDIENCE = {
    "everyone": lazy_gettext("Everyone"),
    "children": lazy_gettext("Children"),
    "families": lazy_gettext("Families"),
    "elderly": lazy_gettext("Older people"),
    "youth": lazy_gettext("Young people"),
    "disabled": lazy_gettext("People with disabilities"),
}
ACTIVITY_STATUS = {
    "draft": lazy_gettext("Draft: residents do not see it yet"),
    "published": lazy_gettext("Published"),
    "cancelled": lazy_gettext("Cancelled"),
}
CHECKIN_METHOD = {
    "list": lazy_gettext("ticked by staff"),
    "code": lazy_gettext("by code"),
    "walk_in": lazy_gettext("walked in"),
}
BOOKING_VIEWS = ("requested", "confirmed", "completed", "cancelled")
SUPPORT_NEED = {
    "elderly_alone": lazy_gettext("Older person living alone"),
    "living_alone": lazy_gettext("Living alone"),
    "disability": lazy_gettext("Disability"),
    "mobility": lazy_gettext("Cannot get about easily"),
    "chronic_illness": lazy_gettext("Long-term illness"),
    "economic_difficulty": lazy_gettext("Money troubles"),
    "other": lazy_gettext("Other"),
}
VISIT_CONDITION = {
    "well": lazy_gettext("Well"),
    "needs_help": lazy_gettext("Needs help"),
    "not_home": lazy_gettext("Not at home"),
}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _count(form: Form, name: str, *, low: int, high: int, required: bool = False) -> int | None:
    raw = form.values.get(name, "")
    if not raw:
        if required:
            form.error(name, _("Enter a number"))
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        form.error(name, _("Enter a whole number from %(low)d to %(high)d", low=low, high=high))
        return None
    return int(raw)


def _many(data: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(data, "getlist", None)
    values = getlist(name) if getlist is not None else (data.get(name) or [])
    if isinstance(values, str):
        values = values.split(",")
    return [str(v).strip() for v in values if str(v).strip()]


def take_activity(data: Mapping[str, Any], communities: list[str], timezone: str) -> tuple[Form, dict[str, Any]]:
    """An activity: community, kind, title, description, place, the day with start and end times,
    places (empty: no limit), the largest party one sign-up may bring, who it is for, and whether it
    is published at once (otherwise a draft)."""
    names = ["community_id", "kind", "title", "description", "place", "day", "start", "end", "capacity",
             "max_party_size", "publish"]  # fmt: skip
    form = Form.of(data, names)
    audience = [a for a in _many(data, "audience") if a]
    form.values["audience"] = ",".join(audience)
    form.choice("community_id", communities, _("Choose the community"))
    form.choice("kind", list(KINDS), _("Choose the kind of activity"))
    form.required("title", _("Give the activity a title"))
    form.length("title", maximum=300, label=_("The title"))
    form.length("description", maximum=10_000, label=_("The description"))
    form.length("place", maximum=300, label=_("The place"))
    if any(a not in AUDIENCE for a in audience):
        form.error("audience", _("Choose who it is for from the list"))
    day, times = form.day_and_times("day", "start", "end", missing_day=_("Enter the day of the activity"))
    capacity = _count(form, "capacity", low=1, high=100_000)
    party = _count(form, "max_party_size", low=1, high=20)
    body: dict[str, Any] = {}
    if day and len(times) == 2:
        zone = ZoneInfo(timezone)
        starts = datetime.combine(day, times["start"], zone)
        ends = datetime.combine(day, times["end"], zone)
        if ends <= starts:
            form.error("end", _("The activity must end after it starts"))
        body = {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}
    body.update(
        community_ids=[form.values["community_id"]],
        kind=form.values["kind"],
        title=form.values["title"],
        description=form.values["description"],
        place=form.values["place"] or None,
        capacity=capacity,
        audience=audience,
        publish=form.values["publish"] == "yes",
    )
    if party is not None:
        body["max_party_size"] = party
    return form, body


def activity_form_values(activity: Mapping[str, Any], community_id: str, timezone: str) -> dict[str, str]:
    """An activity's fields as the form shows them: its day and times on the city's wall clock."""
    zone = ZoneInfo(timezone)
    starts = datetime.fromisoformat(activity["starts_at"]).astimezone(zone)
    ends = datetime.fromisoformat(activity["ends_at"]).astimezone(zone)
    capacity, party = activity.get("capacity"), activity.get("max_party_size")
    return {
        "community_id": community_id,
        "kind": activity.get("kind") or "",
        "title": activity.get("title") or "",
        "description": activity.get("description") or "",
        "place": activity.get("place") or "",
        "day": starts.date().isoformat(),
        "start": starts.strftime("%H:%M"),
        "end": ends.strftime("%H:%M"),
        "capacity": "" if capacity is None else str(capacity),
        "max_party_size": "" if party is None else str(party),
        "audience": ",".join(activity.get("audience") or []),
        "publish": "",
    }


def activity_changes(activity: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """What the form changed, for `PATCH`: only those fields (an unchanged time is not sent, so those
    signed up are not told of a change that is none)."""
    empty: dict[str, Any] = {"description": "", "audience": []}  # what the API's null means here
    changes: dict[str, Any] = {}
    for name in ("kind", "title", "description", "place", "capacity", "audience", "max_party_size"):
        current = activity.get(name)
        if name in body and body[name] != (empty.get(name) if current is None else current):
            changes[name] = body[name]
    for name in ("starts_at", "ends_at"):
        if name in body and datetime.fromisoformat(body[name]) != datetime.fromisoformat(activity[name]):
            changes[name] = body[name]
    return changes


def take_signup(
    data: Mapping[str, Any], residents: Mapping[str, str], community_id: str
) -> tuple[Form, dict[str, Any]]:
    """Staff sign a resident up (someone without a phone): who, chosen by name among the residents of
    `community_id` (the API wants the community of someone registered by another), how many come."""
    form = Form.of(data, ["resident_id", "party_size"])
    form.choice("resident_id", list(residents), _("Choose the resident"))
    party = _count(form, "party_size", low=1, high=20) or 1
    return form, {"user_id": form.values["resident_id"], "party_size": party, "community_id": community_id}


def take_walk_in(
    data: Mapping[str, Any], communities: list[str], residents: Mapping[str, str]
) -> tuple[Form, dict[str, Any]]:
    """People who came without signing up: how many, of which community, a resident by name if known."""
    form = Form.of(data, ["walkin_community_id", "participants", "walkin_resident_id"])
    form.choice("walkin_community_id", communities, _("Choose the community they are from"))
    participants = _count(form, "participants", low=1, high=500, required=True)
    resident = form.values["walkin_resident_id"]
    if resident and resident not in residents:
        form.error("walkin_resident_id", _("Choose the resident from the list"))
    body: dict[str, Any] = {"community_id": form.values["walkin_community_id"], "participants": participants}
    if resident:
        body["user_id"] = resident
    return form, body


def take_cancel(data: Mapping[str, Any]) -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, ["cancel_reason"])
    form.required("cancel_reason", _("Say why it is cancelled: everyone signed up is told"))
    form.length("cancel_reason", maximum=2000, label=_("The reason"))
    return form, {"reason": form.values["cancel_reason"]}


def take_completion(data: Mapping[str, Any], booking_id: str) -> tuple[Form, dict[str, Any]]:
    name = f"person_times-{booking_id}"
    form = Form.of(data, [name])
    times = _count(form, name, low=1, high=500) or 1
    return form, {"person_times": times}


def take_support(
    data: Mapping[str, Any], communities: list[str], residents: Mapping[str, str]
) -> tuple[Form, dict[str, Any]]:
    """A resident who needs support: a resident with an account chosen by name, or a name in words
    (someone without one), what they need, where they live, a note."""
    form = Form.of(data, ["community_id", "resident_id", "display_name", "address", "note"])
    needs = [n for n in _many(data, "needs") if n]
    form.values["needs"] = ",".join(needs)
    form.choice("community_id", communities, _("Choose the community"))
    resident = form.values["resident_id"]
    if resident and resident not in residents:
        form.error("resident_id", _("Choose the resident from the list"))
    if not resident and not form.values["display_name"]:
        form.error("display_name", _("Choose a resident or write the person's name"))
    form.length("display_name", maximum=200, label=_("The name"))
    if not needs:
        form.error("needs", _("Choose at least one need"))
    elif any(n not in SUPPORT_NEED for n in needs):
        form.error("needs", _("Choose needs from the list"))
    form.length("address", maximum=500, label=_("The address"))
    form.length("note", maximum=2000, label=_("The note"))
    body: dict[str, Any] = {
        "community_id": form.values["community_id"],
        "needs": needs,
        "display_name": form.values["display_name"] or residents.get(resident, ""),
        "address": form.values["address"],
        "note": form.values["note"],
    }
    if resident:
        body["resident_id"] = resident
    return form, body


MAX_VISIT_INTERVAL_DAYS = 365


def take_visit_plan(data: Mapping[str, Any], flag_id: str, visitors: Mapping[str, str]) -> tuple[Form, dict[str, Any]]:
    """How often someone is visited and by whom (a member of staff or a volunteer, chosen by name)."""
    names = [f"every_days-{flag_id}", f"visitor_id-{flag_id}"]
    form = Form.of(data, names)
    every = _count(form, names[0], low=1, high=MAX_VISIT_INTERVAL_DAYS, required=True)
    visitor = form.choice(names[1], list(visitors), _("Choose who visits"))
    return form, {"every_days": every, "visitor_id": visitor, "visitor_name": visitors.get(visitor, "")}


def take_visit(data: Mapping[str, Any], flag_id: str, today: date) -> tuple[Form, dict[str, Any]]:
    """A welfare visit made: the day (not in the future), how the person was, a note."""
    names = [f"visited_on-{flag_id}", f"condition-{flag_id}", f"visit_note-{flag_id}"]
    form = Form.of(data, names)
    day = _date(form.values[names[0]])
    if not form.values[names[0]]:
        form.error(names[0], _("Enter the day of the visit"))
    elif day is None:
        form.error(names[0], _("Enter the day as year-month-day, like 2026-12-24"))
    elif day > today:
        form.error(names[0], _("The visit cannot be in the future"))
    form.choice(names[1], list(VISIT_CONDITION), _("Choose how the person was"))
    form.length(names[2], maximum=2000, label=_("The note"))
    return form, {
        "visited_on": form.values[names[0]],
        "condition": form.values[names[1]],
        "note": form.values[names[2]],
    }


URGENCIES = ("low", "normal", "high", "urgent")
REPORT_CHANNEL = {
    "phone": lazy_gettext("By telephone"),
    "doorstep": lazy_gettext("At the door or at the desk"),
}


def take_report_for(
    data: Mapping[str, Any], communities: list[str], residents: Mapping[str, str], categories: list[str]
) -> tuple[Form, dict[str, Any]]:
    """A report staff take in a resident's name: who (chosen by name), how it came in, the category,
    a title, what is wrong, how urgent, where."""
    names = ["community_id", "resident_id", "channel", "category", "title", "description", "urgency", "address"]
    form = Form.of(data, names)
    form.choice("community_id", communities, _("Choose the community"))
    form.choice("resident_id", list(residents), _("Choose the resident who reported it"))
    form.choice("channel", list(REPORT_CHANNEL), _("Choose how it was reported"))
    form.choice("category", categories, _("Choose what kind of problem it is"))
    title = form.required("title", _("Give the problem a short title"))
    if title:
        form.length("title", minimum=3, maximum=200, label=_("The title"))
    form.required("description", _("Describe the problem"))
    form.length("description", maximum=4000, label=_("The description"))
    form.choice("urgency", list(URGENCIES), _("Choose how urgent it is"))
    form.length("address", maximum=300, label=_("The place"))
    body: dict[str, Any] = {
        "community_id": form.values["community_id"],
        "on_behalf_of": form.values["resident_id"],
        "channel": form.values["channel"],
        "category": form.values["category"],
        "title": form.values["title"],
        "description": form.values["description"],
        "urgency": form.values["urgency"],
    }
    if form.values["address"]:
        body["address"] = form.values["address"]
    return form, body


def take_booking_for(
    data: Mapping[str, Any], residents: Mapping[str, str], offerings: Mapping[str, Mapping[str, Any]], timezone: str
) -> tuple[Form, dict[str, Any]]:
    """A service booked by staff for a resident (someone without a phone): who, which service, the day
    with start and end (the city's wall clock), at home or at the post, the address, a note."""
    names = ["book_resident_id", "offering_id", "book_day", "book_start", "book_end", "door_to_door", "address", "note"]
    form = Form.of(data, names)
    form.choice("book_resident_id", list(residents), _("Choose the resident"))
    offering = offerings.get(form.choice("offering_id", list(offerings), _("Choose the service")))
    day, times = form.day_and_times("book_day", "book_start", "book_end", missing_day=_("Enter the day"))
    door = form.values["door_to_door"] == "yes"
    if door and offering is not None and not offering.get("door_to_door"):
        form.error("door_to_door", _("This service is not offered door to door"))
    if door and not form.values["address"]:
        form.error("address", _("Enter the address to go to"))
    form.length("address", maximum=500, label=_("The address"))
    form.length("note", maximum=2000, label=_("The note"))
    body: dict[str, Any] = {}
    if day and len(times) == 2:
        zone = ZoneInfo(timezone)
        starts = datetime.combine(day, times["book_start"], zone)
        ends = datetime.combine(day, times["book_end"], zone)
        if ends <= starts:
            form.error("book_end", _("It must end after it starts"))
        body = {"slot_start": starts.isoformat(), "slot_end": ends.isoformat()}
    body.update(
        offering_id=form.values["offering_id"],
        resident_id=form.values["book_resident_id"],
        door_to_door=door,
        note=form.values["note"],
    )
    if form.values["address"]:
        body["address"] = form.values["address"]
    return form, body


def take_post(data: Mapping[str, Any], communities: list[str], compounds: list[str]) -> tuple[Form, dict[str, Any]]:
    """A service post: its community, name, where it is (latitude and longitude of its door, WGS-84
    as a phone's GPS gives them), address, opening hours, what it offers (one a line) and the
    compounds it serves (ticked among the community's)."""
    form = Form.of(data, ["community_id", "name", "latitude", "longitude", "address", "opening_hours", "services"])
    served = [c for c in _many(data, "compound_ids") if c]
    form.values["compound_ids"] = ",".join(served)
    form.choice("community_id", communities, _("Choose the community"))
    form.required("name", _("Give the post a name"))
    form.length("name", maximum=200, label=_("The name"))
    place: dict[str, float] = {}
    for name, low, high, example in (("latitude", -90, 90, "38.1021"), ("longitude", -180, 180, "106.3395")):
        raw = form.required(name, _("Enter where the post is: its latitude and longitude"))
        if raw:
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not low <= value <= high:
                form.error(name, _("Enter a number between %(low)d and %(high)d, like %(example)s",
                                   low=low, high=high, example=example))  # fmt: skip
            else:
                place[name] = value
    form.length("address", maximum=300, label=_("The address"))
    form.length("opening_hours", maximum=500, label=_("The opening hours"))
    services = [line.strip() for line in form.values["services"].splitlines() if line.strip()]
    if any(len(s) > 100 for s in services):
        form.error("services", _("Keep each service to 100 characters"))
    if any(c not in compounds for c in served):
        form.error("compound_ids", _("Choose the compounds from the list"))
    body = {
        "community_id": form.values["community_id"],
        "name": form.values["name"],
        **place,
        "address": form.values["address"],
        "opening_hours": form.values["opening_hours"],
        "services": services,
        "compound_ids": served,
    }
    return form, body


SERVICE_KINDS = ("massage", "haircut", "handcraft", "repair", "meal_delivery", "cleaning", "health_check", "other")


def take_offering(data: Mapping[str, Any], community_id: str) -> tuple[Form, dict[str, Any]]:
    """A service residents book, given by a business (a barber, a canteen): what, who gives it,
    whether at the post and/or at home. (A talent's or a group's service is offered from their own
    records, which carry the provider's id.)"""
    form = Form.of(data, ["offering_name", "offering_kind", "offering_description", "provider_name", "where"])
    form.required("offering_name", _("Give the service a name"))
    form.length("offering_name", maximum=200, label=_("The name"))
    form.choice("offering_kind", list(SERVICE_KINDS), _("Choose the kind of service"))
    form.length("offering_description", maximum=2000, label=_("The description"))
    form.required("provider_name", _("Say who gives it"))
    form.length("provider_name", maximum=200, label=_("The name"))
    where = form.choice("where", ["post", "home", "both"], _("Choose where it is given"))
    return form, {
        "community_id": community_id,
        "name": form.values["offering_name"],
        "kind": form.values["offering_kind"],
        "description": form.values["offering_description"],
        "provider_type": "business",
        "provider_name": form.values["provider_name"],
        "at_post": where in ("post", "both"),
        "door_to_door": where in ("home", "both"),
    }


def take_group(data: Mapping[str, Any], community_id: str, residents: Mapping[str, str]) -> tuple[Form, dict[str, Any]]:
    """A mutual-aid group: its name, what it does, and the resident who coordinates it."""
    form = Form.of(data, ["group_name", "purpose", "coordinator_id"])
    form.required("group_name", _("Give the group a name"))
    form.length("group_name", maximum=200, label=_("The name"))
    form.length("purpose", maximum=5000, label=_("What it does"))
    form.choice("coordinator_id", list(residents), _("Choose the resident who coordinates it"))
    return form, {
        "community_id": community_id,
        "name": form.values["group_name"],
        "purpose": form.values["purpose"],
        "coordinator_id": form.values["coordinator_id"],
    }
