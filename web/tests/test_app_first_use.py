"""What a first use of a fresh clone (`make run`, then a phone and a desk through the gateway) showed:
the check-in link named the web process's own port, the waiting page promised a text message that
nothing sends, "Me too" left the count beside it at its old value, and the staff's plain tables had
their cells run together."""

from __future__ import annotations

import json
import re
import threading
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


# --- a second first use: following one's community, "Me too" and the follow button, a pending
# sign-in, Chinese punctuation, the header and tabs of a phone with English and larger text ---------

COMMUNITY = "22222222-2222-4222-8222-222222222222"  # the stub's resident's community


def _follows(stub, found: list[dict], *, refuse: int | None = None) -> list[dict]:
    """The stub's follows: listed as `found`; a POST is kept (or refused with `refuse`)."""
    posted: list[dict] = []
    plain = stub.route

    def route(method, path, raw, headers):
        if path.split("?")[0] == "/api/v1/notifications/follows":
            if method == "POST":
                posted.append(json.loads(raw))
                if refuse:
                    body = {"error": {"status": refuse, "code": "forbidden",
                                      "message": "you can only follow communities in your scope"}}  # fmt: skip
                    return refuse, body, {}
                return 201, {**posted[-1], "reason": "followed"}, {}
            return 200, found, {}
        return plain(method, path, raw, headers)

    stub.route = route
    return posted


def test_the_follows_page_offers_the_residents_own_community_and_follows_it(client, stub) -> None:
    posted = _follows(stub, [])
    sign_in(client)
    html = client.get("/me/follows", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "关注本社区" in html and "Xihu Community 西湖社区" in html
    assert f'name="community_id" value="{COMMUNITY}"' in html
    response = client.post("/me/follows/community", data={"csrf_token": csrf_of(html), "community_id": COMMUNITY})
    assert response.status_code == 303 and response.headers["Location"] == "/me/follows"
    assert posted == [{"target_type": "community", "target_id": COMMUNITY}]
    page = client.get("/me/follows", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "您已关注本社区" in page


def test_a_followed_community_is_named_and_not_offered_again(client, stub) -> None:
    _follows(stub, [{"target_type": "community", "target_id": COMMUNITY, "reason": "followed"}])
    sign_in(client)
    html = client.get("/me/follows", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "关注本社区" not in html
    assert re.search(r"<li class=\"card\"><p>Xihu Community 西湖社区</p>", html), html
    home = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "关注本社区" not in home


def test_the_platforms_refusal_to_follow_a_community_is_shown(client, stub) -> None:
    _follows(stub, [], refuse=403)
    sign_in(client)
    token = csrf_of(client.get("/me/follows").get_data(as_text=True))
    other = "55555555-5555-4555-8555-555555555555"
    client.post("/me/follows/community", data={"csrf_token": token, "community_id": other})
    html = client.get("/me/follows", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "无法关注这个社区：you can only follow communities in your scope" in html
    assert "您已关注本社区" not in html


def test_home_invites_a_resident_to_follow_their_community_until_they_do_or_say_not_now(client, stub) -> None:
    posted = _follows(stub, [])
    sign_in(client)
    home = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "及时了解社区的会议" in home and "关注本社区" in home
    assert posted == []  # an invitation: nothing is followed for them
    response = client.post(
        "/me/follows/community", data={"csrf_token": csrf_of(home), "community_id": COMMUNITY, "next": "/"}
    )
    assert response.headers["Location"] == "/" and len(posted) == 1
    client.post("/me/follows/community/later", data={"csrf_token": csrf_of(home)})
    assert "及时了解社区的会议" not in client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)


def _issue(stub, **fields) -> None:
    plain = stub.route

    def route(method, path, raw, headers):
        if method == "GET" and path.split("?")[0] == f"/api/v1/issues/{ISSUE}":
            return 200, {"id": ISSUE, "title": "Wall", "description": "Tiles fall", "status": "accepted",
                         "category": "safety_hazard", "urgency": "normal", "tier": "community",
                         "reporter_id": "someone-else", "supporter_count": 1, "supported_by_me": False,
                         "created_at": "2026-12-01T08:00:00Z", **fields}, {}  # fmt: skip
        return plain(method, path, raw, headers)

    stub.route = route


def test_me_too_by_htmx_turns_the_follow_button_to_following(client, stub) -> None:
    _issue(stub)
    _supporters(stub, count=2)
    sign_in(client)
    page = client.get(f"/issues/{ISSUE}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert re.search(rf'<form id="follow-{ISSUE}"[^>]*>\s*<input[^>]*>\s*<button class="button secondary">关注', page)
    html = client.post(
        f"/issues/{ISSUE}/support", data={"csrf_token": csrf_of(page)}, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    control = re.search(rf'<form id="follow-{ISSUE}"[^>]*hx-swap-oob="true">(.*?)</form>', html, re.S)
    assert control and 'name="stop" value="1"' in control.group(1), html


def test_me_too_without_javascript_shows_the_issue_followed(client, stub) -> None:
    # Supporting follows the issue by an event: the follows the page reads may not have it yet.
    _issue(stub)
    _supporters(stub, count=2)
    sign_in(client)
    token = csrf_of(client.get(f"/issues/{ISSUE}").get_data(as_text=True))
    response = client.post(f"/issues/{ISSUE}/support", data={"csrf_token": token})
    assert response.status_code == 303
    html = client.get(f"/issues/{ISSUE}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert re.search(rf'<form id="follow-{ISSUE}"[^>]*>\s*<input[^>]*>\s*<input type="hidden" name="stop"', html)
    # Once: a later visit reads the follows as they are.
    again = client.get(f"/issues/{ISSUE}").get_data(as_text=True)
    assert 'name="stop"' not in again


def test_a_pending_sign_in_is_told_it_waits_for_approval(client, stub) -> None:
    plain = stub.route

    def route(method, path, raw, headers):
        if path == "/api/v1/auth/login":
            body = {"error": {"status": 403, "code": "pending_approval", "message": "awaiting approval"}}
            return 403, body, {}
        return plain(method, path, raw, headers)

    stub.route = route
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "phone": "13900000007", "password": "x" * 10})
    assert response.status_code == 302
    html = client.get(response.headers["Location"], headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "<h1>您的账号正在等待社区审核</h1>" in html
    assert "您暂时还不能登录" in html and "审核通过前，登录会回到这个页面" in html
    assert "您已完成注册" not in html


TEMPLATES = Path(__file__).resolve().parents[1] / "src" / "linli_web" / "templates"


def test_no_template_puts_half_width_brackets_or_a_space_after_a_colon_around_a_message() -> None:
    # "已到会 (凭码签到)", "方案： …": brackets and the gap after a colon depend on the language.
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in re.finditer(r" \(\{\{[^}]*\}\}\)", text)]
        found += [f"{path.name}: {m.group(0)}" for m in re.finditer(r':"\) \}\}(?:</strong>|</dt>)? [{<]', text)]
    assert not found, found


def test_chinese_brackets_and_colons_are_full_width_without_spaces(app) -> None:
    from linli_web.i18n import aside, bracketed
    from linli_web.viewmodels.issues import timeline_entry

    decision = {"kind": "decision", "body": "修文化墙", "created_at": "2026-12-01T08:00:00Z",
                "data": {"outcome": "adopted", "votes_for": 1, "votes_against": 0}}  # fmt: skip
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert bracketed("凭码签到") == "（凭码签到）" and str(aside("<b>")) == "（&lt;b&gt;）"
        assert timeline_entry(decision).detail == "修文化墙（赞成 1，反对 0）"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert bracketed("by code") == " (by code)"
        assert timeline_entry(decision).detail == "修文化墙 (1 for, 0 against)"


def test_the_issue_page_puts_no_space_after_a_chinese_colon(client, stub) -> None:
    _issue(stub, resolution_plan="更换瓷砖")
    sign_in(client)
    html = client.get(f"/issues/{ISSUE}", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "<strong>方案：</strong>更换瓷砖" in html
    english = client.get(f"/issues/{ISSUE}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<strong>Plan:</strong> 更换瓷砖" in english


@pytest.fixture
def served(app):
    """The app on the stub gateway, served over HTTP for the browser."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


LAYOUT = """() => {
  const lines = e => { const r = document.createRange(); r.selectNodeContents(e);
    return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size };
  const box = s => document.querySelector(s).getBoundingClientRect();
  const brand = box('.brand'), middle = b => (b.top + b.bottom) / 2;
  const community = document.querySelector('.community');
  return {
    overflow: document.documentElement.scrollWidth,
    tabs: [...document.querySelectorAll('nav.tabs a')].map(a => [a.textContent.trim(), lines(a)]),
    beside: ['.search-link', '.inbox-link'].every(s => middle(box(s)) > brand.top && middle(box(s)) < brand.bottom),
    community: [community.textContent, community.scrollWidth <= community.clientWidth],
  }
}"""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_header_and_tabs_fit_a_390_px_phone_with_larger_text(browser, served, lang, tmp_path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        context.add_cookies(
            [
                {"name": "linli_lang", "value": lang, "url": served},
                {"name": "linli_text", "value": "large", "url": served},
            ]
        )
        page = context.new_page()
        page.goto(served + "/login")
        page.fill("#phone", "13900000007")
        page.fill("#password", "right-password")
        page.locator("main form button.button").first.click()
        page.wait_for_url(served + "/")
        page.screenshot(path=str(tmp_path / f"home-390-{lang}-large.png"))
        found = page.evaluate(LAYOUT)
    finally:
        context.close()
    assert found["overflow"] <= 390
    assert all(n == 1 for _text, n in found["tabs"]), found["tabs"]  # "My issues" went onto two lines
    assert found["beside"]  # the inbox fell onto a line of its own
    assert found["community"] == ["Xihu Community 西湖社区", True]  # it was cut to "Xihu Co…"


def test_staff_are_not_invited_on_their_home_page(client, stub) -> None:
    # They plan the community's meetings; the follows page still offers them the community.
    _follows(stub, [])
    stub.user = {**stub.user, "role": "community_staff"}
    sign_in(client)
    assert "及时了解社区的会议" not in client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "关注本社区" in client.get("/me/follows", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
