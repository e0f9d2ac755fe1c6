"""Residents' journeys in a real browser (Debian's Chromium, headless, a 360 px phone), on the
platform's real processes as `make run` starts them, with the demo city loaded through the API.
Every page visited is checked by axe-core; a Content-Security-Policy violation fails the test."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from linli_demo.client import Session
from linli_demo.story import PASSWORD
from linli_kit.testing.waiting import eventually

# Starting ten processes takes a minute on a quiet 2-core machine, several on a loaded one.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

SHANGPINYUAN_GARDEN = "Shangpinyuan Garden"


def phone_of(stack, key: str) -> str:
    name = stack.city.person(key).name
    return next(phone for who, _role, phone in stack.city.logins if who == name)


def sign_in(pages, page, phone: str, password: str = PASSWORD, *, axe: bool = True) -> None:
    page.goto("/login")
    if axe:
        check(pages, page)
    page.fill("#phone", phone)
    page.fill("#password", password)
    page.locator("main form button.button").first.click()
    page.wait_for_url(re.compile(r"/$"))


def check(pages, page) -> None:
    # (Never page.evaluate() to find out: in a page without JavaScript it waits forever.)
    if pages.javascript[page]:
        pages.axe(page)
    else:
        pages.axe_without_js(page)


def photo_jpeg(path, size=(2400, 1800)) -> str:
    image = Image.new("RGB", size, (180, 120, 90))
    for x in range(0, size[0], 200):
        for y in range(0, size[1], 200):
            image.paste((200, 200, 190), (x, y, x + 190, y + 90))  # tiles of a wall
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    path.write_bytes(buffer.getvalue())
    return str(path)


def sign_up(stack, pages, page, tap, phone: str, name: str, community: str) -> None:
    page.goto("/signup")
    check(pages, page)
    page.fill("#phone", phone)
    page.get_by_role("button", name="发送验证码").click()
    page.wait_for_url(re.compile(r"/signup/details$"))
    check(pages, page)
    page.fill("#code", tap.code_for(phone))
    page.fill("#display_name", name)
    page.fill("#password", "neighbour-2026")
    page.select_option("#community_id", label=community)
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(re.compile(r"/signup/waiting$"))
    check(pages, page)
    assert "等待审核" in page.title() or "您已完成注册" in page.content()
    # Community staff approve (the staff desk's page is a later piece of the front; the API here).
    staff = stack.city.person("staff_shangpinyuan")
    pending = staff.get("/api/v1/auth/users", params={"status": "pending"})
    [user] = [u for u in pending if u["display_name"] == name]
    staff.post(f"/api/v1/auth/users/{user['id']}/approve")


def report_until_similar(pages, page, *, title: str, description: str, photo: str | None, axe: bool = True) -> None:
    """Category → place → details → photo; stops where the flow goes next (similar or check)."""
    page.goto("/report?new=1")
    page.wait_for_url(re.compile(r"/report/category$"))
    if axe:
        check(pages, page)
    page.locator("input[value=safety_hazard]").check()
    page.get_by_role("button", name="继续").click()
    page.wait_for_url(re.compile(r"/report/place$"))
    if axe:
        check(pages, page)
    page.get_by_label(SHANGPINYUAN_GARDEN).check()
    page.fill("#address", "东门文化墙 by the east gate")
    page.get_by_role("button", name="继续").click()
    page.wait_for_url(re.compile(r"/report/details$"))
    if axe:
        check(pages, page)
    page.fill("#title", title)
    page.fill("#description", description)
    page.locator("input[name=urgency][value=urgent]").check()
    page.get_by_role("button", name="继续").click()
    page.wait_for_url(re.compile(r"/report/photo$"))
    if axe:
        check(pages, page)
    if photo:
        page.set_input_files("#photo", photo)
    page.get_by_role("button", name="继续").click()
    page.wait_for_url(re.compile(r"/report/(similar|check)$"))


def send_report(pages, page) -> str:
    if page.url.endswith("/similar"):
        check(pages, page)
        page.get_by_role("link", name="不是，我反映的是另一个问题").click()
    page.wait_for_url(re.compile(r"/report/check$"))
    check(pages, page)
    page.get_by_role("button", name="提交").click()
    page.wait_for_url(re.compile(r"/issues/[0-9a-f-]{36}\?sent=1$"))
    check(pages, page)
    assert "已提交" in page.content()
    return re.search(r"/issues/([0-9a-f-]{36})", page.url).group(1)


def test_a_resident_signs_up_reports_the_cultural_wall_with_a_photo_and_neighbours_press_me_too(stack, pages, tmp_path):
    tap = stack.tap()
    try:
        page = pages.open()
        sign_up(stack, pages, page, tap, "13612345678", "Yang Jing 杨静", "Shangpinyuan Community 尚品苑社区")
    finally:
        tap.close()
    sign_in(pages, page, "13612345678", "neighbour-2026")
    assert "尚品苑" in page.locator("header").inner_text()
    check(pages, page)

    report_until_similar(
        pages,
        page,
        title="文化墙不安全 Cultural wall is unsafe",
        description="文化墙的瓷砖在掉落，前几天差点砸到孩子。Tiles fall off the cultural wall; a child was nearly hit.",
        photo=photo_jpeg(tmp_path / "wall.jpg"),
    )
    wall_id = send_report(pages, page)
    staff = stack.city.person("staff_shangpinyuan")
    wall = staff.get(f"/api/v1/issues/{wall_id}")
    assert (wall["category"], wall["urgency"], wall["status"]) == ("safety_hazard", "urgent", "reported")
    assert wall["compound_id"] == stack.city.compounds["shangpinyuan"]
    [photo] = staff.get(f"/api/v1/issues/{wall_id}/photos")
    # Resized in the browser before the upload (2400 px → 1600 px), then made a clean JPEG by the server.
    assert photo["content_type"] == "image/jpeg" and photo["size"] < 400_000
    assert page.locator("img.photo").count() == 1
    assert page.evaluate("() => document.querySelector('img.photo').naturalWidth") == 1600

    # Two neighbours start to report the same wall; the flow shows it to them and they press "me too".
    for key in ("zhang_wei", "wang_fang"):
        neighbour = pages.open()
        sign_in(pages, neighbour, phone_of(stack, key), axe=False)
        report_until_similar(
            pages,
            neighbour,
            title="文化墙瓷砖掉落 Cultural wall tiles falling",
            description="Tiles of the cultural wall fall on the path",
            photo=None,
            axe=False,
        )
        assert neighbour.url.endswith("/report/similar")
        check(pages, neighbour)
        card = neighbour.locator("li.card", has_text="Cultural wall is unsafe")
        card.get_by_role("button", name=re.compile("我也遇到")).click()
        # htmx swaps the button for the thanks, without leaving the page.
        card.get_by_text("谢谢，已记录您的附议").wait_for()
        assert neighbour.url.endswith("/report/similar")
    assert staff.get(f"/api/v1/issues/{wall_id}")["supporter_count"] == 2

    # The reporter sees the support on the issue page, and the neighbours now follow it.
    page.goto(f"/issues/{wall_id}")
    assert "2 位邻居附议" in page.content()
    zhang = stack.city.person("zhang_wei")
    assert any(f["target_id"] == wall_id for f in zhang.get("/api/v1/notifications/follows"))


def test_sign_up_and_report_work_without_javascript(stack, pages, tmp_path):
    tap = stack.tap()
    try:
        page = pages.open(javascript=False)
        sign_up(stack, pages, page, tap, "13687654321", "Lao Zhou 老周", "Shangpinyuan Community 尚品苑社区")
    finally:
        tap.close()
    sign_in(pages, page, "13687654321", "neighbour-2026")
    # Errors are shown on the page itself, linked to the field.
    page.goto("/report/details")
    page.get_by_role("button", name="继续").click()
    assert page.locator(".error-summary a[href='#title']").count() == 1
    check(pages, page)

    report_until_similar(
        pages,
        page,
        title="北门路灯不亮 Lamp at the north gate is out",
        description="路灯坏了一周，老人晚上摔倒过。The lamp has been out for a week.",
        photo=photo_jpeg(tmp_path / "lamp.jpg", size=(1200, 900)),
    )
    lamp_id = send_report(pages, page)
    staff = stack.city.person("staff_shangpinyuan")
    assert staff.get(f"/api/v1/issues/{lamp_id}/photos")[0]["content_type"] == "image/jpeg"

    # A neighbour without JavaScript finds it among similar issues and presses "me too" (a plain form).
    neighbour = pages.open(javascript=False)
    sign_in(pages, neighbour, phone_of(stack, "representative"), axe=False)
    report_until_similar(
        pages, neighbour, title="North gate lamp is out", description="The lamp at the north gate is out", photo=None,
        axe=False,
    )  # fmt: skip
    assert neighbour.url.endswith("/report/similar")
    neighbour.locator("li.card", has_text="Lamp at the north gate").get_by_role(
        "button", name=re.compile("我也遇到")
    ).click()
    neighbour.wait_for_url(re.compile(rf"/issues/{lamp_id}$"))
    check(pages, neighbour)
    assert "谢谢，已记录您的附议" in neighbour.content()
    eventually(lambda: staff.get(f"/api/v1/issues/{lamp_id}")["supporter_count"] == 1, what="the support counted")


def _timing(header: str | None) -> tuple[float, float]:
    """The page's own time and the part it waited for the gateway, from its Server-Timing header."""
    found = dict(re.findall(r"(\w+);dur=([0-9.]+)", header or ""))
    return float(found.get("app", "nan")), float(found.get("api", "nan"))


def _transferred(page, go) -> tuple[int, float, float]:
    """Bytes received for one page load, as the network sent them (compressed, with headers), and
    the page's server time and API time in ms."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    seen = {"bytes": 0}

    def finished(event: dict) -> None:
        seen["bytes"] += event["encodedDataLength"]

    cdp.on("Network.loadingFinished", finished)
    response = go()
    page.wait_for_load_state("networkidle")
    cdp.detach()
    return (seen["bytes"], *_timing(response.headers.get("server-timing")))


def test_a_residents_pages_weigh_little_on_first_load_and_less_after(stack, pages):
    signed_in = pages.open()
    sign_in(pages, signed_in, phone_of(stack, "zhang_wei"), axe=False)
    figures: dict[str, tuple[int, float, float]] = {}
    for path in ("/", "/report/place", "/services"):
        # An empty cache. The service worker is kept out of the measure: it passes page loads on to the
        # network from its own thread, where the page's network events do not see them.
        fresh = pages.open(worker=False)
        fresh.context.add_cookies(signed_in.context.cookies())
        figures[f"first {path}"] = _transferred(fresh, lambda p=path, f=fresh: f.goto(p))
        figures[f"after {path}"] = _transferred(fresh, lambda p=path, f=fresh: f.goto(p))
        for other in ("/issues", "/activities", "/meetings", "/inbox", "/noticeboard"):
            figures[f"then {other} (from {path})"] = _transferred(fresh, lambda p=other, f=fresh: f.goto(p))
    # Printed as a table (run with -s): weights are asserted below, times never (they vary with load).
    print("\nA resident's pages: bytes transferred, and server time (app: the whole request; api: waiting")
    print("for the gateway; app/api ≤ 2 is the target)")
    print(f"  {'load':<34} {'KB':>6} {'app ms':>7} {'api ms':>7} {'app/api':>7}")
    for name, (size, app, api) in figures.items():
        ratio = app / api if api else float("nan")
        print(f"  {name:<34} {size / 1024:6.1f} {app:7.1f} {api:7.1f} {ratio:7.2f}")
    assert all(v[0] <= 150 * 1024 for k, v in figures.items() if k.startswith("first")), figures
    assert all(v[0] <= 30 * 1024 for k, v in figures.items() if not k.startswith("first")), figures


def test_the_pages_in_english_pass_axe_too(stack, pages):
    page = pages.open()
    sign_in(pages, page, phone_of(stack, "wang_fang"), axe=False)
    page.get_by_role("button", name="English").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("html").get_attribute("lang") == "en"
    for path in ("/", "/issues", "/meetings", "/activities", "/activities/mine", "/services", "/services/talent",
                 "/inbox", "/me", "/me/notifications", "/me/follows", "/report/category", "/report/place",
                 "/report/details", "/report/photo"):  # fmt: skip
        page.goto(path)
        check(pages, page)
    page.get_by_role("button", name="Larger text").click()
    assert page.locator("html.large").count() == 1
    check(pages, page)


def test_a_full_activity_has_a_waiting_list_and_a_meeting_is_joined_by_its_qr_code(stack, pages):
    from datetime import UTC, datetime, timedelta

    staff = stack.city.person("staff_xihu")
    xihu = stack.city.communities["xihu"]
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    activity = staff.post(
        "/api/v1/activities/",
        {"community_ids": [xihu], "kind": "culture", "title": "Paper-cutting class 剪纸课", "place": "Xihu inn",
         "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(), "capacity": 1,
         "max_party_size": 1, "publish": True},
    )  # fmt: skip
    first, second = pages.open(), pages.open()
    sign_in(pages, first, phone_of(stack, "li_yumei"), axe=False)
    sign_in(pages, second, phone_of(stack, "xihu_1"), axe=False)
    for page in (first, second):
        page.goto("/activities")
        check(pages, page)
        page.get_by_role("link", name="Paper-cutting class 剪纸课").click()
        check(pages, page)
    first.get_by_role("button", name="报名").click()
    first.get_by_text("报名成功，到时见！").wait_for()
    check(pages, first)
    second.reload()
    second.get_by_role("button", name="加入候补").click()
    second.get_by_text("您是候补第 1 位").wait_for()
    # The first cancels; the waiting one moves up.
    first.get_by_role("button", name="取消报名").click()
    first.get_by_text("报名已取消。").wait_for()
    second.goto("/activities/mine")
    check(pages, second)
    assert "已报上名" in second.content()
    calendar = second.request.get(f"/activities/{activity['id']}.ics")
    assert calendar.ok and calendar.text().startswith("BEGIN:VCALENDAR")

    # A bench meeting: register, then at the meeting scan its QR code (the page it opens), check in.
    meeting = staff.post(
        "/api/v1/meetings/",
        {"community_id": xihu, "meeting_type": "bench", "title": "Bench meeting: the paper-cutting room",
         "place": "Under the old tree", "starts_at": start.isoformat(),
         "ends_at": (start + timedelta(hours=1)).isoformat()},
    )  # fmt: skip
    first.goto(f"/meetings/{meeting['id']}")
    check(pages, first)
    first.get_by_role("button", name="报名参加").click()
    first.get_by_text("您已报名参加会议。").wait_for()
    staff.post(f"/api/v1/meetings/{meeting['id']}/start")
    code = staff.get(f"/api/v1/meetings/{meeting['id']}/checkin-code")["code"]
    first.goto(f"/m/{meeting['id']}/checkin?code={code}")
    check(pages, first)
    assert first.input_value("#code") == code
    first.get_by_role("button", name="签到").click()
    first.get_by_text("签到成功，欢迎参会！").wait_for()
    [me] = [
        p
        for p in staff.get(f"/api/v1/meetings/{meeting['id']}/participants")
        if p["user_id"] == stack.city.person("li_yumei").id
    ]
    assert me["checked_in_at"] and me["check_in_method"] == "code"


def test_a_new_resident_waits_for_approval_then_follows_their_community_and_hears_of_its_meetings(stack, pages):
    """From a first use: signing in before approval thanked the person for signing up again, and a
    new resident had no way to follow their community, so its public meetings never reached them."""
    phone, name = "13698765432", "Chen Li 陈丽"
    tap = stack.tap()
    try:
        page = pages.open()
        page.goto("/signup")
        page.fill("#phone", phone)
        page.get_by_role("button", name="发送验证码").click()
        page.wait_for_url(re.compile(r"/signup/details$"))
        page.fill("#code", tap.code_for(phone))
        page.fill("#display_name", name)
        page.fill("#password", "neighbour-2026")
        page.select_option("#community_id", label="Shangpinyuan Community 尚品苑社区")
        page.get_by_role("button", name="注册").click()
        page.wait_for_url(re.compile(r"/signup/waiting$"))
    finally:
        tap.close()

    # Before approval, signing in says plainly what it waits for.
    page.goto("/login")
    page.fill("#phone", phone)
    page.fill("#password", "neighbour-2026")
    page.locator("main form button.button").first.click()
    page.wait_for_url(re.compile(r"/signup/waiting\?pending=1$"))
    check(pages, page)
    assert page.locator("h1").inner_text() == "您的账号正在等待社区审核"
    assert "审核通过前，登录会回到这个页面" in page.content()

    staff = stack.city.person("staff_shangpinyuan")
    [user] = [u for u in staff.get("/api/v1/auth/users", params={"status": "pending"}) if u["display_name"] == name]
    staff.post(f"/api/v1/auth/users/{user['id']}/approve")

    # Approved, the home page invites them to follow their community: one button, their choice.
    sign_in(pages, page, phone, "neighbour-2026", axe=False)
    invitation = page.locator("section", has_text="及时了解社区的会议")
    assert invitation.count() == 1
    check(pages, page)
    invitation.get_by_role("button", name="关注本社区").click()
    page.wait_for_url(re.compile(r"/$"))
    assert "您已关注本社区" in page.content()
    assert page.locator("section", has_text="及时了解社区的会议").count() == 0
    resident = Session(stack.url).login(phone, "neighbour-2026")
    community = stack.city.communities["shangpinyuan"]
    assert [(f["target_type"], f["target_id"]) for f in resident.get("/api/v1/notifications/follows")] == [
        ("community", community)
    ]
    page.goto("/me/follows")
    check(pages, page)
    assert page.locator("li.card", has_text="Shangpinyuan Community 尚品苑社区").count() == 1
    assert page.get_by_role("button", name=re.compile("关注本社区")).count() == 0

    # Another community is not theirs to follow: the notifications service refuses, and the page says so.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(
        "/me/follows/community",
        form={"csrf_token": token, "community_id": stack.city.communities["xihu"]},
    )
    assert refused.ok and "无法关注这个社区" in refused.text()
    assert len(resident.get("/api/v1/notifications/follows")) == 1

    # Staff plan a public meeting of the community: the new resident, invited or not, is told.
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    title = "楼道堆物怎么清 Clearing the stairwells"
    meeting = staff.post(
        "/api/v1/meetings/",
        {"community_id": community, "meeting_type": "round_table", "title": title, "place": "Community hall",
         "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat()},
    )  # fmt: skip
    [told] = eventually(
        lambda: [
            n
            for n in resident.get("/api/v1/notifications/")
            if (n["kind"], n["subject_type"], n["subject_id"]) == ("meeting.scheduled", "meeting", meeting["id"])
        ],
        timeout=60,
        interval=0.5,
        what="the notice of the community's meeting",
    )
    page.goto("/inbox")
    assert told["title"] in page.content()
