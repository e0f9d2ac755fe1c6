"""Chinese first, through the gateway on the real platform: an error of the gateway and of each
service reads in Chinese by default and in English on request (the gateway passes Accept-Language
on and the service's Content-Language back); codes and field names are the same in both."""

from __future__ import annotations

import re

import pytest
import requests

NOBODY = "00000000-0000-4000-8000-000000000000"
CHINESE = re.compile("[\u4e00-\u9fff]")


def _error(
    base: str, token: str, method: str, path: str, language: str | None, **kwargs
) -> tuple[requests.Response, dict]:
    headers = {"Authorization": f"Bearer {token}"} | ({"Accept-Language": language} if language else {})
    answer = requests.request(method, f"{base}{path}", headers=headers, timeout=30, **kwargs)
    return answer, answer.json()["error"]


@pytest.mark.parametrize(
    ("who", "path", "chinese", "english"),
    [
        ("admin", f"/api/v1/directory/streets/{NOBODY}", "找不到", "not found"),
        ("admin", f"/api/v1/issues/{NOBODY}", f"找不到议题 {NOBODY}", f"issue {NOBODY} not found"),
        ("admin", f"/api/v1/meetings/{NOBODY}", f"找不到会议 {NOBODY}", f"meeting {NOBODY} not found"),
        ("admin", f"/api/v1/activities/{NOBODY}", f"找不到活动 {NOBODY}", f"activity {NOBODY} not found"),
        ("yang_jing", f"/api/v1/notifications/{NOBODY}", "", ""),
    ],
    ids=["gateway", "issues", "meetings", "activities", "notifications"],
)
def test_an_error_of_each_process_is_chinese_by_default_and_english_on_request(
    demo_platform, who, path, chinese, english
):
    _platform, city = demo_platform
    session = city.admin if who == "admin" else city.person(who)
    zh_answer, zh = _error(city.base_url, session.token, "GET", path, None)
    en_answer, en = _error(city.base_url, session.token, "GET", path, "en-US,en;q=0.9")
    assert zh_answer.status_code == en_answer.status_code >= 400
    assert zh["code"] == en["code"]
    assert zh_answer.headers["Content-Language"] == "zh-CN" and en_answer.headers["Content-Language"] == "en"
    assert CHINESE.search(zh["message"]) and not CHINESE.search(en["message"]), (zh, en)
    assert chinese in zh["message"] and english in en["message"]


def test_field_messages_of_a_service_through_the_gateway(demo_platform):
    _platform, city = demo_platform
    resident = city.person("yang_jing")
    body = {"description": "x", "category": "parking", "urgency": "soon"}
    zh_answer, zh = _error(city.base_url, resident.token, "POST", "/api/v1/issues/", "zh-Hans", json=body)
    en_answer, en = _error(city.base_url, resident.token, "POST", "/api/v1/issues/", "en", json=body)
    assert zh_answer.status_code == en_answer.status_code == 422
    assert set(zh["fields"]) == set(en["fields"]) >= {"title", "urgency"}
    assert zh["fields"]["title"] == ["缺少必填字段。"] and en["fields"]["title"] == ["Missing data for required field."]
    assert zh["message"].startswith("输入有误：") and en["message"].startswith("invalid input: ")


def test_labels_for_people_follow_the_language(demo_platform):
    _platform, city = demo_platform
    staff = city.person("staff_xihu")

    def get(path: str, language: str, token: str = staff.token) -> list | dict:
        answer = requests.get(
            f"{city.base_url}{path}",
            headers={"Authorization": f"Bearer {token}", "Accept-Language": language},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    categories = {c["key"]: c for c in get("/api/v1/issues/categories", "zh-CN")}
    assert categories["safety_hazard"]["label"] == "安全隐患"
    assert categories["safety_hazard"]["name"] == "Safety hazard"  # the stored name is unchanged
    assert {c["key"]: c["label"] for c in get("/api/v1/issues/categories", "en")}["parking"] == "Parking"
    community = city.communities["xihu"]
    types = {t["key"]: t["label"] for t in get(f"/api/v1/meetings/types?community_id={community}", "zh")}
    assert (types["bench"], types["pavilion"], types["round_table"]) == ("板凳会", "凉亭会", "圆桌会")
    issues = get("/api/v1/issues/", "zh", city.admin.token)  # the story's issues, across the city
    assert issues and all(CHINESE.search(i["status_label"]) for i in issues)
    assert all(i["status"].isascii() for i in issues)  # the codes stay as they are
