"""Meetings and activities as a resident sees them: what is coming, what was decided, my place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from linli_web.i18n import parse_instant


def split_by_time(items: list[dict[str, Any]], now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(coming soonest first, past latest first); cancelled ones are left out of both."""
    coming, past = [], []
    for item in items:
        if item.get("status") == "cancelled":
            continue
        ends = parse_instant(item.get("ends_at")) or parse_instant(item.get("starts_at")) or now
        (past if ends < now or item.get("status") == "concluded" else coming).append(item)
    coming.sort(key=lambda i: i.get("starts_at") or "")
    past.sort(key=lambda i: i.get("starts_at") or "", reverse=True)
    return coming, past


def my_participation(participants: list[dict[str, Any]], user_id: str) -> dict[str, Any] | None:
    return next((p for p in participants if p.get("user_id") == user_id), None)


def roll_calls(motions: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    """The roll-call motions open to the vote, each with my vote (`mine`: for/against/abstain or None;
    the API shows a resident only their own vote)."""
    ballots = []
    for motion in motions:
        if motion.get("status") == "open" and motion.get("method") == "roll_call":
            mine = next((v.get("choice") for v in motion.get("votes") or [] if v.get("voter_id") == user_id), None)
            ballots.append({**motion, "mine": mine})
    return ballots


def my_registration(registrations: list[dict[str, Any]], activity_id: str) -> dict[str, Any] | None:
    """My live registration for this activity (a cancelled one does not count)."""
    for registration in registrations:
        if registration.get("activity_id") == activity_id and registration.get("status") != "cancelled":
            return registration
    return None


def can_register_activity(activity: dict[str, Any], mine: dict[str, Any] | None, now: datetime) -> bool:
    if mine is not None or activity.get("status") != "published":
        return False
    closes = parse_instant(activity.get("registration_closes_at"))
    opens = parse_instant(activity.get("registration_opens_at"))
    ends = parse_instant(activity.get("ends_at"))
    if closes and now > closes or opens and now < opens or ends and now > ends:
        return False
    return True


def party_sizes(activity: dict[str, Any]) -> list[int]:
    return list(range(1, int(activity.get("max_party_size") or 1) + 1))
