"""Stage one: turn an intent into inbox entries and deliveries, in the caller's transaction.

Every row has a key made of its source and recipient (and channel for deliveries) and is inserted
with "on conflict do nothing": a redelivered event, a re-fired reminder or a resumed broadcast
never plans twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from linli_kit.errors import Invalid
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import PLAN_DECISION_ARRAYS, PLAN_GROUP_ARRAYS, deliveries, notifications
from linli_notifications.domain.access import Subject, who_may_read
from linli_notifications.domain.model import Channel, DeliveryState, Intent, PlannedDelivery, Recipient
from linli_notifications.domain.policy import plan_for
from linli_notifications.domain.templates import render_notice

_NAMESPACE = uuid.UUID("6f1d3c38-61a4-4c1e-9d2b-6b0c1d8f7e11")


_NAMESPACE_BYTES = _NAMESPACE.bytes


def stable_id(*parts: str) -> str:
    """The same id for the same source and recipient, so a replay finds the row it made before:
    `uuid.uuid5(_NAMESPACE, "|".join(parts))`, written out (a broadcast makes 50,000 of them, and
    a batch of events two per event: the UUID object and its checks cost four times the hash). The
    version and variant go into the hex digest as characters, not as bits of a byte array."""
    h = hashlib.sha1(_NAMESPACE_BYTES + "|".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_RFC_4122_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# The 17th hex digit of a UUID with its two top bits set to the RFC 4122 variant (10xx).
_RFC_4122_VARIANT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


def random_id() -> str:
    """`str(uuid.uuid4())`, written out: every delivery gets one, and the UUID object costs three
    times the random bytes (5 % of the consumer's time on a burst of events)."""
    digest = bytearray(os.urandom(16))
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return _as_uuid_text(digest)


def _as_uuid_text(digest: bytearray) -> str:
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def delivery_key(source_key: str, recipient: str, channel: Channel) -> str:
    return f"{source_key}|{recipient}|{channel.value}"


def plan(session: Session, intent: Intent, now: datetime, city_timezone: str) -> int:
    """Plan `intent` for its users; return the number of deliveries inserted."""
    return plan_many(session, [intent], now, city_timezone)


@dataclass
class PlannedRows:
    """The rows an intent becomes: inbox entries and deliveries, built before any write."""

    inbox: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def plan_many(
    session: Session,
    intents: list[Intent],
    now: datetime,
    city_timezone: str,
    *,
    seen: Sequence[Mapping[tuple[str, str], Subject | None] | None] | None = None,
    defer: Callable[[Session, dict[str, Any]], None] | None = None,
) -> int:
    """Plan several intents with one look-up of their recipients and one write: one statement on
    PostgreSQL (`insert_groups`), one insert per table on SQLite (`insert_rows`).
    `seen`, when given, holds for each intent the subjects it is about as they were when it was
    made (see `only_readers`), or None to read them now. `defer`, when given (PostgreSQL only),
    is handed the statement's values instead of running it (see `service_layer/deferred.py`);
    the rows are then inserted later, and 0 is returned."""
    intents = only_readers(session, intents, seen)
    everyone = sorted({u for intent in intents for u in intent.user_ids})
    if not everyone:
        return 0
    found = repository.load_recipients(session, everyone, city_timezone)
    prefs = repository.load_preferences(session, everyone)
    if session.get_bind().dialect.name == "postgresql":
        if defer is None:
            return insert_groups(session, intents, found, prefs, now)
        values = group_values(intents, found, prefs, now)
        if values is not None:
            defer(session, values)
        return 0
    return insert_rows(session, intents, found, prefs, now)


def insert_rows(
    session: Session, intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> int:
    """`plan_many`'s writes row by row (SQLite's way): the rows `build_rows` makes, each inserted
    unless its key is there; the number of deliveries inserted."""
    rows = build_rows(intents, found, prefs, now)
    # A notice and its deliveries share their parameters object: encoded once for both tables.
    encode = repository.json_encoder()
    repository.insert_ignore(session, notifications, rows.inbox, ["source_key", "user_id"], encode=encode)
    return repository.insert_ignore(session, deliveries, rows.deliveries, ["key"], encode=encode)


# --- a batch of events, set-based on PostgreSQL --------------------------------------------------
# The recipients of a batch's intents in groups told alike (see `group_alike`), all in one statement:
# the groups' values and the recipients' ids and phones go as arrays (one text literal each), and
# PostgreSQL makes the rows by joining each recipient to its group and its group's decisions. The
# rows come out in the order `build_rows` makes them (`ORDER BY` the ordinals), so that where two
# rows of a batch collide the first is kept, as row by row. Rows collide only where two intents
# share a source key (an intent names each user once, and each channel once): a batch without such
# a pair is inserted unordered (`_PLAN_FROM_GROUPS_UNORDERED`), saving PostgreSQL the sorts. The
# notices are inserted by the data-modifying CTE, which runs to completion whether or not it is
# read. A group's JSON values are parsed once, in `grp` (read twice, so computed once), not once
# for each row made from it.
_PLAN_FROM_GROUPS = (
    "WITH grp AS (SELECT g.*, CAST(g.params AS JSON) AS params_json, CAST(g.about AS JSON) AS about_json "
    "FROM unnest(CAST(%(source_keys)s AS VARCHAR[]), CAST(%(source_types)s AS VARCHAR[]), "
    "CAST(%(kinds)s AS VARCHAR[]), CAST(%(categories)s AS VARCHAR[]), CAST(%(urgent)s AS BOOLEAN[]), "
    "CAST(%(titles)s AS VARCHAR[]), CAST(%(bodies)s AS VARCHAR[]), CAST(%(params)s AS VARCHAR[]), "
    "CAST(%(community_ids)s AS VARCHAR[]), CAST(%(subject_types)s AS VARCHAR[]), "
    "CAST(%(subject_ids)s AS VARCHAR[]), CAST(%(abouts)s AS VARCHAR[]), CAST(%(locales)s AS VARCHAR[]), "
    "CAST(%(batch_keys)s AS VARCHAR[]), CAST(%(expires)s AS TIMESTAMPTZ[])) WITH ORDINALITY "
    "AS g(source_key, source_type, kind, category, urgent, title, body, params, community_id, subject_type, "
    "subject_id, about, locale, batch_key, expires_at, no)), "
    "person AS (SELECT * FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(user_ids)s AS VARCHAR[]), "
    "CAST(%(phones)s AS VARCHAR[]), CAST(%(groups)s AS INTEGER[])) WITH ORDINALITY AS u(id, user_id, phone, g, n)), "
    "inbox AS (INSERT INTO notifications (id, user_id, source_key, source_type, kind, category, urgent, title, "
    "body, params, community_id, subject_type, subject_id, about, created_at, read_at) "
    "SELECT u.id, u.user_id, g.source_key, g.source_type, g.kind, g.category, g.urgent, g.title, g.body, "
    "g.params_json, g.community_id, g.subject_type, g.subject_id, g.about_json, %(now)s, NULL "
    "FROM person AS u JOIN grp AS g ON g.no = u.g ORDER BY u.n ON CONFLICT (source_key, user_id) DO NOTHING) "
    "INSERT INTO deliveries (id, key, notification_id, user_id, channel, address, locale, kind, batch_key, "
    "params, urgent, state, reason, community_id, source_type, provider, providers_tried, "
    "provider_message_id, attempts, segments, next_attempt_at, lease_until, outcome_unknown, expires_at, "
    "created_at, sent_at, finished_at) "
    "SELECT CAST(gen_random_uuid() AS VARCHAR), g.source_key || '|' || u.user_id || '|' || d.channel, u.id, "
    "u.user_id, d.channel, CASE WHEN d.channel = 'sms' THEN u.phone END, g.locale, g.kind, g.batch_key, "
    "g.params_json, g.urgent, d.state, d.reason, g.community_id, g.source_type, NULL, "
    "CAST('[]' AS JSON), NULL, 0, NULL, d.not_before, NULL, false, g.expires_at, %(now)s, NULL, d.finished_at "
    "FROM person AS u JOIN grp AS g ON g.no = u.g "
    "JOIN unnest(CAST(%(decided)s AS INTEGER[]), CAST(%(channels)s AS VARCHAR[]), CAST(%(states)s AS VARCHAR[]), "
    "CAST(%(reasons)s AS VARCHAR[]), CAST(%(not_before)s AS TIMESTAMPTZ[]), CAST(%(finished)s AS TIMESTAMPTZ[])) "
    "WITH ORDINALITY AS d(g, channel, state, reason, not_before, finished_at, n) ON d.g = u.g "
    "ORDER BY u.n, d.n ON CONFLICT (key) DO NOTHING"
)
_PLAN_FROM_GROUPS_UNORDERED = _PLAN_FROM_GROUPS.replace(" ORDER BY u.n, d.n ", " ").replace(" ORDER BY u.n ", " ")
# By whether the rows go in in order (`group_values`' "ordered").
PLAN_STATEMENTS = {True: _PLAN_FROM_GROUPS, False: _PLAN_FROM_GROUPS_UNORDERED}


def insert_groups(
    session: Session, intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> int:
    """What `insert_rows` inserts, on PostgreSQL in one statement of fixed text (`_PLAN_FROM_GROUPS`):
    one decision and one rendering per group of an intent's recipients told alike, and no dict,
    JSON or COPY line per row; the number of deliveries inserted."""
    values = group_values(intents, found, prefs, now)
    return 0 if values is None else insert_planned(session.connection(), values)


def insert_planned(connection: Connection, values: dict[str, Any]) -> int:
    """Run `_PLAN_FROM_GROUPS` with the values `group_values` made (in order where rows of the plan
    may collide); the number of deliveries inserted."""
    return max(connection.exec_driver_sql(PLAN_STATEMENTS[values["ordered"]], values).rowcount, 0)


def group_values(
    intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> dict[str, Any] | None:
    """The values of `_PLAN_FROM_GROUPS` for `intents` (each array as its text literal, the names of
    `tables.PLAN_ARRAYS`), with `now` and `ordered`; None when nobody is to be told."""
    # A row per group (`_group_row`) and per delivery of a group, turned into columns once at the end
    # (`_array_literals`): a batch makes some 800 groups, each of 15 values.
    group_rows: list[tuple] = []
    decided_rows: list[tuple] = []  # (group number, *`_decide_group`'s delivery)
    ids: list[str] = []
    user_ids: list[str] = []
    phones: list[str | None] = []
    numbers: list[str] = []
    rendered: dict[tuple, tuple] = {}
    alike: dict[str, tuple] = {}  # per recipient: what decides and renders (a batch tells its staff often)
    decisions: dict[tuple, list[tuple]] = {}  # per kind of intent and of recipient: the batch's groups share them
    _refuse_naive(now)
    now_text = now.isoformat()
    abouts: dict[tuple, str] = {}  # a batch's notices about one issue share its text
    for intent in intents:
        groups: dict[tuple, str] = {}
        about = abouts.get(intent.about)
        if about is None:
            about = abouts[intent.about] = _to_json([list(key) for key in intent.about] or None)
        source_key = intent.source_key
        for user_id in sorted(set(intent.user_ids)):
            recipient = found.get(user_id)
            if recipient is None:
                continue  # not (yet) known from accounts: nobody to tell
            key = alike.get(user_id)
            if key is None:
                key = alike[user_id] = (recipient.locale, _decision_key(recipient, prefs.get(user_id, {})))
            number = groups.get(key)
            if number is None:
                number = groups[key] = str(len(group_rows) + 1)
                row, bad_params = _group_row(intent, recipient, about, rendered)
                group_rows.append(row)
                # What `plan_for` looks at of the intent, of the recipient (`_decision_key`), and the
                # template's refusal: groups alike in these get the same deliveries.
                expired = intent.expires_at is not None and intent.expires_at <= now
                decision = (intent.urgent, intent.category, intent.channels, expired, key[1], bad_params)
                made = decisions.get(decision)
                if made is None:
                    made = decisions[decision] = _decide_group(
                        intent, recipient, prefs.get(user_id, {}), bad_params, now, now_text
                    )
                decided_rows.extend((number, *delivery) for delivery in made)
            ids.append(stable_id(source_key, user_id))
            user_ids.append(user_id)
            phones.append(recipient.phone)
            numbers.append(number)
    if not ids:
        return None
    values: dict[str, Any] = _array_literals(_GROUP_COLUMNS, group_rows) | _array_literals(
        _DECISION_COLUMNS, decided_rows
    )
    values |= {
        "ids": repository.text_array(ids),
        "user_ids": repository.text_array(user_ids),
        "phones": repository.text_array(phones),
        "groups": "{" + ",".join(numbers) + "}",
        "now": now,
        # Rows collide only where two intents share a source key: then they go in in order.
        "ordered": len({intent.source_key for intent in intents}) != len(intents),
    }
    return values


def _array_literals(names: Sequence[str], rows: list[tuple]) -> dict[str, str]:
    """Each column of `rows` (tuples of text or None, a value per name of `names`) as the text
    literal of an array, by name."""
    columns = zip(*rows, strict=True) if rows else [()] * len(names)
    return {name: repository.text_array(column) for name, column in zip(names, columns, strict=True)}


# `json.dumps(value, ensure_ascii=False)`, with one encoder (a batch encodes two values per group).
_to_json = repository.to_json

_GROUP_COLUMNS = PLAN_GROUP_ARRAYS
_DECISION_COLUMNS = PLAN_DECISION_ARRAYS


def _group_row(
    intent: Intent, recipient: Recipient, about: str, rendered: dict[tuple, tuple]
) -> tuple[tuple, str | None]:
    """A group's values in the order of `_GROUP_COLUMNS`, rendered for `recipient`'s language and
    zone; and the invalid parameters or None."""
    params = {**intent.params, "tz": recipient.timezone}
    title, body, bad_params = _render(intent.kind, recipient.locale, params, recipient.timezone, rendered)
    row = (
        intent.source_key,  # source_keys
        intent.source_type,  # source_types
        intent.kind,  # kinds
        intent.category.value,  # categories
        "t" if intent.urgent else "f",  # urgent
        title[:200],  # titles
        body,  # bodies
        _to_json(params),  # params
        intent.community_id,  # community_ids
        intent.subject_type,  # subject_types
        intent.subject_id,  # subject_ids
        about,  # abouts
        recipient.locale,  # locales
        intent.source_key[:80],  # batch_keys
        _instant_text(intent.expires_at),  # expires
    )
    return row, bad_params


def _decide_group(
    intent: Intent,
    recipient: Recipient,
    preferences: dict,
    bad_params: str | None,
    now: datetime,
    now_text: str,
) -> list[tuple]:
    """The deliveries of a group, decided once for all its recipients (`plan_for`): (channel,
    state, reason, not before, finished at), as the text of their columns."""
    made = []
    for planned in plan_for(intent, recipient, preferences, now).deliveries:
        state, reason = planned.state, planned.reason
        if bad_params and state == DeliveryState.PENDING:
            state, reason = DeliveryState.FAILED, f"invalid template parameters: {bad_params}"
        _refuse_naive(planned.not_before)
        finished = None if state == DeliveryState.PENDING else now_text
        made.append((planned.channel.value, state.value, reason, planned.not_before.isoformat(), finished))
    return made


def _instant_text(instant: datetime | None) -> str | None:
    """An instant as PostgreSQL reads it in an array literal: with its offset (a naive one refused)."""
    if instant is None:
        return None
    _refuse_naive(instant)
    return instant.isoformat()


def _refuse_naive(*instants: datetime | None) -> None:
    """As `UtcDateTime` refuses them on the row-by-row path."""
    for instant in instants:
        if instant is not None and instant.tzinfo is None:
            raise ValueError("naive datetime: times are stored as instants with an offset")


def only_readers(
    session: Session,
    intents: list[Intent],
    seen: Sequence[Mapping[tuple[str, str], Subject | None] | None] | None = None,
) -> list[Intent]:
    """The intents told only to those of their users who may read every subject they are about
    (scope before state: a follower of an issue that became private, or who moved away, is not
    told). A subject this service does not know reads as no. The subjects of intent i are those of
    `seen[i]` when it is given, else read now."""
    gated = [intent for intent in intents if intent.about]
    if not gated:
        return intents
    given = list(seen) if seen is not None else [None] * len(intents)
    to_read = {
        key for intent, s in zip(intents, given, strict=True) if intent.about and s is None for key in intent.about
    }
    known = repository.load_subjects(session, to_read) if to_read else {}
    readers = repository.load_readers(session, {u for intent in gated for u in intent.user_ids})
    kept = []
    for intent, subjects_then in zip(intents, given, strict=True):
        if intent.about:
            lookup = subjects_then if subjects_then is not None else known
            users = who_may_read([lookup.get(key) for key in intent.about], intent.user_ids, readers)
            if users != intent.user_ids:  # most are told to everyone named: the intent as it is
                intent = replace(intent, user_ids=users)
        kept.append(intent)
    return kept


def build_rows(
    intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> PlannedRows:
    """The rows of `intents` for the recipients `found` (with their preferences): no database here,
    so a caller can build them before its write transaction (a broadcast chunk does)."""
    rows = PlannedRows()
    # One render per template, language, zone and parameters across the intents: a burst's
    # registrations for one activity, or its notices to a community's staff, share them.
    rendered: dict[tuple, tuple] = {}
    for intent in intents:
        renders: dict[tuple[str, str], Any] = {}  # one render per language and zone of the intent
        decisions: dict[tuple, list] = {}  # one policy decision per kind of recipient (see _decide)
        about = [list(key) for key in intent.about] or None  # one object per intent: encoded once
        for user_id in sorted(set(intent.user_ids)):
            recipient = found.get(user_id)
            if recipient is None:
                continue  # not (yet) known from accounts: nobody to tell
            planned = _decide(intent, recipient, prefs.get(user_id, {}), now, decisions)
            _plan_one(intent, recipient, planned, rows.inbox, rows.deliveries, renders, rendered, about, now)
    return rows


def prepare_fresh_rows(dialect: Dialect, rows: PlannedRows) -> repository.Write:
    """Rows the caller guarantees are new (a broadcast chunk commits with its cursor), converted now
    and appended when the returned function is called in the caller's transaction; a collision
    would still fail on the unique keys."""
    inbox = repository.prepare_insert(dialect, notifications, rows.inbox)
    planned = repository.prepare_insert(dialect, deliveries, rows.deliveries)

    def write(session: Session) -> None:
        inbox(session)
        planned(session)

    return write


def _decision_key(recipient: Recipient, preferences: dict) -> tuple:
    """What `plan_for` looks at of a recipient: two recipients alike here get the same deliveries."""
    return (
        recipient.timezone,
        recipient.quiet_start,
        recipient.quiet_end,
        recipient.active,
        bool(recipient.phone),
        recipient.sms_opted_out,
        recipient.has_devices,
        frozenset(preferences.items()),
    )


def _decide(intent: Intent, recipient: Recipient, preferences: dict, now: datetime, memo: dict[tuple, list]) -> list:
    """`plan_for`, once per distinct set of what it looks at: a broadcast's thousands of residents
    without preferences, in one zone, with a phone and no opt-out get one decision between them."""
    key = _decision_key(recipient, preferences)
    if key not in memo:
        memo[key] = plan_for(intent, recipient, preferences, now).deliveries
    return memo[key]


# --- a broadcast chunk, set-based on PostgreSQL --------------------------------------------------
@dataclass
class AlikeRecipients:
    """Recipients of one intent told alike: the same rendering (language and zone) and the same
    decisions. Their rows differ only in whose they are, so the database builds them from arrays
    of ids and phones (see `prepare_fresh_plan`)."""

    intent: Intent
    locale: str
    title: str
    body: str
    params: dict[str, Any]
    bad_params: str | None
    deliveries: list[PlannedDelivery]
    user_ids: list[str] = field(default_factory=list)
    phones: list[str | None] = field(default_factory=list)


def group_alike(
    intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> list[AlikeRecipients]:
    """The recipients of `intents` (as `build_rows` plans them) in groups told alike."""
    groups: list[AlikeRecipients] = []
    rendered: dict[tuple, tuple] = {}
    for intent in intents:
        by_key: dict[tuple, AlikeRecipients] = {}
        decisions: dict[tuple, list] = {}
        for user_id in sorted(set(intent.user_ids)):
            recipient = found.get(user_id)
            if recipient is None:
                continue  # not (yet) known from accounts: nobody to tell
            preferences = prefs.get(user_id, {})
            key = (recipient.locale, _decision_key(recipient, preferences))
            group = by_key.get(key)
            if group is None:
                planned = _decide(intent, recipient, preferences, now, decisions)
                params = {**intent.params, "tz": recipient.timezone}
                title, body, bad = _render(intent.kind, recipient.locale, params, recipient.timezone, rendered)
                group = by_key[key] = AlikeRecipients(intent, recipient.locale, title[:200], body, params, bad, planned)
                groups.append(group)
            group.user_ids.append(user_id)
            group.phones.append(recipient.phone)
    return groups


_INBOX_FROM_ARRAYS = (
    "INSERT INTO notifications (id, user_id, source_key, source_type, kind, category, urgent, title, body, "
    "params, community_id, subject_type, subject_id, about, created_at, read_at) "
    "SELECT u.id, u.user_id, %(source_key)s, %(source_type)s, %(kind)s, %(category)s, %(urgent)s, %(title)s, "
    "%(body)s, CAST(%(params)s AS JSON), %(community_id)s, %(subject_type)s, %(subject_id)s, "
    "CAST(%(about)s AS JSON), %(now)s, NULL "
    "FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(user_ids)s AS VARCHAR[])) AS u(id, user_id)"
)
# A delivery's own id is random (as uuid4 makes it in Python; made here, `delivery_ids` is empty and
# unnest pads it with NULL); its key is `delivery_key`'s. A delivery claimed as it is planned
# (`prepare_claimed_plan`) gets its id from Python, which hands the row to the delivery loop.
_DELIVERIES_FROM_ARRAYS = (
    "INSERT INTO deliveries (id, key, notification_id, user_id, channel, address, locale, kind, batch_key, "
    "params, urgent, state, reason, community_id, source_type, provider, providers_tried, "
    "provider_message_id, attempts, segments, next_attempt_at, lease_until, outcome_unknown, expires_at, "
    "created_at, sent_at, finished_at) "
    "SELECT COALESCE(u.delivery_id, CAST(gen_random_uuid() AS VARCHAR)), "
    "%(source_key)s || '|' || u.user_id || '|' || %(channel)s, "
    "u.id, u.user_id, %(channel)s, CASE WHEN %(with_address)s THEN u.phone END, %(locale)s, %(kind)s, "
    "%(batch_key)s, CAST(%(params)s AS JSON), %(urgent)s, %(state)s, %(reason)s, %(community_id)s, "
    "%(source_type)s, NULL, CAST('[]' AS JSON), NULL, 0, NULL, %(not_before)s, %(lease_until)s, false, "
    "%(expires_at)s, %(now)s, NULL, %(finished_at)s "
    "FROM unnest(CAST(%(ids)s AS VARCHAR[]), CAST(%(user_ids)s AS VARCHAR[]), CAST(%(phones)s AS VARCHAR[]), "
    "CAST(%(delivery_ids)s AS VARCHAR[])) AS u(id, user_id, phone, delivery_id)"
)


def prepare_fresh_plan(
    dialect: Dialect, intents: list[Intent], found: dict[str, Recipient], prefs: dict[str, dict], now: datetime
) -> tuple[int, repository.Write]:
    """The rows `build_rows` makes, as rows the caller guarantees are new (see
    `prepare_fresh_rows`): (the number of deliveries, the write to call in the caller's
    transaction). On PostgreSQL each group of recipients told alike is two `INSERT ... SELECT`
    over arrays of their ids and phones, all of fixed text: no row is built, converted or copied
    in Python (a broadcast chunk of 5,000 residents is a few statements). SQLite gets the rows."""
    count, write, _claimed = prepare_claimed_plan(dialect, intents, found, prefs, now, lease_until=None)
    return count, write


def prepare_claimed_plan(
    dialect: Dialect,
    intents: list[Intent],
    found: dict[str, Recipient],
    prefs: dict[str, dict],
    now: datetime,
    *,
    lease_until: datetime | None,
) -> tuple[int, repository.Write, list[dict[str, Any]]]:
    """`prepare_fresh_plan`, and on PostgreSQL with `lease_until` the deliveries due now written
    already claimed: `sending`, leased until `lease_until`, as the delivery loop's claim leaves them
    (so the claim's UPDATE of every row, and its index entries, are saved). Returns them as well, as
    the claim returns its rows (`Deliverer.hand_over` takes them once the write has committed); a
    claimed row not handed over is taken back when its lease runs out, as after any claim. Without
    `lease_until`, or on SQLite, nothing is claimed and the list is empty."""
    if dialect.name != "postgresql":
        rows = build_rows(intents, found, prefs, now)
        return len(rows.deliveries), prepare_fresh_rows(dialect, rows), []
    inbox: list[dict[str, Any]] = []
    planned: list[dict[str, Any]] = []
    claimed: list[dict[str, Any]] = []
    count = 0
    for group in group_alike(intents, found, prefs, now):
        intent = group.intent
        ids = [stable_id(intent.source_key, u) for u in group.user_ids]
        # Arrays as their literals (repository.text_array): psycopg would dump each element in Python.
        shared = {
            "source_key": intent.source_key,
            "source_type": intent.source_type,
            "kind": intent.kind,
            "urgent": intent.urgent,
            "community_id": intent.community_id,
            "params": json.dumps(group.params, ensure_ascii=False),
            "now": now,
            "ids": repository.text_array(ids),
            "user_ids": repository.text_array(group.user_ids),
        }
        inbox.append(
            {
                **shared,
                "category": intent.category.value,
                "title": group.title,
                "body": group.body,
                "subject_type": intent.subject_type,
                "subject_id": intent.subject_id,
                "about": json.dumps([list(key) for key in intent.about] or None, ensure_ascii=False),
            }
        )
        phones = repository.text_array(group.phones)
        for delivery in group.deliveries:
            state, reason = delivery.state, delivery.reason
            if group.bad_params and state == DeliveryState.PENDING:
                state, reason = DeliveryState.FAILED, f"invalid template parameters: {group.bad_params}"
            # Due now (not held for quiet hours, not already expired): claimed as it is written.
            claim = (
                lease_until is not None
                and state == DeliveryState.PENDING
                and delivery.not_before <= now
                and (intent.expires_at is None or intent.expires_at > now)
            )
            delivery_ids = [random_id() for _ in ids] if claim else []
            planned.append(
                {
                    **shared,
                    "phones": phones,
                    "delivery_ids": repository.text_array(delivery_ids),
                    "channel": delivery.channel.value,
                    "with_address": delivery.channel == Channel.SMS,
                    "locale": group.locale,
                    "batch_key": intent.source_key[:80],
                    "state": DeliveryState.SENDING.value if claim else state.value,
                    "reason": reason,
                    "not_before": delivery.not_before,
                    "lease_until": lease_until if claim else None,
                    "expires_at": intent.expires_at,
                    "finished_at": None if state == DeliveryState.PENDING else now,
                }
            )
            if claim:
                claimed.extend(_claimed_rows(intent, group, delivery, ids, delivery_ids, reason, now))
            count += len(ids)

    def write(session: Session) -> None:
        connection = session.connection()
        if inbox:
            connection.exec_driver_sql(_INBOX_FROM_ARRAYS, inbox)
        if planned:
            connection.exec_driver_sql(_DELIVERIES_FROM_ARRAYS, planned)

    return count, write, claimed


def _claimed_rows(
    intent: Intent,
    group: AlikeRecipients,
    delivery: PlannedDelivery,
    notice_ids: list[str],
    delivery_ids: list[str],
    reason: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The rows of a group's deliveries claimed as planned, as the claim returns them (the columns
    `Deliverer` reads: all but key, state, lease and expiry). They share their parameters object,
    as the claim's decoded rows do: read, never changed in place."""
    sms = delivery.channel == Channel.SMS
    shared = {
        "channel": delivery.channel.value,
        "address_hint": None,
        "locale": group.locale,
        "kind": intent.kind,
        "batch_key": intent.source_key[:80],
        "params": group.params,
        "urgent": intent.urgent,
        "reason": reason,
        "community_id": intent.community_id,
        "source_type": intent.source_type,
        **_never_sent(),
        "next_attempt_at": delivery.not_before,
        "created_at": now,
    }
    return [
        {
            **shared,
            "id": delivery_id,
            "notification_id": notice_id,
            "user_id": user_id,
            "address": phone if sms else None,
        }
        for delivery_id, notice_id, user_id, phone in zip(
            delivery_ids, notice_ids, group.user_ids, group.phones, strict=True
        )
    ]


def _plan_one(
    intent: Intent,
    recipient: Recipient,
    planned_deliveries: list,
    inbox_rows: list[dict[str, Any]],
    delivery_rows: list[dict[str, Any]],
    renders: dict[tuple[str, str], Any],
    rendered: dict[tuple, tuple],
    about: list[list[str]] | None,
    now: datetime,
) -> None:
    user_id = recipient.user_id
    memo = (recipient.locale, recipient.timezone)
    if memo not in renders:
        # The same parameters object for every row of a language and zone (read-only from here).
        params = {**intent.params, "tz": recipient.timezone}
        renders[memo] = (*_render(intent.kind, recipient.locale, params, recipient.timezone, rendered), params)
    title, body, bad_params, params = renders[memo]
    notification_id = stable_id(intent.source_key, user_id)
    inbox_rows.append(
        {
            "id": notification_id,
            "user_id": user_id,
            "source_key": intent.source_key,
            "source_type": intent.source_type,
            "kind": intent.kind,
            "category": intent.category.value,
            "urgent": intent.urgent,
            "title": title[:200],
            "body": body,
            "params": params,
            "community_id": intent.community_id,
            "subject_type": intent.subject_type,
            "subject_id": intent.subject_id,
            "about": about,
            "created_at": now,
            "read_at": None,
        }
    )
    for planned in planned_deliveries:
        state, reason = planned.state, planned.reason
        if bad_params and state == DeliveryState.PENDING:
            state, reason = DeliveryState.FAILED, f"invalid template parameters: {bad_params}"
        delivery_rows.append(
            _delivery_row(
                intent,
                channel=planned.channel,
                key=delivery_key(intent.source_key, user_id, planned.channel),
                user_id=user_id,
                notification_id=notification_id,
                address=recipient.phone if planned.channel == Channel.SMS else None,
                locale=recipient.locale,
                params=params,
                state=state,
                reason=reason,
                not_before=planned.not_before,
                now=now,
            )
        )


def _render(kind: str, locale: str, params: dict, timezone: str, memo: dict[tuple, tuple]) -> tuple:
    """(title, body, the invalid parameters or None) of `render`, once per distinct call."""
    try:
        # With each value's type: 1, 1.0 and True are equal keys but render differently.
        key: tuple | None = (kind, locale, timezone, frozenset((k, type(v), v) for k, v in params.items()))
        hash(key)
    except TypeError:  # a list or dict among the parameters: rendered as it is
        key = None
    if key is not None and key in memo:
        return memo[key]
    try:
        title, body = render_notice(kind, locale, params, timezone)
        answer: tuple = (title, body, None)
    except Invalid as exc:
        answer = (kind, kind, ", ".join(sorted(exc.fields)))
    if key is not None:
        memo[key] = answer
    return answer


def plan_code(
    session: Session, *, source_key: str, phone: str, locale: str, params: dict, expires_at: datetime, now: datetime
) -> int:
    """A one-time code: SMS to a phone (maybe of nobody yet), at once, whatever the hour."""
    intent_like = {
        "kind": "account.code",
        "batch_key": source_key,
        "urgent": True,
        "community_id": None,
        "source_type": "accounts.code.requested",
        "expires_at": expires_at,
    }
    row = {
        "id": str(uuid.uuid4()),
        "key": delivery_key(source_key, phone, Channel.SMS),
        "notification_id": None,
        "user_id": None,
        "channel": Channel.SMS.value,
        "address": phone,
        "locale": locale,
        "params": params,
        "state": DeliveryState.PENDING.value,
        "reason": None,
        "provider": None,
        "providers_tried": [],
        "provider_message_id": None,
        "attempts": 0,
        "segments": None,
        "next_attempt_at": now,
        "lease_until": None,
        "outcome_unknown": False,
        "created_at": now,
        "sent_at": None,
        "finished_at": None,
        **intent_like,
    }
    return repository.insert_ignore(session, deliveries, [row], ["key"])


def _delivery_row(
    intent: Intent,
    *,
    channel: Channel,
    key: str,
    user_id: str,
    notification_id: str,
    address: str | None,
    locale: str,
    params: dict,
    state: DeliveryState,
    reason: str | None,
    not_before: datetime,
    now: datetime,
) -> dict[str, Any]:
    final = state not in (DeliveryState.PENDING,)
    return {
        "id": random_id(),
        "key": key,
        "notification_id": notification_id,
        "user_id": user_id,
        "channel": channel.value,
        "address": address,
        "locale": locale,
        "kind": intent.kind,
        "batch_key": intent.source_key[:80],
        "params": params,
        "urgent": intent.urgent,
        "state": state.value,
        "reason": reason,
        "community_id": intent.community_id,
        "source_type": intent.source_type,
        **_never_sent(),
        "next_attempt_at": not_before,
        "lease_until": None,
        "expires_at": intent.expires_at,
        "created_at": now,
        "finished_at": now if final else None,
    }


def _never_sent() -> dict[str, Any]:
    """A new delivery's columns about sending: no provider tried, no attempt made (a new dict
    each time: `providers_tried` is a list)."""
    return {
        "provider": None,
        "providers_tried": [],
        "provider_message_id": None,
        "attempts": 0,
        "segments": None,
        "outcome_unknown": False,
        "sent_at": None,
    }
