"""Stage two: deliver what was planned. Runs in the worker as a loop of short rounds.

One round: expire what is too late, take back deliveries whose sender died (lease run out), claim
due deliveries (committed as `sending` before any provider is called), respect per-phone and
per-provider limits, call the providers in their batch sizes, and record every attempt.

An SMS whose outcome is unknown (a read timeout, or a sender that died between the call and the
record) is never sent again blindly: the provider is asked whether it has it first.

Quiet hours are checked again at every attempt, not only when a message is planned: a retry, a
deferral or a fallback provider falling due at night waits for the recipient's morning (one-time
codes and urgent notices excepted, as when planning).

No transaction stays open while a provider is called: the claim commits before the calls, the
record opens its own transaction after them, and what is only read (what is due, the per-number
counts, devices, quiet hours) is read without taking SQLite's write lock. On SQLite, whose one
write lock every writer shares, a round claims and records its rows in transactions of
`SQLITE_WRITE_CHUNK`, so each write transaction stays short.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, cast, func, literal_column, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from linli_kit.db import Database
from linli_kit.errors import Invalid
from linli_kit.events import new_event
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork
from linli_notifications import SERVICE
from linli_notifications.adapters import metrics, repository
from linli_notifications.adapters.providers.aliyun import ProviderCheckFailed
from linli_notifications.adapters.providers.base import OutboundMessage, Outcome, Provider, SendResult
from linli_notifications.adapters.reading import ReadSessions
from linli_notifications.adapters.tables import attempts, deliveries, devices, messaging, notifications, recipients
from linli_notifications.config import NotificationConfig
from linli_notifications.domain.access import readable
from linli_notifications.domain.clock import Clock
from linli_notifications.domain.model import Channel, DeliveryState, Recipient
from linli_notifications.domain.policy import quiet_until, retry_delay
from linli_notifications.domain.templates import render

log = logging.getLogger(__name__)
NIL_UUID = "00000000-0000-0000-0000-000000000000"
SECRET_KINDS = {"account.code"}  # their parameters are wiped once the delivery is over
# Rows one write transaction claims or records on SQLite: every other writer (the web processes,
# the consumer) waits for SQLite's one write lock meanwhile. A round still takes `claim_batch` rows,
# in several such transactions, so as many provider calls run at once as on PostgreSQL.
SQLITE_WRITE_CHUNK = 100
# What a round needs of a claimed delivery (not its key, lease or expiry).
_CLAIM_COLUMNS = [c for c in deliveries.c if c.name not in ("key", "state", "lease_until", "expires_at", "finished_at")]
_CLAIM_NAMES = [c.name for c in _CLAIM_COLUMNS]
_JSON_COLUMNS = ("params", "providers_tried")
_SMS, _PUSH = Channel.SMS.value, Channel.PUSH.value
_PENDING, _SENT, _FAILED = DeliveryState.PENDING.value, DeliveryState.SENT.value, DeliveryState.FAILED.value
_SUPPRESSED = DeliveryState.SUPPRESSED.value
# Kinds of notice about an issue or a meeting: checked again when sent (domain/access.py).
GATED_KINDS = ("issue.", "meeting.", "decision.", "action_item.")
NO_LONGER_READABLE = "recipient may no longer read its subject"


class TokenBucket:
    """Per-provider call rate, below the provider's own cap (in-process: one delivery loop per worker)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        # The delivery loop and a broadcast planner handing over its chunks take from one bucket.
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            granted = min(wanted, int(self.tokens))
            self.tokens -= granted
            return granted


@dataclass
class Claimed:
    row: dict[str, Any]
    message: OutboundMessage | None = None
    provider_key: str | None = None
    results: list[SendResult] = field(default_factory=list)


@dataclass
class _Round:
    now: datetime
    claimed: list[Claimed]
    deferred: dict[str, datetime] = field(default_factory=dict)
    withheld: set[str] = field(default_factory=set)  # whose recipient may no longer read the subject
    ready: list[Claimed] = field(default_factory=list)
    phones: Counter = field(default_factory=Counter)
    calls: list[Future] = field(default_factory=list)


class Deliverer:
    def __init__(
        self,
        database: Database,
        config: NotificationConfig,
        providers: dict[str, Provider],
        *,
        clock: Clock,
        city_timezone: str,
        after_send: Callable[[list[Claimed]], None] | None = None,
    ) -> None:
        self.database = database
        self.reads = ReadSessions(database)
        self.config = config
        self.providers = providers
        self.clock = clock
        self.city_timezone = city_timezone
        self.outbox = Outbox(messaging.outbox)
        self.buckets = {
            name: TokenBucket(config.limits.provider_per_second.get(name.split(":")[0], 1e9)) for name in providers
        }
        # A test hook: runs after the providers answered and before anything is recorded.
        self.after_send = after_send
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="notifications-send")
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifications-record")
        # Checks and starts the rounds `hand_over` is given, one at a time, off the caller's thread:
        # a broadcast planner reads and writes its next chunk meanwhile.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notifications-hand-over")
        # SMS per number handed to a provider by a round not recorded yet (rounds overlap in drain()).
        self._in_flight: Counter = Counter()
        self._in_flight_lock = threading.Lock()
        # Rounds `hand_over` started (a broadcast planner's thread), not yet recorded.
        self._handed: deque[Future] = deque()
        self._handed_lock = threading.RLock()

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # noqa: BLE001 - a failed round is retried; the leases protect the rows
                log.exception("delivery round failed")
                busy = 0
            if not busy:
                stop.wait(self.config.delivery_interval_seconds)

    def drain(self, max_rounds: int = 10_000) -> int:
        """Run rounds until nothing is due now (the worker's timer, tests and benchmarks).

        Rounds overlap, one stage each: while this thread claims and checks a batch and starts its
        provider calls, the pool carries the calls of the batch before, and the recorder thread waits
        for that batch's answers and records them. At most two batches wait to be recorded."""
        total = 0
        recording: deque[Future] = deque()
        try:
            for _ in range(max_rounds):
                current = self._begin()
                if current is not None:
                    recording.append(self._recorder.submit(self._finish, current))
                    while len(recording) > 1:
                        total += recording.popleft().result()
                elif recording:
                    # Nothing due now; what the last batch records may make more due (a fallback provider).
                    total += recording.popleft().result()
                else:
                    break
        finally:
            while recording:  # every batch started is recorded, even when another one failed
                try:
                    total += recording.popleft().result()
                except Exception:  # noqa: BLE001 - its leases protect its rows; the first error is raised
                    log.exception("recording a delivery round failed")
        return total

    def run_once(self) -> int:
        """One round, start to end, on this thread."""
        current = self._begin()
        return self._finish(current) if current is not None else 0

    def _begin(self) -> _Round | None:
        now = self.clock()
        if not self._look(now):
            return None
        claimed = self._claim(now)
        if not claimed:
            return None
        return self._start(now, claimed)

    def hand_over(self, rows: list[dict[str, Any]]) -> None:
        """Send deliveries the caller has committed already claimed (`sending`, with a lease: a
        broadcast chunk claimed in the statement that planned it), as a round of their own: checked
        and handed to the providers by the hand-over thread, recorded by the recorder thread.
        Returns at once unless two such rounds wait already (then once the older is recorded;
        `settle` waits for them all). Should this fail or the process die, the rows are taken back
        when their lease runs out, as any claim's are."""
        if not rows:
            return
        with self._handed_lock:
            while len(self._handed) > 1:
                self._settle_one()
            self._handed.append(self._starter.submit(self._start_handed, rows))

    def _start_handed(self, rows: list[dict[str, Any]]) -> Future:
        """A handed round started (`_start`, on the hand-over thread); its recording's future."""
        now = self.clock()
        claimed = [Claimed(r) for r in rows]
        claimed.sort(key=lambda c: (not c.row["urgent"], c.row["next_attempt_at"]))
        current = self._start(now, claimed)
        return self._recorder.submit(self._finish, current)

    def settle(self) -> int:
        """Wait until every round `hand_over` started is recorded; the deliveries they held."""
        total = 0
        with self._handed_lock:
            while self._handed:
                total += self._settle_one()
        return total

    def _settle_one(self) -> int:
        try:
            return self._handed.popleft().result().result()  # started, then recorded
        except Exception:  # noqa: BLE001 - its leases protect its rows
            log.exception("recording a delivery round failed")
            return 0

    def _start(self, now: datetime, claimed: list[Claimed]) -> _Round:
        """A claimed batch checked (still readable, quiet hours, per-number caps), rendered, and its
        provider calls started on the pool."""
        # A failure from here on leaves the claims to their lease: taken back later, an SMS as
        # "outcome unknown", so checked with the provider before any resend.
        current = _Round(now, claimed)
        current.withheld = self._no_longer_readable(claimed)
        allowed = _without(claimed, current.withheld)
        current.deferred = self._hold_for_quiet_hours(allowed, now)
        awake = _without(allowed, current.deferred)
        current.deferred.update(self._apply_phone_limits(awake, now))
        current.ready = _without(allowed, current.deferred)
        self._prepare(current.ready)
        self._check_unknown(current.ready)
        to_send = [c for c in current.ready if c.row["channel"] == _SMS and c.message is not None and not c.results]
        current.calls = self._submit(current.ready, current.deferred)
        current.phones = Counter(c.row["address"] for c in to_send if c.row["id"] not in current.deferred)
        with self._in_flight_lock:
            self._in_flight.update(current.phones)
        return current

    def _finish(self, current: _Round) -> int:
        try:
            for call in current.calls:
                call.result()  # _call_provider records into the claims and never raises
            if self.after_send is not None:
                self.after_send(current.ready)
            self._record(current.claimed, current.deferred, current.now, current.withheld)
        finally:
            with self._in_flight_lock:  # after the commit: from now on the database shows them
                self._in_flight.subtract(current.phones)
                self._in_flight = +self._in_flight
        return len(current.claimed)

    # --- before sending -----------------------------------------------------------------------
    def _look(self, now: datetime) -> bool:
        """Whether anything is due now, once what is too late is expired and what a dead sender held
        is taken back. Usually there is nothing to repair, and often nothing due: both are found out
        in one read (`_LOOK`, no write lock), as the loop looks every `delivery_interval_seconds`."""
        with self.reads.reading() as session:
            too_late, lease_over, due = session.execute(_LOOK, {"now": now}).one()
        if not (too_late or lease_over):
            return bool(due)
        self._expire_and_recover(now)
        return self._anything_due(now)

    def _expire_and_recover(self, now: datetime) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(deliveries)
                .where(*_too_late(now))
                .values(state=DeliveryState.EXPIRED.value, reason="too late", finished_at=now, params={})
            )
            # A sender died holding these: for SMS we cannot know whether the provider got it.
            session.execute(
                update(deliveries)
                .where(*_lease_over(now))
                .values(
                    state=DeliveryState.PENDING.value,
                    outcome_unknown=deliveries.c.channel == Channel.SMS.value,
                    lease_until=None,
                    next_attempt_at=now,
                )
            )

    def _anything_due(self, now: datetime) -> bool:
        with self.reads.reading() as session:
            return bool(session.scalar(_ANYTHING_DUE, {"now": now}))

    def _claim(self, now: datetime) -> list[Claimed]:
        """Mark a batch of due deliveries `sending` (with a lease) and return them: urgent ones first
        (a sign-up code never waits behind a broadcast), then the oldest due; each step by an index.

        On PostgreSQL each step is one statement: the rows are picked (FOR UPDATE SKIP LOCKED, so two
        loops never take the same row) and marked in the same UPDATE, which returns them."""
        lease = now + timedelta(seconds=self.config.lease_seconds)
        limit = self.config.claim_batch
        if self.database.is_sqlite:
            rows: list[dict] = []
            while len(rows) < limit:
                wanted = min(SQLITE_WRITE_CHUNK, limit - len(rows))
                with self.database.transaction() as session:
                    taken = self._claim_portable(session, now, lease, wanted)
                rows += taken
                if len(taken) < wanted:
                    break
        else:
            with self.database.transaction() as session:
                rows = self._claim_step(session, now, lease, True, limit)
                if len(rows) < limit:
                    rows += self._claim_step(session, now, lease, False, limit - len(rows))
        claimed = [Claimed(r) for r in rows]
        claimed.sort(key=lambda c: (not c.row["urgent"], c.row["next_attempt_at"]))
        return claimed

    def _claim_step(self, session: Session, now: datetime, lease: datetime, urgent: bool, limit: int) -> list[dict]:
        picked = (
            select(deliveries.c.id)
            .where(*_pending_due(now, urgent=urgent))
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("picked")
        )
        # JSON comes back as text and is decoded once per distinct value: a broadcast's thousands of
        # rows share a handful of parameter sets.
        columns = [cast(c, Text).label(c.name) if c.name in _JSON_COLUMNS else c for c in _CLAIM_COLUMNS]
        result = session.execute(
            update(deliveries)
            .where(deliveries.c.id == picked.c.id)
            .values(state=DeliveryState.SENDING.value, lease_until=lease)
            .returning(*columns)
        )
        decoded: dict[str, Any] = {}
        rows = []
        for values in result.all():
            row = dict(zip(_CLAIM_NAMES, values, strict=True))
            for name in _JSON_COLUMNS:
                text = row[name]
                if text not in decoded:
                    decoded[text] = json.loads(text) if text is not None else None
                row[name] = decoded[text]  # shared between rows: read, never changed in place
            rows.append(row)
        return rows

    def _claim_portable(self, session: Session, now: datetime, lease: datetime, limit: int) -> list[dict]:
        ids = list(
            session.scalars(
                select(deliveries.c.id)
                .where(*_pending_due(now, urgent=True))
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if len(ids) < limit:
            ids += session.scalars(
                select(deliveries.c.id)
                .where(*_pending_due(now, urgent=False))
                .order_by(deliveries.c.next_attempt_at)
                .limit(limit - len(ids))
                .with_for_update(skip_locked=True)
            )
        if not ids:
            return []
        rows = session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(state=DeliveryState.SENDING.value, lease_until=lease)
            .returning(*_CLAIM_COLUMNS)
        )
        return [dict(r) for r in rows.mappings()]

    def _no_longer_readable(self, claimed: list[Claimed]) -> set[str]:
        """Deliveries whose recipient may no longer read what the notice is about (the issue became
        private, they moved to another community since it was planned): they are not sent."""
        gated = [c for c in claimed if c.row["notification_id"] and c.row["kind"].startswith(GATED_KINDS)]
        if not gated:
            return set()
        with self.reads.reading() as session:
            about_of = {
                n.id: [tuple(key) for key in n.about]
                for n in session.execute(
                    select(notifications.c.id, notifications.c.about).where(
                        repository.among(session, notifications.c.id, sorted({c.row["notification_id"] for c in gated}))
                    )
                )
                if n.about
            }
            if not about_of:
                return set()
            known = repository.load_subjects(session, {key for keys in about_of.values() for key in keys})
            readers = repository.load_readers(session, {c.row["user_id"] for c in gated})
        withheld = set()
        for c in gated:
            keys = about_of.get(c.row["notification_id"])
            reader = readers.get(c.row["user_id"])
            if keys and (reader is None or not readable([known.get(key) for key in keys], reader)):
                withheld.add(c.row["id"])
        return withheld

    def _hold_for_quiet_hours(self, claimed: list[Claimed], now: datetime) -> dict[str, datetime]:
        """Deliveries to hold back (id -> the end of the quiet hours) because it is night where their
        recipient lives now. One-time codes and urgent notices go whatever the hour, as planned."""
        sleepers = [c for c in claimed if c.row["user_id"] and not _wakes_anyone(c.row)]
        users = sorted({c.row["user_id"] for c in sleepers})
        if not users:
            return {}
        with self.reads.reading() as session:
            rows = session.execute(
                select(
                    recipients.c.user_id, recipients.c.timezone, recipients.c.quiet_start, recipients.c.quiet_end
                ).where(repository.among(session, recipients.c.user_id, users))
            ).all()
        wake_of: dict[str, datetime | None] = {}
        # Once per zone and quiet hours: a broadcast's thousands of residents share a handful.
        wake_by_setting: dict[tuple, datetime | None] = {}
        for user_id, timezone, quiet_start, quiet_end in rows:
            setting = (timezone or self.city_timezone, quiet_start, quiet_end)
            if setting not in wake_by_setting:
                person = Recipient(
                    user_id=user_id, role="", timezone=setting[0], quiet_start=quiet_start, quiet_end=quiet_end
                )
                try:
                    wake_by_setting[setting] = quiet_until(now, person)
                except (ValueError, KeyError):  # a zone or hour stored before it was checked: no quiet hours
                    wake_by_setting[setting] = None
            wake_of[user_id] = wake_by_setting[setting]
        if all(wake is None for wake in wake_by_setting.values()):
            return {}  # day wherever they live (a broadcast's daytime chunk): nobody to hold
        held = {}
        for c in sleepers:
            wake = wake_of.get(c.row["user_id"])
            if wake is not None:
                held[c.row["id"]] = wake
        return held

    def _apply_phone_limits(self, claimed: list[Claimed], now: datetime) -> dict[str, datetime]:
        """Deliveries to hold back (id -> when to try again) so no number gets more than the caps."""
        limits = self.config.limits
        sms = [c for c in claimed if c.row["channel"] == _SMS and c.row["address"]]
        if not sms:
            return {}
        wanted = Counter(c.row["address"] for c in sms)  # per number, the messages of this round
        # Read before the database: a round recorded in between is then counted twice (safe), never missed.
        with self._in_flight_lock:
            in_flight = {p: n for p, n in self._in_flight.items() if n and p in wanted}
        minute, hour, day = now - timedelta(minutes=1), now - timedelta(hours=1), now - timedelta(days=1)
        counts: dict[str, list[int]] = {}  # per number sent to lately: [last minute, hour, day]
        with self.reads.reading() as session:
            rows = session.execute(
                select(
                    deliveries.c.address,
                    func.sum(case((deliveries.c.sent_at > minute, 1), else_=0)),
                    func.sum(case((deliveries.c.sent_at > hour, 1), else_=0)),
                    func.count(),
                )
                .where(repository.among(session, deliveries.c.address, sorted(wanted)), deliveries.c.sent_at > day)
                .group_by(deliveries.c.address)
            )
            for phone, m, h, d in rows:
                counts[phone] = [int(m or 0), int(h or 0), int(d or 0)]
        caps = (
            (limits.per_phone_minute, timedelta(minutes=1)),
            (limits.per_phone_hour, timedelta(hours=1)),
            (limits.per_phone_day, timedelta(days=1)),
        )
        for phone, n in in_flight.items():  # handed to the provider by a round still in flight: sent just now
            counts[phone] = [used + n for used in counts.get(phone, (0, 0, 0))]
        (per_minute, _), (per_hour, _), (per_day, _) = caps
        # A number whose messages of this round all fit under every cap holds none back (usually
        # every number: a broadcast's 5,000 each get one); only the others are gone through in order.
        fits = min(per_minute, per_hour, per_day)
        crowded = {
            phone
            for phone, n in wanted.items()
            if (phone in counts and any(used + n > cap for used, (cap, _) in zip(counts[phone], caps, strict=True)))
            or (phone not in counts and n > fits)
        }
        if not crowded:
            return {}
        deferred: dict[str, datetime] = {}
        in_order = sorted(
            (c for c in sms if c.row["address"] in crowded), key=lambda c: (not c.row["urgent"], c.row["created_at"])
        )
        for c in in_order:
            address = c.row["address"]
            used = counts.setdefault(address, [0, 0, 0])
            if used[0] < per_minute and used[1] < per_hour and used[2] < per_day:  # the usual case, cheaply
                counts[address] = [used[0] + 1, used[1] + 1, used[2] + 1]
                continue
            over = [window for (cap, window), n in zip(caps, used, strict=True) if n >= cap]
            deferred[c.row["id"]] = now + max(over)
        return deferred

    def _sms_chain(self) -> list[str]:
        return ["log:sms" if p == "log" else p for p in self.config.sms_providers]

    def _prepare(self, ready: list[Claimed]) -> None:
        """Render each message and pick its provider; push deliveries fan out to the user's devices."""
        push_users = [c.row["user_id"] for c in ready if c.row["channel"] == _PUSH]
        devices_of: dict[str, list[dict]] = defaultdict(list)
        if push_users:
            with self.reads.reading() as session:
                rows = session.execute(
                    select(devices).where(
                        repository.among(session, devices.c.user_id, push_users), devices.c.pruned_at.is_(None)
                    )
                ).mappings()
                for d in rows:
                    devices_of[d["user_id"]].append(dict(d))
        renders: dict[tuple, Any] = {}
        chain = self._sms_chain()
        for c in ready:
            row = c.row
            tz = (row["params"] or {}).get("tz") or self.city_timezone
            try:
                # Deliveries of one batch key come from one intent: same parameters for a language
                # and zone, so a broadcast renders a handful of times, not once per resident.
                memo = (row["batch_key"], row["kind"], row["locale"], tz)
                rendered = renders.get(memo) or render(row["kind"], row["locale"], row["params"] or {}, tz)
                renders[memo] = rendered
            except Invalid as exc:
                c.results.append(
                    SendResult(
                        row["id"],
                        row["address"] or "",
                        Outcome.PERMANENT,
                        error_code="template",
                        error_message=f"invalid template parameters: {', '.join(sorted(exc.fields))}",
                    )
                )
                continue
            sms = row["channel"] == _SMS
            row["segments"] = rendered.segments if sms else None
            data = {"kind": row["kind"], "notification_id": row["notification_id"] or ""}
            if row["urgent"]:
                data["urgent"] = "true"  # Web Push asks the push service to wake the phone at once (Urgency: high)
            if sms:
                c.provider_key = row["provider"] if row["provider"] in chain else chain[0]
                c.message = OutboundMessage(
                    delivery_id=row["id"],
                    channel=Channel.SMS,
                    address=row["address"],
                    locale=row["locale"],
                    title=rendered.title,
                    body=rendered.body,
                    sms_text=rendered.sms_text,
                    kind=row["kind"],
                    template_params=rendered.sms_params,
                    data=data,
                )
                continue
            targets = devices_of.get(row["user_id"], [])
            if not targets:
                c.results.append(
                    SendResult(
                        row["id"],
                        "",
                        Outcome.PERMANENT,
                        error_code="no_device",
                        error_message="no registered device",
                    )
                )
                continue
            c.message = OutboundMessage(
                delivery_id=row["id"],
                channel=Channel(row["channel"]),
                address="",
                locale=row["locale"],
                title=rendered.title,
                body=rendered.body,
                sms_text=rendered.sms_text,
                kind=row["kind"],
                template_params=rendered.sms_params,
                data=data,
            )
            row["_devices"] = targets

    def _push_provider_for(self, device: dict) -> str | None:
        if device["provider"] in self.providers:
            return device["provider"]
        return "log:push" if "log:push" in self.providers else None

    def _check_unknown(self, ready: list[Claimed]) -> None:
        for c in ready:
            if not c.row["outcome_unknown"] or c.message is None or c.row["channel"] != Channel.SMS.value:
                continue
            provider = self.providers.get(c.provider_key or "")
            if provider is None:
                continue
            since = c.row["created_at"]
            try:
                found = provider.check(c.message, since)
            except ProviderCheckFailed as exc:
                c.results.append(
                    SendResult(
                        c.row["id"],
                        c.message.address,
                        Outcome.RETRYABLE,
                        error_code="check_failed",
                        error_message=str(exc)[:200],
                    )
                )
                continue
            if found is not None:
                c.results.append(found)  # it went out: record it, never send it again

    # --- sending ------------------------------------------------------------------------------
    def _submit(self, ready: list[Claimed], deferred: dict[str, datetime]) -> list[Future]:
        """Start the provider calls (in their batch sizes, within each provider's call rate) on the pool."""
        groups: dict[tuple, list[tuple[Claimed, OutboundMessage]]] = defaultdict(list)
        for c in ready:
            if c.results or c.message is None:
                continue
            if c.row["channel"] == _SMS:
                # One call carries one template: one kind in one language (and so one signature).
                key = (c.provider_key, c.row["batch_key"], c.row["kind"], c.row["locale"])
                groups[key].append((c, c.message))
            else:
                for device in c.row["_devices"]:
                    name = self._push_provider_for(device)
                    if name is None:
                        continue
                    message = OutboundMessage(
                        **{**c.message.__dict__, "address": device["token"], "push_keys": device.get("push_keys")}
                    )
                    key = (name, c.row["batch_key"], c.message.title, c.message.body)
                    groups[key].append((c, message))
        calls: list[Future] = []
        for key, items in groups.items():
            provider = self.providers[key[0]]
            bucket = self.buckets[key[0]]
            for start in range(0, len(items), provider.max_batch):
                chunk = items[start : start + provider.max_batch]
                # The providers cap calls per second (SendBatchSms carries up to 100 numbers in one).
                if not bucket.take(1):
                    for c, _ in chunk:
                        deferred[c.row["id"]] = self.clock() + timedelta(seconds=1)
                    continue
                # Provider calls wait on the network: several run at once, each recording into its own claims.
                calls.append(self._pool.submit(self._call_provider, key[0], chunk))
        return calls

    def _call_provider(self, name: str, chunk: list[tuple[Claimed, OutboundMessage]]) -> None:
        provider = self.providers[name]
        try:
            results = provider.send([m for _, m in chunk])
        except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the claim
            log.exception("provider raised", extra={"provider": name})
            results = [
                SendResult(
                    m.delivery_id, m.address, Outcome.RETRYABLE, error_code="adapter", error_message=type(exc).__name__
                )
                for _, m in chunk
            ]
        if results:
            metrics.PROVIDER_LATENCY.labels(name).observe(results[0].latency_ms / 1000)  # once per call
        for (c, _), result in zip(chunk, results, strict=True):
            c.provider_key = name
            c.results.append(result)

    # --- recording ----------------------------------------------------------------------------
    def _record(
        self, claimed: list[Claimed], deferred: dict[str, datetime], now: datetime, withheld: set[str] = frozenset()
    ) -> None:
        """Store every claim's outcome; on SQLite in short transactions of `SQLITE_WRITE_CHUNK` claims
        (each delivery's record stands alone: one not recorded yet is protected by its lease)."""
        size = SQLITE_WRITE_CHUNK if self.database.is_sqlite else max(1, len(claimed))
        for start in range(0, len(claimed), size):
            self._record_part(claimed[start : start + size], deferred, now, withheld)

    def _record_part(
        self, claimed: list[Claimed], deferred: dict[str, datetime], now: datetime, withheld: set[str] = frozenset()
    ) -> None:
        updates: list[dict[str, Any]] = []
        attempt_rows: list[dict[str, Any]] = []
        wipe: list[str] = []  # one-time codes whose parameters must not outlive the delivery
        gone_tokens: list[str] = []
        failed_events = []
        attempts_by: Counter = Counter()
        finished_by: Counter = Counter()
        chain = self._sms_chain()
        for c in claimed:
            row = c.row
            results = c.results
            base = {
                "id": row["id"],
                "state": _PENDING,
                "reason": row["reason"],
                "provider": c.provider_key or row["provider"],
                # A tuple: rows answered alike compare equal and share one UPDATE (stored as a JSON list).
                "providers_tried": tuple(row["providers_tried"] or ()),
                "provider_message_id": row["provider_message_id"],
                "attempts": row["attempts"],
                "segments": row.get("segments"),
                "next_attempt_at": row["next_attempt_at"],
                "outcome_unknown": row["outcome_unknown"],
                "sent_at": row["sent_at"],
                "finished_at": None,
                "lease_until": None,
            }
            updates.append(base)
            if row["id"] in withheld:
                base.update(state=_SUPPRESSED, reason=NO_LONGER_READABLE, finished_at=now)
                finished_by[(row["channel"], _SUPPRESSED)] += 1
                continue
            if not results:
                if row["id"] in deferred:
                    base["next_attempt_at"] = deferred[row["id"]]
                else:
                    # Nothing could be tried (no provider for any of its devices).
                    base.update(state=_FAILED, reason="no provider configured", finished_at=now)
                    finished_by[(row["channel"], _FAILED)] += 1
                continue
            provider_label = c.provider_key or "-"
            for r in results:
                attempt_rows.append(
                    {
                        "delivery_id": row["id"],
                        "provider": provider_label,
                        "started_at": now,
                        "latency_ms": r.latency_ms,
                        "outcome": r.outcome.value,
                        "request_id": r.request_id,
                        "error_code": r.error_code,
                        "error_message": (r.error_message or None) and r.error_message[:500],
                    }
                )
                attempts_by[(row["channel"], provider_label, r.outcome.value)] += 1
                if r.address_gone and row["channel"] == _PUSH:
                    gone_tokens.append(r.address)
            outcome = _combine(results)
            best = next((r for r in results if r.outcome == Outcome.OK), results[0])
            base["attempts"] = row["attempts"] + 1
            if c.provider_key:
                base["providers_tried"] = (*base["providers_tried"], c.provider_key)
            if outcome == Outcome.OK:
                base.update(
                    state=_SENT,
                    provider_message_id=best.message_id,
                    sent_at=now,
                    outcome_unknown=False,
                    reason=None,
                )
            elif outcome == Outcome.UNKNOWN:
                base.update(
                    outcome_unknown=True,
                    next_attempt_at=now + timedelta(seconds=self.config.unknown_check_delay_seconds),
                    reason="outcome unknown: will check with the provider",
                )
            elif outcome == Outcome.PROVIDER and row["channel"] == _SMS and _next(chain, c.provider_key):
                base.update(
                    provider=_next(chain, c.provider_key),
                    next_attempt_at=now,
                    outcome_unknown=False,
                    reason=f"{c.provider_key}: {best.error_code}",
                )
            elif outcome == Outcome.RETRYABLE and base["attempts"] < self.config.max_attempts:
                provider = c.provider_key
                recent = base["providers_tried"][-2:]
                if row["channel"] == _SMS and len(recent) == 2 and set(recent) == {provider}:
                    provider = _next(chain, provider) or chain[0]  # this one keeps failing: try another
                delay = retry_delay(
                    base["attempts"], first=self.config.retry_first_seconds, cap=self.config.retry_cap_seconds
                )
                base.update(
                    provider=provider,
                    next_attempt_at=now + timedelta(seconds=delay),
                    outcome_unknown=False,
                    reason=f"{c.provider_key}: {best.error_code or 'transient error'}",
                )
            else:
                reason = f"{c.provider_key or '-'}: {best.error_code or ''} {best.error_message or ''}".strip()
                base.update(state=_FAILED, reason=reason[:300], finished_at=now)
                failed_events.append((row, base))
            if base["state"] != _PENDING:
                finished_by[(row["channel"], base["state"])] += 1
                if row["kind"] in SECRET_KINDS:
                    wipe.append(row["id"])
        for labels, n in attempts_by.items():
            metrics.ATTEMPTS.labels(*labels).inc(n)
        for labels, n in finished_by.items():
            metrics.FINISHED.labels(*labels).inc(n)
        # Converted before the transaction begins (its first statement): it only writes.
        dialect = self.database.engine.dialect
        write_updates = repository.prepare_update(dialect, deliveries, updates, "id")
        write_attempts = (
            repository.prepare_insert(dialect, attempts, attempt_rows)
            if dialect.name == "sqlite"
            else lambda session: repository.insert_grouped(session, attempts, attempt_rows, "delivery_id")
        )
        uow = UnitOfWork(self.database, self.outbox)
        with uow:
            session = uow.session
            write_updates(session)
            if wipe:
                session.execute(
                    update(deliveries).where(repository.among(session, deliveries.c.id, wipe)).values(params={})
                )
            write_attempts(session)
            if gone_tokens:
                prune_tokens(session, gone_tokens, now, "provider says the token is no longer registered")
            for row, final in failed_events:
                uow.publish(
                    new_event(
                        "notifications.delivery.failed",
                        {
                            "notification_id": row["notification_id"] or row["id"],
                            "delivery_id": row["id"],
                            "recipient_id": row["user_id"] or NIL_UUID,
                            "channel": row["channel"],
                            "providers_tried": list(final["providers_tried"]),
                            "reason": final["reason"] or "failed",
                            "attempts": final["attempts"],
                            "source_event_type": row["source_type"],
                        },
                        producer=SERVICE,
                        community_id=row["community_id"],
                    )
                )
            uow.commit()


def _pending_due(now: datetime | BindParameter, *, urgent: bool) -> tuple:
    """Conditions of a pending delivery due now, written so that each partial index can serve them:
    their own conditions, in literals (SQLite matches a partial index only when the query repeats
    its condition, PostgreSQL proves nothing from a bound parameter once its plan is generic; read
    without the index, the claim would hold SQLite's write lock while it reads the whole table)."""
    return (
        deliveries.c.state == literal_column("'pending'"),
        deliveries.c.urgent.is_(urgent),
        deliveries.c.next_attempt_at <= now,
    )


def _too_late(now: datetime | BindParameter) -> tuple:
    """Pending deliveries past their expiry, by `ix_deliveries_expiring` (its condition in literals)."""
    return (
        deliveries.c.state == literal_column("'pending'"),
        deliveries.c.expires_at.isnot(None),
        deliveries.c.expires_at <= now,
    )


def _lease_over(now: datetime | BindParameter) -> tuple:
    """Claims whose sender died (their lease ran out), by `ix_deliveries_leased`."""
    return (deliveries.c.state == literal_column("'sending'"), deliveries.c.lease_until < now)


# The loop's look for work, built once (the loop looks every `delivery_interval_seconds`): whether
# anything is too late, whether a dead sender's lease ran out, whether anything is due; each by an index.
_NOW = bindparam("now", type_=deliveries.c.next_attempt_at.type)
_ANYTHING_DUE = select(
    select(deliveries.c.id).where(*_pending_due(_NOW, urgent=True)).exists()
    | select(deliveries.c.id).where(*_pending_due(_NOW, urgent=False)).exists()
)
_LOOK = select(
    select(deliveries.c.id).where(*_too_late(_NOW)).exists(),
    select(deliveries.c.id).where(*_lease_over(_NOW)).exists(),
    select(deliveries.c.id).where(*_pending_due(_NOW, urgent=True)).exists()
    | select(deliveries.c.id).where(*_pending_due(_NOW, urgent=False)).exists(),
)


def _without(claimed: list[Claimed], ids: set[str] | dict[str, datetime]) -> list[Claimed]:
    """The claims but those of `ids` (the list itself when there are none: the usual case)."""
    return [c for c in claimed if c.row["id"] not in ids] if ids else claimed


def _wakes_anyone(row: dict[str, Any]) -> bool:
    """One-time codes and urgent (safety) notices go out at any hour, as they are planned."""
    return bool(row["urgent"]) or row["kind"] in SECRET_KINDS


def _combine(results: list[SendResult]) -> Outcome:
    """One delivery's outcome from its devices' (or its single) results."""
    if len(results) == 1:
        return results[0].outcome
    outcomes = {r.outcome for r in results}
    for outcome in (Outcome.OK, Outcome.UNKNOWN, Outcome.RETRYABLE, Outcome.PROVIDER):
        if outcome in outcomes:
            return outcome
    return Outcome.PERMANENT


def _next(chain: list[str], current: str | None) -> str | None:
    if current not in chain:
        return None
    index = chain.index(current)
    return chain[index + 1] if index + 1 < len(chain) else None


def prune_tokens(session: Session, tokens: list[str], now: datetime, reason: str) -> None:
    session.execute(
        update(devices)
        .where(and_(devices.c.token.in_(tokens), devices.c.pruned_at.is_(None)))
        .values(pruned_at=now, pruned_reason=reason)
    )
