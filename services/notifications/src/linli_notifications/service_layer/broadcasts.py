"""Community-wide notices: stored at once, planned in bulk by the worker in resumable chunks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal, Role
from linli_kit.db import Database
from linli_kit.errors import Forbidden
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import broadcasts
from linli_notifications.domain.clock import Clock
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.planning import plan_many

CHUNK = 5000
AUTHORS = (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)


def create_broadcast(
    session: Session,
    principal: Principal,
    street_of: callable,
    *,
    community_id: str,
    title: str,
    body: str,
    urgent: bool,
    channels: list[str],
    now: datetime,
) -> dict:
    principal.require_role(*AUTHORS)
    if not principal.can_access_community(community_id, street_of):
        raise Forbidden("outside your community scope")
    row = {
        "id": str(uuid.uuid4()),
        "community_id": community_id,
        "author_id": principal.user_id,
        "title": title,
        "body": body,
        "urgent": urgent,
        "channels": sorted(set(channels)),
        "state": "planning",
        "cursor": None,
        "planned_count": 0,
        "created_at": now,
        "planned_at": None,
    }
    session.execute(broadcasts.insert().values(**row))
    session.commit()
    return row


def plan_broadcasts(database: Database, clock: Clock, city_timezone: str) -> int:
    """Plan one chunk of every broadcast still planning; return the deliveries planned."""
    total = 0
    with database.session() as session:
        pending = session.execute(select(broadcasts).where(broadcasts.c.state == "planning")).mappings().all()
    for b in pending:
        while True:
            with database.transaction() as session:
                cursor = session.scalar(select(broadcasts.c.cursor).where(broadcasts.c.id == b["id"]))
                members = repository.community_recipients(
                    session, b["community_id"], after=cursor, limit=CHUNK, city_timezone=city_timezone
                )
                if not members:
                    session.execute(
                        update(broadcasts).where(broadcasts.c.id == b["id"]).values(state="planned", planned_at=clock())
                    )
                    break
                users = [m.user_id for m in members]
                prefs = repository.community_preferences(session, b["community_id"], users[0], users[-1])
                intent = Intent(
                    source_key=f"broadcast:{b['id']}",
                    source_type="broadcast",
                    kind="broadcast.notice",
                    category=Category.SAFETY if b["urgent"] else Category.BROADCAST,
                    user_ids=tuple(users),
                    params={"title": b["title"], "body": b["body"]},
                    urgent=b["urgent"],
                    community_id=b["community_id"],
                    subject_type="broadcast",
                    subject_id=b["id"],
                    channels=frozenset(Channel(c) for c in b["channels"]),
                )
                planned = plan_many(
                    session,
                    [intent],
                    clock(),
                    city_timezone,
                    known=({m.user_id: m for m in members}, prefs),
                    fresh=True,
                )
                total += planned
                session.execute(
                    update(broadcasts)
                    .where(broadcasts.c.id == b["id"])
                    .values(cursor=users[-1], planned_count=broadcasts.c.planned_count + len(users))
                )
    return total
