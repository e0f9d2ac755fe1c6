"""Fixtures of the meetings tests: a migrated PostgreSQL database, the app on it, tokens, a clock."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from linli_kit import migrations
from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.events import new_event
from linli_kit.replica import replica_handlers
from linli_kit.testing import english_test_clients
from linli_meetings.adapters.tables import replica
from linli_meetings.definition import definition
from linli_meetings.entrypoints.web import create_app


@pytest.fixture(scope="session")
def meetings_db_url(pg_databases) -> str:
    """One migrated database for the session; tests isolate themselves by fresh community ids."""
    url = pg_databases.create("meetings")
    migrations.upgrade(definition.migrations_dir, url)
    return url


@pytest.fixture
def db_url(request, meetings_db_url, tmp_path) -> str:
    """The database of a test: the session's PostgreSQL one, or, for a test parametrized with
    `pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)`, also a migrated
    SQLite file of its own, as `make run` has (naive datetimes, one writer at a time)."""
    if getattr(request, "param", "postgresql") == "sqlite":
        url = f"sqlite:///{tmp_path / 'meetings.db'}"
        migrations.upgrade(definition.migrations_dir, url)
        return url
    return meetings_db_url


@dataclass
class Clock:
    """Real time unless a test moves it."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(monkeypatch, db_url, amqp_url, bus_names, token_keys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_EXCHANGE", bus_names.exchange)
    monkeypatch.setenv("DEAD_LETTER_EXCHANGE", bus_names.dead_letter_exchange)
    monkeypatch.setenv("QUEUE_PREFIX", bus_names.queue_prefix)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_JSON", "false")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return load_settings("meetings")


@pytest.fixture
def database(settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def app(settings, database, clock):
    return create_app(settings, database, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def documented(app) -> Callable[..., None]:
    """Check an answer against what the service's OpenAPI document says of that operation."""
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def check(response, path: str, method: str = "GET") -> None:
        schema[path][method].validate_response(response)

    return check


@dataclass
class World:
    """A street with two communities in the replica, and people with tokens."""

    signer: object
    street_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    community_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    other_community_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    other_street_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def headers(self, role: str, *, user_id: str | None = None, community_id: str | None = None, **claims) -> dict:
        community = community_id or self.community_id
        defaults = {
            "resident": {"community_ids": [community]},
            "community_staff": {"community_ids": [community]},
            "property_manager": {"community_ids": [community]},
            "street_official": {"street_id": self.street_id},
            "city_admin": {},
            "agency": {},
            "api_client": {"community_ids": [community]},
        }[role]
        token = self.signer.sign(user_id=user_id or str(uuid.uuid4()), role=role, **(defaults | claims))
        return {"Authorization": f"Bearer {token}"}

    def person(self, role: str = "resident", **claims) -> tuple[str, dict]:
        user_id = str(uuid.uuid4())
        return user_id, self.headers(role, user_id=user_id, **claims)


@pytest.fixture
def world(database, token_signer) -> World:
    w = World(signer=token_signer)
    handlers = replica_handlers(replica)
    with database.transaction() as session:
        for street in (w.street_id, w.other_street_id):
            handlers["directory.street.upserted"](
                session,
                new_event(
                    "directory.street.upserted",
                    {"street_id": street, "name": f"S {street[:8]}", "revision": 1},
                    producer="gateway",
                ),
            )
        for community, street in ((w.community_id, w.street_id), (w.other_community_id, w.other_street_id)):
            handlers["directory.community.upserted"](
                session,
                new_event(
                    "directory.community.upserted",
                    {"community_id": community, "street_id": street, "name": f"C {community[:8]}", "revision": 1},
                    producer="gateway",
                ),
            )
    return w


@pytest.fixture
def staff(world) -> dict:
    return world.headers("community_staff")


@pytest.fixture
def meeting_body(world) -> Callable[..., dict]:
    def make(**overrides) -> dict:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        body = {
            "community_id": world.community_id,
            "meeting_type": "round_table",
            "title": "Leaking roof of Building 7",
            "place": "Community hall, room 2",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
        }
        return body | overrides

    return make


@pytest.fixture
def outbox_events(database) -> Callable[[str], list[dict]]:
    """The events this service committed to its outbox, of one type, for one community."""
    from linli_meetings.adapters.tables import messaging

    def read(event_type: str, community_id: str | None = None) -> list[dict]:
        import json

        with database.session() as s:
            rows = s.scalars(
                select(messaging.outbox.c.payload)
                .where(messaging.outbox.c.event_type == event_type)
                .order_by(messaging.outbox.c.id)
            ).all()
        events = [json.loads(r) for r in rows]
        return [e for e in events if community_id is None or e["community_id"] == community_id]

    return read


class BusTap:
    """A queue bound to keys of the test exchange: the events that really reached the broker."""

    def __init__(self, amqp_url: str, bus, keys: tuple[str, ...]) -> None:
        import pika

        from linli_kit.events.topology import declare_exchanges

        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        for key in keys:
            self.channel.queue_bind(self.queue, bus.exchange, routing_key=key)
        self.seen: list[dict] = []

    def events(self) -> list[dict]:
        import json

        while True:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            self.seen.append(json.loads(body))

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def bus_tap(amqp_url, bus_names):
    taps = []

    def make(*keys: str) -> BusTap:
        tap = BusTap(amqp_url, bus_names, keys)
        taps.append(tap)
        return tap

    yield make
    for tap in taps:
        tap.close()


@pytest.fixture
def publish(amqp_url, bus_names):
    """Publish an event onto the test exchange as another service's relay would."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    channel.confirm_delivery()

    def send(event) -> None:
        channel.basic_publish(
            bus_names.exchange,
            event.type,
            event.to_json().encode(),
            pika.BasicProperties(
                message_id=event.id, type=event.type, content_type="application/json", delivery_mode=2
            ),
        )

    yield send
    conn.close()


@pytest.fixture
def worker(settings, database):
    """The service's worker (relay, consumer) on threads, its queue declared before it starts."""
    w = definition.build_worker(settings, database)
    w.consumer.declare()
    w.start()
    yield w
    w.shutdown(15)


@pytest.fixture
def register_organisation(database, world) -> Callable[..., str]:
    """Put an organisation into the replica of the register, as directory.organisation.upserted
    would: by default an active party branch of the world's community. Returns its id."""
    handle = replica_handlers(replica)["directory.organisation.upserted"]

    def add(
        name: str = "Building 7 party branch",
        kind: str = "party_branch",
        *,
        community_id: str | None | bool = True,
        street_id: str | None = None,
        active: bool = True,
        organisation_id: str | None = None,
        revision: int = 1,
    ) -> str:
        organisation_id = organisation_id or str(uuid.uuid4())
        data = {
            "organisation_id": organisation_id,
            "kind": kind,
            "name": name,
            "street_id": street_id,
            "community_id": world.community_id if community_id is True else community_id,
            "compound_ids": [],
            "active": active,
            "revision": revision,
        }
        with database.transaction() as session:
            handle(session, new_event("directory.organisation.upserted", data, producer="gateway"))
        return organisation_id

    return add


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """These tests read the API's messages in English; Chinese, the default, has tests of its own."""
    english_test_clients(monkeypatch)
