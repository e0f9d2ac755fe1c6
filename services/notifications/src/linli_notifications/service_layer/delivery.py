"""Stage two: deliver what was planned. Runs in the worker as a loop of short rounds.

One round: expire what is too late, take back deliveries whose sender died (lease run out), claim
due deliveries (committed as `sending` before any provider is called), respect per-phone and
per-provider limits, call the providers in their batch sizes, and record every attempt.

An SMS whose outcome is unknown (a read timeout, or a sender that died between the call and the
record) is never sent again blindly: the provider is asked whether it has it first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.orm import Session

from linli_kit.db import Database
from linli_kit.errors import Invalid
from linli_kit.events import new_event
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork
from linli_notifications import SERVICE
from linli_notifications.adapters import metrics, repository
from linli_notifications.adapters.providers.aliyun import ProviderCheckFailed
from linli_notifications.adapters.providers.base import OutboundMessage, Outcome, Provider, SendResult
from linli_notifications.adapters.tables import attempts, deliveries, devices, messaging
from linli_notifications.config import NotificationConfig
from linli_notifications.domain.clock import Clock
from linli_notifications.domain.model import Channel, DeliveryState
from linli_notifications.domain.policy import retry_delay
from linli_notifications.domain.templates import render

log = logging.getLogger(__name__)
NIL_UUID = "00000000-0000-0000-0000-000000000000"
SECRET_KINDS = {"account.code"}  # their parameters are wiped once the delivery is over


class TokenBucket:
    """Per-provider call rate, below the provider's own cap (in-process: one delivery loop per worker)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()

    def take(self, wanted: int) -> int:
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
        """Run rounds until nothing is due now (tests and benchmarks)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    def run_once(self) -> int:
        now = self.clock()
        self._expire_and_recover(now)
        claimed = self._claim(now)
        if not claimed:
            return 0
        deferred = self._apply_phone_limits(claimed, now)
        ready = [c for c in claimed if c.row["id"] not in deferred]
        self._prepare(ready)
        self._check_unknown(ready)
        self._send(ready, deferred)
        if self.after_send is not None:
            self.after_send(ready)
        self._record(claimed, deferred, now)
        return len(claimed)

    # --- before sending -----------------------------------------------------------------------
    def _expire_and_recover(self, now: datetime) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(deliveries)
                .where(
                    deliveries.c.state == DeliveryState.PENDING.value,
                    deliveries.c.expires_at.isnot(None),
                    deliveries.c.expires_at <= now,
                )
                .values(state=DeliveryState.EXPIRED.value, reason="too late", finished_at=now, params={})
            )
            # A sender died holding these: for SMS we cannot know whether the provider got it.
            session.execute(
                update(deliveries)
                .where(deliveries.c.state == DeliveryState.SENDING.value, deliveries.c.lease_until < now)
                .values(
                    state=DeliveryState.PENDING.value,
                    outcome_unknown=deliveries.c.channel == Channel.SMS.value,
                    lease_until=None,
                    next_attempt_at=now,
                )
            )

    def _claim(self, now: datetime) -> list[Claimed]:
        """Mark a batch of due deliveries `sending` (with a lease) and return them: urgent ones first
        (a sign-up code never waits behind a broadcast), then the oldest due; each step by an index."""
        pending_due = (deliveries.c.state == DeliveryState.PENDING.value, deliveries.c.next_attempt_at <= now)
        with self.database.transaction() as session:
            ids = list(
                session.scalars(
                    select(deliveries.c.id)
                    .where(*pending_due, deliveries.c.urgent.is_(True))
                    .order_by(deliveries.c.next_attempt_at)
                    .limit(self.config.claim_batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if len(ids) < self.config.claim_batch:
                ids += session.scalars(
                    select(deliveries.c.id)
                    .where(*pending_due, deliveries.c.urgent.is_(False))
                    .order_by(deliveries.c.next_attempt_at)
                    .limit(self.config.claim_batch - len(ids))
                    .with_for_update(skip_locked=True)
                )
            if not ids:
                return []
            rows = (
                session.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(ids))
                    .values(
                        state=DeliveryState.SENDING.value,
                        lease_until=now + timedelta(seconds=self.config.lease_seconds),
                    )
                    .returning(*deliveries.c)
                )
                .mappings()
                .all()
            )
        claimed = [Claimed(dict(r)) for r in rows]
        claimed.sort(key=lambda c: (not c.row["urgent"], c.row["next_attempt_at"]))
        return claimed

    def _apply_phone_limits(self, claimed: list[Claimed], now: datetime) -> dict[str, datetime]:
        """Deliveries to hold back (id -> when to try again) so no number gets more than the caps."""
        limits = self.config.limits
        sms = [c for c in claimed if c.row["channel"] == Channel.SMS.value and c.row["address"]]
        if not sms:
            return {}
        phones = sorted({c.row["address"] for c in sms})
        minute, hour, day = now - timedelta(minutes=1), now - timedelta(hours=1), now - timedelta(days=1)
        counts: dict[str, list[int]] = {p: [0, 0, 0] for p in phones}
        with self.database.session() as session:
            for start in range(0, len(phones), 2000):
                chunk = phones[start : start + 2000]
                rows = session.execute(
                    select(
                        deliveries.c.address,
                        func.sum(case((deliveries.c.sent_at > minute, 1), else_=0)),
                        func.sum(case((deliveries.c.sent_at > hour, 1), else_=0)),
                        func.count(),
                    )
                    .where(deliveries.c.address.in_(chunk), deliveries.c.sent_at > day)
                    .group_by(deliveries.c.address)
                )
                for phone, m, h, d in rows:
                    counts[phone] = [int(m or 0), int(h or 0), int(d or 0)]
        deferred: dict[str, datetime] = {}
        caps = (
            (limits.per_phone_minute, timedelta(minutes=1)),
            (limits.per_phone_hour, timedelta(hours=1)),
            (limits.per_phone_day, timedelta(days=1)),
        )
        for c in sorted(sms, key=lambda c: (not c.row["urgent"], c.row["created_at"])):
            used = counts[c.row["address"]]
            over = [window for (cap, window), n in zip(caps, used, strict=True) if n >= cap]
            if over:
                deferred[c.row["id"]] = now + max(over)
            else:
                counts[c.row["address"]] = [n + 1 for n in used]
        return deferred

    def _sms_chain(self) -> list[str]:
        return ["log:sms" if p == "log" else p for p in self.config.sms_providers]

    def _prepare(self, ready: list[Claimed]) -> None:
        """Render each message and pick its provider; push deliveries fan out to the user's devices."""
        push_users = [c.row["user_id"] for c in ready if c.row["channel"] == Channel.PUSH.value]
        devices_of: dict[str, list[dict]] = defaultdict(list)
        if push_users:
            with self.database.session() as session:
                for start in range(0, len(push_users), 2000):
                    rows = session.execute(
                        select(devices).where(
                            devices.c.user_id.in_(push_users[start : start + 2000]), devices.c.pruned_at.is_(None)
                        )
                    ).mappings()
                    for d in rows:
                        devices_of[d["user_id"]].append(dict(d))
        renders: dict[tuple, Any] = {}
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
            row["segments"] = rendered.segments if row["channel"] == Channel.SMS.value else None
            base = dict(
                delivery_id=row["id"],
                channel=Channel(row["channel"]),
                locale=row["locale"],
                title=rendered.title,
                body=rendered.body,
                sms_text=rendered.sms_text,
                template_code=rendered.sms_template_code,
                template_params=rendered.sms_params,
                data={"kind": row["kind"], "notification_id": row["notification_id"] or ""},
            )
            if row["channel"] == Channel.SMS.value:
                chain = self._sms_chain()
                c.provider_key = row["provider"] if row["provider"] in chain else chain[0]
                c.message = OutboundMessage(address=row["address"], **base)
            else:
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
                c.message = OutboundMessage(address="", **base)
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
    def _send(self, ready: list[Claimed], deferred: dict[str, datetime]) -> None:
        groups: dict[tuple, list[tuple[Claimed, OutboundMessage]]] = defaultdict(list)
        for c in ready:
            if c.results or c.message is None:
                continue
            if c.row["channel"] == Channel.SMS.value:
                key = (c.provider_key, c.row["batch_key"], c.row["kind"], c.message.template_code)
                groups[key].append((c, c.message))
            else:
                for device in c.row["_devices"]:
                    name = self._push_provider_for(device)
                    if name is None:
                        continue
                    message = OutboundMessage(**{**c.message.__dict__, "address": device["token"]})
                    key = (name, c.row["batch_key"], c.message.title, c.message.body)
                    groups[key].append((c, message))
        calls: list[tuple[str, list[tuple[Claimed, OutboundMessage]]]] = []
        for key, items in groups.items():
            provider = self.providers[key[0]]
            bucket = self.buckets[key[0]]
            for start in range(0, len(items), provider.max_batch):
                chunk = items[start : start + provider.max_batch]
                granted = bucket.take(len(chunk))
                for c, _ in chunk[granted:]:
                    deferred[c.row["id"]] = self.clock() + timedelta(seconds=1)
                if chunk[:granted]:
                    calls.append((key[0], chunk[:granted]))
        # Provider calls wait on the network: several run at once, each recording into its own claims.
        list(self._pool.map(lambda call: self._call_provider(*call), calls))

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
        for (c, _), result in zip(chunk, results, strict=True):
            c.provider_key = name
            c.results.append(result)

    # --- recording ----------------------------------------------------------------------------
    @staticmethod
    def _count(claimed: list[Claimed], updates: list[dict[str, Any]]) -> None:
        attempts_by: Counter = Counter()
        finished_by: Counter = Counter()
        for c in claimed:
            for r in c.results:
                attempts_by[(c.row["channel"], c.provider_key or "-", r.outcome.value)] += 1
            if c.results:
                metrics.PROVIDER_LATENCY.labels(c.provider_key or "-").observe(c.results[0].latency_ms / 1000)
        channel_of = {c.row["id"]: c.row["channel"] for c in claimed}
        for u in updates:
            if u["state"] != DeliveryState.PENDING.value:
                finished_by[(channel_of[u["b_id"]], u["state"])] += 1
        for labels, n in attempts_by.items():
            metrics.ATTEMPTS.labels(*labels).inc(n)
        for labels, n in finished_by.items():
            metrics.FINISHED.labels(*labels).inc(n)

    def _record(self, claimed: list[Claimed], deferred: dict[str, datetime], now: datetime) -> None:
        updates: list[dict[str, Any]] = []
        attempt_rows: list[dict[str, Any]] = []
        wipe: list[str] = []  # one-time codes whose parameters must not outlive the delivery
        gone_tokens: list[str] = []
        failed_events = []
        chain = self._sms_chain()
        for c in claimed:
            row = c.row
            base = {
                "b_id": row["id"],
                "state": DeliveryState.PENDING.value,
                "reason": row["reason"],
                "provider": c.provider_key or row["provider"],
                "providers_tried": list(row["providers_tried"] or []),
                "provider_message_id": row["provider_message_id"],
                "attempts": row["attempts"],
                "segments": row.get("segments"),
                "next_attempt_at": row["next_attempt_at"],
                "outcome_unknown": row["outcome_unknown"],
                "sent_at": row["sent_at"],
                "finished_at": None,
            }
            if row["id"] in deferred and not c.results:
                base["next_attempt_at"] = deferred[row["id"]]
                updates.append(base)
                continue
            if not c.results:
                # Nothing could be tried (no provider for any of its devices).
                base.update(state=DeliveryState.FAILED.value, reason="no provider configured", finished_at=now)
                updates.append(base)
                continue
            for r in c.results:
                attempt_rows.append(
                    {
                        "delivery_id": row["id"],
                        "provider": c.provider_key or "-",
                        "started_at": now,
                        "latency_ms": r.latency_ms,
                        "outcome": r.outcome.value,
                        "request_id": r.request_id,
                        "error_code": r.error_code,
                        "error_message": (r.error_message or None) and r.error_message[:500],
                    }
                )
                if r.address_gone and row["channel"] == Channel.PUSH.value:
                    gone_tokens.append(r.address)
            outcome = _combine(c.results)
            best = next((r for r in c.results if r.outcome == Outcome.OK), c.results[0])
            base["attempts"] = row["attempts"] + 1
            if c.provider_key:
                base["providers_tried"] = base["providers_tried"] + [c.provider_key]
            if outcome == Outcome.OK:
                base.update(
                    state=DeliveryState.SENT.value,
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
            elif outcome == Outcome.PROVIDER and row["channel"] == Channel.SMS.value and _next(chain, c.provider_key):
                base.update(
                    provider=_next(chain, c.provider_key),
                    next_attempt_at=now,
                    outcome_unknown=False,
                    reason=f"{c.provider_key}: {best.error_code}",
                )
            elif outcome == Outcome.RETRYABLE and base["attempts"] < self.config.max_attempts:
                provider = c.provider_key
                recent = base["providers_tried"][-2:]
                if row["channel"] == Channel.SMS.value and len(recent) == 2 and set(recent) == {provider}:
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
                base.update(state=DeliveryState.FAILED.value, reason=reason[:300], finished_at=now)
                failed_events.append((row, base))
            if base["state"] in (DeliveryState.SENT.value, DeliveryState.FAILED.value) and row["kind"] in SECRET_KINDS:
                wipe.append(row["id"])
            updates.append(base)
        self._count(claimed, updates)
        uow = UnitOfWork(self.database, self.outbox)
        with uow:
            session = uow.session
            for row in updates:
                row["id"] = row.pop("b_id")
                row["lease_until"] = None
            repository.bulk_update(session, deliveries, updates, "id")
            if wipe:
                session.execute(update(deliveries).where(deliveries.c.id.in_(wipe)).values(params={}))
            repository.bulk_insert(session, attempts, attempt_rows)
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
                            "providers_tried": final["providers_tried"],
                            "reason": final["reason"] or "failed",
                            "attempts": final["attempts"],
                            "source_event_type": row["source_type"],
                        },
                        producer=SERVICE,
                        community_id=row["community_id"],
                    )
                )
            uow.commit()


def _combine(results: list[SendResult]) -> Outcome:
    """One delivery's outcome from its devices' (or its single) results."""
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
