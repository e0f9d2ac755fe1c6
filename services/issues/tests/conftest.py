"""Fixtures of the issues service tests: a migrated PostgreSQL database, the app, a movable clock,
a directory replica to scope against, and tokens for every role."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from linli_issues.adapters.tables import messaging, replica
from linli_issues.definition import definition
from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_kit.testing import english_test_clients
from linli_kit.testing.statements import statements_sent


class Clock:
    """The time the service sees; tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Directory:
    street_a: str
    street_b: str
    community_a1: str  # street A
    community_a2: str  # street A
    community_b1: str  # street B
    compound_a1: str  # in community A1, with coordinates
    compound_a1_east: str  # in community A1, about 1 km east
    compound_b1: str  # in community B1
    # Registered organisations: property companies of compound A1 and of A1 East, a city-wide bureau.
    property_company: str = field(default_factory=lambda: _id())
    other_company: str = field(default_factory=lambda: _id())
    bureau: str = field(default_factory=lambda: _id())


def _id() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="session")
def migrated_template(pg_databases) -> str:
    """One database migrated to head; each test copies it, which is much faster than migrating."""
    url = pg_databases.create("issues_template")
    upgrade(definition.migrations_dir, url)
    Database(url).dispose()
    return make_url(url).database


@pytest.fixture
def env(
    request, monkeypatch, pg_databases, pg_admin_url, migrated_template, amqp_url, bus_names, token_keys, tmp_path
) -> str:
    """The service's environment on a fresh PostgreSQL database; a test parametrized indirectly
    with "sqlite" (`@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)`) gets
    a migrated SQLite file instead, as `make run` uses."""
    if getattr(request, "param", "postgresql") == "sqlite":
        url = f"sqlite:///{tmp_path / 'issues.db'}"
        upgrade(definition.migrations_dir, url)
    else:
        name = f"lt_{pg_databases.run_id}_issues_{len(pg_databases.created)}".lower()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(migrated_template)
                )
            )
        pg_databases.created.append(name)
        url = (
            make_url(pg_admin_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_EXCHANGE", bus_names.exchange)
    monkeypatch.setenv("DEAD_LETTER_EXCHANGE", bus_names.dead_letter_exchange)
    monkeypatch.setenv("QUEUE_PREFIX", bus_names.queue_prefix)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_JSON", "false")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    return url


@pytest.fixture
def database(env) -> Iterator[Database]:
    db = Database(env)
    yield db
    db.dispose()


@pytest.fixture
def directory(database) -> Directory:
    d = Directory(_id(), _id(), _id(), _id(), _id(), _id(), _id(), _id())
    with database.transaction() as s:
        s.execute(
            insert(replica.streets),
            [
                {"street_id": d.street_a, "name": "Yucai Street", "city": "Lingwu", "revision": 1},
                {"street_id": d.street_b, "name": "City Street", "city": "Lingwu", "revision": 1},
            ],
        )
        s.execute(
            insert(replica.communities),
            [
                {"community_id": d.community_a1, "street_id": d.street_a, "name": "Yucai", "revision": 1},
                {"community_id": d.community_a2, "street_id": d.street_a, "name": "Shangpinyuan", "revision": 1},
                {"community_id": d.community_b1, "street_id": d.street_b, "name": "Xihu", "revision": 1},
            ],
        )
        s.execute(
            insert(replica.compounds),
            [
                {"compound_id": d.compound_a1, "community_id": d.community_a1, "name": "Garden",
                 "latitude": 38.1000, "longitude": 106.3400, "revision": 1},
                {"compound_id": d.compound_a1_east, "community_id": d.community_a1, "name": "East",
                 "latitude": 38.1000, "longitude": 106.3515, "revision": 1},
                {"compound_id": d.compound_b1, "community_id": d.community_b1, "name": "Lake",
                 "latitude": 38.2000, "longitude": 106.4000, "revision": 1},
            ],
        )  # fmt: skip
        assert replica.organisations is not None
        organisation = {"street_id": None, "community_id": None, "parent_id": None, "active": True, "revision": 1}
        s.execute(
            insert(replica.organisations),
            [
                organisation | {"organisation_id": d.property_company, "kind": "property_company",
                                "name": "Shangpin Property", "compound_ids": [d.compound_a1]},
                organisation | {"organisation_id": d.other_company, "kind": "property_company",
                                "name": "Yucai Property", "compound_ids": [d.compound_a1_east]},
                organisation | {"organisation_id": d.bureau, "kind": "bureau", "name": "Housing Bureau",
                                "compound_ids": []},
            ],
        )  # fmt: skip
    return d


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(env, clock):
    from linli_issues.entrypoints.web import create_app

    application = create_app(clock=clock)
    application.config["TESTING"] = True
    yield application
    application.extensions["linli.database"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


class Tokens:
    """Bearer headers for people of each role; ids are fixed per test so tests can compare them."""

    def __init__(self, signer, directory: Directory) -> None:
        self.signer = signer
        self.d = directory
        self.property_company = directory.property_company
        self.bureau = directory.bureau

    def header(self, user_id: str, role: str, **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.sign(user_id=user_id, role=role, **claims)}"}

    def resident(self, user_id: str | None = None, community_id: str | None = None) -> dict[str, str]:
        return self.header(user_id or _id(), "resident", community_ids=[community_id or self.d.community_a1])

    def staff(self, community_id: str | None = None, user_id: str | None = None) -> dict[str, str]:
        return self.header(user_id or _id(), "community_staff", community_ids=[community_id or self.d.community_a1])

    def street_official(self, street_id: str | None = None) -> dict[str, str]:
        return self.header(_id(), "street_official", street_id=street_id or self.d.street_a)

    def admin(self) -> dict[str, str]:
        return self.header(_id(), "city_admin")

    def property_manager(self, organisation_id: str | None = None) -> dict[str, str]:
        return self.header(
            _id(),
            "property_manager",
            community_ids=[self.d.community_a1],
            organisation_id=organisation_id or self.property_company,
        )

    def agency(self, organisation_id: str | None = None) -> dict[str, str]:
        return self.header(_id(), "agency", organisation_id=organisation_id or self.bureau)

    def api_client(
        self, community_ids: list[str] | None = None, street_id: str | None = None, key_id: str | None = None
    ) -> dict[str, str]:
        """As the gateway mints them: the subject is the key's id (12 hex digits, not a UUID)."""
        return self.header(
            key_id or uuid.uuid4().hex[:12],
            "api_client",
            community_ids=community_ids if community_ids is not None else [self.d.community_a1],
            street_id=street_id,
            extra={"client_name": "hotline"},
        )


@pytest.fixture
def tokens(token_signer, directory) -> Tokens:
    return Tokens(token_signer, directory)


def report_body(directory: Directory, **overrides) -> dict:
    body = {
        "community_id": directory.community_a1,
        "compound_id": directory.compound_a1,
        "building": "Building 7",
        "title": "Roof of Building 7 leaks",
        "description": "Rain comes through the roof into the top-floor flats.",
        "category": "repairs_facilities",
        "urgency": "high",
    }
    body.update(overrides)
    return body


@pytest.fixture
def report(client, directory, tokens):
    """Report an issue as a resident; returns (issue json, the resident's headers)."""

    def make(resident_id: str | None = None, **overrides):
        headers = tokens.resident(resident_id or _id(), overrides.get("community_id"))
        response = client.post("/", json=report_body(directory, **overrides), headers=headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json(), headers

    return make


@pytest.fixture
def outbox(database):
    """The events written so far, as (type, data) pairs, oldest first."""

    def read(event_type: str | None = None) -> list[tuple[str, dict]]:
        with database.session() as s:
            rows = s.execute(
                select(messaging.outbox.c.event_type, messaging.outbox.c.payload).order_by(messaging.outbox.c.id)
            )
            events = [(t, json.loads(p)) for t, p in rows]
        return [(t, e["data"]) for t, e in events if event_type is None or t == event_type]

    return read


@pytest.fixture
def valid_report(directory):
    """A valid report body, with the given fields replaced."""
    return lambda **overrides: report_body(directory, **overrides)


@pytest.fixture
def png_bytes() -> bytes:
    """A valid 2x2 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def set_publication(client, headers: dict, publication: str = "public", keys: list[str] | None = None) -> None:
    """As the city admin would: make these categories (default: every one) publish `publication`.
    `client` is a Flask test client of the service or anything with the same get/put."""
    for category in client.get("/categories?include_inactive=true").get_json():
        if keys is not None and category["key"] not in keys:
            continue
        body = {k: v for k, v in category.items() if k not in ("key", "label")}
        response = client.put(
            f"/categories/{category['key']}", json={**body, "publication": publication}, headers=headers
        )
        assert response.status_code == 200, response.get_json()


@pytest.fixture
def published(client, tokens):
    """Every category public, as a city that publishes everything chose (Open311 lists them)."""
    set_publication(client, tokens.admin())


@pytest.fixture
def publish(client, tokens):
    """publish(publication="public", keys=None): the city admin sets these categories' publication."""
    return lambda publication="public", keys=None: set_publication(client, tokens.admin(), publication, keys)


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """These tests read the API's messages in English; Chinese, the default, has tests of its own."""
    english_test_clients(monkeypatch)


@pytest.fixture
def statements():
    """`with statements(app) as seen:` — the SQL texts `app`'s engine sends meanwhile."""

    @contextmanager
    def recording(app) -> Iterator[list[str]]:
        # Seen where the driver sends them on PostgreSQL: a report's one statement is run by the
        # driver itself (linli_kit.db.driver_rowcount), out of SQLAlchemy's events.
        with statements_sent(app.extensions["linli.database"].engine) as seen:
            yield seen

    return recording
