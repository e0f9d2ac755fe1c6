"""The HTTP API: inbox, devices, preferences, scope, errors, broadcasts (20,000 recipients)."""

import json
import uuid

import pytest
from sqlalchemy import func, insert, select

from linli_notifications.adapters.tables import (
    deliveries,
    notifications,
    recipient_communities,
    recipients,
    replica,
    subjects,
)
from linli_notifications.config import build_providers, load_config
from linli_notifications.domain.model import Category, Intent
from linli_notifications.entrypoints.api import NotificationSchema
from linli_notifications.service_layer import recipient
from linli_notifications.service_layer.broadcasts import plan_broadcasts
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.planning import plan

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
COMMUNITY, OTHER, STREET = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def residents(database, clock, n, community=COMMUNITY, role="resident"):
    people = [str(uuid.UUID(int=i + 1 + (0 if community == COMMUNITY else 10**9))) for i in range(n)]
    with database.transaction() as s:
        s.execute(
            insert(recipients),
            [
                {
                    "user_id": p,
                    "role": role,
                    "display_name": "x",
                    "phone": f"+86139{i:08d}",
                    "locale": "zh-CN",
                    "active": True,
                    "revision": 1,
                    "updated_at": clock(),
                }
                for i, p in enumerate(people)
            ],
        )
        s.execute(
            insert(recipient_communities), [{"community_id": community, "user_id": p, "role": role} for p in people]
        )
    return people


def known_issue(database, issue_id, community=COMMUNITY, visibility="community", reporter=None, members=()):
    """An issue as the issue events made it known to this service."""
    with database.transaction() as s:
        s.execute(
            insert(subjects).values(
                subject_type="issue",
                subject_id=issue_id,
                community_id=community,
                title="文化墙有安全隐患",
                status="reported",
                revision=1,
                member_ids=list(members),
                visibility=visibility,
                reporter_id=reporter or str(uuid.uuid4()),
            )
        )
    return issue_id


def test_inbox_lists_marks_read_and_counts_unread(app, auth, database, clock):
    me, other = residents(database, clock, 2)
    with database.transaction() as s:
        for n in range(3):
            plan(
                s,
                Intent(
                    source_key=f"e{n}",
                    source_type="t",
                    kind="issue.progress",
                    category=Category.ISSUE_PROGRESS,
                    user_ids=(me, other),
                    params={"title": f"议题{n}", "status": "accepted"},
                ),
                clock(),
                TZ,
            )
    client = app.test_client()
    headers = auth(me, community_ids=[COMMUNITY])
    assert client.get("/").status_code == 401
    listed = client.get("/?page_size=2", headers=headers)
    assert listed.status_code == 200 and len(listed.json) == 2
    assert '"total": 3' in listed.headers["X-Pagination"] or '"total":3' in listed.headers["X-Pagination"]
    assert listed.json[0]["body"] == "您关注的议题“议题0”状态更新为：已受理" or listed.json[0]["title"] == "议题进展"
    assert client.get("/unread-count", headers=headers).json == {"count": 3}
    first = listed.json[0]["id"]
    read = client.post(f"/{first}/read", headers=headers)
    assert read.status_code == 200 and read.json["read_at"]
    assert client.get("/unread-count", headers=headers).json == {"count": 2}
    assert len(client.get("/?unread=true", headers=headers).json) == 2
    # Someone else's notification does not exist for me.
    with database.session() as s:
        theirs = s.scalar(select(notifications.c.id).where(notifications.c.user_id == other))
    assert client.post(f"/{theirs}/read", headers=headers).status_code == 404
    assert client.get(f"/{uuid.uuid4()}", headers=headers).status_code == 404
    # The page is what the schema that documents it would dump, read and unread rows alike.
    page = client.get("/?page_size=10", headers=headers)
    with database.session() as s:
        rows = s.execute(
            select(*recipient.INBOX_COLUMNS)
            .where(notifications.c.user_id == me)
            .order_by(notifications.c.created_at.desc(), notifications.c.id)
        ).mappings()
        expected = NotificationSchema(many=True).dump([dict(r) for r in rows])
    assert page.json == json.loads(json.dumps(expected)) and any(r["read_at"] for r in page.json)
    assert client.post("/read-all", headers=headers).json == {"count": 2}


def test_devices_and_preferences_validate_and_persist(app, auth, database, clock):
    [me] = residents(database, clock, 1)
    client = app.test_client()
    headers = auth(me, community_ids=[COMMUNITY])
    bad = client.post("/devices", json={"platform": "nokia", "provider": "jpush"}, headers=headers)
    assert bad.status_code == 422 and set(bad.json["error"]["fields"]) == {"platform", "token"}
    device = client.post(
        "/devices", json={"platform": "android", "provider": "jpush", "token": "1a0018970a"}, headers=headers
    )
    assert device.status_code == 201
    assert [d["token"] for d in client.get("/devices", headers=headers).json] == ["1a0018970a"]

    prefs = client.get("/preferences", headers=headers).json
    assert prefs["quiet_hours"] == {"start": "22:00", "end": "08:00"} and prefs["timezone"] == TZ
    refused = client.put(
        "/preferences", json={"items": [{"category": "safety", "channel": "sms", "enabled": False}]}, headers=headers
    )
    assert refused.status_code == 422 and "items.0" in refused.json["error"]["fields"]
    bad_hours = client.put("/preferences", json={"quiet_hours": {"start": "25:00", "end": "07:00"}}, headers=headers)
    assert bad_hours.status_code == 422
    saved = client.put(
        "/preferences",
        json={
            "quiet_hours": {"start": "23:00", "end": "07:00"},
            "items": [{"category": "meeting", "channel": "sms", "enabled": False}],
        },
        headers=headers,
    )
    assert saved.status_code == 200
    meeting_sms = [i for i in saved.json["items"] if (i["category"], i["channel"]) == ("meeting", "sms")][0]
    assert meeting_sms["enabled"] is False and saved.json["quiet_hours"]["start"] == "23:00"
    assert client.delete(f"/devices/{device.json['id']}", headers=headers).status_code == 204


def test_broadcast_to_20000_residents_accounts_for_every_delivery(app, auth, database, clock, fakes):
    people = residents(database, clock, 20_000)
    residents(database, clock, 5, community=OTHER)
    with database.transaction() as s:
        s.execute(insert(replica.communities).values(community_id=COMMUNITY, street_id=STREET, name="c", revision=1))
    client = app.test_client()
    staff = auth(str(uuid.uuid4()), role="community_staff", community_ids=[COMMUNITY])
    body = {
        "community_id": COMMUNITY,
        "title": "停水通知",
        "body": "明日9:00-17:00停水，请提前储水。",
        "channels": ["sms"],
    }
    assert client.post("/broadcasts", json={**body, "community_id": OTHER}, headers=staff).status_code == 403
    assert client.post("/broadcasts", json=body, headers=auth(people[0], community_ids=[COMMUNITY])).status_code == 403
    created = client.post("/broadcasts", json=body, headers=staff)
    assert created.status_code == 202, created.json

    assert plan_broadcasts(database, clock, TZ) == 20_000
    assert plan_broadcasts(database, clock, TZ) == 0  # planned once, whatever happens next
    config = load_config(
        {**fakes.env(), "SMS_PROVIDERS": "aliyun", "DELIVERY_CLAIM_BATCH": "5000", "ALIYUN_RATE_PER_SECOND": "1000000"}
    )
    Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ).drain()

    report = client.get(f"/broadcasts/{created.json['id']}", headers=staff).json
    assert report["state"] == "planned" and report["planned_count"] == 20_000
    assert report["deliveries"] == {"sent": 20_000}
    calls = fakes.requests["aliyun"]
    assert len(calls) == 200 and all(c["Action"] == "SendBatchSms" for c in calls)
    phones = [p for c in calls for p in __import__("json").loads(c["PhoneNumberJson"])]
    assert len(phones) == len(set(phones)) == 20_000
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(deliveries).where(deliveries.c.community_id == OTHER)) == 0

    stats = client.get(f"/stats?community_id={COMMUNITY}", headers=staff)
    assert stats.status_code == 200, stats.json
    assert stats.json["totals"]["sent"] == 20_000 and stats.json["totals"]["sms"] == 20_000
    assert stats.json["monthly"] == [{"month": "2026-11", **stats.json["totals"]}]
    official = auth(str(uuid.uuid4()), role="street_official", street_id=STREET)
    assert client.get(f"/stats?street_id={STREET}", headers=official).json["by_community"][0]["sent"] == 20_000
    per_street = client.get(f"/stats?street_id={STREET}&by=street", headers=official).json
    assert per_street["by_community"] == [] and per_street["by_street"] == [
        {"street_id": STREET, **stats.json["totals"]}
    ]
    assert client.get(f"/stats?street_id={STREET}&by=compound", headers=official).status_code == 422
    assert client.get(f"/stats?street_id={uuid.uuid4()}", headers=official).status_code == 403
    listed = client.get("/deliveries?state=sent&page_size=5", headers=staff)
    assert listed.status_code == 200 and len(listed.json) == 5 and "address" not in listed.json[0]


def test_openapi_document_lists_the_api_and_probes_answer(app):
    client = app.test_client()
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json["paths"]
    for path in (
        "/",
        "/{notification_id}/read",
        "/unread-count",
        "/devices",
        "/preferences",
        "/follows",
        "/broadcasts",
        "/deliveries",
        "/stats",
        "/receipts/twilio/status",
    ):
        assert path in paths, path
    assert client.get("/healthz").json == {"status": "ok"}
    assert b'linli_http_requests_total{endpoint="/healthz"' in client.get("/metrics").data


def test_stats_take_the_platforms_period_and_refuse_dates_out_of_range(app, auth, database, clock):
    official = auth(str(uuid.uuid4()), role="street_official", street_id=STREET)
    client = app.test_client()
    default = client.get("/stats", headers=official)
    assert default.status_code == 200, default.json
    # The twelve calendar months ending with the current one (the clock says 2026-11-24).
    assert default.json["period"] == {"from": "2025-12-01", "to": "2026-11-24"}
    assert default.json["totals"] == dict.fromkeys(
        ("planned", "sent", "delivered", "failed", "suppressed", "sms", "push"), 0
    )
    far = client.get("/stats?to=0001-01-01", headers=official)
    assert far.status_code == 422 and set(far.json["error"]["fields"]) == {"to"}
    backwards = client.get("/stats?from=2026-11-02&to=2026-11-01", headers=official)
    assert backwards.status_code == 422 and set(backwards.json["error"]["fields"]) == {"from"}
    assert client.get("/stats", headers=auth(str(uuid.uuid4()))).status_code == 403
    documented = client.get("/openapi.json").json["paths"]["/stats"]["get"]["responses"]["200"]
    assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/StatsOut"}


def test_text_with_a_nul_character_is_refused_not_a_server_error(app, auth, database, clock):
    [me] = residents(database, clock, 1)
    client = app.test_client()
    staff = auth(str(uuid.uuid4()), role="community_staff", community_ids=[COMMUNITY])
    notice = {"community_id": COMMUNITY, "title": "停水\x00通知", "body": "明日停水"}
    refused = client.post("/broadcasts", json=notice, headers=staff)
    assert refused.status_code == 422 and set(refused.json["error"]["fields"]) == {"title"}
    headers = auth(me, community_ids=[COMMUNITY])
    device = {"platform": "ios", "provider": "fcm", "token": "abcdefgh\x00"}
    assert client.post("/devices", json=device, headers=headers).status_code == 422
    assert client.put("/preferences", json={"timezone": "Asia/\x00"}, headers=headers).status_code == 422
    assert client.delete(f"/follows/%00/{uuid.uuid4()}", headers=headers).status_code == 404
    form = {"MessageSid": "SM\x00", "MessageStatus": "delivered"}
    assert client.post("/receipts/twilio/status", data=form).status_code == 422


def test_every_list_is_paginated_within_the_kits_bounds(app, auth, database, clock):
    [me] = residents(database, clock, 1)
    client = app.test_client()
    headers = auth(me, community_ids=[COMMUNITY])
    for n in range(3):
        issue = {"target_type": "issue", "target_id": known_issue(database, str(uuid.UUID(int=n + 1)))}
        assert client.post("/follows", json=issue, headers=headers).status_code == 201
        device = {"platform": "android", "provider": "jpush", "token": f"token-{n:04d}"}
        assert client.post("/devices", json=device, headers=headers).status_code == 201
    for path in ("/follows", "/devices"):
        first = client.get(f"{path}?page_size=2", headers=headers)
        second = client.get(f"{path}?page_size=2&page=2", headers=headers)
        assert first.status_code == second.status_code == 200
        assert '"total": 3' in first.headers["X-Pagination"] or '"total":3' in first.headers["X-Pagination"]
        assert len(first.json) == 2 and len(second.json) == 1
    staff = auth(str(uuid.uuid4()), role="community_staff", community_ids=[COMMUNITY])
    for path, who in (("/", headers), ("/follows", headers), ("/devices", headers), ("/deliveries", staff)):
        too_far = client.get(f"{path}?page=100001", headers=who)
        assert too_far.status_code == 422 and "page" in too_far.json["error"]["fields"], path
