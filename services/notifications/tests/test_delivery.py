"""The delivery stage against loopback providers that check requests as the real APIs do."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from linli_notifications.adapters.tables import attempts, deliveries, devices, messaging, receipts, recipients
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.handlers import Rules
from linli_notifications.service_layer.planning import plan

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"


def deliverer(database, clock, fakes, **env):
    return fakes.deliverer(database, clock, **{"PUSH_PROVIDERS": "jpush,fcm", **env})


def add_people(database, clock, n=1, phone_base=13800138000, with_device=None):
    people = []
    with database.transaction() as s:
        for i in range(n):
            user_id = str(uuid.uuid4())
            s.execute(
                recipients.insert().values(
                    user_id=user_id,
                    role="resident",
                    display_name="x",
                    phone=f"+86{phone_base + i}",
                    locale="zh-CN",
                    active=True,
                    revision=1,
                    updated_at=clock(),
                )
            )
            if with_device:
                s.execute(
                    devices.insert().values(
                        id=str(uuid.uuid4()),
                        user_id=user_id,
                        platform="android",
                        provider=with_device,
                        token=f"token-{user_id}",
                        created_at=clock(),
                        last_seen_at=clock(),
                    )
                )
            people.append(user_id)
    return people


def notify(database, clock, people, *, category=Category.REGISTRATION, urgent=False, source=None):
    intent = Intent(
        source_key=source or str(uuid.uuid4()),
        source_type="activities.registration.promoted",
        kind="registration.promoted",
        category=category,
        user_ids=tuple(people),
        params={"title": "亲子运动会", "when_at": "2026-11-30T01:00:00Z"},
        urgent=urgent,
        community_id=str(uuid.uuid4()),
    )
    with database.transaction() as s:
        plan(s, intent, clock(), TZ)
    return intent


def states(database, channel="sms"):
    with database.session() as s:
        return s.execute(select(deliveries).where(deliveries.c.channel == channel)).mappings().all()


def failed_events(database):
    with database.session() as s:
        return s.scalars(
            select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == "notifications.delivery.failed")
        ).all()


def test_aliyun_sends_signed_request_and_receipt_marks_delivered(database, clock, fakes, app):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes)
    assert d.drain() == 1
    [row] = states(database)
    assert (row["state"], row["provider"], row["attempts"], row["segments"]) == ("sent", "aliyun", 1, 1)
    [sent] = fakes.requests["aliyun"]
    assert sent["PhoneNumbers"] == "13800138000" and sent["TemplateCode"] == "SMS_460036"
    assert sent["OutId"] == row["id"] and sent["SignName"] == "邻里"
    with database.session() as s:
        [attempt] = s.execute(select(attempts)).mappings().all()
    assert attempt["outcome"] == "ok" and attempt["request_id"]

    client = app.test_client()
    report = [
        {
            "phone_number": "13800138000",
            "send_time": "2026-11-24 10:00:00",
            "report_time": "2026-11-24 10:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": row["provider_message_id"],
            "out_id": row["id"],
        }
    ]
    assert client.post("/receipts/aliyun/report", json=report).status_code == 401
    for _ in range(2):  # the provider retries its push: the second is a no-op
        response = client.post("/receipts/aliyun/report?token=callback-secret", json=report)
        assert response.json == {"code": 0, "msg": "成功"}
    [row] = states(database)
    assert row["state"] == "delivered"


def test_malformed_provider_callbacks_are_refused_naming_the_field(app):
    client = app.test_client()
    for body in ([1, 2], {"phone_number": "13800138000"}, [{"phone_number": "13800138000", "success": True}]):
        refused = client.post("/receipts/aliyun/report?token=callback-secret", json=body)
        assert refused.status_code == 422, (body, refused.json)
    long_number = [{"phone_number": "1" * 30, "content": "退订"}]
    refused = client.post("/receipts/aliyun/reply?token=callback-secret", json=long_number)
    assert refused.status_code == 422 and "0" in refused.json["error"]["fields"]
    report = [{"phone_number": "13800138000", "success": True, "biz_id": "1^0"}]
    assert client.post("/receipts/aliyun/report?token=秘密", json=report).status_code == 401
    missing = client.post("/receipts/twilio/status", data={"To": "+8613800138000"})
    assert missing.status_code == 422 and set(missing.json["error"]["fields"]) == {"MessageSid", "MessageStatus"}


def test_retryable_errors_back_off_then_give_up_with_an_event(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes, DELIVERY_MAX_ATTEMPTS="3", SMS_PER_PHONE_PER_MINUTE="100")
    busy = (500, {"Code": "isp.SYSTEM_ERROR", "Message": "isp.SYSTEM_ERROR", "RequestId": "R1"})
    fakes.script["aliyun"] = [busy, busy, busy]
    d.drain()
    [row] = states(database)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    first_wait = row["next_attempt_at"] - clock()
    assert timedelta(seconds=5) <= first_wait <= timedelta(seconds=10)
    assert d.drain() == 0  # not due yet: nothing is resent early
    clock.advance(seconds=11)
    d.drain()
    [row] = states(database)
    assert timedelta(seconds=10) <= row["next_attempt_at"] - clock() <= timedelta(seconds=20)
    clock.advance(seconds=21)
    d.drain()
    [row] = states(database)
    assert (row["state"], row["attempts"]) == ("failed", 3)
    assert fakes.count("aliyun") == 3
    [event] = failed_events(database)
    assert '"attempts":3' in event and '"providers_tried":["aliyun","aliyun","aliyun"]' in event


def test_permanent_error_is_not_retried(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    fakes.script["aliyun"] = [(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "R"})]
    deliverer(database, clock, fakes).drain()
    clock.advance(hours=2)
    deliverer(database, clock, fakes).drain()
    [row] = states(database)
    assert row["state"] == "failed" and "isv.MOBILE_NUMBER_ILLEGAL" in row["reason"]
    assert fakes.count("aliyun") == 1


def test_provider_error_falls_back_to_the_next_provider(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    fakes.script["aliyun"] = [(200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法", "RequestId": "R"})]
    deliverer(database, clock, fakes, SMS_PROVIDERS="aliyun,twilio", SMS_PER_PHONE_PER_MINUTE="5").drain()
    [row] = states(database)
    assert (row["state"], row["provider"], row["providers_tried"]) == ("sent", "twilio", ["aliyun", "twilio"])
    [sent] = fakes.requests["twilio"]
    assert sent["To"] == "+8613800138000" and sent["Body"].startswith("【邻里】好消息")


def test_unknown_outcome_is_checked_not_resent(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    fakes.script["aliyun"] = ["hang"]  # processed by the provider, but the answer never arrives in time
    d = deliverer(database, clock, fakes, SMS_PER_PHONE_PER_MINUTE="5")
    d.drain()
    [row] = states(database)
    assert (row["state"], row["outcome_unknown"]) == ("pending", True)
    clock.advance(minutes=1)
    d.drain()
    [row] = states(database)
    assert row["state"] == "sent" and fakes.count("aliyun") == 1 and fakes.count("aliyun_query") == 1


def test_crash_between_provider_call_and_record_sends_no_second_sms(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])

    class Crash(BaseException):
        pass

    def die(_claimed):
        raise Crash()

    crashing = deliverer(database, clock, fakes)
    crashing.after_send = die
    with pytest.raises(Crash):
        crashing.run_once()
    [row] = states(database)
    assert row["state"] == "sending"
    clock.advance(minutes=5)  # the lease runs out; another worker takes over
    deliverer(database, clock, fakes).drain()
    [row] = states(database)
    assert row["state"] == "sent"
    assert fakes.count("aliyun") == 1


def test_per_phone_limit_defers_instead_of_dropping(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes)
    d.drain()
    rows = sorted(states(database), key=lambda r: r["state"])
    assert [r["state"] for r in rows] == ["pending", "sent"]
    assert rows[0]["next_attempt_at"] == clock() + timedelta(minutes=1)
    clock.advance(minutes=1, seconds=1)
    d.drain()
    assert {r["state"] for r in states(database)} == {"sent"}


def test_push_through_jpush_and_fcm_prunes_unregistered_tokens(database, clock, fakes):
    jpush_people = add_people(database, clock, 3, with_device="jpush")
    fcm_people = add_people(database, clock, 2, phone_base=13900000000, with_device="fcm")
    fakes.unregistered.add(f"token-{fcm_people[0]}")
    intent = notify(database, clock, jpush_people + fcm_people, category=Category.ACTIVITY)
    deliverer(database, clock, fakes).drain()
    push = {r["user_id"]: r for r in states(database, "push")}
    assert len(fakes.requests["jpush"]) == 1  # one call for the three JPush devices
    assert sorted(fakes.requests["jpush"][0]["audience"]["registration_id"]) == sorted(
        f"token-{p}" for p in jpush_people
    )
    assert {push[p]["state"] for p in jpush_people} == {"sent"}
    assert push[fcm_people[1]]["state"] == "sent"
    assert push[fcm_people[0]]["state"] == "failed"
    assert len(fakes.requests["oauth"]) == 1  # the access token is reused
    with database.session() as s:
        pruned = s.execute(select(devices.c.user_id).where(devices.c.pruned_at.isnot(None))).scalars().all()
    assert pruned == [fcm_people[0]]
    assert intent.source_key


def test_quiet_hours_hold_messages_until_morning(database, clock, fakes, bus):
    [person] = add_people(database, clock)
    clock.now = clock.now.replace(hour=15)  # 23:00 in Shanghai
    rules = Rules(clock, TZ)
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes)
    assert d.drain() == 0 and fakes.count("aliyun") == 0
    clock.advance(hours=9)  # 08:00 in Shanghai
    d.drain()
    assert fakes.count("aliyun") == 1
    assert rules.tz == TZ


def test_a_retry_falling_due_at_night_waits_for_the_morning(database, clock, fakes):
    [person] = add_people(database, clock)
    clock.now = clock.now.replace(hour=13, minute=59)  # 21:59 in Shanghai: not quiet yet
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes, SMS_PER_PHONE_PER_MINUTE="100")
    busy = (500, {"Code": "isp.SYSTEM_ERROR", "Message": "isp.SYSTEM_ERROR", "RequestId": "R1"})
    fakes.script["aliyun"] = [busy]
    d.drain()
    [row] = states(database)
    assert (row["state"], row["attempts"]) == ("pending", 1) and row["next_attempt_at"] > clock()
    clock.advance(minutes=30)  # 22:29: the retry is due, but it is night where the resident lives
    code = plan_code_now(database, clock, "+8613900139000")
    d.drain()
    assert fakes.count("aliyun") == 2  # only the one-time code went, at once, whatever the hour
    [row] = [r for r in states(database) if r["key"] != code]
    morning = clock().replace(hour=0, minute=0) + timedelta(days=1)  # 08:00 in Shanghai
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, morning)
    clock.now = morning
    d.drain()
    [row] = [r for r in states(database) if r["key"] != code]
    assert (row["state"], row["attempts"]) == ("sent", 2) and fakes.count("aliyun") == 3


def test_a_fallback_provider_falling_due_at_night_waits_for_the_morning(database, clock, fakes):
    [person] = add_people(database, clock)
    clock.now = clock.now.replace(hour=13, minute=59, second=59)  # 21:59:59 in Shanghai
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes, SMS_PROVIDERS="aliyun,twilio", SMS_PER_PHONE_PER_MINUTE="5")
    fakes.script["aliyun"] = [(200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法", "RequestId": "R"})]
    # Aliyun answers; by the time the fallback is tried, quiet hours have begun.
    d.after_send = lambda _claims: clock.advance(minutes=2)
    d.drain()
    [row] = states(database)
    morning = clock().replace(hour=0, minute=0, second=0) + timedelta(days=1)  # 08:00 in Shanghai
    assert (row["state"], row["provider"], row["next_attempt_at"]) == ("pending", "twilio", morning)
    assert fakes.count("twilio") == 0
    # Meanwhile the resident moved the end of their quiet hours to 09:00: that is what counts.
    with database.transaction() as s:
        s.execute(recipients.update().values(quiet_end="09:00"))
    clock.now = morning
    d.after_send = None
    d.drain()
    [row] = states(database)
    assert (row["state"], row["next_attempt_at"]) == ("pending", morning + timedelta(hours=1))
    clock.advance(hours=1)
    d.drain()
    [row] = states(database)
    assert (row["state"], row["providers_tried"]) == ("sent", ["aliyun", "twilio"])
    assert fakes.count("twilio") == 1


def plan_code_now(database, clock, phone):
    from linli_notifications.service_layer.planning import plan_code

    source = str(uuid.uuid4())
    with database.transaction() as s:
        plan_code(
            s,
            source_key=source,
            phone=phone,
            locale="zh-CN",
            params={"code": "482913", "minutes": 5},
            expires_at=clock() + timedelta(minutes=5),
            now=clock(),
        )
    return f"{source}|{phone}|sms"


def test_stop_reply_opts_out_at_once(database, clock, fakes, app):
    from linli_notifications.adapters.providers.twilio import request_signature

    [person] = add_people(database, clock)
    notify(database, clock, [person])
    client = app.test_client()
    form = {"From": "+8613800138000", "Body": "STOP", "MessageSid": "SM1", "AccountSid": "AC1"}
    bad = client.post("/receipts/twilio/inbound", data=form, headers={"X-Twilio-Signature": "nope"})
    assert bad.status_code == 401
    signature = request_signature("twilio-test-token", "http://localhost/receipts/twilio/inbound", form)
    ok = client.post("/receipts/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200 and b"<Response>" in ok.data
    [row] = states(database)
    assert (row["state"], row["reason"]) == ("suppressed", "sms opt-out")
    notify(database, clock, [person])
    assert {r["state"] for r in states(database)} == {"suppressed"}
    notify(database, clock, [person], category=Category.SAFETY, urgent=True)
    assert sorted(r["state"] for r in states(database)) == ["pending", "suppressed", "suppressed"]


def test_twilio_status_callback_and_aliyun_unsubscribe_reply(database, clock, fakes, app):
    from linli_notifications.adapters.providers.twilio import request_signature

    first, second = add_people(database, clock, 2)
    notify(database, clock, [first, second])
    deliverer(database, clock, fakes, SMS_PROVIDERS="twilio").drain()
    sids = {m["To"]: m["_sid"] for m in fakes.requests["twilio"]}
    client = app.test_client()
    url = "http://localhost/receipts/twilio/status"
    for phone, status, error in (("+8613800138000", "delivered", ""), ("+8613800138001", "undelivered", "30003")):
        form = {
            "MessageSid": sids[phone],
            "MessageStatus": status,
            "To": phone,
            "ErrorCode": error,
            "AccountSid": "AC0",
        }
        headers = {"X-Twilio-Signature": request_signature("twilio-test-token", url, form)}
        for _ in range(2):
            assert client.post("/receipts/twilio/status", data=form, headers=headers).status_code == 204
    by_phone = {r["address"]: r for r in states(database)}
    assert by_phone["+8613800138000"]["state"] == "delivered"
    assert by_phone["+8613800138001"]["state"] == "failed"
    assert len(failed_events(database)) == 1  # the repeated callback announced nothing twice

    notify(database, clock, [first])
    reply = [
        {
            "phone_number": "13800138000",
            "send_time": "2026-11-24 10:05:00",
            "content": "退订",
            "sign_name": "邻里",
            "dest_code": "1234",
            "sequence_id": 1,
        }
    ]
    assert client.post("/receipts/aliyun/reply?token=wrong", json=reply).status_code == 401
    assert client.post("/receipts/aliyun/reply?token=callback-secret", json=reply).json["code"] == 0
    pending = [r for r in states(database) if r["address"] == "+8613800138000" and r["state"] != "delivered"]
    assert [(r["state"], r["reason"]) for r in pending] == [("suppressed", "sms opt-out")]


def test_provider_rate_limit_spreads_calls_over_time(database, clock, fakes):
    people = add_people(database, clock, 5)
    notify(database, clock, people)
    d = deliverer(database, clock, fakes, SMS_PROVIDERS="twilio", TWILIO_RATE_PER_SECOND="2")
    d.buckets["twilio"].clock = lambda: clock().timestamp()
    d.buckets["twilio"].updated = clock().timestamp()
    d.drain()
    assert fakes.count("twilio") == 2
    assert sorted(r["state"] for r in states(database)) == ["pending"] * 3 + ["sent"] * 2
    clock.advance(seconds=1)
    d.drain()
    assert fakes.count("twilio") == 4
    clock.advance(seconds=1)
    d.drain()
    assert fakes.count("twilio") == 5 and {r["state"] for r in states(database)} == {"sent"}


def test_twilio_unknown_outcome_is_found_by_listing_messages(database, clock, fakes):
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    fakes.script["twilio"] = ["hang"]
    d = deliverer(database, clock, fakes, SMS_PROVIDERS="twilio")
    d.drain()
    [row] = states(database)
    assert row["outcome_unknown"] is True
    # The fake only stores a sid when it answered; a hung request left none: the check finds
    # nothing and the message is sent (once) after the check.
    clock.advance(minutes=1)
    d.drain()
    [row] = states(database)
    assert row["state"] == "sent" and fakes.count("twilio") == 2


def test_urgent_messages_are_claimed_before_a_backlog(database, clock, fakes):
    backlog = add_people(database, clock, 5)
    notify(database, clock, backlog)
    clock.advance(seconds=30)
    [urgent_person] = add_people(database, clock, 1, phone_base=13700000000)
    notify(database, clock, [urgent_person], category=Category.SAFETY, urgent=True)
    d = deliverer(database, clock, fakes, DELIVERY_CLAIM_BATCH="1")
    d.run_once()
    [first] = fakes.requests["aliyun"]
    assert first["PhoneNumbers"] == "13700000000"


def test_two_delivery_loops_at_once_send_each_message_once(database, clock, fakes, threads):
    people = add_people(database, clock, 300)
    notify(database, clock, people)
    loops = [
        deliverer(
            database, clock, fakes, SMS_PROVIDERS="twilio", TWILIO_RATE_PER_SECOND="100000", DELIVERY_CLAIM_BATCH="20"
        )
        for _ in range(2)
    ]
    done = []

    def run(stop):
        done.append(loops[len(done) % 2].drain())

    threads(run)
    threads(run)
    from linli_kit.testing.waiting import eventually

    eventually(lambda: len(done) == 2 and {r["state"] for r in states(database)} == {"sent"}, timeout=60)
    sent_to = [m["To"] for m in fakes.requests["twilio"]]
    assert len(sent_to) == len(set(sent_to)) == 300


def test_devices_move_between_accounts_and_stale_ones_are_pruned(app, auth, database, clock):
    from linli_notifications.service_layer.recipient import prune_stale_devices

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    client = app.test_client()
    body = {"platform": "ios", "provider": "fcm", "token": "fcm-token-0001"}
    assert client.post("/devices", json=body, headers=auth(first)).status_code == 201
    assert client.post("/devices", json=body, headers=auth(second)).status_code == 201
    assert client.get("/devices", headers=auth(first)).json == []
    [device] = client.get("/devices", headers=auth(second)).json
    clock.advance(days=271)
    with database.transaction() as s:
        assert prune_stale_devices(s, clock()) == 1
    [device] = client.get("/devices", headers=auth(second)).json
    assert device["pruned_reason"] == "not seen for a long time"
    client.post("/devices", json=body, headers=auth(second))  # the app opens again: the token lives
    [device] = client.get("/devices", headers=auth(second)).json
    assert device["pruned_at"] is None


def test_a_reminder_held_by_quiet_hours_expires_when_its_meeting_starts(database, clock, fakes):
    [person] = add_people(database, clock)
    clock.now = clock.now.replace(hour=14, minute=30)  # 22:30 in Shanghai
    starts = clock() + timedelta(hours=1)
    intent = Intent(
        source_key="reminder:r1",
        source_type="reminder.hour_before",
        kind="meeting.reminder",
        category=Category.REMINDER,
        user_ids=(person,),
        expires_at=starts,
        params={"meeting": "板凳会", "when_at": starts.isoformat(), "place": "7号楼"},
        channels=frozenset({Channel.SMS}),
    )
    with database.transaction() as s:
        plan(s, intent, clock(), TZ)
    d = deliverer(database, clock, fakes)
    d.drain()
    clock.advance(hours=10)  # morning: the meeting is long over
    d.drain()
    [row] = states(database)
    assert (row["state"], row["reason"]) == ("expired", "too late")
    assert fakes.count("aliyun") == 0


def test_unknown_outcome_of_a_batch_is_checked_not_resent(database, clock, fakes):
    people = add_people(database, clock, 3)
    notify(database, clock, people)
    fakes.script["aliyun"] = ["hang"]
    d = deliverer(database, clock, fakes)
    d.drain()
    [batch] = fakes.requests["aliyun"]
    assert batch["Action"] == "SendBatchSms" and batch["OutId"] == "linli-batch"
    assert {r["outcome_unknown"] for r in states(database)} == {True}
    clock.advance(minutes=1)
    d.drain()
    assert {r["state"] for r in states(database)} == {"sent"}
    assert fakes.count("aliyun") == 1 and fakes.count("aliyun_query") == 3


def test_overlapping_rounds_still_keep_the_per_phone_limit(database, clock, fakes):
    # drain() claims and checks the next batch while the previous one is still being recorded: the
    # SMS of a batch not recorded yet must count against the number's cap all the same.
    [person] = add_people(database, clock)
    notify(database, clock, [person])
    notify(database, clock, [person])
    d = deliverer(database, clock, fakes, DELIVERY_CLAIM_BATCH="1")
    checked = []
    second_checked = threading.Event()
    check = d._apply_phone_limits

    def counting_check(claimed, now):
        deferred = check(claimed, now)
        checked.append(deferred)
        if len(checked) == 2:
            second_checked.set()
        return deferred

    def hold_first_record(_ready):
        # The first batch is recorded only once the second one has been checked.
        second_checked.wait(10)

    d._apply_phone_limits = counting_check
    d.after_send = hold_first_record
    d.drain()
    assert second_checked.is_set() and checked[1]  # the second was held back while the first was in flight
    rows = sorted(states(database), key=lambda r: r["state"])
    assert [r["state"] for r in rows] == ["pending", "sent"]
    assert rows[0]["next_attempt_at"] == clock() + timedelta(minutes=1)
    assert fakes.count("aliyun") == 1


def test_provider_rate_counts_calls_and_a_batch_is_one_call(database, clock, fakes):
    people = add_people(database, clock, 150)
    notify(database, clock, people)
    d = deliverer(database, clock, fakes, ALIYUN_RATE_PER_SECOND="1")
    d.buckets["aliyun"].clock = lambda: clock().timestamp()
    d.buckets["aliyun"].updated = clock().timestamp()
    d.drain()
    [batch] = fakes.requests["aliyun"]
    assert batch["Action"] == "SendBatchSms" and len(json.loads(batch["PhoneNumberJson"])) == 100
    assert sorted(r["state"] for r in states(database)) == ["pending"] * 50 + ["sent"] * 100
    clock.advance(seconds=1)
    d.drain()
    assert fakes.count("aliyun") == 2 and {r["state"] for r in states(database)} == {"sent"}
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(attempts)) == 150


def test_jpush_receipts_are_polled_and_mark_whole_messages_delivered_once(database, clock, fakes):
    from linli_notifications.service_layer.receipts import poll_jpush_receipts

    together = add_people(database, clock, 3, with_device="jpush")
    notify(database, clock, together, category=Category.ACTIVITY)  # one JPush message, three devices
    [alone] = add_people(database, clock, 1, phone_base=13600000000, with_device="jpush")
    notify(database, clock, [alone], category=Category.ACTIVITY)
    [missed] = add_people(database, clock, 1, phone_base=13500000000, with_device="jpush")
    notify(database, clock, [missed], category=Category.ACTIVITY)
    fakes.jpush_not_received.add(f"token-{missed}")
    d = deliverer(database, clock, fakes)
    d.drain()
    assert fakes.count("jpush") == 3 and {r["state"] for r in states(database, "push")} == {"sent"}

    fakes.jpush_not_received.add(f"token-{together[0]}")  # so far only two of the three got it
    clock.advance(minutes=5)
    assert poll_jpush_receipts(database, d.providers["jpush"], clock()) == 1
    push = {r["user_id"]: r["state"] for r in states(database, "push")}
    assert push == {**dict.fromkeys(together, "sent"), alone: "delivered", missed: "sent"}
    [query] = fakes.requests["jpush_report"]
    assert len(query.split("%2C")) == 3  # the three messages, in one call

    fakes.jpush_not_received.discard(f"token-{together[0]}")  # the third device comes online
    assert poll_jpush_receipts(database, d.providers["jpush"], clock()) == 3
    assert poll_jpush_receipts(database, d.providers["jpush"], clock()) == 0  # nothing changes twice
    push = {r["user_id"]: r["state"] for r in states(database, "push")}
    assert push == {**dict.fromkeys(together, "delivered"), alone: "delivered", missed: "sent"}
    with database.session() as s:
        stored = s.execute(select(receipts.c.provider, receipts.c.status)).all()
    assert sorted(stored) == [("jpush", "delivered")] * 2

    fakes.script["jpush_report"] = [(500, {"error": {"code": 1000, "message": "Server error"}})]
    assert poll_jpush_receipts(database, d.providers["jpush"], clock()) == 0  # asked again next time
    fakes.jpush_not_received.clear()
    clock.advance(days=1, seconds=1)  # older than a day: no longer asked about
    before = fakes.count("jpush_report")
    assert poll_jpush_receipts(database, d.providers["jpush"], clock()) == 0
    assert fakes.count("jpush_report") == before
    assert {r["user_id"]: r["state"] for r in states(database, "push")}[missed] == "sent"


def test_jpush_report_api_checks_credentials(fakes):
    from linli_notifications.adapters.providers.jpush import JPush, ReportFailed

    wrong = JPush("jpush-app-key", "wrong-secret", report_endpoint=fakes.env()["JPUSH_REPORT_ENDPOINT"])
    with pytest.raises(ReportFailed, match="1004"):
        wrong.received(["123"])
