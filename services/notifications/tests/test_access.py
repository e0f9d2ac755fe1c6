"""Scope before state: a person follows only what they may read, and a notice reaches only those who
may read its subject, when it is planned and again when it is sent (issue 12). Real handlers on the
bus (PostgreSQL, RabbitMQ) and the HTTP API."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from linli_kit.testing.waiting import eventually
from linli_notifications.adapters.tables import deliveries, devices, follows, notifications
from linli_notifications.config import build_providers, load_config
from linli_notifications.service_layer.delivery import NO_LONGER_READABLE, Deliverer

pytestmark = pytest.mark.integration
TZ = "Asia/Shanghai"
STREET, OTHER_STREET = str(uuid.uuid4()), str(uuid.uuid4())
HOME, NEIGHBOUR, ELSEWHERE = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def ids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def wait(bus, event):
    eventually(lambda: bus.handled(event), what=f"{event.type} handled")


def directory(bus):
    for community, street, name in (
        (HOME, STREET, "育才街社区"),
        (NEIGHBOUR, STREET, "东门社区"),
        (ELSEWHERE, OTHER_STREET, "西关社区"),
    ):
        last = bus.publish(
            "directory.community.upserted",
            {"community_id": community, "street_id": street, "name": name, "revision": 1},
            producer="gateway",
        )
    wait(bus, last)


def person(bus, user_id, role="resident", community=HOME, street=STREET, revision=1, name="张三", **extra):
    event = bus.publish(
        "accounts.user.registered" if revision == 1 else "accounts.user.updated",
        {
            "user_id": user_id,
            "role": role,
            "display_name": name,
            "phone": "+8613800138000",
            "locale": "zh-CN",
            "street_id": street,
            "community_ids": [community] if community else [],
            "revision": revision,
            **extra,
        },
        producer="gateway",
    )
    wait(bus, event)


def issue(issue_id, reporter, revision, community=HOME, status="reported", **extra):
    return {
        "issue_id": issue_id,
        "community_id": community,
        "title": "三号楼独居老人需要帮助",
        "category": "elderly_vulnerable_support",
        "urgency": "normal",
        "status": status,
        "tier": "community",
        "reporter_id": reporter,
        "revision": revision,
        **extra,
    }


def meeting(meeting_id, community=HOME, participants=(), public=True, revision=1, starts=None):
    return {
        "meeting_id": meeting_id,
        "community_id": community,
        "meeting_type": "round_table",
        "title": "圆桌会",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "convener_id": str(uuid.uuid4()),
        "participant_ids": list(participants),
        "public": public,
        "revision": revision,
    }


def inbox(database, source_key):
    with database.session() as s:
        return set(s.scalars(select(notifications.c.user_id).where(notifications.c.source_key == source_key)))


def legacy_follow(database, user_id, target_type, target_id, clock):
    """A follow made before follows were checked (or before the follower moved away)."""
    with database.transaction() as s:
        s.execute(
            insert(follows).values(
                user_id=user_id, target_type=target_type, target_id=target_id, reason="followed", created_at=clock()
            )
        )


def test_following_an_issue_or_meeting_needs_the_right_to_read_it(bus, database, clock, app, auth):
    directory(bus)
    reporter, supporter, participant = ids(3)
    issue_id, private_id, other_street_issue = ids(3)
    public_meeting, private_meeting, far_meeting = ids(3)
    starts = clock() + timedelta(days=3)
    for event_type, data in (
        ("issues.issue.reported", issue(issue_id, reporter, 1)),
        ("issues.issue.reported", issue(private_id, reporter, 1, visibility="private")),
        ("issues.issue.supported", issue(private_id, reporter, 2, visibility="private", supporter_id=supporter)),
        ("issues.issue.reported", issue(other_street_issue, reporter, 1, community=ELSEWHERE)),
        ("meetings.meeting.scheduled", meeting(public_meeting, starts=starts)),
        (
            "meetings.meeting.scheduled",
            meeting(private_meeting, participants=[participant], public=False, starts=starts),
        ),
        ("meetings.meeting.scheduled", meeting(far_meeting, community=ELSEWHERE, starts=starts)),
    ):
        last = bus.publish(event_type, data)
    wait(bus, last)
    client = app.test_client()
    me = str(uuid.uuid4())
    resident = auth(me, community_ids=[HOME])

    def follow(target_type, target_id, headers):
        return client.post("/follows", json={"target_type": target_type, "target_id": target_id}, headers=headers)

    assert follow("issue", issue_id, resident).status_code == 201
    assert follow("meeting", public_meeting, resident).status_code == 201
    # Another street's issue, a private one, an unknown one, a private meeting, another street's
    # meeting: the same 404, whether it exists or not.
    unknown = str(uuid.uuid4())
    refused = [
        follow("issue", other_street_issue, resident),
        follow("issue", private_id, resident),
        follow("meeting", private_meeting, resident),
        follow("meeting", far_meeting, resident),
    ]
    nothing = follow("issue", unknown, resident)
    assert [r.status_code for r in refused] == [404] * 4
    assert nothing.status_code == 404
    assert {r.json["error"]["message"] for r in refused} == {nothing.json["error"]["message"]}
    # Those who may read them may follow them: a supporter of the private issue, a participant of
    # the private meeting, the street's official, the city admin; a bureau only what it handles.
    assert follow("issue", private_id, auth(supporter, community_ids=[HOME])).status_code == 201
    assert follow("meeting", private_meeting, auth(participant, community_ids=[HOME])).status_code == 201
    official = auth(str(uuid.uuid4()), role="street_official", street_id=STREET)
    assert follow("issue", private_id, official).status_code == 201
    assert follow("issue", other_street_issue, official).status_code == 404
    admin = auth(str(uuid.uuid4()), role="city_admin")
    assert follow("meeting", far_meeting, admin).status_code == 201
    assert follow("issue", issue_id, auth(str(uuid.uuid4()), role="agency")).status_code == 404
    with database.session() as s:
        mine = set(s.execute(select(follows.c.target_type, follows.c.target_id).where(follows.c.user_id == me)))
    assert mine == {("issue", issue_id), ("meeting", public_meeting)}


def test_notices_reach_only_those_who_may_read_the_subject(bus, database, clock):
    directory(bus)
    staff, reporter, supporter, neighbour, far_away, mover = ids(6)
    person(bus, staff, role="community_staff")
    for resident in (reporter, supporter, neighbour, mover):
        person(bus, resident)
    person(bus, far_away, community=ELSEWHERE, street=OTHER_STREET)
    issue_id = str(uuid.uuid4())
    wait(bus, bus.publish("issues.issue.reported", issue(issue_id, reporter, 1)))
    wait(bus, bus.publish("issues.issue.supported", issue(issue_id, reporter, 2, supporter_id=supporter)))
    # Follows made before they were checked: a resident of another street, two of the community.
    for follower in (far_away, neighbour, mover):
        legacy_follow(database, follower, "issue", issue_id, clock)

    accepted = bus.publish(
        "issues.issue.accepted", issue(issue_id, reporter, 3, status="accepted", from_status="reported")
    )
    wait(bus, accepted)
    assert inbox(database, accepted.id) == {reporter, supporter, neighbour, mover}  # not the other street's

    # One follower moves to another community: their old community's issue is no longer theirs.
    person(bus, mover, community=NEIGHBOUR, revision=2)
    deliberating = bus.publish(
        "issues.issue.status_changed", issue(issue_id, reporter, 4, status="deliberating", from_status="accepted")
    )
    wait(bus, deliberating)
    assert inbox(database, deliberating.id) == {reporter, supporter, neighbour}

    # Staff mark it private (a vulnerable person): from now on only its reporter and supporters
    # hear of it, and staff of its community; the community's other follower does not.
    private = bus.publish(
        "issues.issue.status_changed",
        issue(issue_id, reporter, 5, status="resolving", from_status="deliberating", visibility="private"),
    )
    wait(bus, private)
    assert inbox(database, private.id) == {reporter, supporter}
    escalated = bus.publish(
        "issues.issue.escalated",
        issue(issue_id, reporter, 6, status="resolving", tier="street", from_tier="community", visibility="private"),
    )
    wait(bus, escalated)
    assert inbox(database, f"{escalated.id}:followers") == {reporter, supporter}
    with database.session() as s:
        titles = s.execute(
            select(notifications.c.user_id, notifications.c.source_key).where(notifications.c.body.contains("独居老人"))
        ).all()
    # The title went only to who could read the issue at the time: never to the other street.
    assert {key for user_id, key in titles if user_id == mover} == {accepted.id}
    assert far_away not in {user_id for user_id, _ in titles}
    overdue = bus.publish(
        "issues.issue.overdue", issue(issue_id, reporter, 7, status="resolving", visibility="private")
    )
    wait(bus, overdue)
    assert inbox(database, overdue.id) == {staff}


def test_meeting_notices_and_issue_news_from_meetings_respect_who_may_read(bus, database, clock, app, auth):
    directory(bus)
    reporter, participant, follower = ids(3)
    for resident in (reporter, participant, follower):
        person(bus, resident)
    response = app.test_client().post(
        "/follows", json={"target_type": "community", "target_id": HOME}, headers=auth(follower, community_ids=[HOME])
    )
    assert response.status_code == 201
    issue_id, private_meeting = ids(2)
    starts = clock() + timedelta(days=3)
    wait(bus, bus.publish("issues.issue.reported", issue(issue_id, reporter, 1)))
    scheduled = bus.publish(
        "meetings.meeting.scheduled", meeting(private_meeting, participants=[participant], public=False, starts=starts)
    )
    wait(bus, scheduled)
    assert inbox(database, scheduled.id) == {participant}  # a community follower hears of public meetings only
    # The issue joins the private meeting's agenda: its reporter may read the issue, not the meeting.
    bus.publish(
        "meetings.agenda_item.added",
        {
            "meeting_id": private_meeting,
            "community_id": HOME,
            "meeting_type": "round_table",
            "title": "圆桌会",
            "starts_at": starts.isoformat(),
            "item_id": str(uuid.uuid4()),
            "issue_id": issue_id,
        },
    )
    decided = bus.publish(
        "meetings.decision.recorded",
        {
            "decision_id": str(uuid.uuid4()),
            "meeting_id": private_meeting,
            "community_id": HOME,
            "motion": "增设扶手",
            "outcome": "adopted",
            "rule": "simple majority",
            "votes_for": 5,
            "votes_against": 0,
            "abstentions": 0,
            "issue_ids": [issue_id],
            "issue_effect": "none",
            "participant_ids": [participant],
        },
    )
    wait(bus, decided)
    assert inbox(database, f"agenda:{private_meeting}:{issue_id}") == set()
    assert inbox(database, decided.id) == {participant}


def test_an_anonymous_reporter_is_never_shown_to_anyone_else(bus, database, clock):
    directory(bus)
    staff, reporter, supporter = ids(3)
    person(bus, staff, role="community_staff")
    person(bus, reporter, name="王秀英")
    person(bus, supporter)
    issue_id = str(uuid.uuid4())
    for event_type, data in (
        ("issues.issue.reported", issue(issue_id, reporter, 1, anonymous=True, urgency="urgent")),
        ("issues.issue.supported", issue(issue_id, reporter, 2, supporter_id=supporter)),
        ("issues.issue.accepted", issue(issue_id, reporter, 3, status="accepted", from_status="reported")),
    ):
        last = bus.publish(event_type, data)
    wait(bus, last)
    with database.session() as s:
        told = s.execute(
            select(notifications.c.user_id, notifications.c.title, notifications.c.body, notifications.c.params).where(
                notifications.c.subject_id == issue_id, notifications.c.user_id != reporter
            )
        ).all()
        planned = s.execute(select(deliveries.c.params).where(deliveries.c.user_id.in_([staff, supporter]))).all()
    assert {r.user_id for r in told} == {staff, supporter}
    for text in [f"{r.title} {r.body} {r.params}" for r in told] + [str(r.params) for r in planned]:
        assert reporter not in text and "王秀英" not in text
    with database.session() as s:
        anonymous = s.scalar(
            select(notifications.c.id).where(notifications.c.user_id == staff, notifications.c.kind == "issue.reported")
        )
    assert anonymous is not None


def test_a_notice_not_yet_sent_is_withheld_from_who_may_no_longer_read_it(bus, database, clock):
    directory(bus)
    reporter, supporter, neighbour = ids(3)
    for resident in (reporter, supporter, neighbour):
        person(bus, resident)
    with database.transaction() as s:
        for user_id in (reporter, supporter, neighbour):
            s.execute(
                devices.insert().values(
                    id=str(uuid.uuid4()),
                    user_id=user_id,
                    platform="android",
                    provider="jpush",
                    token=f"token-{user_id}",
                    created_at=clock(),
                    last_seen_at=clock(),
                )
            )
    issue_id = str(uuid.uuid4())
    wait(bus, bus.publish("issues.issue.reported", issue(issue_id, reporter, 1)))
    wait(bus, bus.publish("issues.issue.supported", issue(issue_id, reporter, 2, supporter_id=supporter)))
    legacy_follow(database, neighbour, "issue", issue_id, clock)
    accepted = bus.publish(
        "issues.issue.accepted", issue(issue_id, reporter, 3, status="accepted", from_status="reported")
    )
    wait(bus, accepted)
    assert inbox(database, accepted.id) == {reporter, supporter, neighbour}
    # Before the worker sends it, the issue is made private (the next change tells nobody new).
    private = bus.publish(
        "issues.issue.status_changed",
        issue(issue_id, reporter, 4, status="accepted", from_status="accepted", visibility="private"),
    )
    wait(bus, private)
    config = load_config({"SMS_PROVIDERS": "log", "PUSH_PROVIDERS": "log"})
    Deliverer(database, config, build_providers(config), clock=clock, city_timezone=TZ).drain()
    with database.session() as s:
        states = {
            r.user_id: (r.state, r.reason)
            for r in s.execute(
                select(deliveries.c.user_id, deliveries.c.state, deliveries.c.reason).where(
                    deliveries.c.batch_key == accepted.id
                )
            )
        }
    assert states == {
        reporter: ("sent", None),
        supporter: ("sent", None),
        neighbour: ("suppressed", NO_LONGER_READABLE),
    }
