"""Fixtures of the web front's tests.

Unit tests use an app built on a stub gateway (`StubGateway` below) and need nothing running. The
browser tests (`test_browser.py`) start the platform's real processes on SQLite as `make run` does,
the web process beside them, load the demo city through the public API, and drive Debian's Chromium
with Playwright."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pika
import pytest
from linli_web.app import create_app
from linli_web.settings import load_settings

from linli_demo import story
from linli_kit.config import BusNames
from linli_kit.events.topology import declare_exchanges
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform, Process
from linli_kit.testing.waiting import eventually


class StubGateway:
    def __init__(self, *, access_ttl: int = 900) -> None:
        self.access_ttl = access_ttl
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> user id
        self.used_refresh: set[str] = set()
        self.refresh_calls = 0
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.delay = 0.0
        self.codes_sent: list[dict[str, Any]] = []  # bodies of POST /api/v1/auth/codes
        self.login_code = "246810"  # the one SMS code that logs in, once
        self.codes_used: set[str] = set()
        self.lock = threading.Lock()
        self.user = {
            "id": "11111111-1111-4111-8111-111111111111",
            "display_name": "Yang Jing 杨静",
            "role": "resident",
            "community_ids": ["22222222-2222-4222-8222-222222222222"],
            "street_id": None,
            "locale": "zh-CN",
            "phone": "+8613900000007",
            "status": "active",
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                if outer.delay:
                    time.sleep(outer.delay)
                status, body, headers = outer.route(self.command, self.path, raw, dict(self.headers))
                # Bytes go as they are (a file the API makes), under the Content-Type the route gives.
                data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                headers = dict(headers)
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pair(self) -> dict[str, Any]:
        now = int(time.time())
        access = jwt.encode({"sub": self.user["id"], "exp": now + self.access_ttl, "jti": str(uuid.uuid4())}, "k" * 32)
        refresh = uuid.uuid4().hex + uuid.uuid4().hex
        self.refresh_tokens[refresh] = self.user["id"]
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": self.access_ttl,
                "user": self.user}  # fmt: skip

    def _error(self, status: int, code: str, fields: dict | None = None) -> tuple[int, dict, dict]:
        body = {"error": {"status": status, "code": code, "message": code, "fields": fields or {}}, "request_id": "r-1"}
        return status, body, {}

    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any, dict]:
        if self.fail_with:
            return self._error(self.fail_with, "unavailable")
        body = json.loads(raw or b"{}") if raw else {}
        if path == "/api/v1/auth/codes":
            self.codes_sent.append(body)
            return 202, {"expires_at": "2026-01-01T00:05:00+00:00"}, {}
        if path == "/api/v1/auth/login":
            if "code" in body:
                if body["code"] != self.login_code or body["code"] in self.codes_used:
                    return self._error(401, "unauthorized")
                self.codes_used.add(body["code"])
                return 200, self.pair(), {}
            if body.get("password") != "right-password":
                return self._error(401, "unauthorized")
            return 200, self.pair(), {}
        if path == "/api/v1/auth/refresh":
            with self.lock:
                self.refresh_calls += 1
                token = body.get("refresh_token")
                if token in self.used_refresh or token not in self.refresh_tokens:
                    # The real gateway treats a reused refresh token as stolen and revokes the family.
                    self.refresh_tokens.clear()
                    return self._error(401, "unauthorized")
                self.used_refresh.add(token)
                del self.refresh_tokens[token]
                return 200, self.pair(), {}
        if path == "/api/v1/auth/logout":
            return 204, None, {}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._error(401, "unauthorized")
        try:
            jwt.decode(auth[7:], "k" * 32, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return self._error(401, "unauthorized")
        if path.startswith("/api/v1/notifications/unread-count"):
            return 200, {"count": 3}, {}
        if path.startswith("/api/v1/directory/communities/"):
            return 200, {"id": self.user["community_ids"][0], "name": "Xihu Community 西湖社区"}, {}
        if path.startswith("/api/v1/issues/?") or path == "/api/v1/issues/":
            return 200, [], {"X-Pagination": json.dumps({"total": 0})}
        if path.startswith("/api/v1/notifications/follows"):
            return 200, [], {}
        if path.startswith("/api/v1/issues/bad"):
            return self._error(422, "validation_error", {"title": ["Missing data for required field."]})
        return 200, [], {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[StubGateway]:
    gateway = StubGateway()
    yield gateway
    gateway.close()


@pytest.fixture
def app(stub: StubGateway, tmp_path: Path):
    settings = load_settings(gateway_url=stub.url, data_dir=tmp_path, secret_key="s" * 40)
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


# --- the real platform and a real browser ------------------------------------------------------------


ADMIN_PHONE, ADMIN_PASSWORD = "13500135000", "admin-pass-2026"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


class BusTap:
    """What the gateway published on the platform's exchange (the SMS codes, until the log provider
    shows them: the code travels in `accounts.code.requested`)."""

    def __init__(self, amqp_url: str, bus: BusNames, keys: tuple[str, ...] = ("accounts.code.requested",)) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        for key in keys:
            self.channel.queue_bind(self.queue, bus.exchange, routing_key=key)
        self.seen: list[dict] = []

    def code_for(self, phone: str) -> str:
        def found() -> str | None:
            while True:
                method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                self.seen.append(json.loads(body))
            codes = [e["data"]["code"] for e in self.seen if e["data"]["phone"].endswith(phone)]
            return codes[-1] if codes else None

        return eventually(found, timeout=30, interval=0.1, what=f"the SMS code for {phone}")

    def close(self) -> None:
        self.conn.close()


class Stack:
    """The platform's processes as `make run` has them (SQLite, two gunicorn workers each), the web
    process beside them, and the demo city's people."""

    def __init__(self, platform: Platform, gateway: Process, web: Process, city: story.City, amqp_url: str) -> None:
        self.platform, self.gateway, self.web, self.city, self.amqp_url = platform, gateway, web, city, amqp_url

    @property
    def url(self) -> str:
        """Where a browser opens the platform: the gateway, which passes pages to the front."""
        return self.gateway.url

    def tap(self) -> BusTap:
        return BusTap(self.amqp_url, self.platform.bus)


def start_stack(amqp_url: str, keys: tuple[str, str], workdir: Path, run_id: str, *, full_story: bool) -> Stack:
    private_key, public_key = keys
    bus = BusNames(f"t.{run_id}.web.events", f"t.{run_id}.web.dead", f"t.{run_id}.web.")
    platform = Platform(None, amqp_url, bus, public_key, private_key, workdir, web_concurrency=2)
    # Every browser of these tests is at 127.0.0.1, and the gateway counts the front's calls against
    # the address of the person served: here all the test's people share one sign-in limit.
    platform.extra_env.update(RATE_LIMIT_AUTH="600/minute", RATE_LIMIT_PER_CLIENT="6000/minute")
    try:
        # The front at the gateway's address, as residents open it.
        gateway = platform.start_all(front=True)
        web = next(p for p in platform.processes if p.name == "web-web")
        platform.command("gateway", "create-admin", "--phone", ADMIN_PHONE, "--password", ADMIN_PASSWORD)
        quiet = lambda _line: None  # noqa: E731
        city = story.set_up_city(gateway.url, ADMIN_PHONE, ADMIN_PASSWORD, quiet)
        if full_story:
            story.cultural_wall(city, quiet)
            story.popular_activity(city, quiet)
            story.neighbours_helping(city, quiet)
        official = city.person("official")  # the Chengqu street office sees both communities
        # Communities reach the issues service by event: wait until it knows them.
        for key in ("shangpinyuan", "xihu"):
            community = city.communities[key]
            eventually(
                lambda c=community: _answers(official, f"/api/v1/issues/similar?community_id={c}&title=wall"),
                timeout=120,
                interval=0.5,
                what="the issues service's directory",
            )
        return Stack(platform, gateway, web, city, amqp_url)
    except BaseException:
        print(platform.logs())
        platform.stop_all()
        raise


def _answers(session: story.Session, path: str) -> bool:
    try:
        session.get(path)
        return True
    except story.ApiError:
        return False


def stop_stack(stack: Stack) -> None:
    stack.platform.stop_all()
    bus = stack.platform.bus
    services = ["issues", "meetings", "activities", "notifications", "gateway"]
    queues = [q for s in services for q in (bus.queue(s), bus.dead_letter_queue(s))]
    infra.delete_bus(stack.amqp_url, bus.exchange, bus.dead_letter_exchange, queues)


@pytest.fixture(scope="module")
def stack(amqp_url, token_keys, run_id, tmp_path_factory) -> Iterator[Stack]:
    started = start_stack(amqp_url, token_keys, tmp_path_factory.mktemp("platform"), run_id, full_story=False)
    yield started
    stop_stack(started)


@pytest.fixture(scope="module")
def story_stack(amqp_url, token_keys, run_id, tmp_path_factory) -> Iterator[Stack]:
    """The same, with the article's story told (the cultural wall, the sports day, the helpers)."""
    started = start_stack(amqp_url, token_keys, tmp_path_factory.mktemp("platform"), run_id, full_story=True)
    yield started
    stop_stack(started)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's Chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Pages:
    """Browser contexts for a test: a phone (360 px) by default; every page checked by axe-core and
    for Content-Security-Policy violations."""

    def __init__(self, browser, base_url: str) -> None:
        self.browser, self.base_url = browser, base_url
        self.contexts: list = []
        self.problems: list[str] = []
        self.checked: list[str] = []
        self.javascript: dict = {}  # page -> whether JavaScript runs in it

    def open(
        self,
        *,
        width: int = 360,
        height: int = 740,
        javascript: bool = True,
        locale: str = "zh-CN",
        worker: bool = True,
    ):
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport={"width": width, "height": height},
            java_script_enabled=javascript,
            locale=locale,
            service_workers="allow" if worker else "block",
        )
        context.set_default_timeout(30_000)
        self.contexts.append(context)
        page = context.new_page()
        self.javascript[page] = javascript
        page.on("console", lambda m: self._console(page, m))
        return page

    def _console(self, page, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"{page.url}: {text}")

    def axe(self, page) -> None:
        """axe-core on the page as it is: no serious or critical violation (WCAG 2.2 AA rules)."""
        if not page.evaluate("() => !!window.axe"):
            page.evaluate(AXE.read_text() + "\n;undefined")  # evaluated by the browser's debugger: no CSP
        found = page.evaluate(
            """async () => (await axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
                 resultTypes: ['violations']})).violations
               .filter(v => v.impact === 'serious' || v.impact === 'critical')
               .map(v => v.id + ' (' + v.impact + '): '
                    + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))"""
        )
        self.checked.append(page.url)
        assert not found, f"axe-core on {page.url}:\n" + "\n".join(found)

    def axe_without_js(self, page) -> None:
        """axe-core needs JavaScript: check the same address in a JavaScript context, same session."""
        context = page.context
        cookies = context.cookies()
        checker = self.open(width=page.viewport_size["width"])
        checker.context.add_cookies(cookies)
        checker.goto(page.url)
        self.axe(checker)
        checker.context.close()
        self.contexts.remove(checker.context)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        assert not self.problems, "Content-Security-Policy violations:\n" + "\n".join(self.problems)


@pytest.fixture
def pages(browser, stack) -> Iterator[Pages]:
    opened = Pages(browser, stack.url)
    yield opened
    opened.close()
