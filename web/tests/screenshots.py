"""Screenshots of the main pages, phone (360 px) and desktop (1280 px), in Chinese, on the demo city.

Not collected by a normal test run (no `test_` file name); `linli-web screenshots` (or
`make screenshots`) runs it: an isolated platform on SQLite as `make run` has it, the article's story
loaded through the API, the web process, Debian's Chromium. Files go to LINLI_SCREENSHOTS_OUT
(default web/screenshots/)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from linli_demo.story import PASSWORD

OUT = Path(os.environ.get("LINLI_SCREENSHOTS_OUT") or Path(__file__).resolve().parents[1] / "screenshots")
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 800}
pytestmark = pytest.mark.timeout(2400)


def _phone(stack, key: str) -> str:
    name = stack.city.person(key).name
    return next(phone for who, _role, phone in stack.city.logins if who == name)


def _context(browser, base_url, viewport, phone=None):
    context = browser.new_context(base_url=base_url, viewport=viewport, locale="zh-CN", device_scale_factor=1)
    context.set_default_timeout(120_000)  # a refresh on a busy machine: slow is fine, only wrong is not
    page = context.new_page()
    if phone:
        page.goto("/login")
        page.fill("#phone", phone)
        page.fill("#password", PASSWORD)
        page.locator("main form button.button").first.click()
        page.wait_for_url(re.compile(r"/$"))
    return context, page


def _shoot(page, name: str, kind: str) -> None:
    page.wait_for_load_state("networkidle")
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}-{kind}.png"), full_page=(kind == "desktop"))


def test_take_screenshots(story_stack, browser):
    stack = story_stack
    yang = stack.city.person("yang_jing")
    [wall] = yang.get("/api/v1/issues/", params={"mine": "true"})
    [activity] = stack.city.person("li_yumei").get("/api/v1/activities/")
    [round_table] = stack.city.person("staff_shangpinyuan").get("/api/v1/meetings/", params={"issue_id": wall["id"]})
    for kind, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        context, page = _context(browser, stack.url, viewport)
        page.goto("/")
        _shoot(page, "01-welcome", kind)
        page.goto("/signup")
        _shoot(page, "02-signup", kind)
        context.close()

        context, page = _context(browser, stack.url, viewport, _phone(stack, "yang_jing"))
        for name, path in (("03-home", "/"), ("04-report-category", "/report?new=1"),
                           ("05-report-place", "/report/place"), ("07-issue", f"/issues/{wall['id']}"),
                           ("08-my-issues", "/issues"),
                           ("09-meetings", "/meetings"), ("11-inbox", "/inbox"),
                           ("13-notification-settings", "/me/notifications")):  # fmt: skip
            page.goto(path)
            _shoot(page, name, kind)
        # The similar issues step: a neighbour starts to report the same wall.
        page.goto("/report/details")
        page.get_by_role("button", name="继续").click()  # the error summary, linked to the fields
        _shoot(page, "06-report-errors", kind)
        context.close()

        context, page = _context(browser, stack.url, viewport, _phone(stack, "li_yumei"))
        for name, path in (("10-activity", f"/activities/{activity['id']}"), ("12-services", "/services")):
            page.goto(path)
            _shoot(page, name, kind)
        context.close()

        # Community staff at the desk; the street official's overview.
        context, page = _context(browser, stack.url, viewport, _phone(stack, "staff_shangpinyuan"))
        for name, path in (("14-desk", "/desk?view=all"), ("15-desk-issue", f"/desk/issues/{wall['id']}"),
                           ("16-desk-notice", "/desk/broadcast"), ("18-desk-meetings", "/desk/meetings"),
                           ("19-desk-meeting", f"/desk/meetings/{round_table['id']}")):  # fmt: skip
            page.goto(path)
            _shoot(page, name, kind)
        context.close()
        context, page = _context(browser, stack.url, viewport, _phone(stack, "official"))
        page.goto("/overview")
        page.locator("[data-chart=trend] canvas").wait_for()
        _shoot(page, "17-overview", kind)
        # The street's map: a service post north-west of Shangpinyuan leaves Xihu Residences a gap.
        if kind == "phone":
            stack.city.admin.post("/api/v1/activities/posts", {
                "community_id": stack.city.communities["shangpinyuan"], "name": "尚品苑邻里服务站 Shangpinyuan post",
                "latitude": 38.1040, "longitude": 106.3370, "address": "尚品苑北门 North gate"})  # fmt: skip
        page.goto("/overview/map")
        page.locator(".leaflet-marker-icon").first.wait_for()
        page.locator("[data-map-block]").scroll_into_view_if_needed()  # the phone's screen shows the map
        _shoot(page, "20-map", kind)
        context.close()
