"""The nameko peer of `bench/services_events.py`: the same burst, EventDispatcher -> event_handler
(run in its own venv).

The handler does what our consumer does for each event: in one PostgreSQL transaction, an inbox
row (INSERT ... ON CONFLICT DO NOTHING) and, when the event is new, one effect row. Nameko acks
after the handler returned; its dispatcher publishes persistent messages with confirms (its
defaults).

    nameko run nameko_peer:Consumer --config CONFIG.yaml        # the service (AMQP_URI in the config)
    python nameko_peer.py publish N PAYLOAD_FILE                 # the dispatcher; prints its start time

Settings from the environment: PEER_AMQP_URL, PEER_DATABASE_URL (libpq form), PEER_SOURCE (the
dispatching service's name, so each run has its own exchange).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
import uuid

import psycopg
from nameko.events import event_handler

SOURCE = os.environ.get("PEER_SOURCE", "benchsource")
_pool: queue.Queue | None = None


def _connection() -> psycopg.Connection:
    global _pool
    if _pool is None:
        _pool = queue.Queue()
        for _ in range(10):  # one per nameko worker (max_workers defaults to 10)
            _pool.put(psycopg.connect(os.environ["PEER_DATABASE_URL"]))
    return _pool.get()


class Consumer:
    name = f"{SOURCE}consumer"

    @event_handler(SOURCE, "bench_event")
    def handle(self, envelope: str) -> None:
        event = json.loads(envelope)
        conn = _connection()
        try:
            with conn.transaction():
                new = conn.execute(
                    "INSERT INTO peer_inbox (consumer, event_id) VALUES ('nameko', %s) "
                    "ON CONFLICT DO NOTHING RETURNING event_id",
                    (event["id"],),
                ).fetchone()
                if new:
                    conn.execute(
                        "INSERT INTO peer_effects (event_id, n) VALUES (%s, %s)", (event["id"], event["data"]["n"])
                    )
        finally:
            _pool.put(conn)


def publish(count: int, payload_file: str) -> None:
    from nameko.standalone.events import event_dispatcher

    template = json.loads(open(payload_file, encoding="utf-8").read())
    bodies = []
    for n in range(count):
        template["id"], template["data"]["n"] = str(uuid.uuid4()), n
        bodies.append(json.dumps(template))
    dispatch = event_dispatcher({"AMQP_URI": os.environ["PEER_AMQP_URL"]})
    start = time.time()
    for body in bodies:
        dispatch(SOURCE, "bench_event", body)
    print(json.dumps({"start": start, "end": time.time()}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["publish"]:
    publish(int(sys.argv[2]), sys.argv[3])
