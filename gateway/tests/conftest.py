"""The gateway on each database: a migrated database, its unit of work, and its web app in-process."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from linli_gateway.definition import definition
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_kit.testing import english_test_clients


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A migrated gateway database: a SQLite file, or a PostgreSQL database of this run (a copy of
    the one the run migrated first)."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_databases").create_migrated("gateway", definition.migrations_dir)
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(definition.migrations_dir, url)
    return url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.engine.dispose()


@pytest.fixture
def uow(database: Database) -> Callable[[], GatewayUnitOfWork]:
    return lambda: GatewayUnitOfWork(database)


@pytest.fixture
def gateway_env(database_url: str, token_keys: tuple[str, str], tmp_path, monkeypatch) -> dict[str, str]:
    """The environment a gateway web process reads (set here for an app made in this process)."""
    env = {
        "DATABASE_URL": database_url,
        "LINLI_DATA_DIR": str(tmp_path),
        "JWT_PRIVATE_KEY": token_keys[0],
        "JWT_PUBLIC_KEY": token_keys[1],
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("GATEWAY_DATABASE_URL", "REDIS_URL", "RATELIMIT_STORAGE_URI", "TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def make_app(gateway_env: dict[str, str], monkeypatch) -> Iterator[Callable[..., object]]:
    """`make_app(**env)`: a gateway web app in this process, with these settings added."""
    from linli_gateway.entrypoints.web import create_app

    apps = []

    def make(**extra: str) -> object:
        for name, value in extra.items():
            monkeypatch.setenv(name, value)
        with monkeypatch.context() as during:
            # Flask finds an app's root by its name ("gateway"); pytest's importlib mode registered
            # the checkout's gateway/ folder under that name, which Flask cannot use.
            during.delitem(sys.modules, "gateway", raising=False)
            during.chdir(gateway_env["LINLI_DATA_DIR"])
            app = create_app()
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["linli.database"].engine.dispose()


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def echo() -> Iterator[dict]:
    """A stand-in service that answers 200 with the headers it received; `echo["url"]`, `echo["seen"]`."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            seen.append(dict(self.headers.items()))
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "seen": seen}
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """These tests read the API's messages in English; Chinese, the default, has tests of its own."""
    english_test_clients(monkeypatch)
