"""The embedded default: migrations, planning and delivery on a SQLite file with the log provider."""

import uuid
from datetime import datetime

from sqlalchemy import insert, select

from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_notifications.adapters.tables import (
    deliveries,
    notifications,
    recipient_communities,
    recipients,
    replica,
    subjects,
)
from linli_notifications.config import build_providers, load_config
from linli_notifications.definition import definition
from linli_notifications.domain.model import Category, Intent
from linli_notifications.service_layer.broadcasts import plan_broadcasts
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.planning import plan


def test_sqlite_plans_once_and_delivers_through_the_log_provider(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade(definition.migrations_dir, url)
    db = Database(url)
    user_id = str(uuid.uuid4())
    with db.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=user_id,
                role="resident",
                display_name="x",
                phone="+8613800138000",
                locale="en",
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
    intent = Intent(
        source_key="e1",
        source_type="t",
        kind="issue.progress",
        category=Category.SAFETY,
        user_ids=(user_id,),
        params={"title": "Roof of Building 7", "status": "resolved"},
        urgent=True,
    )
    for _ in range(2):
        with db.transaction() as s:
            plan(s, intent, clock(), "Asia/Shanghai")
    config = load_config({})
    Deliverer(db, config, build_providers(config), clock=clock, city_timezone="Asia/Shanghai").drain()
    with db.session() as s:
        rows = s.execute(select(deliveries.c.channel, deliveries.c.state, deliveries.c.provider)).all()
    assert sorted(tuple(r) for r in rows) == [("push", "suppressed", None), ("sms", "sent", "log:sms")]
    db.dispose()


STREET, OTHER_STREET = str(uuid.uuid4()), str(uuid.uuid4())
COMMUNITY, OTHER_COMMUNITY = str(uuid.uuid4()), str(uuid.uuid4())


def _with_offset(value: str) -> bool:
    return datetime.fromisoformat(value).utcoffset() is not None


def test_street_official_reads_deliveries_and_broadcasts_of_the_street_on_sqlite(
    sqlite_app, sqlite_database, auth, clock
):
    db = sqlite_database
    residents = [str(uuid.uuid4()) for _ in range(3)]
    with db.transaction() as s:
        s.execute(insert(replica.communities).values(community_id=COMMUNITY, street_id=STREET, name="c", revision=1))
        s.execute(
            insert(replica.communities).values(
                community_id=OTHER_COMMUNITY, street_id=OTHER_STREET, name="o", revision=1
            )
        )
        for i, person in enumerate(residents):
            s.execute(
                recipients.insert().values(
                    user_id=person,
                    role="resident",
                    display_name="x",
                    phone=f"+86138001380{i:02d}",
                    locale="zh-CN",
                    active=True,
                    revision=1,
                    updated_at=clock(),
                )
            )
            s.execute(recipient_communities.insert().values(community_id=COMMUNITY, user_id=person, role="resident"))
    client = sqlite_app.test_client()
    official = auth(str(uuid.uuid4()), role="street_official", street_id=STREET)
    stranger = auth(str(uuid.uuid4()), role="street_official", street_id=OTHER_STREET)
    notice = {"community_id": COMMUNITY, "title": "停水通知", "body": "明日停水。", "channels": ["sms"]}
    created = client.post("/broadcasts", json=notice, headers=official)
    assert created.status_code == 202, created.json
    assert client.post("/broadcasts", json=notice, headers=stranger).status_code == 403
    config = load_config({})
    deliverer = Deliverer(db, config, build_providers(config), clock=clock, city_timezone="Asia/Shanghai")
    # With the deliverer, as the worker's broadcast timer plans: on SQLite nothing is claimed as it
    # is planned (the rows are built one by one), and the delivery loop claims and sends them.
    assert plan_broadcasts(db, clock, "Asia/Shanghai", deliverer) == 3
    with db.session() as s:
        assert set(s.scalars(select(deliveries.c.state))) == {"pending"}
    deliverer.drain()

    broadcast = client.get(f"/broadcasts/{created.json['id']}", headers=official)
    assert broadcast.status_code == 200, broadcast.json
    assert broadcast.json["deliveries"] == {"sent": 3} and _with_offset(broadcast.json["planned_at"])
    listed = client.get("/deliveries?page_size=10", headers=official)
    assert listed.status_code == 200 and len(listed.json) == 3
    one = client.get(f"/deliveries/{listed.json[0]['id']}", headers=official)
    assert one.status_code == 200, one.json
    assert all(_with_offset(one.json[k]) for k in ("created_at", "sent_at", "next_attempt_at"))
    assert _with_offset(one.json["attempt_log"][0]["started_at"])
    # Another street's official finds neither.
    assert client.get(f"/deliveries/{one.json['id']}", headers=stranger).status_code == 404
    assert client.get(f"/broadcasts/{created.json['id']}", headers=stranger).status_code == 404
    assert client.get("/deliveries", headers=stranger).json == []
    stats = client.get("/stats", headers=official)
    assert stats.status_code == 200 and stats.json["totals"]["sent"] == 3


def test_every_time_the_api_returns_carries_its_offset_on_sqlite(sqlite_app, sqlite_database, auth, clock):
    me = str(uuid.uuid4())
    with sqlite_database.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=me,
                role="resident",
                display_name="x",
                phone="+8613800138000",
                locale="en",
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
        intent = Intent(
            source_key="e1",
            source_type="t",
            kind="issue.progress",
            category=Category.ISSUE_PROGRESS,
            user_ids=(me,),
            params={"title": "Roof of Building 7", "status": "resolved"},
        )
        plan(s, intent, clock(), "Asia/Shanghai")
        followed = str(uuid.uuid4())  # an issue of the caller's community, known from its events
        s.execute(
            subjects.insert().values(
                subject_type="issue",
                subject_id=followed,
                community_id=COMMUNITY,
                title="Roof of Building 7",
                status="resolved",
                revision=1,
                member_ids=[],
                visibility="community",
            )
        )
    client = sqlite_app.test_client()
    headers = auth(me, community_ids=[COMMUNITY])
    assert client.post(
        "/devices", json={"platform": "ios", "provider": "jpush", "token": "0123456789"}, headers=headers
    )
    assert (
        client.post("/follows", json={"target_type": "issue", "target_id": followed}, headers=headers).status_code
        == 201
    )
    [notice] = client.get("/", headers=headers).json
    read = client.post(f"/{notice['id']}/read", headers=headers).json
    again = client.get(f"/{notice['id']}", headers=headers).json
    [device] = client.get("/devices", headers=headers).json
    [follow] = client.get("/follows", headers=headers).json
    times = [
        notice["created_at"],
        read["read_at"],
        again["created_at"],
        again["read_at"],
        device["created_at"],
        device["last_seen_at"],
        follow["created_at"],
    ]
    assert all(_with_offset(t) for t in times), times
    assert datetime.fromisoformat(again["created_at"]) == clock()


def test_issue_notices_on_sqlite_tell_each_change_once(sqlite_database, clock):
    """The real handlers on SQLite (its upsert of what each person knows): six consultations, one
    'deliberating' notice."""
    from linli_kit.config import load_settings
    from linli_kit.events import new_event
    from linli_notifications.definition import handlers

    db = sqlite_database
    reporter, issue_id = str(uuid.uuid4()), str(uuid.uuid4())
    rules = handlers(load_settings("notifications"), db, clock)
    snapshot = {
        "issue_id": issue_id,
        "community_id": COMMUNITY,
        "title": "屋顶漏水",
        "category": "repair",
        "urgency": "normal",
        "tier": "community",
        "reporter_id": reporter,
    }

    def handle(event_type, **data):
        event = new_event(event_type, {**snapshot, **data}, producer="issues")
        with db.transaction() as s:
            rules[event_type].handle(s, [event])

    with db.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=reporter,
                role="resident",
                display_name="x",
                phone="+8613800138000",
                locale="zh-CN",
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
    handle("issues.issue.reported", status="reported", revision=1)
    handle("issues.issue.accepted", status="accepted", from_status="reported", revision=2)
    handle("issues.issue.status_changed", status="deliberating", from_status="accepted", revision=3)
    for revision in range(4, 9):
        handle("issues.issue.status_changed", status="deliberating", from_status="deliberating", revision=revision)
    handle("issues.issue.status_changed", status="deliberating", from_status="accepted", revision=9)
    with db.session() as s:
        told = s.execute(select(notifications.c.params).where(notifications.c.user_id == reporter)).scalars().all()
    assert sorted(p["status"] for p in told) == ["accepted", "deliberating"]
