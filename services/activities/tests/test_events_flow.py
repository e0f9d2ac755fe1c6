"""Events through the real RabbitMQ: what the service publishes through its outbox (relayed by its
worker), and the directory replica it keeps from the gateway's events."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from sqlalchemy import select

from linli_activities.adapters.tables import replica
from linli_activities.definition import definition
from linli_kit.config import load_settings
from linli_kit.events import new_event
from linli_kit.events.topology import declare_exchanges
from linli_kit.testing.probe import publish_raw
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


class BodyTap:
    """A queue bound to every key of the test exchange, returning the event envelopes."""

    def __init__(self, amqp_url, bus):
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, bus.exchange, routing_key="activities.#")
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            self.seen.append(json.loads(body))

    def close(self):
        self.conn.close()


@pytest.fixture
def worker(app, database):
    settings = load_settings("activities")  # the app fixture put this test's names in the environment
    running = definition.build_worker(settings, database)
    running.start()
    eventually(running.is_ready, what="activities worker ready")
    yield running
    running.shutdown(10)


@pytest.fixture
def tap(amqp_url, bus_names):
    t = BodyTap(amqp_url, bus_names)
    yield t
    t.close()


def test_activity_lifecycle_events_reach_the_broker(client, world, worker, tap, clock):
    staff = world.headers("community_staff")
    aid = client.post(
        "/",
        json={
            "community_ids": [world.community_a],
            "kind": "festival",
            "title": "Lantern night",
            "starts_at": "2026-12-05T18:00:00+08:00",
            "ends_at": "2026-12-05T21:00:00+08:00",
            "capacity": 1,
            "max_party_size": 1,
            "publish": True,
        },
        headers=staff,
    ).get_json()["id"]
    first_user, first = world.person()
    second_user, second = world.person()
    r1 = client.post(f"/{aid}/registrations", json={}, headers=first).get_json()
    client.post(f"/{aid}/registrations", json={}, headers=second)
    client.post(f"/{aid}/registrations/{r1['id']}/cancel", headers=first)
    client.patch(f"/{aid}", json={"starts_at": "2026-12-05T19:00:00+08:00"}, headers=staff)
    clock.now = clock.now.replace(day=5, hour=10, minute=30)
    client.post(f"/{aid}/walk-ins", json={"community_id": world.community_a, "participants": 2}, headers=staff)
    client.post(f"/{aid}/cancel", json={"reason": "storm warning"}, headers=staff)

    def mine():
        return [e for e in tap.drain() if e["data"].get("activity_id") == aid]

    expected = [
        "activities.activity.published",
        "activities.registration.confirmed",
        "activities.registration.waitlisted",
        "activities.registration.cancelled",
        "activities.registration.promoted",
        "activities.activity.rescheduled",
        "activities.checkin.recorded",
        "activities.activity.cancelled",
    ]
    events = eventually(lambda: len(mine()) >= len(expected) and mine(), what="all lifecycle events")
    assert sorted(e["type"] for e in events) == sorted(expected)
    by_type = {e["type"]: e for e in events}
    waitlisted = by_type["activities.registration.waitlisted"]["data"]
    assert (waitlisted["user_id"], waitlisted["waitlist_position"]) == (second_user, 1)
    promoted = by_type["activities.registration.promoted"]["data"]
    assert (promoted["user_id"], promoted["status"]) == (second_user, "confirmed")
    rescheduled = by_type["activities.activity.rescheduled"]["data"]
    assert rescheduled["previous_starts_at"].startswith("2026-12-05T10:00:00")
    assert rescheduled["registrant_ids"] == [second_user]  # who to tell: the cancelled one is not
    cancelled = by_type["activities.activity.cancelled"]
    assert cancelled["data"]["reason"] == "storm warning" and cancelled["community_id"] == world.community_a
    assert cancelled["street_id"] == world.street_id
    revisions = [
        by_type[t]["data"]["revision"]
        for t in ("activities.activity.published", "activities.activity.rescheduled", "activities.activity.cancelled")
    ]
    assert revisions == sorted(revisions) and len(set(revisions)) == 3


def test_compound_coordinates_arrive_from_the_directory_once_and_in_order(world, worker, amqp_url, bus_names, database):
    compound = str(uuid.uuid4())

    def upserted(revision, lat):
        return (
            new_event(
                "directory.compound.upserted",
                {
                    "compound_id": compound,
                    "community_id": world.community_a,
                    "name": "Sunny garden",
                    "latitude": lat,
                    "longitude": 106.3,
                    "revision": revision,
                },
                producer="gateway",
            )
            .to_json()
            .encode()
        )

    newer, older = upserted(2, 38.2), upserted(1, 38.1)
    publish_raw(amqp_url, bus_names, newer, routing_key="directory.compound.upserted")
    publish_raw(amqp_url, bus_names, older, routing_key="directory.compound.upserted")  # late
    publish_raw(amqp_url, bus_names, newer, routing_key="directory.compound.upserted")  # duplicate

    def stored():
        with database.session() as s:
            return s.execute(
                select(replica.compounds.c.latitude, replica.compounds.c.revision).where(
                    replica.compounds.c.compound_id == compound
                )
            ).first()

    eventually(lambda: stored() is not None, what="compound in the replica")
    sentinel = str(uuid.uuid4())
    publish_raw(
        amqp_url,
        bus_names,
        new_event(
            "directory.community.upserted",
            {
                "community_id": sentinel,
                "street_id": world.street_id,
                "name": "sentinel",
                "revision": 1,
            },
            producer="gateway",
        )
        .to_json()
        .encode(),
        routing_key="directory.community.upserted",
    )

    def sentinel_seen():
        with database.session() as s:
            return s.scalar(
                select(replica.communities.c.community_id).where(replica.communities.c.community_id == sentinel)
            )

    eventually(sentinel_seen, what="sentinel handled after the compound events")
    assert tuple(stored()) == (38.2, 2)
