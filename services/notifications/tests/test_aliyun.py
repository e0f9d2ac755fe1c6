"""Alibaba Cloud for real (issue 12): the account's own template codes and signatures come from the
configuration, checked at start; what Alibaba Cloud would refuse fails here too (the loopback fake
refuses as it does), and a broadcast it cannot carry is refused when written."""

import json
import uuid

import pytest
from sqlalchemy import select

from linli_kit.config import ConfigError
from linli_notifications.adapters.providers.base import OutboundMessage
from linli_notifications.adapters.tables import attempts, deliveries, recipients
from linli_notifications.config import build_providers, load_aliyun_templates, load_config
from linli_notifications.definition import definition
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.domain.templates import LOCALES, TEMPLATES, sms_variables
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.planning import plan

TZ = "Asia/Shanghai"


def test_every_sms_template_has_the_same_variables_in_every_language():
    # A language without a template of its own is sent with the zh-CN one: same variables.
    for kind in TEMPLATES:
        assert {tuple(sms_variables(kind, locale)) for locale in LOCALES} == {tuple(sms_variables(kind))}, kind


def test_the_test_account_applied_for_what_the_code_sends(aliyun_account):
    # The fake's approved templates are the README's list: one per kind, with these variables.
    approved = {k: v[2] for k, v in aliyun_account.approved.items()}
    assert {kind: set(sms_variables(kind)) for kind in TEMPLATES} == approved


@pytest.fixture
def only_zh(aliyun_account):
    return {kind: zh for kind, (zh, _, _) in aliyun_account.approved.items()}


@pytest.fixture
def aliyun_env(aliyun_account):
    def values(**changes):
        return _aliyun_env(aliyun_account.setting(), **changes)

    return values


def _aliyun_env(setting, **changes):
    env = {
        "SMS_PROVIDERS": "aliyun",
        "ALIYUN_ACCESS_KEY_ID": "key",
        "ALIYUN_ACCESS_KEY_SECRET": "secret",
        "ALIYUN_SMS_SIGN_NAME": "邻里",
        "ALIYUN_SMS_TEMPLATES": setting,
        **changes,
    }
    return {k: v for k, v in env.items() if v is not None}


def test_template_codes_and_signatures_come_from_configuration_and_are_checked(tmp_path, aliyun_env, only_zh):
    templates = load_aliyun_templates(load_config(aliyun_env(ALIYUN_SMS_SIGN_NAME_EN="Linli")))
    assert templates.code("meeting.scheduled", "zh-CN") == "SMS_460020"
    assert templates.code("meeting.scheduled", "en") == "SMS_461020"
    assert (templates.sign_name("zh-CN"), templates.sign_name("en")) == ("邻里", "Linli")
    # From a file, one code for every language: en falls back to it, and to the default signature.
    path = tmp_path / "aliyun-templates.json"
    path.write_text(json.dumps(only_zh), encoding="utf-8")
    from_file = load_aliyun_templates(load_config(aliyun_env(ALIYUN_SMS_TEMPLATES=str(path))))
    assert from_file.code("issue.progress", "en") == "SMS_460011" and from_file.sign_name("en") == "邻里"

    def refused(**changes):
        with pytest.raises(ConfigError) as error:
            build_providers(load_config(aliyun_env(**changes)))
        return str(error.value)

    assert "ALIYUN_SMS_TEMPLATES must be set" in refused(ALIYUN_SMS_TEMPLATES=None)
    without = {k: v for k, v in only_zh.items() if k not in ("broadcast.notice", "issue.overdue")}
    assert "no zh-CN template for broadcast.notice, issue.overdue" in refused(ALIYUN_SMS_TEMPLATES=json.dumps(without))
    assert "unknown kind 'meeting.sheduled'" in refused(
        ALIYUN_SMS_TEMPLATES=json.dumps({**only_zh, "meeting.sheduled": "SMS_1"})
    )
    assert "not a template code" in refused(ALIYUN_SMS_TEMPLATES=json.dumps({**only_zh, "issue.progress": "460011"}))
    assert "cannot read" in refused(ALIYUN_SMS_TEMPLATES=str(tmp_path / "missing.json"))
    assert "ALIYUN_SMS_SIGN_NAME must be set" in refused(ALIYUN_SMS_SIGN_NAME=None)
    # Without Alibaba Cloud nothing of it is needed.
    assert build_providers(load_config({"SMS_PROVIDERS": "log"}))


def test_check_config_and_the_worker_refuse_to_start_without_a_template(
    monkeypatch, tmp_path, capsys, aliyun_env, only_zh
):
    from linli_kit.service import service_main

    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    without = {kind: code for kind, code in only_zh.items() if kind != "booking.confirmed"}
    for name, value in aliyun_env(ALIYUN_SMS_TEMPLATES=json.dumps(without)).items():
        monkeypatch.setenv(name, value)
    assert service_main(definition, ["check-config"]) == 2
    assert "no zh-CN template for booking.confirmed" in capsys.readouterr().err
    settings = definition.settings()
    with pytest.raises(SystemExit) as exited:
        definition.timers(settings, None)
    assert exited.value.code == 2
    assert "no zh-CN template for booking.confirmed" in capsys.readouterr().err


def person(database, clock, locale="zh-CN"):
    user_id = str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=user_id,
                role="resident",
                display_name="x",
                phone=f"+86138{uuid.uuid4().int % 10**8:08d}",
                locale=locale,
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
    return user_id


def tell(database, clock, people, kind="registration.promoted", params=None):
    intent = Intent(
        source_key=str(uuid.uuid4()),
        source_type="test",
        kind=kind,
        category=Category.REGISTRATION,
        user_ids=tuple(people),
        params=params or {"title": "亲子运动会", "when_at": "2026-11-30T01:00:00Z"},
        community_id=str(uuid.uuid4()),
        channels=frozenset({Channel.SMS}),
    )
    with database.transaction() as s:
        plan(s, intent, clock(), TZ)
    return intent


def drain(database, clock, fakes, **env):
    config = load_config({**fakes.env(), "SMS_PROVIDERS": "aliyun", "SMS_PER_PHONE_PER_MINUTE": "9", **env})
    Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ).drain()


def outcomes(database, source_key):
    with database.session() as s:
        return s.execute(
            select(deliveries.c.state, deliveries.c.reason, attempts.c.error_code)
            .join(attempts, attempts.c.delivery_id == deliveries.c.id, isouter=True)
            .where(deliveries.c.batch_key == source_key)
        ).all()


@pytest.mark.integration
def test_each_language_gets_its_own_template_and_signature(database, clock, fakes):
    zh, en = person(database, clock), person(database, clock, locale="en")
    sent = tell(database, clock, [zh, en])
    drain(database, clock, fakes)
    assert {r.state for r in outcomes(database, sent.source_key)} == {"sent"}
    calls = {(p["TemplateCode"], p["SignName"]) for p in fakes.requests["aliyun"]}
    assert calls == {("SMS_460036", "邻里"), ("SMS_461036", "Linli")}


@pytest.mark.integration
def test_what_alibaba_cloud_refuses_fails_here_too(database, clock, fakes, aliyun_account):
    # A code the account never had approved, a signature it does not own: refused by the fake as
    # by Alibaba Cloud (and then tried with the next provider, here none).
    wrong_code = json.loads(aliyun_account.setting())
    wrong_code["registration.promoted"] = {"zh-CN": "SMS_999999"}
    first = tell(database, clock, [person(database, clock)])
    drain(database, clock, fakes, ALIYUN_SMS_TEMPLATES=json.dumps(wrong_code))
    [(state, reason, code)] = outcomes(database, first.source_key)
    assert (state, code) == ("failed", "isv.SMS_TEMPLATE_ILLEGAL")
    second = tell(database, clock, [person(database, clock)])
    drain(database, clock, fakes, ALIYUN_SMS_SIGN_NAME="未报备签名")
    [(state, reason, code)] = outcomes(database, second.source_key)
    assert (state, code) == ("failed", "isv.SMS_SIGNATURE_ILLEGAL")


@pytest.mark.integration
def test_the_fake_refuses_long_unknown_and_missing_parameters_as_alibaba_cloud_does(fakes):
    provider = build_providers(load_config({**fakes.env(), "SMS_PROVIDERS": "aliyun"}))["aliyun"]

    def sent_as_is(params, kind="issue.progress"):
        message = OutboundMessage(
            delivery_id=str(uuid.uuid4()),
            channel=Channel.SMS,
            address="+8613800138000",
            locale="zh-CN",
            title="t",
            body="b",
            sms_text="s",
            kind=kind,
            template_params=params,
        )
        # Past the adapter's own check, straight to the (fake) API.
        [result] = provider._send([message])
        return result.error_code

    assert sent_as_is({"title": "屋顶漏水", "status": "已受理"}) is None
    assert sent_as_is({"title": "屋" * 36, "status": "已受理"}) == "isv.PARAM_LENGTH_LIMIT"
    assert sent_as_is({"title": "屋顶漏水", "status": "已受理", "tz": "Asia/Shanghai"}) == "isv.SMS_TEMPLATE_ILLEGAL"
    assert sent_as_is({"title": "屋顶漏水"}) == "isv.TEMPLATE_MISSING_PARAMETERS"
    assert sent_as_is({"code": "12ab56", "minutes": "5"}, kind="account.code") == "isv.TEMPLATE_PARAMS_ILLEGAL"


@pytest.mark.integration
def test_a_message_alibaba_cloud_cannot_carry_is_not_sent_there_but_by_the_next_provider(database, clock, fakes):
    # A broadcast written when only Twilio sent SMS, sent after Alibaba Cloud was put first.
    body = "三号楼明天停水，" * 6
    long = tell(
        database,
        clock,
        [person(database, clock)],
        kind="broadcast.notice",
        params={"title": "停水通知", "body": body},
    )
    drain(database, clock, fakes, SMS_PROVIDERS="aliyun,twilio")
    with database.session() as s:
        row = s.execute(select(deliveries).where(deliveries.c.batch_key == long.source_key)).mappings().one()
        [refused] = (
            s.execute(select(attempts).where(attempts.c.delivery_id == row["id"], attempts.c.provider == "aliyun"))
            .mappings()
            .all()
        )
    assert (row["state"], row["providers_tried"]) == ("sent", ["aliyun", "twilio"])
    assert refused["error_code"] == "isv.PARAM_LENGTH_LIMIT" and "body" in refused["error_message"]
    assert fakes.count("aliyun") == 0  # refused before the call: nothing charged, nothing refused there
    assert body in fakes.requests["twilio"][0]["Body"]


@pytest.mark.integration
def test_a_broadcast_alibaba_cloud_cannot_carry_is_refused_when_written(env, database, clock, fakes, auth):
    from linli_notifications.entrypoints.web import create_app

    app = create_app(clock=clock, config=load_config({**fakes.env(), "SMS_PROVIDERS": "aliyun"}))
    client = app.test_client()
    community = str(uuid.uuid4())
    staff = auth(str(uuid.uuid4()), role="community_staff", community_ids=[community])
    notice = {"community_id": community, "title": "停水通知", "body": "明天8:00至18:00三号楼停水，请提前储水。" * 2}
    refused = client.post("/broadcasts", json=notice, headers=staff)
    assert refused.status_code == 422 and "body" in refused.json["error"]["fields"]
    assert client.post("/broadcasts", json={**notice, "channels": ["push"]}, headers=staff).status_code == 202
    short = {**notice, "body": "明天8:00至18:00三号楼停水，请提前储水。"}
    assert client.post("/broadcasts", json=short, headers=staff).status_code == 202
    # Without Alibaba Cloud (Twilio carries free text) the long one goes by SMS as well.
    twilio = create_app(clock=clock, config=load_config({**fakes.env(), "SMS_PROVIDERS": "twilio"}))
    assert twilio.test_client().post("/broadcasts", json=notice, headers=staff).status_code == 202


def test_the_example_configuration_names_every_kind(aliyun_env):
    # The file an operator copies and fills in with the codes the console gave (README).
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "aliyun-templates.example.json"
    templates = load_aliyun_templates(load_config(aliyun_env(ALIYUN_SMS_TEMPLATES=str(example))))
    assert set(templates.codes) == set(TEMPLATES)
