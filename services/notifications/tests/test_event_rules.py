"""Every rule from a real event on the bus (PostgreSQL, RabbitMQ): who is told what, once."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli_kit.testing.waiting import eventually
from linli_notifications.adapters.tables import deliveries, notifications, reminders

pytestmark = pytest.mark.integration

STREET, COMMUNITY = str(uuid.uuid4()), str(uuid.uuid4())


def ids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def user(bus, user_id, role="resident", phone="+8613800138000", community=COMMUNITY, revision=1, **extra):
    return bus.publish(
        "accounts.user.registered",
        {
            "user_id": user_id,
            "role": role,
            "display_name": "张三",
            "phone": phone,
            "locale": extra.get("locale", "zh-CN"),
            "street_id": STREET,
            "community_ids": [community] if community else [],
            "revision": revision,
        },
        producer="gateway",
    )


def wait(bus, event):
    eventually(lambda: bus.handled(event), what=f"{event.type} handled")


def told(database, source_key):
    with database.session() as s:
        rows = s.execute(
            select(deliveries.c.user_id, deliveries.c.channel, deliveries.c.state).where(
                deliveries.c.key.like(f"{source_key}%")
            )
        ).all()
    return {(r.user_id, r.channel): r.state for r in rows}


def inbox(database, source_key):
    with database.session() as s:
        return set(s.scalars(select(notifications.c.user_id).where(notifications.c.source_key == source_key)))


def issue(issue_id, reporter, revision, status="reported", urgency="normal", tier="community", **extra):
    return {
        "issue_id": issue_id,
        "community_id": COMMUNITY,
        "title": "文化墙有安全隐患",
        "category": "safety",
        "urgency": urgency,
        "status": status,
        "tier": tier,
        "reporter_id": reporter,
        "revision": revision,
        **extra,
    }


def test_issue_rules_staff_reporter_supporters_officials_and_stale_events(bus, database, clock):
    staff, reporter, supporter, official, stranger = ids(5)
    bus.publish(
        "directory.community.upserted",
        {"community_id": COMMUNITY, "street_id": STREET, "name": "育才街社区", "revision": 1},
        producer="gateway",
    )
    for person, role in (
        (staff, "community_staff"),
        (reporter, "resident"),
        (supporter, "resident"),
        (official, "street_official"),
        (stranger, "resident"),
    ):
        wait(bus, user(bus, person, role=role, community=None if role == "street_official" else COMMUNITY))
    issue_id = str(uuid.uuid4())

    reported = bus.publish("issues.issue.reported", issue(issue_id, reporter, 1, urgency="urgent"))
    wait(bus, reported)
    # An urgent new issue reaches the community's staff (SMS too, as a safety matter), no one else.
    assert inbox(database, reported.id) == {staff}
    assert told(database, reported.id)[(staff, "sms")] == "pending"

    bus.publish("issues.issue.supported", issue(issue_id, reporter, 2, supporter_id=supporter))
    resolved = bus.publish("issues.issue.resolved", issue(issue_id, reporter, 4, status="resolved", actor_id=staff))
    late = bus.publish("issues.issue.accepted", issue(issue_id, reporter, 3, status="accepted", from_status="reported"))
    wait(bus, late)
    assert inbox(database, resolved.id) == {reporter, supporter}  # the actor is not told of their own change
    assert inbox(database, late.id) == set()  # older than what was told: not sent

    escalated = bus.publish(
        "issues.issue.escalated",
        issue(issue_id, reporter, 5, status="resolving", tier="street", from_tier="community"),
        street_id=STREET,
        community_id=COMMUNITY,
    )
    wait(bus, escalated)
    assert inbox(database, escalated.id) == {official}
    assert inbox(database, f"{escalated.id}:followers") == {reporter, supporter}

    # The same event again (a redelivery, a producer retry) plans nothing twice.
    before = told(database, escalated.id)
    again = bus.publish("issues.issue.escalated", None, event=escalated)
    sentinel = user(bus, str(uuid.uuid4()))
    wait(bus, sentinel)
    with database.session() as s:
        keys = list(s.scalars(select(deliveries.c.key).where(deliveries.c.key.like(f"{again.id}%"))))
    assert len(keys) == len(set(keys)) == len(before)


def test_meeting_rules_followers_reminders_and_cancellation(bus, database, clock, app, auth):
    participant, follower, convener = ids(3)
    for person in (participant, follower, convener):
        wait(bus, user(bus, person))
    client = app.test_client()
    response = client.post(
        "/follows",
        json={"target_type": "community", "target_id": COMMUNITY},
        headers=auth(follower, community_ids=[COMMUNITY]),
    )
    assert response.status_code == 201, response.json
    meeting_id = str(uuid.uuid4())
    starts = clock() + timedelta(days=3)
    meeting = {
        "meeting_id": meeting_id,
        "community_id": COMMUNITY,
        "meeting_type": "round_table",
        "title": "邻里议事圆桌会",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "place": "邻里驿站",
        "convener_id": convener,
        "participant_ids": [participant],
        "revision": 1,
    }
    scheduled = bus.publish("meetings.meeting.scheduled", meeting)
    wait(bus, scheduled)
    assert inbox(database, scheduled.id) == {participant, follower}
    with database.session() as s:
        planned = s.execute(select(reminders.c.kind, reminders.c.due_at, reminders.c.state)).all()
    assert {(r.kind, r.due_at, r.state) for r in planned} == {
        ("day_before", starts - timedelta(days=1), "scheduled"),
        ("hour_before", starts - timedelta(hours=1), "scheduled"),
    }

    # The day-before reminder fires for the participants, and expires when the meeting starts.
    from linli_notifications.service_layer.handlers import fire_due_reminders

    clock.advance(days=2, minutes=1)
    with database.transaction() as s:
        assert fire_due_reminders(s, clock, "Asia/Shanghai") == 1
    with database.session() as s:
        reminder_rows = s.execute(
            select(deliveries.c.user_id, deliveries.c.expires_at, deliveries.c.state).where(
                deliveries.c.source_type == "reminder.day_before"
            )
        ).all()
    assert {r.user_id for r in reminder_rows} == {participant}
    assert all(r.expires_at == starts for r in reminder_rows)

    cancelled = bus.publish("meetings.meeting.cancelled", {**meeting, "revision": 2, "reason": "场地维修"})
    wait(bus, cancelled)
    assert inbox(database, cancelled.id) == {participant, follower}
    with database.session() as s:
        states = dict(s.execute(select(reminders.c.kind, reminders.c.state)).all())
        pending_reminders = s.scalars(
            select(deliveries.c.state).where(deliveries.c.source_type == "reminder.day_before")
        ).all()
    assert states == {"day_before": "fired", "hour_before": "cancelled"}
    assert set(pending_reminders) <= {"expired", "suppressed"}


def test_activity_registration_booking_and_code_rules(bus, database, clock):
    person, organiser, provider = ids(3)
    for who in (person, organiser, provider):
        wait(bus, user(bus, who))
    activity_id = str(uuid.uuid4())
    starts = clock() + timedelta(days=2)
    promoted = bus.publish(
        "activities.registration.promoted",
        {
            "registration_id": str(uuid.uuid4()),
            "activity_id": activity_id,
            "community_id": COMMUNITY,
            "user_id": person,
            "title": "亲子运动会",
            "starts_at": starts.isoformat(),
            "party_size": 2,
            "status": "confirmed",
        },
    )
    booking = bus.publish(
        "activities.booking.confirmed",
        {
            "booking_id": str(uuid.uuid4()),
            "offering_id": str(uuid.uuid4()),
            "service_name": "上门理发",
            "community_id": COMMUNITY,
            "resident_id": person,
            "booked_by_id": organiser,
            "provider_id": provider,
            "slot_start": starts.isoformat(),
            "slot_end": (starts + timedelta(hours=1)).isoformat(),
            "door_to_door": True,
            "status": "confirmed",
        },
    )
    clock.now = clock.now.replace(hour=16)  # 00:00 in Shanghai: quiet hours
    code = bus.publish(
        "accounts.code.requested",
        {
            "phone": "+8613900139000",
            "code": "482913",
            "purpose": "login",
            "expires_at": (clock() + timedelta(minutes=5)).isoformat(),
        },
        producer="gateway",
    )
    wait(bus, code)
    wait(bus, booking)
    assert inbox(database, promoted.id) == {person}
    assert told(database, promoted.id) == {(person, "sms"): "pending", (person, "push"): "suppressed"}
    assert inbox(database, booking.id) == {person, organiser}
    with database.session() as s:
        row = (
            s.execute(select(deliveries).where(deliveries.c.source_type == "accounts.code.requested")).mappings().one()
        )
    # The code goes at once, whatever the hour, to the phone that asked.
    assert (row["address"], row["state"], row["next_attempt_at"]) == ("+8613900139000", "pending", clock())


def test_agenda_decision_action_item_activity_and_overdue_rules(bus, database, clock, app, auth):
    staff, reporter, participant, owner, follower, organiser = ids(6)
    for person, role in (
        (staff, "community_staff"),
        (reporter, "resident"),
        (participant, "resident"),
        (owner, "resident"),
        (follower, "resident"),
        (organiser, "community_staff"),
    ):
        wait(bus, user(bus, person, role=role))
    client = app.test_client()
    assert (
        client.post(
            "/follows",
            json={"target_type": "community", "target_id": COMMUNITY},
            headers=auth(follower, community_ids=[COMMUNITY]),
        ).status_code
        == 201
    )
    issue_id, meeting_id = str(uuid.uuid4()), str(uuid.uuid4())
    wait(bus, bus.publish("issues.issue.reported", issue(issue_id, reporter, 1)))
    starts = clock() + timedelta(days=5)
    # The meetings service announces a meeting before anything happens at it: notices about it go
    # to those who may read it, so this service must know it.
    scheduled = {
        "meeting_id": meeting_id,
        "community_id": COMMUNITY,
        "meeting_type": "pavilion",
        "title": "凉亭会",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "convener_id": staff,
        "participant_ids": [participant],
        "revision": 1,
    }
    wait(bus, bus.publish("meetings.meeting.scheduled", scheduled))
    agenda = bus.publish(
        "meetings.agenda_item.added",
        {
            "meeting_id": meeting_id,
            "community_id": COMMUNITY,
            "meeting_type": "pavilion",
            "title": "凉亭会",
            "starts_at": starts.isoformat(),
            "item_id": str(uuid.uuid4()),
            "issue_id": issue_id,
        },
    )
    decision = bus.publish(
        "meetings.decision.recorded",
        {
            "decision_id": str(uuid.uuid4()),
            "meeting_id": meeting_id,
            "community_id": COMMUNITY,
            "motion": "拆除两面文化墙",
            "outcome": "adopted",
            "rule": "unanimous",
            "votes_for": 9,
            "votes_against": 0,
            "abstentions": 0,
            "issue_ids": [issue_id],
            "issue_effect": "resolution_plan",
            "participant_ids": [participant],
        },
    )
    action = bus.publish(
        "meetings.action_item.assigned",
        {
            "action_item_id": str(uuid.uuid4()),
            "decision_id": str(uuid.uuid4()),
            "meeting_id": meeting_id,
            "community_id": COMMUNITY,
            "issue_id": issue_id,
            "title": "联系物业拆除",
            "owner_body": "property_company",
            "owner_user_id": owner,
            "due_date": "2026-12-10",
            "status": "open",
        },
    )
    overdue = bus.publish("issues.issue.overdue", issue(issue_id, reporter, 2, status="accepted"))
    activity = {
        "activity_id": str(uuid.uuid4()),
        "community_ids": [COMMUNITY],
        "kind": "festival",
        "title": "邻里节",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        "place": "邻里驿站",
        "organiser_id": organiser,
        "registrant_ids": [participant],
        "revision": 1,
    }
    published = bus.publish("activities.activity.published", activity)
    cancelled = bus.publish("activities.activity.cancelled", {**activity, "revision": 2, "reason": "天气原因"})
    wait(bus, cancelled)
    assert inbox(database, f"agenda:{meeting_id}:{issue_id}") == {reporter}
    assert inbox(database, decision.id) == {participant, reporter}
    assert inbox(database, action.id) == {owner}
    assert inbox(database, overdue.id) == {staff, organiser}
    assert inbox(database, published.id) == {follower}
    assert inbox(database, cancelled.id) == {participant}
    with database.session() as s:
        body = s.scalar(select(notifications.c.body).where(notifications.c.source_type == agenda.type))
        states = set(s.scalars(select(reminders.c.state).where(reminders.c.subject_id == activity["activity_id"])))
    assert "凉亭会" in body and "文化墙有安全隐患" in body
    assert states == set()  # the activities service reminds (activities.activity.reminder), not this one


def meeting_snapshot(meeting_id, starts, participants=(), public=True, revision=1):
    return {
        "meeting_id": meeting_id,
        "community_id": COMMUNITY,
        "meeting_type": "pavilion",
        "title": "凉亭会",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "convener_id": str(uuid.uuid4()),
        "participant_ids": list(participants),
        "public": public,
        "revision": revision,
    }


def notices(database, issue_id):
    """(user, kind, status) of every notice about the issue since it was reported."""
    with database.session() as s:
        rows = s.execute(
            select(notifications.c.user_id, notifications.c.kind, notifications.c.params).where(
                notifications.c.subject_id == issue_id, notifications.c.kind != "issue.reported"
            )
        ).all()
    return sorted((r.user_id, r.kind, r.params.get("status")) for r in rows)


def test_progress_notices_say_what_changed_and_nothing_when_nothing_did(bus, database, clock):
    staff, reporter, supporter = ids(3)
    bus.publish(
        "directory.community.upserted",
        {"community_id": COMMUNITY, "street_id": STREET, "name": "育才街社区", "revision": 1},
        producer="gateway",
    )
    for person, role in ((staff, "community_staff"), (reporter, "resident"), (supporter, "resident")):
        wait(bus, user(bus, person, role=role))
    issue_id = str(uuid.uuid4())
    bus.publish("issues.issue.reported", issue(issue_id, reporter, 1))
    bus.publish("issues.issue.supported", issue(issue_id, reporter, 2, supporter_id=supporter))
    bus.publish("issues.issue.accepted", issue(issue_id, reporter, 3, status="accepted", from_status="reported"))
    # On a meeting's agenda, the issues service counts the consultation (the status stays), then
    # moves the issue to deliberating; at each later meeting it counts again: six meetings.
    changes = [("accepted", "accepted"), ("accepted", "deliberating")]
    changes += [("deliberating", "deliberating")] * 5
    for revision, (before, after) in enumerate(changes, start=4):
        last = bus.publish(
            "issues.issue.status_changed",
            issue(issue_id, reporter, revision, status=after, from_status=before, consultation_count=revision - 3),
        )
    wait(bus, last)
    told = [(reporter, "issue.progress", "accepted"), (reporter, "issue.progress", "deliberating")]
    told += [(supporter, "issue.progress", "accepted"), (supporter, "issue.progress", "deliberating")]
    assert notices(database, issue_id) == sorted(told)

    # The same change again under a new event id and revision (a producer's retry after a
    # rollback): nobody is told twice. An older snapshot arriving late tells nobody either.
    bus.publish("issues.issue.status_changed", issue(issue_id, reporter, 3, status="accepted", from_status="reported"))
    last = bus.publish("issues.issue.resolved", issue(issue_id, reporter, 20, status="resolved", actor_id=staff))
    again = bus.publish("issues.issue.resolved", issue(issue_id, reporter, 21, status="resolved", actor_id=staff))
    wait(bus, again)
    told += [(reporter, "issue.progress", "resolved"), (supporter, "issue.progress", "resolved")]
    assert notices(database, issue_id) == sorted(told)

    # Assigned: news when whoever handles it changes, not when the same body is named again.
    body_a, body_b = str(uuid.uuid4()), str(uuid.uuid4())
    other = str(uuid.uuid4())
    bus.publish("issues.issue.reported", issue(other, reporter, 1))
    for revision, body in ((2, body_a), (3, body_a), (4, body_b)):
        last = bus.publish(
            "issues.issue.assigned",
            issue(other, reporter, revision, status="accepted", assignee_type="property_company", assignee_id=body),
        )
    wait(bus, last)
    assert notices(database, other) == [(reporter, "issue.progress", "assigned")] * 2

    # Put on one meeting's agenda twice (two events for one item): one notice; another meeting: one more.
    meeting_a, meeting_b = str(uuid.uuid4()), str(uuid.uuid4())
    for meeting in (meeting_a, meeting_b):
        wait(bus, bus.publish("meetings.meeting.scheduled", meeting_snapshot(meeting, clock() + timedelta(days=2))))
    for meeting in (meeting_a, meeting_a, meeting_b):
        last = bus.publish(
            "meetings.agenda_item.added",
            {
                "meeting_id": meeting,
                "community_id": COMMUNITY,
                "meeting_type": "pavilion",
                "title": "凉亭会",
                "starts_at": (clock() + timedelta(days=2)).isoformat(),
                "item_id": str(uuid.uuid4()),
                "issue_id": other,
            },
        )
    wait(bus, last)
    with database.session() as s:
        on_agenda = s.scalars(
            select(notifications.c.source_key).where(
                notifications.c.kind == "issue.on_agenda", notifications.c.subject_id == other
            )
        ).all()
    assert sorted(on_agenda) == sorted({f"agenda:{meeting_a}:{other}", f"agenda:{meeting_b}:{other}"})


def test_escalating_a_still_reported_issue_tells_the_tier_not_the_status(bus, database, clock):
    reporter, official = ids(2)
    bus.publish(
        "directory.community.upserted",
        {"community_id": COMMUNITY, "street_id": STREET, "name": "育才街社区", "revision": 1},
        producer="gateway",
    )
    wait(bus, user(bus, reporter))
    wait(bus, user(bus, official, role="street_official", community=None))
    issue_id = str(uuid.uuid4())
    bus.publish("issues.issue.reported", issue(issue_id, reporter, 1))
    escalated = bus.publish(
        "issues.issue.escalated",
        issue(issue_id, reporter, 2, tier="street", from_tier="community", automatic=True),
        street_id=STREET,
    )
    # The same tier again (a second escalation the issues service refused to move): nothing.
    same = bus.publish("issues.issue.escalated", issue(issue_id, reporter, 3, tier="street", from_tier="street"))
    wait(bus, same)
    assert notices(database, issue_id) == sorted(
        [(official, "issue.escalated", "reported"), (reporter, "issue.escalated", "reported")]
    )
    with database.session() as s:
        body = s.scalar(
            select(notifications.c.body).where(
                notifications.c.source_key == f"{escalated.id}:followers", notifications.c.user_id == reporter
            )
        )
    assert "街道" in body and "已上报" not in body
