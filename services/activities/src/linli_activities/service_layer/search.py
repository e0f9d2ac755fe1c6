"""Search of what the activities service holds: activities, service posts, mutual-aid groups and
talents, each found only where the caller's lists would show it (DESIGN section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from linli_activities.adapters import tables
from linli_activities.domain.activities import ActivityStatus
from linli_activities.domain.care import Vetting
from linli_activities.service_layer import scope
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal
from linli_kit.search import TextIndex

KINDS = ("activity", "post", "group", "talent")

# What a search reads of each (migration 0012 made the indexes).
ACTIVITY_TEXT = TextIndex("activities", "id", ("title", "description"))
POST_TEXT = TextIndex("service_posts", "id", ("name", "address"))
GROUP_TEXT = TextIndex("mutual_aid_groups", "id", ("name", "purpose"))
TALENT_TEXT = TextIndex("talents", "id", ("display_name", "skills", "description"))


@dataclass(frozen=True)
class Found:
    kind: str
    id: str
    title: str
    text: str
    community_id: str | None
    date: datetime | None
    in_title: bool


def _in_scope(principal: Principal, column: Any) -> list[ColumnElement[bool]]:
    visible = scope.visible_communities(principal, column)
    return [] if visible is None else [visible]


def _activities(uow: ActivitiesUnitOfWork, principal: Principal, terms: list[str], limit: int) -> list[Found]:
    a, links = tables.activities.c, tables.activity_communities.c
    shown = _in_scope(principal, links.community_id)
    if principal.role not in scope.STAFF:
        # As in the list: drafts are the organisers' business.
        shown.append(links.status != ActivityStatus.DRAFT)
    rows = uow.repo.text_search(
        ACTIVITY_TEXT,
        [a.id.in_(select(links.activity_id).where(*shown))],
        terms,
        [a.id, a.title, a.description, a.community_ids, a.starts_at],
        a.starts_at,
        limit,
    )
    mine = set(principal.community_ids)
    return [
        Found(
            "activity",
            r.id,
            r.title,
            r.description,
            # The caller's own community among those it is for, if it is one of them.
            next((c for c in r.community_ids if c in mine), r.community_ids[0] if r.community_ids else None),
            r.starts_at,
            bool(r.in_title),
        )
        for r in rows
    ]


def _posts(uow: ActivitiesUnitOfWork, principal: Principal, terms: list[str], limit: int) -> list[Found]:
    p = tables.service_posts.c
    rows = uow.repo.text_search(
        POST_TEXT,
        [p.active.is_(True), *_in_scope(principal, p.community_id)],
        terms,
        [p.id, p.name, p.address, p.community_id, p.created_at],
        p.created_at,
        limit,
    )
    return [Found("post", r.id, r.name, r.address, r.community_id, r.created_at, bool(r.in_title)) for r in rows]


def _groups(uow: ActivitiesUnitOfWork, principal: Principal, terms: list[str], limit: int) -> list[Found]:
    g = tables.mutual_aid_groups.c
    rows = uow.repo.text_search(
        GROUP_TEXT,
        [g.active.is_(True), *_in_scope(principal, g.community_id)],
        terms,
        [g.id, g.name, g.purpose, g.community_id, g.created_at],
        g.created_at,
        limit,
    )
    return [Found("group", r.id, r.name, r.purpose, r.community_id, r.created_at, bool(r.in_title)) for r in rows]


def _talents(uow: ActivitiesUnitOfWork, principal: Principal, terms: list[str], limit: int) -> list[Found]:
    t = tables.talents.c
    where = [t.active.is_(True), *_in_scope(principal, t.community_id)]
    if principal.role not in scope.STAFF:
        # As in the list: residents see a talent once staff vetted them (and their own entry).
        where.append(or_(t.vetting_status == Vetting.APPROVED, t.user_id == principal.user_id))
    rows = uow.repo.text_search(
        TALENT_TEXT,
        where,
        terms,
        [t.id, t.display_name, t.skills, t.description, t.community_id, t.created_at],
        t.created_at,
        limit,
    )
    return [
        Found(
            "talent",
            r.id,
            r.display_name,
            " ".join(filter(None, ["、".join(r.skills), r.description])),
            r.community_id,
            r.created_at,
            bool(r.in_title),
        )
        for r in rows
    ]


def _utc(value: datetime | None) -> datetime:
    # SQLite hands stored UTC instants back naive.
    if value is None:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SEARCHES = {"activity": _activities, "post": _posts, "group": _groups, "talent": _talents}


def search(
    uow: ActivitiesUnitOfWork, principal: Principal, terms: list[str], kinds: list[str], limit: int
) -> list[Found]:
    """What the caller may see of `kinds` holding every term: titles holding them all first, then the
    latest, at most `limit` in all."""
    with uow:
        found = [hit for kind in KINDS if kind in kinds for hit in SEARCHES[kind](uow, principal, terms, limit)]
    found.sort(key=lambda f: (not f.in_title, -_utc(f.date).timestamp()))
    return found[:limit]
