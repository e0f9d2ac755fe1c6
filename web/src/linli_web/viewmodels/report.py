"""Reporting a problem, one question per page: category → place → details → photo → similar issues
nearby ("me too") → check your answers → send. The draft lives in the session between pages; each
step checks its own answers, so a page can be reached again from "check your answers" and changed."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from flask_babel import gettext as _
from linli_web.viewmodels.forms import Form

STEPS = ("category", "place", "details", "photo", "similar", "check")
URGENCIES = ("low", "normal", "high", "urgent")
ELSEWHERE = "elsewhere"


@dataclass
class ReportDraft:
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    category: str = ""
    compound_id: str = ""
    building: str = ""
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    title: str = ""
    description: str = ""
    urgency: str = ""
    anonymous: bool = False
    photo: str = ""  # the name of the resized upload kept by the web process until sending
    photo_name: str = ""

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> ReportDraft:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    def done(self, step: str) -> bool:
        if step == "category":
            return bool(self.category)
        if step == "place":
            return bool(self.compound_id)
        if step == "details":
            return bool(self.title and self.description and self.urgency)
        return True

    def first_missing(self) -> str | None:
        """The first step not answered yet (check and send need them all)."""
        for step in ("category", "place", "details"):
            if not self.done(step):
                return step
        return None

    def api_body(self, community_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "community_id": community_id,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "urgency": self.urgency or "normal",
            "anonymous": self.anonymous,
            "channel": "app",
        }
        if self.compound_id and self.compound_id != ELSEWHERE:
            body["compound_id"] = self.compound_id
        for name in ("building", "address"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        if self.latitude is not None and self.longitude is not None:
            body["latitude"] = self.latitude
            body["longitude"] = self.longitude
        return body


def take_category(draft: ReportDraft, data: Mapping[str, Any], categories: list[str]) -> Form:
    form = Form.of(data, ["category"])
    draft.category = form.choice("category", categories, _("Choose what the problem is about"))
    return form


def _coordinate(form: Form, name: str, low: float, high: float) -> float | None:
    raw = form.values.get(name, "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (low <= value <= high):  # also false for NaN
        form.error("compound_id", _("The place on the map could not be read. Choose the compound instead."))
        return None
    return round(value, 6)


def take_place(draft: ReportDraft, data: Mapping[str, Any], compound_ids: list[str]) -> Form:
    form = Form.of(data, ["compound_id", "building", "address", "latitude", "longitude"])
    draft.compound_id = form.choice(
        "compound_id", [*compound_ids, ELSEWHERE], _("Choose the compound, or 'somewhere else in the community'")
    )
    draft.building = form.length("building", maximum=100, label=_("Building"))
    draft.address = form.length("address", maximum=300, label=_("Where exactly"))
    latitude = _coordinate(form, "latitude", -90, 90)
    longitude = _coordinate(form, "longitude", -180, 180)
    if (latitude is None) != (longitude is None):
        latitude = longitude = None
    draft.latitude, draft.longitude = latitude, longitude
    if draft.compound_id == ELSEWHERE and not draft.address and latitude is None:
        form.error("address", _("Say where the problem is, or mark it on the map"))
    return form


def take_details(draft: ReportDraft, data: Mapping[str, Any]) -> Form:
    form = Form.of(data, ["title", "description", "urgency", "anonymous"])
    title = form.required("title", _("Give the problem a short title"))
    if title:
        form.length("title", minimum=3, maximum=200, label=_("The title"))
    description = form.required("description", _("Describe the problem"))
    if description:
        form.length("description", maximum=4000, label=_("The description"))
    urgency = form.choice("urgency", URGENCIES, _("Choose how urgent it is"))
    draft.title, draft.description, draft.urgency = title, description, urgency
    draft.anonymous = form.values.get("anonymous") == "yes"
    return form


def similar_choices(found: list[dict[str, Any]], limit: int = 5) -> list[dict[str, Any]]:
    """Open issues that may be the same problem, best match first (closed ones are not offered)."""
    open_ones = [
        {**entry["issue"], "score": entry.get("score", 0)}
        for entry in found
        if entry.get("issue", {}).get("status") not in ("closed", "rejected", "duplicate")
    ]
    open_ones.sort(key=lambda i: i["score"], reverse=True)
    return open_ones[:limit]


def next_step(step: str, changing: bool) -> str:
    """After a step: back to "check your answers" when changing one answer, else the next question."""
    if changing:
        return "check"
    return STEPS[STEPS.index(step) + 1]
