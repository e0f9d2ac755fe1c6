"""A broadcast planned with the worker's deliverer (PostgreSQL): each chunk's deliveries due now are
written already claimed (`sending`, leased) and handed to the deliverer once the chunk commits.
Nothing may be lost or sent twice when the provider, the process or the database fails meanwhile."""

import json
import uuid

import pytest
from sqlalchemy import func, insert, select

from linli_notifications.adapters.tables import (
    attempts,
    broadcasts,
    deliveries,
    recipient_communities,
    recipients,
    sms_opt_outs,
)
from linli_notifications.service_layer import broadcasts as broadcast_module
from linli_notifications.service_layer.broadcasts import plan_broadcasts
from linli_notifications.service_layer.delivery import Deliverer

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
COMMUNITY = str(uuid.uuid4())


def deliverer(database, clock, fakes, **env) -> Deliverer:
    return fakes.deliverer(database, clock, **{"ALIYUN_RATE_PER_SECOND": "1000000", **env})


def residents(database, clock, n: int, *, night_zone: int = 0, opted_out: int = 0) -> list[str]:
    """`n` residents of COMMUNITY; the first `night_zone` live where it is night now (quiet hours),
    the next `opted_out` replied STOP."""
    people = sorted(str(uuid.uuid4()) for _ in range(n))
    with database.transaction() as s:
        s.execute(
            insert(recipients),
            [
                {
                    "user_id": p,
                    "role": "resident",
                    "display_name": "x",
                    "phone": f"+86139{i:08d}",
                    "locale": "zh-CN",
                    "timezone": "Europe/London" if i < night_zone else None,
                    "active": True,
                    "revision": 1,
                    "updated_at": clock(),
                }
                for i, p in enumerate(people)
            ],
        )
        members = [{"community_id": COMMUNITY, "user_id": p, "role": "resident"} for p in people]
        s.execute(insert(recipient_communities), members)
        for i in range(night_zone, night_zone + opted_out):
            s.execute(insert(sms_opt_outs).values(phone=f"+86139{i:08d}", provider="aliyun", opted_out_at=clock()))
    return people


def broadcast(database, clock) -> str:
    broadcast_id = str(uuid.uuid4())
    with database.transaction() as s:
        s.execute(
            insert(broadcasts).values(
                id=broadcast_id,
                community_id=COMMUNITY,
                author_id=str(uuid.uuid4()),
                title="停水通知",
                body="明日9:00-17:00停水，请提前储水。",
                urgent=False,
                channels=["sms"],
                state="planning",
                planned_count=0,
                created_at=clock(),
            )
        )
    return broadcast_id


def by_state(database) -> dict[str, int]:
    with database.session() as s:
        return dict(s.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state)).all())


def numbers_accepted(fakes) -> list[str]:
    """Every number the provider accepted (a scripted failure accepted none)."""
    return [
        p
        for call in fakes.requests["aliyun"]
        if "_biz_id" in call
        for p in json.loads(call.get("PhoneNumberJson", "[]")) or [call.get("PhoneNumbers")]
    ]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(broadcast_module, "CHUNK", 100)


def test_chunks_are_claimed_as_planned_and_each_number_gets_one_sms(database, clock, fakes, small_chunks):
    people = residents(database, clock, 450, night_zone=3, opted_out=2)
    broadcast(database, clock)
    d = deliverer(database, clock, fakes)
    claims = []
    original = d._claim
    d._claim = lambda now: claims.append(now) or original(now)

    assert plan_broadcasts(database, clock, TZ, d) == 450

    # Sent by the planner's hand-over, not claimed by the delivery loop; the night's wait for morning.
    assert claims == []
    assert by_state(database) == {"sent": 445, "pending": 3, "suppressed": 2}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 445
    with database.session() as s:
        sent = s.execute(select(deliveries).where(deliveries.c.state == "sent")).mappings().all()
        assert s.scalar(select(func.count()).select_from(attempts)) == 445
        night = s.execute(select(deliveries).where(deliveries.c.state == "pending")).mappings().all()
    assert all(r["lease_until"] is None and r["attempts"] == 1 and r["provider"] == "aliyun" for r in sent)
    assert {r["user_id"] for r in night} == set(people[:3]) and all(r["next_attempt_at"] > clock() for r in night)
    assert d.drain() == 0  # nothing left due now: nothing is sent twice
    assert plan_broadcasts(database, clock, TZ, d) == 0


def test_a_provider_failure_of_a_handed_chunk_is_retried_not_lost(database, clock, fakes, small_chunks):
    residents(database, clock, 250)
    broadcast(database, clock)
    busy = (500, {"Code": "isp.SYSTEM_ERROR", "Message": "isp.SYSTEM_ERROR", "RequestId": "R1"})
    fakes.script["aliyun"] = [busy]  # the first call of the first chunk fails
    d = deliverer(database, clock, fakes)
    assert plan_broadcasts(database, clock, TZ, d) == 250
    assert by_state(database) == {"sent": 150, "pending": 100}
    clock.advance(seconds=11)
    d.drain()
    assert by_state(database) == {"sent": 250}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 250


def test_a_crash_after_the_provider_answered_sends_no_second_sms(database, clock, fakes, small_chunks):
    residents(database, clock, 150)
    broadcast(database, clock)

    class Crash(BaseException):
        pass

    def die(_claimed):
        raise Crash()

    crashing = deliverer(database, clock, fakes)
    crashing.after_send = die
    with pytest.raises(Crash):
        plan_broadcasts(database, clock, TZ, crashing)
    assert by_state(database) == {"sending": 150}  # both chunks handed over and sent, neither recorded
    d = deliverer(database, clock, fakes)
    assert d.drain() == 0  # leased: no other loop takes them meanwhile
    clock.advance(minutes=5)  # the leases run out; another worker takes over
    d.drain()
    assert plan_broadcasts(database, clock, TZ, d) == 0  # the crashed planner's chunks were committed
    assert by_state(database) == {"sent": 150}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 150
    assert fakes.count("aliyun_query") == 150  # every number whose record was lost is asked about, not resent


def test_a_crash_before_the_hand_over_leaves_the_chunk_to_its_lease(database, clock, fakes, small_chunks):
    residents(database, clock, 120)
    broadcast(database, clock)

    class Crash(BaseException):
        pass

    def die(_rows):
        raise Crash()

    crashing = deliverer(database, clock, fakes)
    crashing.hand_over = die
    with pytest.raises(Crash):
        plan_broadcasts(database, clock, TZ, crashing)
    assert by_state(database) == {"sending": 100}
    d = deliverer(database, clock, fakes)
    assert d.drain() == 0  # leased: no other loop takes them meanwhile
    clock.advance(minutes=5)
    d.drain()
    assert plan_broadcasts(database, clock, TZ, d) == 20
    assert by_state(database) == {"sent": 120}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 120


def test_a_chunk_whose_transaction_fails_is_neither_sent_nor_lost(database, clock, fakes, small_chunks, monkeypatch):
    residents(database, clock, 150)
    broadcast(database, clock)
    real = broadcast_module.prepare_claimed_plan
    calls = []

    def failing_second_chunk(*args, **kwargs):
        count, write, claimed = real(*args, **kwargs)
        calls.append(len(claimed))
        if len(calls) != 2:
            return count, write, claimed

        def write_then_fail(session):
            write(session)
            raise ConnectionError("the database went away before the commit")

        return count, write_then_fail, claimed

    monkeypatch.setattr(broadcast_module, "prepare_claimed_plan", failing_second_chunk)
    d = deliverer(database, clock, fakes)
    with pytest.raises(ConnectionError):
        plan_broadcasts(database, clock, TZ, d)
    assert by_state(database) == {"sent": 100}  # the second chunk rolled back, and was not handed over
    assert plan_broadcasts(database, clock, TZ, d) == 50
    assert by_state(database) == {"sent": 150}
    accepted = numbers_accepted(fakes)
    assert len(accepted) == len(set(accepted)) == 150
