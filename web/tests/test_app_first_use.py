"""What a first use of a fresh clone (`make run`, then a phone and a desk through the gateway) showed:
the check-in link named the web process's own port, the waiting page promised a text message that
nothing sends, "Me too" left the count beside it at its old value, and the staff's plain tables had
their cells run together."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from linli_web.settings import load_settings

ISSUE = "33333333-3333-4333-8333-333333333333"
CSS = Path(__file__).resolve().parents[1] / "src" / "linli_web" / "static" / "css" / "app.css"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client) -> None:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "right-password"})


def test_the_pages_address_is_the_gateways_unless_set(monkeypatch, tmp_path) -> None:
    # `make run` sets no WEB_URL: a check-in link or QR code must not send a phone to port 8005.
    monkeypatch.delenv("WEB_URL", raising=False)
    assert load_settings(data_dir=tmp_path, secret_key="s" * 40).web_url == "http://127.0.0.1:8000"
    monkeypatch.setenv("WEB_URL", "https://linli.example.org/")
    assert load_settings(data_dir=tmp_path, secret_key="s" * 40).web_url == "https://linli.example.org"


def test_the_waiting_page_names_the_person_in_chinese_punctuation_and_promises_no_sms(client) -> None:
    with client.session_transaction() as session:
        session["signup_name"] = "王小明"
    html = client.get("/signup/waiting", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "谢谢，王小明，您已完成注册" in html
    assert "短信" not in html  # approval sends none
    assert "审核通过前，登录会回到这个页面" in html
    english = client.get("/signup/waiting", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Thank you, 王小明: you have signed up" in english
    with client.session_transaction() as session:
        session.pop("signup_name")
    assert "谢谢，您已完成注册" in client.get("/signup/waiting", headers={"Accept-Language": "zh-CN"}).get_data(
        as_text=True
    )


def _supporters(stub, *, status: int = 200, count: int = 2) -> None:
    plain = stub.route

    def route(method, path, raw, headers):
        if path == f"/api/v1/issues/{ISSUE}/supporters" and method == "POST":
            if status == 409:
                return stub._error(409, "conflict")
            return 200, {"id": ISSUE, "title": "Wall", "supporter_count": count, "supported_by_me": True}, {}
        return plain(method, path, raw, headers)

    stub.route = route


@pytest.mark.parametrize("from_report", ["1", ""])
def test_me_too_by_htmx_brings_the_count_beside_it_up_to_date(client, stub, from_report) -> None:
    _supporters(stub, count=2)
    sign_in(client)
    token = csrf_of(client.get("/report/category").get_data(as_text=True))
    response = client.post(
        f"/issues/{ISSUE}/support",
        data={"csrf_token": token, "from_report": from_report},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(rf'<span id="supporters-{ISSUE}" hx-swap-oob="true">\s*2\b', html), html
    if from_report:
        # Supporting already follows the issue: the link leads to it, it does not ask to follow.
        assert f'href="/issues/{ISSUE}"' in html
        assert "Follow this issue" not in html and "关注这个议题" not in html


def test_me_too_when_already_counted_leaves_the_count_alone(client, stub) -> None:
    _supporters(stub, status=409)
    sign_in(client)
    token = csrf_of(client.get("/report/category").get_data(as_text=True))
    html = client.post(
        f"/issues/{ISSUE}/support", data={"csrf_token": token, "from_report": "1"}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "hx-swap-oob" not in html


def test_a_plain_staff_table_has_room_between_its_cells(browser) -> None:
    # The participants of a meeting, the registrations of an activity and the admin's lists.
    page = browser.new_page()
    try:
        page.set_content(
            f"<style>{CSS.read_text()}</style><main><div class='table-wrap'><table>"
            "<thead><tr><th>姓名</th><th>身份</th></tr></thead>"
            "<tbody><tr><td>王小明</td><td>居民</td></tr></tbody></table></div></main>"
        )
        cell = page.eval_on_selector(
            "td",
            "c => { const s = getComputedStyle(c);"
            " return [parseFloat(s.paddingRight), parseFloat(s.paddingTop), s.borderBottomStyle] }",
        )
        head = page.eval_on_selector("th", "c => parseFloat(getComputedStyle(c).paddingRight)")
    finally:
        page.close()
    padding_right, padding_top, border = cell
    assert padding_right >= 8 and head >= 8  # the name and the role no longer touch
    assert padding_top > 0 and border == "solid"


def test_a_span_within_one_day_names_the_day_once(app) -> None:
    from linli_web.i18n import span

    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        # 09:30 to 11:00 in Shanghai (UTC+8) on 12 December.
        assert span("2026-12-12T01:30:00+00:00", "2026-12-12T03:00:00Z") == "2026年12月12日 周六 09:30–11:00"
        assert span("2026-12-12T01:30:00Z", "2026-12-12T03:00:00Z", "short") == "12月12日 09:30–11:00"
        # Past midnight in Shanghai (not in UTC): both days named.
        assert span("2026-12-12T14:00:00Z", "2026-12-12T17:00:00Z", "short") == "12月12日 22:00 – 12月13日 01:00"
        assert span("2026-12-12T01:30:00Z", None) == "2026年12月12日 周六 09:30"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert span("2026-12-12T01:30:00Z", "2026-12-12T03:00:00Z") == "Sat 12 Dec 2026, 09:30–11:00"


def test_the_meeting_page_gives_a_one_day_meeting_its_date_once(client, stub) -> None:
    meeting = "44444444-4444-4444-8444-444444444444"
    plain = stub.route

    def route(method, path, raw, headers):
        if path.split("?")[0] == f"/api/v1/meetings/{meeting}":
            return 200, {"id": meeting, "title": "北门文化墙瓷砖怎么办", "meeting_type": "pavilion",
                         "status": "scheduled", "community_id": stub.user["community_ids"][0],
                         "starts_at": "2026-12-06T06:30:00Z", "ends_at": "2026-12-06T08:00:00Z",
                         "place": "北门凉亭", "agenda": [], "decisions": []}, {}  # fmt: skip
        return plain(method, path, raw, headers)

    stub.route = route
    sign_in(client)
    response = client.get(f"/meetings/{meeting}", headers={"Accept-Language": "zh-CN"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:2000]
    assert "2026年12月6日 周日 14:30–16:00" in html


def test_the_search_box_is_as_wide_and_clear_as_the_other_fields(browser) -> None:
    # /search and the desk's filter: a type=search input was left at the browser's small default.
    page = browser.new_page(viewport={"width": 390, "height": 800})
    try:
        page.set_content(
            f"<style>{CSS.read_text()}</style><main><div class='field'><input id='q' type='search'></div>"
            "<div class='field'><input id='t' type='text'></div></main>"
        )
        sizes = page.evaluate(
            "() => ['q', 't'].map(id => { const e = document.getElementById(id), s = getComputedStyle(e);"
            " return [e.getBoundingClientRect().width, e.getBoundingClientRect().height, s.borderTopWidth] })"
        )
    finally:
        page.close()
    assert sizes[0] == sizes[1]
