"""Chinese first: what the API says to people comes from message catalogues, in Chinese unless the
caller asks for English (`Accept-Language`); codes and field names never change."""

from __future__ import annotations

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from linli_kit import i18n, messages
from linli_kit.config import load_settings
from linli_kit.db import Database
from linli_kit.errors import Conflict, Label, NotFound, Text
from linli_kit.web import create_app

blp = Blueprint("probe_i18n", __name__, url_prefix="/probe")


class Body(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=80))
    count = fields.Integer()
    kind = fields.String(validate=validate.OneOf(["a", "b"]))


@blp.route("/things")
class Things(MethodView):
    @blp.arguments(Body)
    @blp.response(201)
    def post(self, body: dict) -> dict:
        return body


@blp.route("/things/<thing_id>")
class Thing(MethodView):
    @blp.response(200)
    def get(self, thing_id: str) -> dict:
        raise NotFound("issue {issue_id} not found", issue_id=thing_id)


@blp.route("/moves")
class Moves(MethodView):
    @blp.response(200)
    def post(self) -> dict:
        raise Conflict(
            "an issue that is {status} cannot become {target}",
            fields={"status": [Text("must be one of {choices}", choices="a, b")]},
            status=Label("issue_status", "resolved"),
            target=Label("issue_status", "reported"),
        )


@pytest.fixture
def client(monkeypatch, tmp_path, token_keys):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'probe.db'}")
    monkeypatch.setenv("JWT_PUBLIC_KEY", token_keys[1])
    settings = load_settings("probe")
    # The issues service's catalogue holds the service's own messages, over the kit's.
    translations = messages.package_dir("linli_issues") / "translations"
    app = create_app(
        settings, Database(settings.database_url), title="probe", blueprints=[blp], translations=translations
    )
    return app.test_client()


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "zh"),
        ("", "zh"),
        ("zh-CN", "zh"),
        ("zh-Hans", "zh"),
        ("zh-Hans-CN,zh;q=0.9", "zh"),
        ("en", "en"),
        ("en-US", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("en-US,zh;q=0.1", "en"),
        ("zh;q=0.5,en;q=0.8", "en"),
        ("en;q=0.2,zh-CN;q=0.9", "zh"),
        ("fr-FR,de;q=0.8", "zh"),
        ("fr,en;q=0.5", "en"),
        ("en;q=0", "zh"),
        ("*", "zh"),
        ("not a header at all ;;;", "zh"),
    ],
    ids=lambda value: repr(value),
)
def test_the_language_is_negotiated_chinese_unless_english_is_preferred(header, language):
    assert i18n.negotiate(header) == language


def test_an_error_is_chinese_by_default_with_its_values_put_in(client):
    answer = client.get("/probe/things/42")
    assert answer.status_code == 404
    assert answer.headers["Content-Language"] == "zh-CN"
    assert "Accept-Language" in answer.headers["Vary"]
    error = answer.get_json()["error"]
    assert error["code"] == "not_found"
    assert error["message"] == "找不到议题 42"


def test_an_error_is_english_on_request(client):
    answer = client.get("/probe/things/42", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert answer.headers["Content-Language"] == "en"
    assert answer.get_json()["error"]["message"] == "issue 42 not found"


def test_a_status_inside_a_message_reads_as_its_label(client):
    zh = client.post("/probe/moves").get_json()["error"]
    assert zh["message"] == "状态为“已解决”的议题不能改为“已上报”"
    assert zh["fields"] == {"status": ["须为以下之一：a, b"]}
    en = client.post("/probe/moves", headers={"Accept-Language": "en"}).get_json()["error"]
    assert en["message"] == "an issue that is resolved cannot become reported"
    assert en["fields"] == {"status": ["must be one of a, b"]}
    assert zh["code"] == en["code"] == "conflict"


def test_marshmallow_messages_are_translated_field_by_field(client):
    body = {"count": "many", "kind": "c", "extra": 1}
    zh = client.post("/probe/things", json=body).get_json()["error"]
    assert zh["code"] == "validation_error"
    assert zh["message"] == "输入有误：count, extra, kind, title"
    assert zh["fields"] == {
        "title": ["缺少必填字段。"],
        "count": ["不是有效的整数。"],
        "kind": ["须为以下之一：a, b。"],
        "extra": ["未知字段。"],
    }
    en = client.post("/probe/things", json=body, headers={"Accept-Language": "en"}).get_json()["error"]
    assert en["message"] == "invalid input: count, extra, kind, title"
    assert en["fields"]["title"] == ["Missing data for required field."]
    assert en["fields"]["kind"] == ["Must be one of: a, b."]
    assert set(en["fields"]) == set(zh["fields"])


def test_a_formatted_marshmallow_message_is_read_back_to_its_id(client):
    zh = client.post("/probe/things", json={"title": "x" * 81}).get_json()["error"]
    assert zh["fields"] == {"title": ["长度须在 1 到 80 之间。"]}


def test_webargs_and_werkzeug_messages_are_translated(client):
    bad_json = client.post("/probe/things", data="{", content_type="application/json")
    assert bad_json.status_code == 400
    assert bad_json.get_json()["error"]["fields"] == {"json": ["请求体不是有效的 JSON。"]}
    unknown = client.get("/nowhere")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["message"].startswith("服务器上没有所请求的网址")
    assert (
        client.get("/nowhere", headers={"Accept-Language": "en"})
        .get_json()["error"]["message"]
        .startswith("The requested URL was not found")
    )


def test_labels_of_codes_in_both_languages(client):
    assert i18n.label("meeting_type", "bench", "zh") == "板凳会"
    assert i18n.label("meeting_type", "round_table", "en") == "Round-table meeting"
    assert i18n.label("issue_status", "deliberating", "zh") == "议事中"
    assert i18n.label("issue_status", "not-a-status", "zh") == "not-a-status"
    assert i18n.labels("tier", "zh") == {"compound": "小区", "community": "社区", "street": "街道", "city": "市"}


@pytest.mark.parametrize("package", messages.PACKAGES)
def test_every_message_of_the_source_has_a_chinese_translation(package):
    """Extract the messages from the package's source (as `linli-messages update` does) and compare
    with its Chinese catalogue: a message raised in the code without a translation fails here, and
    so does a message built so that it cannot be translated (an f-string, a concatenation)."""
    lacking, problems = messages.missing(package)
    assert not problems, "\n".join(f"{p.where}: {p.what}" for p in problems)
    assert not lacking, f"no Chinese in {messages.po_path(package)} for (run `linli-messages update {package}`):\n" + (
        "\n".join(lacking)
    )


@pytest.mark.parametrize("package", messages.PACKAGES)
def test_the_compiled_catalogue_is_the_po_file(package):
    """The `.mo` read at run time holds exactly the translations of the `.po` (compiled after the
    last edit)."""
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    po = messages.po_path(package)
    with po.open("rb") as f:
        source = {(m.context, m.id): m.string for m in read_po(f) if m.id and m.string and not m.fuzzy}
    with po.with_suffix(".mo").open("rb") as f:
        compiled = {(m.context, m.id): m.string for m in read_mo(f) if m.id}
    assert compiled == source
