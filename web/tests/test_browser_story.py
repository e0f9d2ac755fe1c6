"""The residents' journey with the cultural wall, end to end in a real browser (Debian's Chromium,
headless) on the platform's real processes: staff accept the wall and put it on a round-table
meeting, invite two representatives, open the meeting; the representatives check in with the code
on their phones; the motion passes by a roll call, each
representative voting on their phone; the minutes are published; the task is
reported done; the resident sees the decision, the task done and the issue resolved. Every step
through pages; only the report and the neighbours' support are set up through the API (they have
their own browser test in test_browser.py). axe-core on every page visited."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from linli_demo.story import PASSWORD
from linli_kit.testing.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
SHOTS = os.environ.get("LINLI_STAFF_SHOTS", "")


def phone_of(stack, key: str) -> str:
    name = stack.city.person(key).name
    return next(phone for who, _role, phone in stack.city.logins if who == name)


def sign_in(page, phone: str) -> None:
    page.goto("/login")
    page.fill("#phone", phone)
    page.fill("#password", PASSWORD)
    page.locator("main form button.button").first.click()
    page.wait_for_url(re.compile(r"/$"))


def shoot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def open_action(page, summary: str):
    details = page.locator("details.action", has=page.locator("summary", has_text=summary))
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    return details.locator("form")


def back_at(page, address: re.Pattern) -> None:
    """The form was taken: back on the page (a refused form answers at its own address, with errors)."""
    try:
        page.wait_for_url(address, timeout=15_000)
    except PlaywrightTimeout:
        raise AssertionError(f"still at {page.url}: {page.locator('main').inner_text()[:1500]}") from None
    assert page.locator(".error-summary").count() == 0, page.locator(".error-summary").inner_text()


def flash(page) -> str:
    return page.locator("main > .banner").first.inner_text()


def meeting_time() -> tuple[str, str, str]:
    """A day and times in the city an hour long, starting soon (tomorrow morning late at night)."""
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=5)
    if local.hour >= 22:
        return (local + timedelta(days=1)).date().isoformat(), "09:00", "10:00"
    return local.date().isoformat(), local.strftime("%H:%M"), (local + timedelta(hours=1)).strftime("%H:%M")


def test_the_wall_goes_to_a_round_table_the_motion_passes_the_task_is_done_the_resident_sees_it(stack, pages):
    city = stack.city
    shangpinyuan = city.communities["shangpinyuan"]
    reporter = city.person("yang_jing")
    wall = reporter.post(
        "/api/v1/issues/",
        {"community_id": shangpinyuan, "title": "文化墙不安全 Cultural wall is unsafe", "category": "safety_hazard",
         "urgency": "urgent", "description": "Tiles are falling off the cultural wall."},
    )  # fmt: skip
    for neighbour in ("zhang_wei", "wang_fang"):
        city.person(neighbour).post(f"/api/v1/issues/{wall['id']}/supporters")
    representatives = ("yang_jing", "zhang_wei")

    # Staff accept the wall at the desk and put it on a round-table meeting.
    desk = pages.open(width=1280, height=900)
    sign_in(desk, phone_of(stack, "staff_shangpinyuan"))
    desk.goto(f"/desk/issues/{wall['id']}")
    desk.locator("form[action$='/accept'] button").click()
    desk.wait_for_url(re.compile(rf"/desk/issues/{wall['id']}$"))
    pages.axe(desk)
    desk.get_by_role("link", name=re.compile("议程|agenda")).click()
    # The meetings service learns of the accepted issue by event: the page offers it once it has.
    eventually(
        lambda: desk.reload() or desk.locator("input[name=issue_id][value='" + wall["id"] + "']").count() == 1,
        timeout=60, interval=1, what="the wall among the issues waiting for a meeting",
    )  # fmt: skip
    assert desk.locator(f"input[name=issue_id][value='{wall['id']}']").is_checked()
    assert desk.locator("input[name=meeting_type][value=round_table]").is_checked()
    pages.axe(desk)
    day, start, end = meeting_time()
    desk.fill("#title", "文化墙圆桌会 The cultural wall round-table")
    desk.fill("#day", day)
    desk.fill("#start", start)
    desk.fill("#end", end)
    desk.fill("#place", "社区议事厅 Community hall")
    desk.get_by_role("button", name=re.compile("安排会议|Schedule the meeting")).click()
    desk.wait_for_url(re.compile(r"/desk/meetings/[0-9a-f-]{36}$"))
    meeting_url = desk.url
    meeting_id = meeting_url.rsplit("/", 1)[1]
    at_meeting = re.compile(rf"/desk/meetings/{meeting_id}(#[\w-]+)?$")  # back on the page, no form refused
    assert "Cultural wall is unsafe" in desk.locator("#agenda + ol").inner_text()
    pages.axe(desk)

    for key in representatives:
        form = open_action(desk, "邀请")
        form.locator("#role").select_option("resident_representative")
        form.locator("#user_id").select_option(city.person(key).id)
        form.locator("button").click()
        back_at(desk, at_meeting)
        assert city.person(key).name in desk.locator("#people + .table-wrap").inner_text()
    desk.get_by_role("button", name=re.compile("签到码|check-in code")).click()
    back_at(desk, at_meeting)
    code = desk.locator("[data-testid=checkin-code]").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)
    pages.axe(desk)
    shoot(desk, "desk-meeting-open-desktop")

    # The representatives check in on their phones with the code shown at the meeting.
    phones = {}
    for key in representatives:
        phone = phones[key] = pages.open()
        sign_in(phone, phone_of(stack, key))
        phone.goto(f"/meetings/{meeting_id}")
        phone.fill("#code", code)
        phone.locator("form[action$='/check-in'] button").click()
        phone.wait_for_url(re.compile(rf"/meetings/{meeting_id}$"))
        assert "签到成功" in flash(phone) or "checked in" in flash(phone)
        pages.axe(phone)

    desk.goto(meeting_url)
    assert desk.locator("#people + .table-wrap").inner_text().count("凭码签到") + desk.locator(
        "#people + .table-wrap"
    ).inner_text().count("by code") == len(representatives)

    # The motion, voted by roll call, adopted with the plan and a task for the property company.
    form = open_action(desk, "提出动议")
    form.locator("#motion").fill("拆除文化墙，物业两周内完成 Take the wall down within two weeks")
    form.locator("#agenda_item_id").select_option(index=1)
    form.locator("#issue_effect").select_option("resolution_plan")
    form.locator("#resolution_plan").fill("物业公司拆除文化墙 The property company takes the wall down")
    form.locator("#action_title").fill("拆除文化墙 Take the wall down")
    form.locator("#owner_body").select_option("property_company")
    form.locator("input[name=method][value=roll_call]").check()
    form.locator("#due_date").fill((datetime.now(UTC) + timedelta(days=14)).date().isoformat())
    form.locator("button").click()
    back_at(desk, at_meeting)
    pages.axe(desk)
    # A roll call: each representative votes on the meeting's page on their phone.
    for phone in phones.values():
        phone.goto(f"/meetings/{meeting_id}")
        pages.axe(phone)
        phone.locator("#vote ~ .card form button[value=for]").click()
        phone.wait_for_url(re.compile(rf"/meetings/{meeting_id}#vote$"))
        assert "您已投票：赞成" in phone.locator("main").inner_text()
    shoot(phones["yang_jing"], "meeting-voted-phone")
    desk.goto(meeting_url)
    assert "赞成 2 · 反对 0 · 弃权 0" in desk.locator(".motion").inner_text()
    desk.get_by_role("button", name=re.compile("记录决定|record the decision")).click()
    back_at(desk, at_meeting)
    assert desk.locator(".decision .tag").first.inner_text() == "通过"
    assert "赞成 2 · 反对 0 · 弃权 0" in desk.locator(".decision").first.inner_text()
    shoot(desk, "desk-meeting-decided-desktop")

    # The minutes published; the meeting is closed.
    desk.fill("#minutes", "与会代表一致同意拆除文化墙。 The representatives agreed to take the wall down.")
    desk.get_by_role("button", name=re.compile("结束会议|Close the meeting")).click()
    back_at(desk, at_meeting)
    assert "一致同意" in desk.locator("section[aria-labelledby=minutes-heading]").inner_text()
    pages.axe(desk)

    # The task reported done from the decision (progress 100).
    form = open_action(desk, "进度")
    form.locator("input[id^='progress-']").fill("100")
    form.locator("textarea[id^='note-']").fill("文化墙已拆除 The wall is down")
    form.locator("button").click()
    back_at(desk, at_meeting)
    assert "100%" in desk.locator(".decision .task").first.inner_text()
    pages.axe(desk)

    # The resident sees the decision and the task done on the page, then the issue resolved.
    resident = pages.open()
    sign_in(resident, phone_of(stack, "yang_jing"))

    def task_done_shown() -> bool:
        resident.goto(f"/issues/{wall['id']}")
        text = resident.locator("main").inner_text()
        return "拆除文化墙" in text and ("已完成" in text or "Done" in text)

    eventually(task_done_shown, timeout=60, interval=1, what="the task done on the resident's issue page")
    pages.axe(resident)
    shoot(resident, "issue-after-meeting-phone")

    desk.goto(f"/desk/issues/{wall['id']}")
    form = open_action(desk, "推进办理")
    form.locator("input[name=progress_status][value=resolved]").check()
    form.locator("#summary").fill("文化墙已由物业公司拆除。 The property company took the wall down.")
    form.locator("button").click()
    desk.wait_for_url(re.compile(rf"/desk/issues/{wall['id']}$"))
    resident.goto(f"/issues/{wall['id']}")
    assert "文化墙已由物业公司拆除" in resident.locator("main").inner_text()
    shoot(resident, "issue-resolved-phone")
    pages.axe(resident)

    # The meeting's page for residents: the decision and the minutes.
    resident.goto(f"/meetings/{meeting_id}")
    text = resident.locator("main").inner_text()
    assert "拆除文化墙" in text and "一致同意" in text
    pages.axe(resident)

    # The meeting's page at the desk on a phone in the corridor (360 px): the same forms, one column.
    corridor = pages.open()
    sign_in(corridor, phone_of(stack, "staff_shangpinyuan"))
    corridor.goto(meeting_url)
    assert corridor.evaluate("document.documentElement.scrollWidth") <= 360
    pages.axe(corridor)
    shoot(corridor, "desk-meeting-phone")
    corridor.goto("/desk/meetings")
    assert "文化墙圆桌会" in corridor.locator("main").inner_text()
    pages.axe(corridor)
    shoot(corridor, "desk-meetings-phone")
