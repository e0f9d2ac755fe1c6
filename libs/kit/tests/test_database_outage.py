"""A database that drops every connection mid-stream: no event is lost and none is handled twice."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def kill_connections(pg_admin_url: str, database_url: str) -> int:
    name = make_url(database_url).database
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def test_consumer_and_relay_survive_dropped_database_connections(database, amqp_url, bus_names, threads, pg_admin_url):
    consumer = probe.make_consumer(database, amqp_url, bus_names, batch_size=20)
    consumer.declare()
    relay = probe.relay_for(database, amqp_url, bus_names, batch_size=25)
    threads(consumer.run)
    threads(relay.run)

    def handled() -> list[int]:
        with database.session() as s:
            return sorted(s.scalars(select(probe.effects.c.n)))

    killed = 0
    for start in range(0, 600, 50):
        probe.write_events(database, range(start, start + 50))
        eventually(lambda s=start: len(handled()) > s, what="progress before the next cut")
        killed += kill_connections(pg_admin_url, database.url)
    assert killed > 0
    eventually(lambda: len(handled()) >= 600, timeout=60, what="every event after the outages")
    assert handled() == list(range(600))  # none lost, none twice
