"""The inbox and the notification preferences as pages show them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _
from linli_web.viewmodels.forms import TIME, Form

CHANNELS = ("push", "sms")


def with_links(items: list[dict[str, Any]], url_for: Callable[..., str]) -> list[dict[str, Any]]:
    """Each notice with a link to what it is about, when the page for it exists."""
    endpoints = {"issue": ("issues.show", "issue_id"), "meeting": ("meetings.show", "meeting_id"),
                 "activity": ("activities.show", "activity_id")}  # fmt: skip
    out = []
    for item in items:
        link = None
        found = endpoints.get(item.get("subject_type") or "")
        if found and item.get("subject_id"):
            link = url_for(found[0], **{found[1]: item["subject_id"]})
        out.append({**item, "link": link})
    return out


def preference_rows(prefs: dict[str, Any]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for item in prefs.get("items") or []:
        row = rows.setdefault(item["category"], {"category": item["category"], "cells": {}})
        row["cells"][item["channel"]] = item
    return list(rows.values())


def take_preferences(data: Any, prefs: dict[str, Any]) -> tuple[Form, dict[str, Any]]:
    """The ticked boxes become the whole list of choices (mandatory ones stay on)."""
    form = Form.of(data, ["quiet_start", "quiet_end"])
    on = set(data.getlist("on")) if hasattr(data, "getlist") else set(data.get("on", []))
    items = []
    for item in prefs.get("items") or []:
        key = f"{item['category']}:{item['channel']}"
        enabled = True if item.get("mandatory") else key in on
        items.append({"category": item["category"], "channel": item["channel"], "enabled": enabled})
    start, end = form.values["quiet_start"], form.values["quiet_end"]
    quiet = None
    if start or end:
        if not TIME.match(start):
            form.error("quiet_start", _("Enter a time like 22:00"))
        if not TIME.match(end):
            form.error("quiet_end", _("Enter a time like 07:00"))
        if start and start == end:
            form.error("quiet_end", _("The end must differ from the start"))
        quiet = {"start": start, "end": end}
    body: dict[str, Any] = {"items": items, "quiet_hours": quiet}
    return form, body


def quiet_values(prefs: Mapping[str, Any]) -> dict[str, str]:
    quiet = prefs.get("quiet_hours") or {}
    return {"quiet_start": quiet.get("start") or "", "quiet_end": quiet.get("end") or ""}
