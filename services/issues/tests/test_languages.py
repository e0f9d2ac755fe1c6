"""The issues service in Chinese by default and English on request: its errors, the labels beside
its codes, and the header of its CSV export (the other tests of this folder read English)."""

from __future__ import annotations

import csv
import io

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en"}
NOBODY = "00000000-0000-4000-8000-000000000000"


def test_an_issue_in_both_languages(client, tokens, report):
    issue, _ = report()
    chinese = client.get(f"/{issue['id']}", headers=tokens.staff() | ZH)
    assert chinese.headers["Content-Language"] == "zh-CN"
    assert (chinese.get_json()["status"], chinese.get_json()["status_label"]) == ("reported", "已上报")
    english = client.get(f"/{issue['id']}", headers=tokens.staff() | EN).get_json()
    assert (english["status"], english["status_label"]) == ("reported", "Reported")
    listed = client.get("/", headers=tokens.staff() | ZH).get_json()
    assert {row["status_label"] for row in listed} == {"已上报"}

    missing = client.get(f"/{NOBODY}", headers=tokens.staff() | ZH).get_json()["error"]
    assert (missing["code"], missing["message"]) == ("not_found", f"找不到议题 {NOBODY}")
    missing = client.get(f"/{NOBODY}", headers=tokens.staff() | EN).get_json()["error"]
    assert (missing["code"], missing["message"]) == ("not_found", f"issue {NOBODY} not found")


def test_a_refused_move_names_the_statuses_in_words(client, tokens, report):
    issue, _ = report()
    move = {"status": "resolved", "summary": "fixed"}
    refused = client.post(f"/{issue['id']}/status", json=move, headers=tokens.staff() | ZH)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["message"] == "状态为“已上报”的议题不能改为“已解决”"
    refused = client.post(f"/{issue['id']}/status", json=move, headers=tokens.staff() | EN)
    assert refused.get_json()["error"]["message"] == "an issue that is reported cannot become resolved"


def test_categories_read_in_the_readers_language(client):
    chinese = {c["key"]: c for c in client.get("/categories", headers=ZH).get_json()}
    assert chinese["neighbour_dispute"]["label"] == "邻里纠纷"
    assert chinese["neighbour_dispute"]["name"] == "Neighbour dispute"  # as stored
    english = {c["key"]: c["label"] for c in client.get("/categories", headers=EN).get_json()}
    assert english["neighbour_dispute"] == "Neighbour dispute"


def test_the_csv_export_header_is_chinese_by_default(client, tokens, report):
    report()
    chinese = client.get("/export.csv", headers=tokens.staff() | ZH).get_data(as_text=True)
    assert next(csv.reader(io.StringIO(chinese)))[:4] == ["议题编号", "社区编号", "标题", "类别"]
    english = client.get("/export.csv", headers=tokens.staff() | EN).get_data(as_text=True)
    assert next(csv.reader(io.StringIO(english)))[:4] == ["id", "community_id", "title", "category"]
