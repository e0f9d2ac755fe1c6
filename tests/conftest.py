"""Fixtures for the tests that cross services: the platform's real processes on PostgreSQL and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli_demo import story
from linli_kit.config import BusNames
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform

ADMIN_PHONE, ADMIN_PASSWORD = "13800000000", "fuzz-admin-2026"
# Modules that share the demo platform, in the order they use it: the matrix and the languages read
# the city as the story made it; the fuzzer, which changes it at random as every role, comes after.
_DEMO_PLATFORM_ORDER = ("tests/test_scope_matrix.py", "tests/test_languages.py", "tests/test_fuzz.py")
# The longest modules (minutes each: whole platforms, a broker cluster, a browser), first, so that
# pytest-xdist's workers (`make test` runs two, a module to each in turn) end together rather than
# one waiting for the other's last long module. Ranked by their wall time in a `make test` of
# 2026-12-05 (pytest.ini turns off xdist's own order, by number of tests, which ran these last).
_LONGEST_FIRST = (
    "web/tests/test_browser_staff.py",
    "tests/test_story.py",
    "web/tests/test_browser.py",
    "services/issues/tests/test_open311_client.py",
    "tests/test_cluster.py",
    *_DEMO_PLATFORM_ORDER,
    "tests/test_gateway.py",
    "web/tests/test_browser_story.py",
    "tests/test_directory_flow.py",
    "services/issues/tests/test_privacy_platform.py",
    "tests/test_front_routing.py",
    "tests/test_revocation.py",
    "services/meetings/tests/test_end_to_end.py",
    "services/issues/tests/test_status_counts.py",
    "services/issues/tests/test_cli.py",
    "services/notifications/tests/test_sqlite_platform.py",
    "services/issues/tests/test_consultation_counts.py",
    "services/activities/tests/test_platform_flow.py",
    "services/meetings/tests/test_vote_race.py",
    "services/activities/tests/test_on_any_database.py",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(config.rootpath).as_posix()
        return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)

    # A stable sort: the listed modules move to the front, in that order; the rest keep theirs.
    items.sort(key=rank)


class _Upstream:
    """A stand-in service on loopback that answers with what it received (for the proxy's mechanics)."""

    def __init__(self, *, hang: bool = False) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        self.released = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                outer.requests.append(seen)
                if hang:
                    outer.released.wait(30)
                if self.path.startswith("/openapi.json"):
                    payload = {
                        "openapi": "3.0.3",
                        "info": {"title": "echo", "version": "v1"},
                        "paths": {
                            "/{id}": {
                                "get": {
                                    "tags": ["things"],
                                    "responses": {
                                        "200": {
                                            "description": "ok",
                                            "content": {
                                                "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                                            },
                                        }
                                    },
                                }
                            }
                        },
                        "components": {"schemas": {"Thing": {"type": "object"}}},
                    }
                    status = 200
                elif self.path.startswith("/missing"):
                    payload, status = {"error": {"status": 404, "code": "not_found"}}, 404
                else:
                    payload, status = seen, 200
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Upstream", "echo")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream_factory():
    made: list[_Upstream] = []

    def make(**kwargs) -> _Upstream:
        server = _Upstream(**kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture(scope="session")
def demo_platform(
    amqp_url: str, run_id: str, token_keys: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, story.City]]:
    bus = BusNames(f"t.{run_id}.demo.events", f"t.{run_id}.demo.dead", f"t.{run_id}.demo.")
    private_key, public_key = token_keys
    platform = Platform(
        None,
        amqp_url,
        bus,
        public_key,
        private_key,
        tmp_path_factory.mktemp("demo") / "platform",
        web_concurrency=2,
        extra_env={
            # The fuzzer is one client sending thousands of requests; the limits are tested elsewhere.
            "RATE_LIMIT_PER_CLIENT": "100000/minute",
            "RATE_LIMIT_PER_ACCOUNT": "100000/minute",
            "RATE_LIMIT_AUTH": "100000/minute",
            "ACCESS_TOKEN_TTL_SECONDS": "7200",
        },
    )
    try:
        gateway = platform.start_all()
        platform.command("gateway", "create-admin", "--phone", ADMIN_PHONE, "--password", ADMIN_PASSWORD)
        quiet = lambda _line: None  # noqa: E731
        city = story.set_up_city(gateway.url, ADMIN_PHONE, ADMIN_PASSWORD, quiet)
        wall = story.cultural_wall(city, quiet)
        activity = story.popular_activity(city, quiet)
        # Real ids the fuzzer may put in path parameters.
        city.ids = {  # type: ignore[attr-defined]
            "issue": wall["wall"],
            "meeting": wall["meeting"],
            "decision": wall["decision"]["id"],
            "activity": activity["activity"],
        }
        yield platform, city
    except BaseException:
        print(platform.logs())
        raise
    finally:
        platform.stop_all()
        services = ["issues", "meetings", "activities", "notifications", "gateway"]
        queues = [q for s in services for q in (bus.queue(s), bus.dead_letter_queue(s))]
        infra.delete_bus(amqp_url, bus.exchange, bus.dead_letter_exchange, queues)
