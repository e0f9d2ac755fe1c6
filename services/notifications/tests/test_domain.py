"""The domain core without a database: quiet hours, preferences, suppression, templates, back-off."""

from datetime import UTC, datetime, timedelta
from random import Random

import pytest

from linli_kit.errors import Invalid
from linli_notifications.adapters.providers.aliyun import sign
from linli_notifications.domain.model import Category, Channel, DeliveryState, Intent, Recipient
from linli_notifications.domain.policy import plan_for, quiet_until, retry_delay
from linli_notifications.domain.templates import render, sms_segments


def resident(**kw):
    return Recipient(user_id="u1", role="resident", phone="+8613800138000", has_devices=True, **kw)


def intent(**kw):
    base = dict(
        source_key="e1",
        source_type="t",
        kind="meeting.scheduled",
        category=Category.MEETING,
        user_ids=("u1",),
        params={"meeting": "圆桌会", "when_at": "2026-11-30T11:30:00Z", "place": "驿站"},
    )
    base.update(kw)
    return Intent(**base)


def at_shanghai(hour, minute=0):
    return datetime(2026, 11, 24, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_quiet_hours_across_midnight_end_at_eight_local_time():
    assert quiet_until(at_shanghai(21, 59), resident()) is None
    assert quiet_until(at_shanghai(22, 0), resident()) == at_shanghai(8) + timedelta(days=1)
    assert quiet_until(at_shanghai(3, 0), resident()) == at_shanghai(8)
    assert quiet_until(at_shanghai(8, 0), resident()) is None


def test_quiet_hours_follow_the_recipients_time_zone():
    london = resident(timezone="Europe/London")
    # 23:30 UTC is 23:30 in London (winter) but 07:30 in Shanghai.
    moment = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert quiet_until(moment, london) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert quiet_until(moment, resident()) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def test_quiet_hours_defer_and_urgent_bypasses():
    night = at_shanghai(23)
    plan = plan_for(intent(), resident(), {}, night)
    assert {d.channel for d in plan.deliveries} == {Channel.SMS, Channel.PUSH}
    assert all(
        d.state == DeliveryState.PENDING and d.not_before == at_shanghai(8) + timedelta(days=1) for d in plan.deliveries
    )
    urgent = plan_for(intent(urgent=True, category=Category.SAFETY), resident(), {}, night)
    assert all(d.not_before == night for d in urgent.deliveries)


def test_preferences_override_defaults_but_not_safety():
    off = {("meeting", "sms"): False, ("activity", "sms"): True}
    assert {d.channel for d in plan_for(intent(), resident(), off, at_shanghai(10)).deliveries} == {Channel.PUSH}
    activity = intent(category=Category.ACTIVITY)
    assert {d.channel for d in plan_for(activity, resident(), off, at_shanghai(10)).deliveries} == {
        Channel.SMS,
        Channel.PUSH,
    }
    safety = intent(category=Category.SAFETY, urgent=True)
    all_off = {("safety", "sms"): False, ("safety", "push"): False}
    assert len(plan_for(safety, resident(), all_off, at_shanghai(10)).deliveries) == 2


def test_suppressions_are_kept_with_their_reason():
    person = Recipient(user_id="u1", role="resident", phone=None, has_devices=False)
    reasons = {d.channel: (d.state, d.reason) for d in plan_for(intent(), person, {}, at_shanghai(10)).deliveries}
    assert reasons == {
        Channel.SMS: (DeliveryState.SUPPRESSED, "no phone number"),
        Channel.PUSH: (DeliveryState.SUPPRESSED, "no registered device"),
    }
    opted = resident(sms_opted_out=True)
    sms = [d for d in plan_for(intent(), opted, {}, at_shanghai(10)).deliveries if d.channel == Channel.SMS][0]
    assert (sms.state, sms.reason) == (DeliveryState.SUPPRESSED, "sms opt-out")
    urgent = [
        d for d in plan_for(intent(urgent=True), opted, {}, at_shanghai(10)).deliveries if d.channel == Channel.SMS
    ][0]
    assert urgent.state == DeliveryState.PENDING


def test_reminder_planned_after_the_start_is_expired():
    late = intent(expires_at=at_shanghai(9))
    assert all(d.state == DeliveryState.EXPIRED for d in plan_for(late, resident(), {}, at_shanghai(10)).deliveries)


def test_templates_render_in_both_locales_and_check_parameters():
    zh = render("meeting.scheduled", "zh-CN", intent().params)
    assert zh.body == "圆桌会定于11月30日19:30在驿站召开，欢迎参加。"
    assert zh.sms_text.startswith("【邻里】") and zh.sms_template_code == "SMS_460020"
    en = render("meeting.scheduled", "en", intent().params)
    assert en.body == "圆桌会 will be held on 30 Nov 19:30 at 驿站."
    with pytest.raises(Invalid) as missing:
        render("meeting.scheduled", "en", {"meeting": "x"})
    assert set(missing.value.fields) == {"when", "place"}
    with pytest.raises(Invalid) as long:
        render("issue.progress", "en", {"title": "x" * 36, "status": "accepted"})
    assert set(long.value.fields) == {"title"}


def test_sms_segments_count_gsm_and_ucs2():
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("邻" * 70) == 1
    assert sms_segments("邻" * 71) == 2
    assert sms_segments("邻" * 135) == 3


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap():
    rng = Random(7)
    delays = [retry_delay(n, first=30, cap=600, rng=rng) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(600, 30 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 3) for d in delays}) == len(delays)


def test_aliyun_signature_matches_the_documented_example():
    # The worked example of Alibaba Cloud's SMS signature documentation.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sign("GET", params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_log_provider_shows_codes_only_where_no_sms_can_really_go_out():
    import io

    from linli_notifications.adapters.providers.base import OutboundMessage
    from linli_notifications.adapters.providers.log import mask
    from linli_notifications.config import build_providers, load_config

    def message(kind, text):
        return OutboundMessage(
            delivery_id="d1",
            channel=Channel.SMS,
            address="+8613612345678",
            locale="zh-CN",
            title="t",
            body=text,
            sms_text=text,
            template_code="SMS_1",
            template_params={},
            data={"kind": kind},
        )

    local = build_providers(load_config({}))["log:sms"]
    local.output = io.StringIO()
    local.send([message("account.code", "【邻里】您的验证码是482913"), message("meeting.scheduled", "会议通知")])
    assert local.output.getvalue() == "SMS to 136****5678: 【邻里】您的验证码是482913\n"
    env = {"SMS_PROVIDERS": "twilio,log", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}
    fallback = build_providers(load_config({**env, "TWILIO_FROM_NUMBER": "+15005550006"}))["log:sms"]
    fallback.output = io.StringIO()
    fallback.send([message("account.code", "【邻里】您的验证码是482913")])
    assert fallback.output.getvalue() == ""  # a deployment's logs never carry a code
    assert mask("13612345678") == "136****5678" and mask("+15005550006") == "+15*****0006"
