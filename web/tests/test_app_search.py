"""The search page on the stand-in gateway: what it asks `/api/v1/search`, how it lists the hits
(each linking to its page), what it says of services that did not answer, and bad input refused
on the page without asking the gateway. A plain GET form: no JavaScript needed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

COMMUNITY = "22222222-2222-4222-8222-222222222222"
WALL = "55555555-5555-4555-8555-555555555555"
ROUND_TABLE = "abababab-abab-4bab-8bab-abababababab"
GROUP = "cdcdcdcd-cdcd-4dcd-8dcd-cdcdcdcdcdcd"

ANSWER = {
    "q": "文化墙",
    "hits": [
        {"kind": "issue", "id": WALL, "title": "文化墙倒塌险些砸到孩子", "snippet": "南门的文化墙松动",
         "community_id": COMMUNITY, "community_name": "尚品苑社区", "date": "2026-11-20T02:00:00+00:00",
         "score": 1.0},
        {"kind": "meeting", "id": ROUND_TABLE, "title": "文化墙圆桌会", "snippet": "", "community_id": COMMUNITY,
         "community_name": "尚品苑社区", "date": "2026-11-25T02:00:00+00:00", "score": 1.0},
        {"kind": "group", "id": GROUP, "title": "啄木鸟巡查队", "snippet": "巡查文化墙", "community_id": COMMUNITY,
         "community_name": "尚品苑社区", "date": None, "score": 0.5},
    ],
    "missing": [{"service": "activities", "reason": "answered 503"}],
    "complete": False,
}  # fmt: skip


class Gateway:
    """The stand-in gateway's answer to `/api/v1/search`; every search kept in `asked`."""

    def __init__(self, stub, role: str = "resident") -> None:
        self.stub, self.asked, self.refusal = stub, [], None
        stub.user = {**stub.user, "role": role}
        self.original = stub.route
        stub.route = self.route

    def route(self, method: str, target: str, raw: bytes, headers: dict[str, str]) -> Any:
        parts = urlsplit(target)
        if parts.path != "/api/v1/search":
            return self.original(method, target, raw, headers)
        self.asked.append({k: v[0] for k, v in parse_qs(parts.query).items()})
        if self.refusal:
            return self.stub._error(422, "validation_error", self.refusal)
        return 200, ANSWER, {}


def sign_in(client) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    answer = client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "right-password"})
    assert answer.status_code == 303


@pytest.fixture
def gateway(stub, client):
    fake = Gateway(stub)
    sign_in(client)
    return fake


def test_a_resident_finds_and_is_told_what_is_missing(gateway, client):
    home = client.get("/").get_data(as_text=True)
    assert 'href="/search"' in home  # the header leads to it on every page
    empty = client.get("/search")
    assert empty.status_code == 200 and "要找的词" in empty.get_data(as_text=True) and gateway.asked == []

    page = client.get("/search", query_string={"q": "文化墙", "kind": ""}).get_data(as_text=True)
    assert gateway.asked == [{"q": "文化墙"}]
    assert f'href="/issues/{WALL}"' in page and "文化墙倒塌险些砸到孩子" in page and "南门的文化墙松动" in page
    assert f'href="/meetings/{ROUND_TABLE}"' in page and f'href="/services/groups/{GROUP}"' in page
    assert "尚品苑社区" in page and "找到3条" in page
    assert "部分结果可能缺失" in page and "活动、驿站、小组和能人" in page
    assert 'value="文化墙"' in page  # the box keeps what was typed

    client.get("/search", query_string={"q": "漏水", "kind": "meeting"})
    assert gateway.asked[-1] == {"q": "漏水", "kinds": "meeting"}


def test_staff_reach_an_issue_at_the_desk(stub, client):
    Gateway(stub, role="community_staff")
    sign_in(client)
    page = client.get("/search", query_string={"q": "文化墙"}).get_data(as_text=True)
    assert f'href="/desk/issues/{WALL}"' in page


def test_bad_input_is_refused_on_the_page_naming_the_field(gateway, client):
    for query, message in (
        ({"q": "  "}, "请输入要找的内容。"),
        ({"q": "墙" * 101}, "最多100个字。"),
        ({"q": "墙", "kind": "notes"}, "请从列表中选择要找的内容。"),
    ):
        answer = client.get("/search", query_string=query)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422 and message in page and 'aria-invalid="true"' in page, query
    assert gateway.asked == []
    # A rule only the gateway knows: its words, on the field.
    gateway.refusal = {"q": ["too many words: at most 8"]}
    refused = client.get("/search", query_string={"q": "墙"})
    assert refused.status_code == 422 and "too many words: at most 8" in refused.get_data(as_text=True)


def test_the_page_in_english(gateway, client):
    client.set_cookie("linli_lang", "en")
    page = client.get("/search", query_string={"q": "文化墙"}).get_data(as_text=True)
    assert "Found: 3" in page and "Some results may be missing" in page and "Mutual-aid group" in page
