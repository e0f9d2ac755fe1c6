"""The celery peer of `bench/services_events.py`: the same burst, through celery (run in its own venv).

The task does what our consumer does for each event, the way a celery application would: in one
PostgreSQL transaction, an inbox row (INSERT ... ON CONFLICT DO NOTHING) and, when the event is
new, one effect row; acks_late, so the message is acked after the task returned.

    celery -A celery_peer worker -c 2 -P prefork -Q QUEUE       # the worker (2 prefork processes)
    python celery_peer.py publish N PAYLOAD_FILE                 # the publisher; prints its start time

Settings from the environment: PEER_AMQP_URL, PEER_DATABASE_URL (libpq form), PEER_QUEUE.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import psycopg
from celery import Celery
from kombu import Queue

QUEUE = os.environ.get("PEER_QUEUE", "bench.celery")
app = Celery("celery_peer", broker=os.environ.get("PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.update(
    task_acks_late=True,
    task_default_queue=QUEUE,
    task_queues=[Queue(QUEUE, durable=True)],
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_connection: psycopg.Connection | None = None


def _db() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["PEER_DATABASE_URL"])
    return _connection


@app.task(name="bench.handle")
def handle(envelope: str) -> None:
    event = json.loads(envelope)
    conn = _db()
    with conn.transaction():
        new = conn.execute(
            "INSERT INTO peer_inbox (consumer, event_id) VALUES ('celery', %s) "
            "ON CONFLICT DO NOTHING RETURNING event_id",
            (event["id"],),
        ).fetchone()
        if new:
            conn.execute("INSERT INTO peer_effects (event_id, n) VALUES (%s, %s)", (event["id"], event["data"]["n"]))


def publish(count: int, payload_file: str) -> None:
    template = json.loads(open(payload_file, encoding="utf-8").read())
    bodies = []
    for n in range(count):
        template["id"], template["data"]["n"] = str(uuid.uuid4()), n
        bodies.append(json.dumps(template))
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn)
        start = time.time()
        for body in bodies:
            handle.apply_async((body,), producer=producer)
    print(json.dumps({"start": start, "end": time.time()}), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["publish"]:
    publish(int(sys.argv[2]), sys.argv[3])
