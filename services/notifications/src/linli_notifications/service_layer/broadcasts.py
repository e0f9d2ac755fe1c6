"""Community-wide notices: stored at once, planned in bulk by the worker in resumable chunks."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal, Role
from linli_kit.db import Database
from linli_kit.errors import Forbidden, Invalid, Text
from linli_notifications.adapters import repository
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.adapters.repository import Write
from linli_notifications.adapters.tables import broadcasts
from linli_notifications.domain.clock import Clock
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.planning import prepare_claimed_plan

if TYPE_CHECKING:
    from linli_notifications.service_layer.delivery import Deliverer

CHUNK = 5000
# On SQLite every writer waits for the one write lock while a chunk is written: keep chunks small.
SQLITE_CHUNK = 200
AUTHORS = (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)
# On PostgreSQL the next chunk is read and built while one is written (False: one after the other).
READ_AHEAD = True


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
    sms_body_limit: int | None = None,
) -> dict:
    """Store a broadcast for the worker to plan. `sms_body_limit`: the most characters an SMS
    may carry of its body (Alibaba Cloud's template variable: 35), None when any length goes."""
    principal.require_role(*AUTHORS)
    if not principal.can_access_community(community_id, street_of):
        raise Forbidden("outside your community scope")
    if Channel.SMS.value in channels and sms_body_limit is not None and len(body) > sms_body_limit:
        # Refused now rather than failed for every resident later: split it into short notices,
        # or send the long text by app push alone.
        raise Invalid(
            "broadcast too long for SMS",
            fields={
                "body": [
                    Text(
                        "an SMS broadcast carries at most {sms_body_limit} characters of body (the SMS "
                        "provider's template variable); shorten it or send it by push only",
                        sms_body_limit=sms_body_limit,
                    )
                ]
            },
        )
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


def plan_broadcasts(database: Database, clock: Clock, city_timezone: str, deliverer: Deliverer | None = None) -> int:
    """Plan every broadcast still planning, chunk by chunk; return the deliveries planned.

    Each chunk is read (members, preferences) without a write lock, then written in a transaction of
    its own with the broadcast's cursor. The cursor moves only from the value the chunk was read
    after, so two planners never plan one chunk twice, and a crash resumes after the last chunk.
    On PostgreSQL the next chunk is read and built (on a thread of its own) while this one is
    written, as if this one will commit: should its cursor not move, what was read ahead is dropped.

    With a `deliverer` (the worker's), on PostgreSQL, the deliveries due now are written already
    claimed (`prepare_claimed_plan`) and handed to it once their chunk has committed: the providers
    get a chunk while the next one is planned, and no delivery is updated to be claimed. Returns
    once every chunk handed over is recorded."""
    reads = ReadSessions(database)
    chunk = SQLITE_CHUNK if database.is_sqlite else CHUNK
    total = 0
    try:
        total = _plan_all(database, reads, clock, city_timezone, chunk, deliverer)
    finally:
        if deliverer is not None:
            deliverer.settle()
    return total


@dataclass
class _Chunk:
    """A chunk read after `after` (the cursor it was read from) and built, ready to be written."""

    after: str | None
    users: list[str]
    planned: int
    write: Write | None
    claimed: list[dict[str, Any]]


def _plan_all(
    database: Database,
    reads: ReadSessions,
    clock: Clock,
    city_timezone: str,
    chunk: int,
    deliverer: Deliverer | None,
) -> int:
    total = 0
    with reads.reading() as session:
        pending = session.execute(select(broadcasts).where(broadcasts.c.state == "planning")).mappings().all()
    if not pending:
        return 0
    # SQLite's reads share one connection and its writes one lock: nothing to gain from reading ahead.
    ahead = (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcast-read")
        if READ_AHEAD and not database.is_sqlite
        else None
    )
    try:
        for b in pending:
            with reads.reading() as session:
                cursor = session.scalar(select(broadcasts.c.cursor).where(broadcasts.c.id == b["id"]))
            total += _plan_broadcast(database, reads, clock, city_timezone, chunk, deliverer, b, cursor, ahead)
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True)  # a chunk read ahead and dropped: nothing of it was written
    return total


def _plan_broadcast(
    database: Database,
    reads: ReadSessions,
    clock: Clock,
    city_timezone: str,
    chunk: int,
    deliverer: Deliverer | None,
    b: Mapping[str, Any],
    cursor: str | None,
    ahead: ThreadPoolExecutor | None,
) -> int:
    """Plan broadcast `b` from `cursor` on; the deliveries planned (none when another planner has it)."""
    total = 0

    def read(after: str | None) -> Future[_Chunk]:
        if ahead is not None:
            return ahead.submit(_read_chunk, database, reads, clock, city_timezone, chunk, deliverer, b, after)
        done: Future[_Chunk] = Future()
        done.set_result(_read_chunk(database, reads, clock, city_timezone, chunk, deliverer, b, after))
        return done

    coming = read(cursor)
    while True:
        this = coming.result()
        if this.users and ahead is not None:
            coming = read(this.users[-1])  # read ahead while this chunk is written
        with database.transaction() as session:
            same_cursor = broadcasts.c.cursor.is_(None) if this.after is None else broadcasts.c.cursor == this.after
            if this.write is None:
                session.execute(
                    update(broadcasts)
                    .where(broadcasts.c.id == b["id"], broadcasts.c.state == "planning", same_cursor)
                    .values(state="planned", planned_at=clock())
                )
                return total
            moved = session.execute(
                update(broadcasts)
                .where(broadcasts.c.id == b["id"], same_cursor)
                .values(cursor=this.users[-1], planned_count=broadcasts.c.planned_count + len(this.users))
            ).rowcount
            if not moved:
                return total  # another planner took this chunk: it carries on from there
            this.write(session)
            total += this.planned
        # Committed: the claimed rows are the deliverer's (never handed over before the commit).
        if this.claimed and deliverer is not None:
            deliverer.hand_over(this.claimed)
        if ahead is None:
            coming = read(this.users[-1])


def _read_chunk(
    database: Database,
    reads: ReadSessions,
    clock: Clock,
    city_timezone: str,
    chunk: int,
    deliverer: Deliverer | None,
    b: Mapping[str, Any],
    after: str | None,
) -> _Chunk:
    """The members after `after` (at most `chunk`), with their preferences, built into rows before
    the write transaction: it holds the write lock only to store them."""
    with reads.reading() as session:
        members = repository.community_recipients(
            session, b["community_id"], after=after, limit=chunk, city_timezone=city_timezone
        )
        users = [m.user_id for m in members]
        prefs = repository.community_preferences(session, b["community_id"], users[0], users[-1]) if users else {}
    if not users:
        return _Chunk(after, users, 0, None, [])
    now = clock()
    lease = now + timedelta(seconds=deliverer.config.lease_seconds) if deliverer is not None else None
    planned, write, claimed = prepare_claimed_plan(
        database.engine.dialect,
        [_intent(b, users)],
        {m.user_id: m for m in members},
        prefs,
        now,
        lease_until=lease,
    )
    return _Chunk(after, users, planned, write, claimed)


def _intent(b: Mapping[str, Any], users: list[str]) -> Intent:
    return Intent(
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
