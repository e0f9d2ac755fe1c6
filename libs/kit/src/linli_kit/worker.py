"""The worker process of a service: outbox relay, event consumer, the pruning of outbox and inbox
rows, and timers on threads, plus a small HTTP listener for `/healthz`, `/readyz` and `/metrics`.
Stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.events.consumer import AnyHandler, EventConsumer
from linli_kit.events.relay import OutboxRelay
from linli_kit.events.retention import MessagingRetention
from linli_kit.metrics import render
from linli_kit.tables import MessagingTables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timer:
    """Work done every `interval` seconds (deadlines, reminders, clean-up)."""

    name: str
    interval: float
    run: Callable[[], None]


def tune_gc_for_batches(young_threshold: int) -> None:
    """For a worker whose consumer handles events in batches (a service opts in: see
    `ServiceDefinition.worker_gc_threshold`). What exists once the worker is built (modules,
    schemas, compiled statements: some 170,000 objects) is never garbage: frozen, so a full
    collection no longer walks it (each took about 0.1 s during a burst of events). A batch's own
    objects live until the batch ends and are freed by reference counting: with a young generation
    of `young_threshold` objects instead of 700 they are rarely collected, or promoted, mid-batch.
    Nothing is collected that would not be otherwise, only later (cycles, which these are not)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


class Worker:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        tables: MessagingTables,
        *,
        handlers: dict[str, AnyHandler] | None = None,
        timers: list[Timer] | None = None,
        gc_young_threshold: int | None = None,
    ) -> None:
        self.settings = settings
        self.gc_young_threshold = gc_young_threshold
        self.database = database
        self.stop = threading.Event()
        self.relay = OutboxRelay(
            database,
            tables.outbox,
            settings.amqp_url,
            settings.bus,
            service=settings.service,
            batch_size=settings.relay_batch_size,
            idle_seconds=settings.relay_idle_seconds,
        )
        self.consumer = (
            EventConsumer(
                database,
                tables.inbox,
                settings.amqp_url,
                settings.bus,
                service=settings.service,
                handlers=handlers,
                prefetch=settings.prefetch,
                batch_size=settings.consumer_batch_size,
                delivery_limit=settings.delivery_limit,
            )
            if handlers
            else None
        )
        self.retention = MessagingRetention(
            database,
            tables,
            outbox_retention=timedelta(hours=settings.outbox_retention_hours),
            inbox_retention=timedelta(days=settings.inbox_retention_days),
            service=settings.service,
        )
        self.timers = timers or []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._spawn("relay", self.relay.run)
        if self.consumer is not None:
            self._spawn("consumer", self.consumer.run)
        self._spawn("retention", self.retention.run)
        for timer in self.timers:
            self._spawn(f"timer-{timer.name}", self._timer_loop(timer))

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), name=f"{self.settings.service}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _timer_loop(self, timer: Timer) -> Callable[[threading.Event], None]:
        def loop(stop: threading.Event) -> None:
            while not stop.wait(timer.interval):
                try:
                    timer.run()
                except Exception:  # noqa: BLE001 - a failed round is retried at the next tick
                    log.exception("timer failed", extra={"timer": timer.name})

        return loop

    def is_ready(self) -> bool:
        consumer_ok = self.consumer is None or self.consumer.ready.is_set()
        return consumer_ok and self.relay.connected.is_set()

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def serve_forever(self, health_port: int | None) -> None:
        """Run until a signal arrives; serve the probes on `health_port` meanwhile."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        if self.gc_young_threshold is not None:
            tune_gc_for_batches(self.gc_young_threshold)
        self.start()
        server = self._probe_server(health_port) if health_port else None
        log.info("worker started", extra={"service": self.settings.service, "health_port": health_port})
        self.stop.wait()
        if server is not None:
            server.shutdown()
        self.shutdown()
        log.info("worker stopped", extra={"service": self.settings.service})

    def _probe_server(self, port: int) -> WSGIServer:
        def app(environ: dict, start_response: Callable) -> list[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                body, content_type = render()
                start_response("200 OK", [("Content-Type", content_type)])
                return [body]
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "application/json")])
                return [b'{"status":"ok"}']
            if path == "/readyz":
                try:
                    self.database.ping()
                    database = "ok"
                except Exception as exc:  # noqa: BLE001
                    database = f"unavailable: {type(exc).__name__}"
                broker = "ok" if self.is_ready() else "connecting"
                ready = database == "ok" and broker == "ok"
                start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "application/json")])
                return [
                    json.dumps(
                        {
                            "status": "ready" if ready else "not ready",
                            "checks": {"database": database, "broker": broker},
                        }
                    ).encode()
                ]
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error":{"status":404,"code":"not_found"}}']

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        server = make_server("0.0.0.0", port, app, handler_class=QuietHandler)
        threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
        return server
