"""Fixtures of the activities tests: one migrated PostgreSQL database for the session (tests keep
apart by making their own communities), the Flask app on it with a settable clock, and tokens."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from linli_activities.adapters.tables import replica
from linli_activities.definition import definition
from linli_activities.entrypoints.web import create_app
from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_kit.testing import english_test_clients


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_DOCUMENT: list[Any] = []
UNDOCUMENTED = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/static/<path:filename>"}


def check_documented(app: Flask, response: Any) -> None:
    """Fail when `response` is not what the service's OpenAPI document says its route answers: the
    status, the content type and the body against its schema (nullable fields included)."""
    if not _DOCUMENT:
        # The same document for every app of the run: loaded (and its validators built) once.
        document = FlaskClient(app, app.response_class).get("/openapi.json").get_json()
        _DOCUMENT.append(schemathesis.openapi.from_dict(document))
    request = response.request
    adapter = app.url_map.bind("localhost")
    try:
        rule, _args = adapter.match(request.path, request.method, return_rule=True)
    except Exception:  # noqa: BLE001 - no route (404/405): nothing documented to compare with
        return
    if rule.rule in UNDOCUMENTED:
        return
    path = _RULE_VARIABLE.sub(r"{\1}", rule.rule)
    _DOCUMENT[0][path][request.method].validate_response(response)


class DocumentedClient(FlaskClient):
    """The Flask test client, checking every response against the OpenAPI document: every test of
    the service is also a test that its document tells the truth."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        check_documented(self.application, response)
        return response


@pytest.fixture(scope="session")
def activities_db_url(pg_databases) -> str:
    url = pg_databases.create("activities")
    upgrade(definition.migrations_dir, url)
    return url


@pytest.fixture
def database(activities_db_url) -> Iterator[Database]:
    db = Database(activities_db_url, pool_size=10)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path) -> str:
    """The service's database once on each platform: a test using it runs on both. SQLite is a
    migrated file of this test alone (what `make run` uses); PostgreSQL the session's database."""
    if request.param == "postgresql":
        return request.getfixturevalue("activities_db_url")
    url = f"sqlite:///{tmp_path / 'activities.db'}"
    upgrade(definition.migrations_dir, url)
    return url


@pytest.fixture
def any_database(any_db_url) -> Iterator[Database]:
    db = Database(any_db_url, pool_size=10)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _app(monkeypatch, database_url, amqp_url, bus_names, token_keys, clock):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_EXCHANGE", bus_names.exchange)
    monkeypatch.setenv("DEAD_LETTER_EXCHANGE", bus_names.dead_letter_exchange)
    monkeypatch.setenv("QUEUE_PREFIX", bus_names.queue_prefix)
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    monkeypatch.setenv("LOG_JSON", "false")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    application = create_app(clock=clock)
    application.test_client_class = DocumentedClient
    yield application
    application.extensions["linli.database"].dispose()


@pytest.fixture
def app(monkeypatch, activities_db_url, amqp_url, bus_names, token_keys, clock):
    yield from _app(monkeypatch, activities_db_url, amqp_url, bus_names, token_keys, clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def any_app(monkeypatch, any_db_url, amqp_url, bus_names, token_keys, clock):
    """The app on `any_db_url`: once on SQLite, once on PostgreSQL."""
    yield from _app(monkeypatch, any_db_url, amqp_url, bus_names, token_keys, clock)


@pytest.fixture
def any_client(any_app):
    return any_app.test_client()


@dataclass
class World:
    """A street with two communities in the directory replica, and tokens for people in them."""

    database: Database
    sign: Callable[..., str]
    street_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    community_a: str = field(default_factory=lambda: str(uuid.uuid4()))
    community_b: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        with self.database.transaction() as s:
            s.execute(
                insert(replica.streets).values(street_id=self.street_id, name=f"street {self.street_id}", revision=1)
            )
            for cid in (self.community_a, self.community_b):
                s.execute(
                    insert(replica.communities).values(
                        community_id=cid, street_id=self.street_id, name=f"community {cid}", revision=1
                    )
                )

    def add_compound(self, community_id: str, name: str, lat: float | None, lon: float | None) -> str:
        compound_id = str(uuid.uuid4())
        with self.database.transaction() as s:
            s.execute(
                insert(replica.compounds).values(
                    compound_id=compound_id,
                    community_id=community_id,
                    name=name,
                    latitude=lat,
                    longitude=lon,
                    revision=1,
                )
            )
        return compound_id

    def headers(
        self,
        role: str = "resident",
        *,
        community: str | None = None,
        user: str | None = None,
        street: str | None = None,
        communities: list[str] | None = None,
    ) -> dict[str, str]:
        ids = communities if communities is not None else [community or self.community_a]
        if role in ("street_official", "city_admin"):
            ids = communities or []
        token = self.sign(
            user_id=user or str(uuid.uuid4()),
            role=role,
            street_id=street or (self.street_id if role == "street_official" else None),
            community_ids=ids,
        )
        return {"Authorization": f"Bearer {token}"}

    def person(self, role: str = "resident", **kwargs) -> tuple[str, dict[str, str]]:
        user = str(uuid.uuid4())
        return user, self.headers(role, user=user, **kwargs)


@pytest.fixture
def world(database, token_signer) -> World:
    return World(database, token_signer.sign)


@pytest.fixture
def any_world(any_database, token_signer) -> World:
    """A World in the database of `any_db_url` (SQLite, then PostgreSQL)."""
    return World(any_database, token_signer.sign)


def _run_all(targets: list[Callable[[], Any]]) -> list[Any]:
    """Start every target at the same moment (a barrier) and wait for all; return what each
    returned or raised, in order."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)

    def runner(i: int, target: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = target()
        except Exception as exc:  # noqa: BLE001 - kept for the assertions
            results[i] = exc

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def simultaneously() -> Callable[[list[Callable[[], Any]]], list[Any]]:
    return _run_all


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """These tests read the API's messages in English; Chinese, the default, has tests of its own."""
    english_test_clients(monkeypatch)
