"""The service as `make run` starts it (SQLite files, two gunicorn workers, one worker process),
busy with a big broadcast through a slow provider while residents and officials use the API."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import insert

from linli_kit.db import Database
from linli_kit.testing.platform import daytime_zone
from linli_kit.testing.waiting import eventually
from linli_notifications.adapters.tables import recipient_communities, recipients, replica, subjects

pytestmark = pytest.mark.integration

STREET, COMMUNITY = str(uuid.uuid4()), str(uuid.uuid4())
RESIDENTS = 3000
# Issues of the community, as its issue events made them known: what residents may follow.
ISSUES = [str(uuid.uuid4()) for _ in range(50)]


def seed(url: str, n: int) -> list[str]:
    """Residents of one community (with phones), and the community in the directory replica."""
    now = datetime.now(UTC)
    people = [str(uuid.UUID(int=i + 1)) for i in range(n)]
    database = Database(url)
    with database.transaction() as s:
        s.execute(insert(replica.streets).values(street_id=STREET, name="育才街道", revision=1))
        s.execute(insert(replica.communities).values(community_id=COMMUNITY, street_id=STREET, name="c", revision=1))
        s.execute(
            insert(recipients),
            [
                {
                    "user_id": p,
                    "role": "resident",
                    "display_name": "x",
                    "phone": f"+86139{i:08d}",
                    "locale": "zh-CN",
                    "active": True,
                    "revision": 1,
                    "updated_at": now,
                }
                for i, p in enumerate(people)
            ],
        )
        s.execute(
            insert(recipient_communities),
            [{"community_id": COMMUNITY, "user_id": p, "role": "resident"} for p in people],
        )
        s.execute(
            insert(subjects),
            [
                {
                    "subject_type": "issue",
                    "subject_id": issue_id,
                    "community_id": COMMUNITY,
                    "title": "x",
                    "status": "reported",
                    "revision": 1,
                    "member_ids": [],
                    "visibility": "community",
                }
                for issue_id in ISSUES
            ],
        )
    database.dispose()
    return people


def test_the_api_answers_promptly_while_the_worker_sends_a_big_broadcast(sqlite_platform, fakes, token_signer):
    fakes.clock = lambda: datetime.now(UTC)
    fakes.latency = 0.5  # every SendBatchSms takes half a second
    sqlite_platform.extra_env.update(
        {
            **fakes.env(),
            "SMS_PROVIDERS": "aliyun",
            "PUSH_PROVIDERS": "log",
            "LOG_JSON": "false",
            "LINLI_TIMEZONE": daytime_zone(),  # a broadcast is not urgent: quiet hours would hold it
        }
    )
    began = time.monotonic()
    sqlite_platform.command("notifications", "migrate")
    people = seed(sqlite_platform.database_url("notifications"), RESIDENTS)
    sqlite_platform.start_worker("notifications")
    web = sqlite_platform.start_web("notifications").url

    def bearer(user_id: str, **claims: object) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_signer.sign(user_id=user_id, **claims)}"}

    print(f"started in {time.monotonic() - began:.1f} s")
    staff = bearer(str(uuid.uuid4()), role="community_staff", community_ids=[COMMUNITY])
    official = bearer(str(uuid.uuid4()), role="street_official", street_id=STREET)
    created = requests.post(
        f"{web}/broadcasts",
        json={
            "community_id": COMMUNITY,
            "title": "停水通知",
            "body": "明日9:00-17:00停水，请提前储水。",
            "channels": ["sms"],
        },
        headers=staff,
        timeout=30,
    )
    assert created.status_code == 202, created.text
    broadcast = created.json()["id"]

    done = threading.Event()
    answers: list[tuple[str, int, float]] = []  # (what, status or 0 for no answer, seconds)
    lock = threading.Lock()

    def ask(session: requests.Session, what: str, method: str, path: str, headers: dict, **kwargs: object) -> None:
        started = time.monotonic()
        try:
            status = session.request(method, web + path, headers=headers, timeout=20, **kwargs).status_code
        except requests.RequestException:
            status = 0
        with lock:
            answers.append((what, status, time.monotonic() - started))

    def resident(user_id: str) -> None:
        me = bearer(user_id, role="resident", community_ids=[COMMUNITY])
        with requests.Session() as session:
            while not done.is_set():
                ask(session, "inbox", "GET", "/?page_size=20", me)
                ask(session, "unread", "GET", "/unread-count", me)
                ask(session, "preferences", "GET", "/preferences", me)
                ask(
                    session,
                    "set preferences",
                    "PUT",
                    "/preferences",
                    me,
                    json={"items": [{"category": "meeting", "channel": "sms", "enabled": False}]},
                )
                ask(session, "follows", "GET", "/follows", me)
                ask(
                    session,
                    "follow",
                    "POST",
                    "/follows",
                    me,
                    json={"target_type": "issue", "target_id": ISSUES[uuid.UUID(user_id).int % len(ISSUES)]},
                )
                ask(session, "missing notice", "GET", f"/{uuid.uuid4()}", me)

    def officer(headers: dict) -> None:
        with requests.Session() as session:
            while not done.is_set():
                ask(session, "broadcast", "GET", f"/broadcasts/{broadcast}", headers)
                ask(session, "deliveries", "GET", "/deliveries?page_size=20", headers)
                ask(session, "missing delivery", "GET", f"/deliveries/{uuid.uuid4()}", headers)
                ask(session, "missing broadcast", "GET", f"/broadcasts/{uuid.uuid4()}", headers)

    users = [threading.Thread(target=resident, args=(p,)) for p in people[:3]]
    users += [threading.Thread(target=officer, args=(h,)) for h in (staff, official)]
    for thread in users:
        thread.start()
    try:

        def all_sent() -> dict:
            report = requests.get(f"{web}/broadcasts/{broadcast}", headers=staff, timeout=30).json()
            return report.get("deliveries") == {"sent": RESIDENTS} and report

        began = time.monotonic()
        eventually(all_sent, timeout=240, interval=0.5, what="the broadcast handed to the provider")
        print(f"broadcast sent in {time.monotonic() - began:.1f} s")
    finally:
        done.set()
        for thread in users:
            thread.join(60)
    assert fakes.count("aliyun") >= RESIDENTS // 100  # it really went through the slow provider
    expected = {
        "inbox": 200,
        "unread": 200,
        "preferences": 200,
        "set preferences": 200,
        "follows": 200,
        "follow": 201,
        "missing notice": 404,
        "broadcast": 200,
        "deliveries": 200,
        "missing delivery": 404,
        "missing broadcast": 404,
    }
    wrong = Counter((what, status) for what, status, _ in answers if status != expected[what])
    slowest = max(seconds for _, _, seconds in answers)
    print(f"{len(answers)} requests during the broadcast; slowest {slowest:.2f} s")
    for name in expected:
        times = sorted(seconds for what, _, seconds in answers if what == name)
        print(f"  {name}: {len(times)}, median {times[len(times) // 2]:.3f} s, max {times[-1]:.3f} s")
    assert not wrong, f"unexpected answers (what, status): {dict(wrong)}; slowest {slowest:.2f} s"
    assert {what for what, _, _ in answers} == set(expected)


def test_the_local_platform_shows_a_sign_up_code_on_the_workers_output(sqlite_platform, amqp_url, bus_names):
    """`make run` sends SMS through the `log` provider: the person running it reads the code there."""
    import pika

    from linli_kit.events import new_event
    from linli_kit.events.topology import declare_exchanges

    worker = sqlite_platform.start_worker("notifications")
    code = f"{uuid.uuid4().int % 10**6:06d}"
    expires_at = (datetime.now(UTC) + timedelta(minutes=5, seconds=30)).isoformat()
    event = new_event(
        "accounts.code.requested",
        {"phone": "+8613612345678", "code": code, "purpose": "signup", "locale": "en", "expires_at": expires_at},
        producer="gateway",
    )
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        declare_exchanges(channel, bus_names)
        channel.confirm_delivery()
        channel.basic_publish(
            bus_names.exchange,
            event.type,
            event.to_json().encode(),
            pika.BasicProperties(message_id=event.id, type=event.type, delivery_mode=2),
        )
    finally:
        connection.close()
    line = f"SMS to 136****5678: [Linli] Your code is {code}, valid for 5 minutes."
    eventually(lambda: line in worker.log_path.read_text(errors="replace"), timeout=60, what="the code printed")
    assert "13612345678" not in worker.log_path.read_text(errors="replace")  # the number stays masked
