"""What a person manages for themselves: inbox, devices, preferences and quiet hours, follows;
and what staff may read (deliveries of their communities, statistics)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, delete, func, select, update
from sqlalchemy.orm import Session

from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden, Invalid, NotFound, Text
from linli_kit.periods import Period
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import (
    attempts,
    broadcasts,
    deliveries,
    devices,
    follows,
    notifications,
    preferences,
    recipients,
    replica,
)
from linli_notifications.domain.access import GATED_SUBJECTS, Reader
from linli_notifications.domain.model import DEFAULT_CHANNELS, Category, Channel
from linli_notifications.domain.policy import MANDATORY, parse_hhmm
from linli_notifications.service_layer.planning import delivery_key

StreetOf = Callable[[str], str | None]


# --- inbox --------------------------------------------------------------------------------------
# What the inbox shows of a notice (the API's NotificationSchema), not the planning's own columns.
INBOX_NAMES = ("id", "kind", "category", "urgent", "title", "body", "community_id", "subject_type", "subject_id",
               "created_at", "read_at")  # fmt: skip
INBOX_COLUMNS = tuple(notifications.c[name] for name in INBOX_NAMES)


def list_inbox(
    session: Session, principal: Principal, *, unread: bool | None, category: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    conditions = [notifications.c.user_id == principal.user_id]
    if unread is True:
        conditions.append(notifications.c.read_at.is_(None))
    elif unread is False:
        conditions.append(notifications.c.read_at.isnot(None))
    if category:
        conditions.append(notifications.c.category == category)
    # The total rides along with the page (one round trip), as a subquery PostgreSQL runs once; a
    # page past the end has no row to carry it, and is counted on its own.
    total = select(func.count()).select_from(notifications).where(*conditions).scalar_subquery()
    rows = session.execute(
        select(*INBOX_COLUMNS, total.label("total"))
        .where(*conditions)
        .order_by(notifications.c.created_at.desc(), notifications.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    if not rows:
        return [], session.scalar(select(total)) if offset else 0
    # Plain str keys (the row's are SQLAlchemy's names), as the API writes them with orjson.
    return [dict(zip(INBOX_NAMES, r, strict=False)) for r in rows], rows[0].total


def get_notification(session: Session, principal: Principal, notification_id: str) -> dict:
    row = session.execute(select(notifications).where(notifications.c.id == notification_id)).mappings().first()
    if row is None or row["user_id"] != principal.user_id:
        raise NotFound("notification {notification_id} not found", notification_id=notification_id)
    return dict(row)


def mark_read(session: Session, principal: Principal, notification_id: str, now: datetime) -> dict:
    row = get_notification(session, principal, notification_id)
    if row["read_at"] is None:
        session.execute(update(notifications).where(notifications.c.id == notification_id).values(read_at=now))
        session.commit()
        row["read_at"] = now
    return row


def mark_all_read(session: Session, principal: Principal, now: datetime) -> int:
    result = session.execute(
        update(notifications)
        .where(notifications.c.user_id == principal.user_id, notifications.c.read_at.is_(None))
        .values(read_at=now)
    )
    session.commit()
    return result.rowcount or 0


def unread_count(session: Session, principal: Principal) -> int:
    return session.scalar(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.user_id == principal.user_id, notifications.c.read_at.is_(None))
    )


# --- devices ------------------------------------------------------------------------------------
def register_device(
    session: Session,
    principal: Principal,
    *,
    platform: str,
    provider: str,
    token: str,
    now: datetime,
    push_keys: dict[str, str] | None = None,
) -> dict:
    """Register (or move to this user) a device token, or a Web Push subscription (its endpoint as
    the token, its keys as `push_keys`); registering again revives a pruned one."""
    existing = (
        session.execute(select(devices).where(devices.c.provider == provider, devices.c.token == token))
        .mappings()
        .first()
    )
    if existing is None:
        row = {
            "id": str(uuid.uuid4()),
            "user_id": principal.user_id,
            "platform": platform,
            "provider": provider,
            "token": token,
            "push_keys": push_keys,
            "created_at": now,
            "last_seen_at": now,
            "pruned_at": None,
            "pruned_reason": None,
        }
        session.execute(devices.insert().values(**row))
    else:
        # A phone changes hands (or accounts): the token now belongs to whoever registered it last.
        session.execute(
            update(devices)
            .where(devices.c.id == existing["id"])
            .values(
                user_id=principal.user_id,
                platform=platform,
                push_keys=push_keys,
                last_seen_at=now,
                pruned_at=None,
                pruned_reason=None,
            )
        )
        row = {
            **existing,
            "user_id": principal.user_id,
            "platform": platform,
            "push_keys": push_keys,
            "last_seen_at": now,
            "pruned_at": None,
            "pruned_reason": None,
        }
    session.commit()
    return row


def list_devices(session: Session, principal: Principal, *, offset: int, limit: int) -> tuple[list[dict], int]:
    mine = devices.c.user_id == principal.user_id
    total = session.scalar(select(func.count()).select_from(devices).where(mine))
    rows = session.execute(
        select(devices).where(mine).order_by(devices.c.created_at, devices.c.id).offset(offset).limit(limit)
    ).mappings()
    return [dict(r) for r in rows], total


def delete_device(session: Session, principal: Principal, device_id: str) -> None:
    result = session.execute(delete(devices).where(devices.c.id == device_id, devices.c.user_id == principal.user_id))
    if not result.rowcount:
        raise NotFound("device {device_id} not found", device_id=device_id)
    session.commit()


STALE_DEVICE_DAYS = 270


def _stale(now: datetime, days: int) -> tuple:
    return devices.c.pruned_at.is_(None), devices.c.last_seen_at < now - timedelta(days=days)


def has_stale_devices(session: Session, now: datetime, days: int = STALE_DEVICE_DAYS) -> bool:
    return session.scalar(select(select(devices.c.id).where(*_stale(now, days)).exists()))


def prune_stale_devices(session: Session, now: datetime, days: int = STALE_DEVICE_DAYS) -> int:
    """Tokens not seen for `days` are dropped (JPush forgets inactive ids after 255 days, FCM after 270)."""
    result = session.execute(
        update(devices).where(*_stale(now, days)).values(pruned_at=now, pruned_reason="not seen for a long time")
    )
    return result.rowcount or 0


# --- preferences --------------------------------------------------------------------------------
def _recipient(session: Session, user_id: str) -> dict:
    row = session.execute(select(recipients).where(recipients.c.user_id == user_id)).mappings().first()
    if row is None:
        raise NotFound("no recipient profile yet for this account")
    return dict(row)


def get_preferences(session: Session, principal: Principal, city_timezone: str) -> dict:
    person = _recipient(session, principal.user_id)
    chosen = repository.load_preferences(session, [principal.user_id]).get(principal.user_id, {})
    items = []
    for category in Category:
        for channel in Channel:
            default = channel in DEFAULT_CHANNELS[category]
            items.append(
                {
                    "category": category.value,
                    "channel": channel.value,
                    "enabled": chosen.get((category.value, channel.value), default),
                    "default": default,
                    "mandatory": category in MANDATORY,
                }
            )
    return {
        "quiet_hours": {"start": person["quiet_start"], "end": person["quiet_end"]},
        "timezone": person["timezone"] or city_timezone,
        "items": items,
    }


def set_preferences(session: Session, principal: Principal, body: dict) -> None:
    """Store the caller's choices (checked first: a bad one changes nothing)."""
    problems: dict[str, list[str]] = {}
    for index, item in enumerate(body.get("items") or []):
        if Category(item["category"]) in MANDATORY and not item["enabled"]:
            problems[f"items.{index}"] = [Text("{category} messages cannot be switched off", category=item["category"])]
    quiet = body.get("quiet_hours")
    if quiet:
        for key in ("start", "end"):
            try:
                parse_hhmm(quiet[key])
            except (ValueError, KeyError):
                problems[f"quiet_hours.{key}"] = ["expected HH:MM"]
    zone = body.get("timezone")
    if zone:
        try:
            ZoneInfo(zone)
        except Exception:  # noqa: BLE001 - any failure means an unknown zone
            problems["timezone"] = ["unknown time zone"]
    if problems:
        raise Invalid("invalid preferences", fields=problems)
    person = _recipient(session, principal.user_id)
    for item in body.get("items") or []:
        session.execute(
            delete(preferences).where(
                preferences.c.user_id == principal.user_id,
                preferences.c.category == item["category"],
                preferences.c.channel == item["channel"],
            )
        )
        session.execute(
            preferences.insert().values(
                user_id=principal.user_id, category=item["category"], channel=item["channel"], enabled=item["enabled"]
            )
        )
    changes = {}
    if quiet:
        changes.update(quiet_start=quiet["start"], quiet_end=quiet["end"])
    if zone:
        changes["timezone"] = zone
    if changes:
        session.execute(update(recipients).where(recipients.c.user_id == person["user_id"]).values(**changes))
    session.commit()


# --- follows ------------------------------------------------------------------------------------
def reader_of(principal: Principal) -> Reader:
    """The caller as a reader, from their token (what the gateway says now)."""
    return Reader(
        user_id=principal.user_id,
        role=principal.role.value,
        community_ids=frozenset(principal.community_ids),
        street_id=principal.street_id,
        organisation_id=principal.organisation_id,
    )


def follow(
    session: Session, principal: Principal, street_of: StreetOf, *, target_type: str, target_id: str, now: datetime
) -> dict:
    if target_type == "community" and not principal.can_access_community(target_id, street_of):
        raise Forbidden("you can only follow communities in your scope")
    if target_type in GATED_SUBJECTS:
        # Scope before state: what the caller may not read answers exactly as what does not exist.
        subject = repository.load_subject(session, target_type, target_id)
        if subject is None or not subject.readable_by(reader_of(principal)):
            raise NotFound("nothing to follow with that id")
    row = {
        "user_id": principal.user_id,
        "target_type": target_type,
        "target_id": target_id,
        "reason": "followed",
        "created_at": now,
    }
    repository.insert_ignore(session, follows, [row], ["target_type", "target_id", "user_id"])
    session.commit()
    return row


FOLLOWABLE = ("community", "issue", "meeting")


def unfollow(session: Session, principal: Principal, *, target_type: str, target_id: str) -> None:
    if target_type not in FOLLOWABLE:
        raise NotFound("not following that")  # nothing else can be followed: no need to look
    result = session.execute(
        delete(follows).where(
            follows.c.user_id == principal.user_id,
            follows.c.target_type == target_type,
            follows.c.target_id == target_id,
        )
    )
    if not result.rowcount:
        raise NotFound("not following that")
    session.commit()


def list_follows(session: Session, principal: Principal, *, offset: int, limit: int) -> tuple[list[dict], int]:
    mine = follows.c.user_id == principal.user_id
    total = session.scalar(select(func.count()).select_from(follows).where(mine))
    rows = session.execute(
        select(follows)
        .where(mine)
        .order_by(follows.c.created_at, follows.c.target_type, follows.c.target_id)
        .offset(offset)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows], total


# --- staff reads --------------------------------------------------------------------------------
STAFF_READERS = (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)


def _scope_condition(principal: Principal, column):  # noqa: ANN001, ANN202 - a SQL expression
    if principal.role == Role.CITY_ADMIN:
        return None
    if principal.role == Role.STREET_OFFICIAL:
        return column.in_(
            select(replica.communities.c.community_id).where(replica.communities.c.street_id == principal.street_id)
        )
    return column.in_(list(principal.community_ids))


def list_deliveries(
    session: Session, principal: Principal, *, filters: dict, offset: int, limit: int
) -> tuple[list[dict], int]:
    """Deliveries of the caller's communities (without addresses: staff see states, not phones)."""
    principal.require_role(*STAFF_READERS)
    conditions = []
    scope = _scope_condition(principal, deliveries.c.community_id)
    if scope is not None:
        conditions.append(scope)
    for key in ("state", "channel", "community_id", "notification_id", "user_id"):
        if filters.get(key):
            conditions.append(deliveries.c[key] == str(filters[key]))
    if filters.get("notification_id"):
        conditions += _by_notice_keys(session, str(filters["notification_id"]))
    total = session.scalar(select(func.count()).select_from(deliveries).where(*conditions))
    rows = session.execute(
        select(deliveries).where(*conditions).order_by(deliveries.c.created_at.desc()).offset(offset).limit(limit)
    ).mappings()
    return [dict(r) for r in rows], total


def _by_notice_keys(session: Session, notification_id: str) -> list:
    """The deliveries of a notice are those with its keys (`delivery_key`: its source, its recipient,
    a channel), found by the unique index on the key: the index by notice holds reminders only
    (tables.py). Nothing more when the notice was pruned (its deliveries stay; the filter on the
    notice's id finds them)."""
    notice = session.execute(
        select(notifications.c.source_key, notifications.c.user_id).where(notifications.c.id == notification_id)
    ).first()
    if notice is None:
        return []
    return [deliveries.c.key.in_([delivery_key(notice.source_key, notice.user_id, channel) for channel in Channel])]


def get_delivery(session: Session, principal: Principal, street_of: StreetOf, delivery_id: str) -> dict:
    row = session.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().first()
    if row is None:
        raise NotFound("delivery {delivery_id} not found", delivery_id=delivery_id)
    mine = row["user_id"] == principal.user_id
    if not mine:
        principal.require_role(*STAFF_READERS)
        if row["community_id"] is None or not principal.can_access_community(row["community_id"], street_of):
            raise NotFound("delivery {delivery_id} not found", delivery_id=delivery_id)
    tried = session.execute(
        select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
    ).mappings()
    return {**row, "attempt_log": [dict(a) for a in tried]}


def get_broadcast(session: Session, principal: Principal, street_of: StreetOf, broadcast_id: str) -> dict:
    row = session.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id)).mappings().first()
    if row is None or not principal.can_access_community(row["community_id"], street_of):
        raise NotFound("broadcast {broadcast_id} not found", broadcast_id=broadcast_id)
    counts = dict(
        session.execute(
            select(deliveries.c.state, func.count())
            # Both conditions: the second lets the partial index ix_deliveries_broadcast_state serve.
            .where(deliveries.c.batch_key == f"broadcast:{broadcast_id}", deliveries.c.source_type == "broadcast")
            .group_by(deliveries.c.state)
        ).all()
    )
    return {**row, "deliveries": counts}


def stats(
    session: Session,
    principal: Principal,
    street_of: StreetOf,
    *,
    community_id: str | None,
    street_id: str | None,
    period: Period,
    city_timezone: str,
    by: str = "community",
) -> dict:
    """Deliveries by state and channel for a community, a street or the city, per month; the rows
    beside the totals per community, or with `by` "street" per street."""
    principal.require_role(*STAFF_READERS)
    first, after = period.instants(city_timezone)
    conditions = [
        deliveries.c.created_at >= first,
        deliveries.c.created_at < after,
        deliveries.c.community_id.isnot(None),
    ]
    if community_id:
        principal.require_community(community_id, street_of)
        conditions.append(deliveries.c.community_id == community_id)
    elif street_id:
        if principal.role == Role.COMMUNITY_STAFF or (
            principal.role == Role.STREET_OFFICIAL and principal.street_id != street_id
        ):
            raise Forbidden("outside your scope")
        conditions.append(
            deliveries.c.community_id.in_(
                select(replica.communities.c.community_id).where(replica.communities.c.street_id == street_id)
            )
        )
    else:
        scope = _scope_condition(principal, deliveries.c.community_id)
        if scope is not None:
            if principal.role == Role.COMMUNITY_STAFF:
                raise Forbidden("community staff must name their community")
            conditions.append(scope)
    figures = [
        func.sum(func.cast(deliveries.c.state.in_(["sent", "delivered"]), Integer)).label("sent"),
        func.sum(func.cast(deliveries.c.state == "delivered", Integer)).label("delivered"),
        func.sum(func.cast(deliveries.c.state == "failed", Integer)).label("failed"),
        func.sum(func.cast(deliveries.c.state == "suppressed", Integer)).label("suppressed"),
        func.sum(func.cast(deliveries.c.channel == "sms", Integer)).label("sms"),
        func.sum(func.cast(deliveries.c.channel == "push", Integer)).label("push"),
        func.count().label("planned"),
    ]

    def pack(row) -> dict[str, int]:  # noqa: ANN001
        return {n: int(getattr(row, n) or 0) for n in _FIGURES}

    totals = session.execute(select(*figures).where(*conditions)).first()
    if by == "street":
        street = replica.communities.c.street_id
        groups = session.execute(
            select(street.label("street_id"), *figures)
            .select_from(
                deliveries.outerjoin(
                    replica.communities, replica.communities.c.community_id == deliveries.c.community_id
                )
            )
            .where(*conditions)
            .group_by(street)
        ).all()
        by_community, by_street = [], sorted(groups, key=lambda r: r.street_id or "")
    else:
        by_community = session.execute(
            select(deliveries.c.community_id, *figures)
            .where(*conditions)
            .group_by(deliveries.c.community_id)
            .order_by(deliveries.c.community_id)
        ).all()
        by_street = []
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(func.timezone(city_timezone, deliveries.c.created_at), "YYYY-MM")
        monthly = [
            {"month": r.month, **pack(r)}
            for r in session.execute(
                select(month.label("month"), *figures).where(*conditions).group_by(month).order_by(month)
            )
        ]
    else:
        monthly = _monthly_by_quarter_hours(session, conditions, figures, city_timezone, pack)
    return {
        "scope": {"community_id": community_id, "street_id": street_id},
        "period": period.as_dict(),
        "totals": pack(totals),
        "by_community": [{"community_id": r.community_id, **pack(r)} for r in by_community],
        "by_street": [{"street_id": r.street_id, **pack(r)} for r in by_street],
        "monthly": monthly,
    }


_FIGURES = ("planned", "sent", "delivered", "failed", "suppressed", "sms", "push")
QUARTER_HOUR = 900  # seconds; every time zone's offset from UTC is a whole number of them


def _monthly_by_quarter_hours(session: Session, conditions: list, figures: list, city_timezone: str, pack) -> list:  # noqa: ANN001
    """Months in the city's time zone on SQLite, which stores UTC and knows no time zones: the
    figures are summed per quarter of an hour in SQL, and each quarter put in its local month here."""
    bucket = func.cast(func.strftime("%s", deliveries.c.created_at), Integer) // QUARTER_HOUR
    zone = ZoneInfo(city_timezone)
    months: dict[str, dict[str, int]] = {}
    for row in session.execute(select(bucket.label("bucket"), *figures).where(*conditions).group_by(bucket)):
        local = datetime.fromtimestamp(row.bucket * QUARTER_HOUR, UTC).astimezone(zone)
        sums = months.setdefault(f"{local:%Y-%m}", dict.fromkeys(_FIGURES, 0))
        for name, value in pack(row).items():
            sums[name] += value
    return [{"month": m, **months[m]} for m in sorted(months)]
