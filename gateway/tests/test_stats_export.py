"""The street's exports through the gateway, with stand-in services answering their /stats: the
headline figures (escalations by tier, meetings by type, consultations) as columns of the CSV and of
both sheets of the workbook, and as ranking metrics; the overview passes the figures on exactly."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from openpyxl import load_workbook

NONE = {"compound_to_community": 0, "community_to_street": 0, "street_to_city": 0}


@pytest.fixture
def services() -> Iterator[dict]:
    """One stand-in for every service: `<url>/<service>/stats` answers `answers[service]`."""
    answers: dict[str, dict] = {}
    asked: list[str] = []  # the paths and queries the services were asked

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            service = self.path.split("/")[1]
            asked.append(self.path)
            # An answer per street is kept under "<service>/street" (asked for with by=street).
            key = f"{service}/street" if "by=street" in self.path else service
            body = json.dumps(answers.get(key, {"totals": {}, "by_community": [], "monthly": []})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}", "answers": answers, "asked": asked}
    server.shutdown()
    server.server_close()


@pytest.fixture
def street(make_app, services, token_signer):
    url = services["url"]
    client = make_app(
        ISSUES_URL=f"{url}/issues", MEETINGS_URL=f"{url}/meetings", ACTIVITIES_URL=f"{url}/activities"
    ).test_client()
    admin = {"Authorization": f"Bearer {token_signer.sign(user_id='admin', role='city_admin')}"}
    street_id = client.post("/api/v1/directory/streets", json={"name": "Yucai Street"}, headers=admin).get_json()["id"]

    def community(name: str) -> str:
        made = client.post("/api/v1/directory/communities", json={"street_id": street_id, "name": name}, headers=admin)
        return made.get_json()["id"]

    c1, c2 = community("Xihu"), community("Yucai")
    services["answers"]["issues"] = {
        "totals": {"raised": 5, "escalated": 3, "escalated_by_tier": NONE | {"compound_to_community": 3}},
        "by_community": [
            {"community_id": c1, "raised": 3, "escalated": 3, "escalated_by_tier": NONE | {"compound_to_community": 3}},
            {"community_id": c2, "raised": 2, "escalated": 0, "escalated_by_tier": NONE},
        ],
        "monthly": [
            {"month": "2026-11", "raised": 5, "escalated": 3, "escalated_by_tier": NONE | {"compound_to_community": 3}}
        ],
    }
    services["answers"]["meetings"] = {
        "totals": {"meetings_held": 3, "meetings_by_type": {"bench": 2, "pavilion": 1}, "consultations": 2},
        "by_community": [
            {
                "community_id": c1,
                "meetings_held": 3,
                "meetings_by_type": {"bench": 2, "pavilion": 1},
                "consultations": 2,
            },
        ],
        "monthly": [
            {
                "month": "2026-11",
                "meetings_held": 3,
                "meetings_by_type": {"bench": 2, "pavilion": 1},
                "consultations": 2,
            }
        ],
    }
    return client, admin, street_id, c1, c2


def test_the_headline_figures_are_columns_of_both_exports_and_rankings(street):
    client, admin, street_id, c1, c2 = street
    query = f"street_id={street_id}&from=2026-11-01&to=2026-11-30"
    overview = client.get(f"/api/v1/stats/overview?{query}", headers=admin)
    assert overview.status_code == 200, overview.get_json()
    totals = overview.get_json()["totals"]
    assert totals["issues"]["escalated_by_tier"] == NONE | {"compound_to_community": 3}
    assert totals["meetings"]["meetings_by_type"] == {"bench": 2, "pavilion": 1}

    exported = client.get(f"/api/v1/stats/export?{query}", headers=admin)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    xihu, yucai = rows
    assert (
        xihu["community_name"],
        xihu["issues.escalated"],
        xihu["issues.escalated_by_tier.compound_to_community"],
    ) == (
        "Xihu",
        "3",
        "3",
    )
    assert [xihu[f"meetings.meetings_by_type.{t}"] for t in ("bench", "pavilion", "round_table")] == ["2", "1", "0"]
    assert xihu["meetings.consultations"] == "2"
    # Yucai held no meeting: the meetings service did not list it, so its meeting cells are empty.
    assert (yucai["issues.escalated"], yucai["meetings.consultations"]) == ("0", "")

    monthly = client.get(f"/api/v1/stats/export?{query}&sheet=monthly", headers=admin)
    assert "monthly" in monthly.headers["Content-Disposition"]
    [november] = list(csv.DictReader(io.StringIO(monthly.get_data(as_text=True).lstrip("\ufeff"))))
    assert (november["month"], november["issues.escalated"], november["meetings.meetings_by_type.bench"]) == (
        "2026-11",
        "3",
        "2",
    )
    bad = client.get(f"/api/v1/stats/export?{query}&sheet=weekly", headers=admin)
    assert bad.status_code == 422 and "sheet" in json.dumps(bad.get_json())

    workbook = load_workbook(io.BytesIO(client.get(f"/api/v1/stats/export?{query}&format=xlsx", headers=admin).data))
    sheet = workbook["monthly"]
    header = [cell.value for cell in sheet[1]]
    values = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert values["month"] == "2026-11" and values["meetings.consultations"] == 2
    assert values["meetings.meetings_by_type.round_table"] == 0 and values["issues.escalated"] == 3
    communities = workbook["communities"]
    assert "issues.escalated_by_tier.street_to_city" in [cell.value for cell in communities[1]]

    ranked = client.get(f"/api/v1/stats/rankings?{query}&metric=escalated", headers=admin).get_json()["ranking"]
    assert [(r["community_name"], r["rank"]) for r in ranked] == [("Yucai", 1), ("Xihu", 2)]
    ranked = client.get(f"/api/v1/stats/rankings?{query}&metric=consultations", headers=admin).get_json()["ranking"]
    assert [(r["community_name"], r["rank"]) for r in ranked] == [("Xihu", 1), ("Yucai", None)]


def test_the_whole_city_is_answered_per_street_unless_its_communities_are_asked_for(street, services):
    """The whole city's overview lists its streets (each service asked `by=street`), not its
    communities; `communities=true` lists them, and rankings and exports, which are about
    communities, still do."""
    client, admin, street_id, c1, c2 = street
    services["answers"]["issues/street"] = {
        "totals": {"raised": 5},
        "by_street": [{"street_id": street_id, "raised": 5, "median_hours_to_resolve": None}],
        "monthly": [{"month": "2026-11", "raised": 5}],
    }
    services["answers"]["meetings/street"] = {
        "totals": {"meetings_held": 3},
        "by_street": [{"street_id": street_id, "meetings_held": 3}],
        "monthly": [],
    }
    other = client.post("/api/v1/directory/streets", json={"name": "Anhe Street"}, headers=admin).get_json()["id"]
    period = "from=2026-11-01&to=2026-11-30"
    services["asked"].clear()
    answer = client.get(f"/api/v1/stats/overview?{period}", headers=admin)
    assert answer.status_code == 200, answer.get_json()
    city = answer.get_json()
    assert city["scope"]["level"] == "city" and city["by_community"] == []
    assert city["totals"]["issues"] == {"raised": 5}
    # Every street is listed, also one without figures, by name.
    assert [(row["street_id"], row["street_name"]) for row in city["by_street"]] == [
        (other, "Anhe Street"),
        (street_id, "Yucai Street"),
    ]
    yucai = city["by_street"][1]
    assert yucai["issues"] == {"raised": 5, "median_hours_to_resolve": None}
    assert yucai["meetings"] == {"meetings_held": 3}
    assert all("by=street" in path for path in services["asked"])

    listed = client.get(f"/api/v1/stats/overview?{period}&communities=true", headers=admin).get_json()
    assert listed["by_street"] == []
    assert sorted(row["community_name"] for row in listed["by_community"]) == ["Xihu", "Yucai"]
    assert listed["by_community"][0]["issues"]["raised"] == 3

    # A street lists its communities by default.
    street_view = client.get(f"/api/v1/stats/overview?street_id={street_id}&{period}", headers=admin).get_json()
    assert [row["community_name"] for row in street_view["by_community"]] == ["Xihu", "Yucai"]
    assert street_view["by_street"] == []

    services["asked"].clear()
    ranked = client.get(f"/api/v1/stats/rankings?{period}&metric=escalated", headers=admin).get_json()["ranking"]
    assert [r["community_name"] for r in ranked] == ["Yucai", "Xihu"]
    exported = client.get(f"/api/v1/stats/export?{period}", headers=admin)
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["community_name"] for row in rows] == ["Xihu", "Yucai"]
    assert not [path for path in services["asked"] if "by=street" in path]
    bad = client.get(f"/api/v1/stats/overview?{period}&communities=perhaps", headers=admin)
    assert bad.status_code == 422 and "communities" in json.dumps(bad.get_json())


def test_export_headers_and_figure_names_are_chinese_by_default_and_english_on_request(street):
    client, admin, street_id, _c1, _c2 = street
    query = f"street_id={street_id}&from=2026-11-01&to=2026-11-30"
    chinese, english = admin | {"Accept-Language": "zh-CN,zh;q=0.9"}, admin | {"Accept-Language": "en-US"}

    exported = client.get(f"/api/v1/stats/export?{query}", headers=chinese)
    assert exported.headers["Content-Language"] == "zh-CN"
    header = next(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert header[:2] == ["社区编号", "社区"]
    assert {"升级议题数", "由小区升至社区", "板凳会", "凉亭会", "圆桌会", "协商次数"} <= set(header)
    exported = client.get(f"/api/v1/stats/export?{query}", headers=english)
    assert exported.headers["Content-Language"] == "en"
    header = next(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert header[:2] == ["community_id", "community_name"]
    assert {"issues.escalated_by_tier.compound_to_community", "meetings.meetings_by_type.bench"} <= set(header)

    workbook = load_workbook(io.BytesIO(client.get(f"/api/v1/stats/export?{query}&format=xlsx", headers=chinese).data))
    assert workbook.sheetnames == ["社区", "按月"]
    assert [cell.value for cell in workbook["按月"][1]][:2] == ["月份", "上报议题数"]
    workbook = load_workbook(io.BytesIO(client.get(f"/api/v1/stats/export?{query}&format=xlsx", headers=english).data))
    assert workbook.sheetnames == ["communities", "monthly"]

    labels = client.get(f"/api/v1/stats/overview?{query}", headers=chinese).get_json()["labels"]
    assert (labels["meetings.meetings_by_type.round_table"], labels["issues.escalated"]) == ("圆桌会", "升级议题数")
    labels = client.get(f"/api/v1/stats/overview?{query}", headers=english).get_json()["labels"]
    assert labels["meetings.meetings_by_type.round_table"] == "Round-table meetings"


def test_a_gateway_error_is_chinese_by_default_and_english_on_request(street):
    client, admin, _street_id, _c1, _c2 = street
    chinese = client.get("/api/v1/stats/rankings?metric=nonsense", headers=admin | {"Accept-Language": "zh"})
    assert chinese.status_code == 422
    error = chinese.get_json()["error"]
    assert (error["code"], error["message"]) == ("validation_error", "输入有误：metric")
    assert error["fields"]["metric"][0].startswith("须为以下之一：")
    english = client.get("/api/v1/stats/rankings?metric=nonsense", headers=admin).get_json()["error"]
    assert english["message"] == "invalid input: metric"
    assert english["fields"]["metric"][0].startswith("Must be one of: ")
    missing = client.get(
        "/api/v1/directory/streets/00000000-0000-0000-0000-000000000000", headers=admin | {"Accept-Language": "zh-Hans"}
    )
    assert missing.status_code == 404 and missing.get_json()["error"]["message"].startswith("找不到")
    # The thing a message names is in Chinese words too, not its English code.
    assert missing.get_json()["error"]["message"] == "找不到街道 00000000-0000-0000-0000-000000000000"
    english = client.get("/api/v1/directory/streets/00000000-0000-0000-0000-000000000000", headers=admin).get_json()
    assert english["error"]["message"] == "street 00000000-0000-0000-0000-000000000000 not found"
