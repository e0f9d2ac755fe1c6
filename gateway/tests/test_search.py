"""`GET /api/v1/search`: the gateway asks each service holding the kinds asked for at once, with a
token standing for the caller, merges their hits (titles holding every word first, then the
latest) and names the services that did not answer."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import schemathesis

from linli_gateway.service_layer.search import gather, merge, plan
from linli_kit.testing.infra import stable_port


def _hit(kind: str, date: str, score: float, community_id: str | None = None, **extra) -> dict:
    return {
        "kind": kind,
        "id": str(uuid.uuid4()),
        "title": f"{kind} 文化墙",
        "snippet": "…文化墙…",
        "community_id": community_id,
        "date": date,
        "score": score,
    } | extra


def test_the_services_asked_are_those_holding_the_kinds_and_a_failure_is_named():
    assert plan(["talent", "issue", "post"]) == {"issues": ["issue"], "activities": ["post", "talent"]}
    asked: dict[str, dict] = {}
    old_title = _hit("issue", "2026-11-01T00:00:00+00:00", 1.0)
    new_text = _hit("issue", "2026-12-01T00:00:00+00:00", 0.5)

    def fetch(service: str, query: dict) -> list[dict]:
        asked[service] = query
        if service == "meetings":
            raise RuntimeError("answered 503")
        return [new_text, old_title] if service == "issues" else []

    hits, missing = gather("文化墙", ("issue", "meeting", "activity"), 5, fetch)
    assert asked == {
        "issues": {"q": "文化墙", "kinds": "issue", "limit": "5"},
        "meetings": {"q": "文化墙", "kinds": "meeting", "limit": "5"},
        "activities": {"q": "文化墙", "kinds": "activity", "limit": "5"},
    }
    assert missing == [{"service": "meetings", "reason": "answered 503"}]
    merged = merge(hits, 1, {"c1": "尚品苑"}.get)
    assert [h["id"] for h in merged] == [old_title["id"]] and merged[0]["community_name"] is None


class FakeService:
    """A service's /search on a port of the test's own: answers `hits`, and keeps what it was asked
    (query and the token's claims). Given a barrier, its first answer waits there for the other
    services' first requests: asked one after the other, the barrier breaks and it answers 500."""

    def __init__(self, hits: list[dict], barrier: threading.Barrier | None = None) -> None:
        self.hits, self.barrier, self.asked = hits, barrier, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                url = urlparse(self.path)
                token = self.headers["Authorization"].partition(" ")[2]
                claims = jwt.decode(token, options={"verify_signature": False})
                outer.asked.append((url.path, parse_qs(url.query), claims))
                barrier, outer.barrier = outer.barrier, None
                status = 200
                if barrier is not None:
                    try:
                        barrier.wait()
                    except threading.BrokenBarrierError:
                        status = 500
                body = json.dumps(outer.hits).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", stable_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def services() -> Iterator[dict[str, FakeService]]:
    made: dict[str, FakeService] = {}
    yield made
    for service in made.values():
        service.close()


def test_one_search_asks_the_services_at_once_and_names_the_one_that_did_not_answer(make_app, token_signer, services):
    admin = {"Authorization": f"Bearer {token_signer.sign(user_id='admin', role='city_admin')}"}
    probe = make_app().test_client()
    street = probe.post("/api/v1/directory/streets", json={"name": "城区街道"}, headers=admin).get_json()["id"]
    community = probe.post(
        "/api/v1/directory/communities", json={"street_id": street, "name": "尚品苑社区"}, headers=admin
    ).get_json()["id"]
    wall = _hit("issue", "2026-11-20T02:00:00+00:00", 1.0, community)
    mention = _hit("issue", "2026-11-28T02:00:00+00:00", 0.5, community)
    round_table = _hit("meeting", "2026-11-25T02:00:00+00:00", 1.0, community)
    both_asked = threading.Barrier(2, timeout=8)
    services["issues"] = FakeService([wall, mention], both_asked)
    services["meetings"] = FakeService([round_table], both_asked)
    nothing_there = f"http://127.0.0.1:{stable_port()}"  # a port nobody listens on: activities is down
    client = make_app(
        ISSUES_URL=services["issues"].url,
        MEETINGS_URL=services["meetings"].url,
        ACTIVITIES_URL=nothing_there,
        PROXY_RETRIES="0",
    ).test_client()
    user_id = str(uuid.uuid4())
    resident = {
        "Authorization": f"Bearer {token_signer.sign(user_id=user_id, role='resident', community_ids=[community])}"
    }

    response = client.get("/api/v1/search", query_string={"q": "文化墙", "limit": "10"}, headers=resident)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # Titles first, the latest first among them; every hit with its community's name.
    assert [h["id"] for h in body["hits"]] == [round_table["id"], wall["id"], mention["id"]]
    assert {h["community_name"] for h in body["hits"]} == {"尚品苑社区"}
    assert body["complete"] is False and [m["service"] for m in body["missing"]] == ["activities"]
    assert body["missing"][0]["reason"]
    # Each service was asked for its own kinds, with a token for it standing for the resident.
    for name, kinds in (("issues", ["issue"]), ("meetings", ["meeting"])):
        ((path, query, claims),) = services[name].asked
        assert (path, query["q"], query["kinds"]) == ("/search", ["文化墙"], kinds)
        assert (claims["sub"], claims["role"], claims["aud"]) == (user_id, "resident", name)
    # (Both answered through the barrier: the gateway asked them at once.)

    # Only meetings asked: only the meetings service is asked, and the answer is complete.
    only = client.get("/api/v1/search", query_string={"q": "文化墙", "kinds": "meeting"}, headers=resident)
    assert only.get_json()["complete"] is True and [h["kind"] for h in only.get_json()["hits"]] == ["meeting"]
    assert len(services["issues"].asked) == 1

    for query, field, message in (
        ({"q": ""}, "q", "must not be empty"),
        ({"q": "墙" * 101}, "q", "too long"),
        ({"q": "墙", "kinds": "notes"}, "kinds", "Must be one of"),
        ({"q": "墙", "limit": "0"}, "limit", "greater than or equal to 1"),
    ):
        refused = client.get("/api/v1/search", query_string=query, headers=resident)
        assert refused.status_code == 422, query
        named = refused.get_json()["error"]["fields"][field]
        assert message in json.dumps(named, ensure_ascii=False), refused.get_json()
    assert client.get("/api/v1/search", query_string={"q": "墙"}).status_code == 401
    assert len(services["issues"].asked) == 1  # bad input asked nobody

    # The answers are what the merged document says, the refusals too.
    document = schemathesis.openapi.from_dict(client.get("/api/openapi.json").get_json())
    document["/api/v1/search"]["GET"].validate_response(response)
    document["/api/v1/search"]["GET"].validate_response(refused)
