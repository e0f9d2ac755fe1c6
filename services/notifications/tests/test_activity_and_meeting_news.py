"""The rules for what the activities and meetings services added (the activities service's own
reminders, the talent pool, meeting proposals, a decision carried out): the real handlers, as the
consumer calls them (a batch of one event type), on PostgreSQL and on SQLite; and on the bus, that
the service's queue is bound to every new event type."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from linli_kit.events import new_event
from linli_notifications.adapters.tables import (
    deliveries,
    devices,
    follows,
    notifications,
    recipient_communities,
    recipients,
    reminders,
)
from linli_notifications.service_layer.handlers import fire_due_reminders, make_handlers
from linli_notifications.service_layer.planning import stable_id

COMMUNITY, ELSEWHERE = str(uuid.uuid4()), str(uuid.uuid4())
TZ = "Asia/Shanghai"


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request):
    return request.getfixturevalue("database" if request.param == "postgresql" else "sqlite_database")


@pytest.fixture
def rules(clock):
    return make_handlers(clock, TZ)


@pytest.fixture
def handle(db, rules):
    def run(event_type, data, producer=None, times=1):
        """Handle `times` events of this data (each its own id) in one batch, as the consumer may."""
        events = [new_event(event_type, data, producer=producer or event_type.split(".")[0]) for _ in range(times)]
        with db.transaction() as s:
            rules[event_type].handle(s, events)
        return events[0]

    return run


@pytest.fixture
def person(db, clock):
    def add(role="resident", community=COMMUNITY, locale="zh-CN"):
        user_id = str(uuid.uuid4())
        with db.transaction() as s:
            s.execute(
                recipients.insert().values(
                    user_id=user_id,
                    role=role,
                    display_name="张三",
                    phone="+8613800138000",
                    locale=locale,
                    active=True,
                    revision=1,
                    updated_at=clock(),
                )
            )
            s.execute(recipient_communities.insert().values(community_id=community, user_id=user_id, role=role))
        return user_id

    return add


def told(db, source_key):
    """Who got a notice of `source_key`, and its text."""
    with db.session() as s:
        rows = s.execute(
            select(notifications.c.user_id, notifications.c.title, notifications.c.body).where(
                notifications.c.source_key == source_key
            )
        ).all()
    return {r.user_id: f"{r.title}|{r.body}" for r in rows}


def issue(issue_id, reporter, revision, title="楼道灯不亮", **extra):
    return {
        "issue_id": issue_id,
        "community_id": COMMUNITY,
        "title": title,
        "category": "repair",
        "urgency": "normal",
        "status": "reported",
        "tier": "community",
        "reporter_id": reporter,
        "revision": revision,
        **extra,
    }


def activity(activity_id, organiser, starts, registrants, revision=1):
    return {
        "activity_id": activity_id,
        "community_ids": [COMMUNITY],
        "kind": "culture",
        "title": "重阳节包饺子",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "place": "邻里驿站",
        "organiser_id": organiser,
        "registrant_ids": registrants,
        "revision": revision,
    }


def test_an_activity_is_reminded_once_per_lead_time_by_the_activities_service(db, handle, person, clock):
    organiser = person(role="community_staff")
    holder, waiting = person(), person(locale="en")
    english_holder = person(locale="en")
    activity_id = str(uuid.uuid4())
    starts = clock() + timedelta(days=2)
    snapshot = activity(activity_id, organiser, starts, [holder, waiting, english_holder])
    handle("activities.activity.published", snapshot)
    # Nothing is scheduled here for an activity any more: the activities service reminds.
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(reminders)) == 0
        # As an older version of this service scheduled them: cancelled when due, never sent.
        s.execute(
            reminders.insert().values(
                id=stable_id("activity", activity_id, "day_before", starts.isoformat()),
                subject_type="activity",
                subject_id=activity_id,
                kind="day_before",
                starts_at=starts,
                due_at=starts - timedelta(days=1),
                state="scheduled",
            )
        )

    def reminder(lead_minutes, times=1):
        return handle(
            "activities.activity.reminder",
            {**snapshot, "lead_minutes": lead_minutes, "confirmed_ids": [holder, english_holder]},
            times=times,
        )

    clock.advance(days=1)
    # The activities service sends it again (a retry): new events, the same reminder, in one
    # batch and in a later one.
    day_before = reminder(1440, times=2)
    reminder(1440)
    with db.transaction() as s:
        fire_due_reminders(s, clock, TZ)
    clock.advance(hours=23)
    reminder(60)
    clock.advance(minutes=30)
    with db.transaction() as s:
        fire_due_reminders(s, clock, TZ)

    key = f"activity-reminder:{activity_id}:1440:{starts.isoformat()}"
    assert told(db, key) == {
        holder: "活动提醒|提醒：活动重阳节包饺子将于11月26日10:00开始。",
        english_holder: "Activity reminder|Reminder: 重阳节包饺子 starts on 26 Nov 10:00.",
    }
    with db.session() as s:
        per_person = s.execute(
            select(notifications.c.user_id, func.count())
            .where(notifications.c.subject_id == activity_id, notifications.c.category == "reminder")
            .group_by(notifications.c.user_id)
        ).all()
        expiry = set(s.scalars(select(deliveries.c.expires_at).where(deliveries.c.source_type == day_before.type)))
        old = s.scalar(select(reminders.c.state).where(reminders.c.subject_id == activity_id))
    # One per lead time (a day, an hour before): two, never four; nobody waiting is reminded.
    assert dict(per_person) == {holder: 2, english_holder: 2}
    assert expiry == {starts}  # a reminder after the start is noise
    assert old == "cancelled"


def test_a_reminder_for_a_start_that_moved_or_a_cancelled_activity_is_not_sent(db, handle, person, clock):
    organiser, holder = person(role="community_staff"), person()
    with db.transaction() as s:  # a phone with the app: reminders go by push
        s.execute(
            devices.insert().values(
                id=str(uuid.uuid4()),
                user_id=holder,
                platform="android",
                provider="jpush",
                token=uuid.uuid4().hex,
                created_at=clock(),
                last_seen_at=clock(),
            )
        )
    activity_id = str(uuid.uuid4())
    starts = clock() + timedelta(hours=5)
    first = activity(activity_id, organiser, starts, [holder])
    handle("activities.activity.published", first)
    later = starts + timedelta(days=1)
    handle(
        "activities.activity.rescheduled",
        {**activity(activity_id, organiser, later, [holder], revision=2), "previous_starts_at": starts.isoformat()},
    )
    # A reminder the activities service sent for the old start, reaching here after the change.
    old = {**first, "lead_minutes": 60, "confirmed_ids": [holder]}
    handle("activities.activity.reminder", old)
    assert told(db, f"activity-reminder:{activity_id}:60:{starts.isoformat()}") == {}
    current = {**activity(activity_id, organiser, later, [holder], revision=2), "lead_minutes": 60}
    handle("activities.activity.reminder", {**current, "confirmed_ids": [holder]})
    assert set(told(db, f"activity-reminder:{activity_id}:60:{later.isoformat()}")) == {holder}
    assert reminder_states(db) == {"pending"}
    handle(
        "activities.activity.cancelled",
        {**activity(activity_id, organiser, later, [holder], revision=3), "reason": "天气原因"},
    )
    assert reminder_states(db) == {"expired"}  # what waited to go out is withdrawn
    handle("activities.activity.reminder", {**current, "lead_minutes": 30, "confirmed_ids": [holder]})
    assert told(db, f"activity-reminder:{activity_id}:30:{later.isoformat()}") == {}


def reminder_states(db):
    with db.session() as s:
        return set(
            s.scalars(select(deliveries.c.state).where(deliveries.c.source_type == "activities.activity.reminder"))
        )


def talent_match(talent_user, matched_by, status="proposed", **extra):
    return {
        "match_id": str(uuid.uuid4()),
        "talent_id": str(uuid.uuid4()),
        "talent_user_id": talent_user,
        "community_id": COMMUNITY,
        "matched_by_id": matched_by,
        "status": status,
        **extra,
    }


def test_talent_vetted_tells_the_talent_the_outcome_in_their_language(db, handle, person):
    staff, talent, english_talent = person(role="community_staff"), person(), person(locale="en")

    def vetted(user_id, status):
        return handle(
            "activities.talent.vetted",
            {
                "talent_id": str(uuid.uuid4()),
                "user_id": user_id,
                "community_id": COMMUNITY,
                "display_name": "王师傅",
                "status": status,
                "vetted_by_id": staff,
            },
        )

    assert told(db, vetted(talent, "approved").id) == {talent: "人才库审核|您登记的技能审核通过。"}
    assert told(db, vetted(english_talent, "declined").id) == {english_talent: "Talent pool|Your entry was declined."}
    assert told(db, vetted(talent, "declined").id) == {talent: "人才库审核|您登记的技能审核未通过。"}


def test_talent_matched_asks_the_talent_with_the_note_or_a_dash(db, handle, person):
    staff, talent, english_talent = person(role="community_staff"), person(), person(locale="en")
    with_note = handle("activities.talent.matched", talent_match(talent, staff, note="帮独居老人修水龙头"))
    without = handle("activities.talent.matched", talent_match(english_talent, staff))
    assert told(db, with_note.id) == {talent: "邻里需要您|社区邀请您帮忙：帮独居老人修水龙头。请在应用中接受或婉拒。"}
    assert told(db, without.id) == {
        english_talent: "Neighbours need you|The community asks for your help: -. Accept or decline in the app."
    }


def test_a_talents_answer_goes_to_who_asked_without_naming_anyone(db, handle, person):
    staff, english_staff, talent = person(role="community_staff"), person(role="community_staff", locale="en"), person()
    accepted = handle("activities.talent.match_accepted", talent_match(talent, staff, status="accepted"))
    declined = handle(
        "activities.talent.match_declined",
        talent_match(talent, english_staff, status="declined", decline_reason="出差"),
    )
    assert told(db, accepted.id) == {staff: "人才回复|您的邀请已被接受。"}
    assert told(db, declined.id) == {english_staff: "Talent answered|Your request was declined."}


def proposal(issue_id, proposer, **extra):
    return {
        "proposal_id": str(uuid.uuid4()),
        "community_id": COMMUNITY,
        "issue_id": issue_id,
        "proposer_id": proposer,
        "meeting_type": "bench",
        "reason": "影响夜间出行",
        "status": "pending",
        **extra,
    }


def test_a_proposed_meeting_goes_to_the_communitys_staff(db, handle, person):
    staff, english_staff = person(role="community_staff"), person(role="community_staff", locale="en")
    far_staff, proposer, neighbour = person(role="community_staff", community=ELSEWHERE), person(), person()
    issue_id = str(uuid.uuid4())
    handle("issues.issue.reported", issue(issue_id, proposer, 1))
    # The title from the issue events when the proposal does not carry it.
    submitted = handle("meetings.proposal.submitted", proposal(issue_id, proposer))
    assert told(db, submitted.id) == {
        staff: "议事提议|居民提议就“楼道灯不亮”召开板凳会：影响夜间出行",
        english_staff: 'Meeting proposed|A resident proposes a bench meeting on "楼道灯不亮": 影响夜间出行',
    }
    assert far_staff not in told(db, submitted.id) and neighbour not in told(db, submitted.id)
    # A community's own meeting type is shown as it came; the event's own issue title first.
    own = handle(
        "meetings.proposal.submitted",
        proposal(issue_id, proposer, meeting_type="院坝会", issue_title="3号楼楼道灯"),
    )
    assert told(db, own.id)[staff] == "议事提议|居民提议就“3号楼楼道灯”召开院坝会：影响夜间出行"


def test_the_proposer_hears_whether_the_meeting_was_accepted_or_declined(db, handle, person, clock):
    staff, proposer, english_proposer = person(role="community_staff"), person(), person(locale="en")
    issue_id = str(uuid.uuid4())
    handle("issues.issue.reported", issue(issue_id, proposer, 1))
    starts = clock() + timedelta(days=3)
    accepted = handle(
        "meetings.proposal.accepted",
        proposal(
            issue_id,
            proposer,
            status="accepted",
            decided_by=staff,
            meeting_id=str(uuid.uuid4()),
            title="楼道灯板凳会",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=1)).isoformat(),
            place="3号楼下",
        ),
    )
    declined = handle(
        "meetings.proposal.declined",
        proposal(issue_id, english_proposer, status="declined", decided_by=staff, decision_reason="已安排维修"),
    )
    assert told(db, accepted.id) == {proposer: "提议已采纳|您提议的会议已安排：楼道灯板凳会，11月27日10:00，3号楼下。"}
    assert told(db, declined.id) == {
        english_proposer: 'Proposal declined|Your proposal on "楼道灯不亮" was declined: 已安排维修'
    }


def activity_proposal(proposer, **extra):
    return {
        "proposal_id": str(uuid.uuid4()),
        "community_id": COMMUNITY,
        "proposer_id": proposer,
        "kind": "culture",
        "title": "祖孙书法课",
        "reason": "很多人想学",
        "status": "pending",
        **extra,
    }


def test_a_proposed_activity_goes_to_the_staff_and_the_answer_to_the_proposer(db, handle, person, clock):
    staff, far_staff = person(role="community_staff"), person(role="community_staff", community=ELSEWHERE)
    proposer, english_proposer, neighbour = person(), person(locale="en"), person()
    submitted = handle("activities.proposal.submitted", activity_proposal(proposer))
    assert told(db, submitted.id) == {staff: "活动提议|居民提议举办活动：祖孙书法课。很多人想学"}
    starts = clock() + timedelta(days=3)
    accepted = handle(
        "activities.proposal.accepted",
        activity_proposal(
            proposer, status="accepted", decided_by=staff, activity_id=str(uuid.uuid4()), starts_at=starts.isoformat()
        ),
    )
    declined = handle(
        "activities.proposal.declined",
        activity_proposal(english_proposer, status="declined", decided_by=staff, decision_reason="场地不足"),
    )
    assert told(db, accepted.id) == {proposer: "活动提议已采纳|您提议的活动已安排：祖孙书法课，11月27日10:00。"}
    assert told(db, declined.id) == {
        english_proposer: 'Activity proposal declined|Your proposed activity "祖孙书法课" was declined: 场地不足'
    }
    assert far_staff not in told(db, submitted.id) and neighbour not in told(db, submitted.id)


def test_a_decision_carried_out_is_told_to_those_of_its_issues_who_may_read_them(db, handle, person, clock):
    reporter, supporter, outsider, owner = person(), person(), person(community=ELSEWHERE), person()
    issue_id, other_issue = str(uuid.uuid4()), str(uuid.uuid4())
    handle("issues.issue.reported", issue(issue_id, reporter, 1, visibility="private"))
    handle("issues.issue.supported", issue(issue_id, reporter, 2, visibility="private", supporter_id=supporter))
    handle("issues.issue.reported", issue(other_issue, reporter, 1, title="健身器材损坏"))
    # A follow of another community's resident (made before follows were checked): not told.
    with db.transaction() as s:
        s.execute(
            follows.insert().values(
                user_id=outsider, target_type="issue", target_id=issue_id, reason="follow", created_at=clock()
            )
        )
    decision_id = str(uuid.uuid4())

    def completed(done, complete, times=1):
        return handle(
            "meetings.action_item.completed",
            {
                "action_item_id": str(uuid.uuid4()),
                "decision_id": decision_id,
                "meeting_id": str(uuid.uuid4()),
                "community_id": COMMUNITY,
                "issue_id": issue_id,
                "title": "更换灯泡",
                "owner_body": "residents",
                "owner_user_id": owner,
                "status": "done",
                "issue_ids": [issue_id, other_issue],
                "decision_action_items": 2,
                "decision_action_items_done": done,
                "decision_complete": complete,
            },
            times=times,
        )

    first = completed(1, False)
    assert set(told(db, first.id)) == {reporter, supporter}  # the item's own notice, as before
    with db.session() as s:
        assert s.scalar(select(func.count()).where(notifications.c.kind == "decision.completed")) == 0
    completed(2, True, times=2)  # the last two completed at once both say so: told once
    completed(2, True)  # and a late repeat
    assert told(db, f"decision-complete:{decision_id}:{issue_id}") == {
        reporter: "决议落实|“楼道灯不亮”的决议任务已全部完成。",
        supporter: "决议落实|“楼道灯不亮”的决议任务已全部完成。",
    }
    assert told(db, f"decision-complete:{decision_id}:{other_issue}") == {
        reporter: "决议落实|“健身器材损坏”的决议任务已全部完成。"
    }


@pytest.mark.integration
def test_the_queue_is_bound_to_every_new_event_type(bus, database, clock):
    """Through RabbitMQ: each new type reaches the service (its queue is bound to it)."""
    someone, staff = str(uuid.uuid4()), str(uuid.uuid4())
    starts = clock() + timedelta(days=1)
    issue_id = str(uuid.uuid4())
    events = {
        "activities.activity.reminder": {
            **activity(str(uuid.uuid4()), staff, starts, [someone]),
            "lead_minutes": 60,
            "confirmed_ids": [someone],
        },
        "activities.talent.vetted": {
            "talent_id": str(uuid.uuid4()),
            "user_id": someone,
            "community_id": COMMUNITY,
            "display_name": "王师傅",
            "status": "approved",
            "vetted_by_id": staff,
        },
        "activities.talent.matched": talent_match(someone, staff),
        "activities.talent.match_accepted": talent_match(someone, staff, status="accepted"),
        "activities.talent.match_declined": talent_match(someone, staff, status="declined"),
        "meetings.proposal.submitted": proposal(issue_id, someone),
        "meetings.proposal.accepted": proposal(
            issue_id,
            someone,
            status="accepted",
            decided_by=staff,
            meeting_id=str(uuid.uuid4()),
            title="板凳会",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=1)).isoformat(),
        ),
        "meetings.proposal.declined": proposal(
            issue_id, someone, status="declined", decided_by=staff, decision_reason="已解决"
        ),
        "activities.proposal.submitted": activity_proposal(someone),
        "activities.proposal.accepted": activity_proposal(
            someone, status="accepted", decided_by=staff, activity_id=str(uuid.uuid4()), starts_at=starts.isoformat()
        ),
        "activities.proposal.declined": activity_proposal(
            someone, status="declined", decided_by=staff, decision_reason="场地不足"
        ),
    }
    published = [bus.publish(event_type, data) for event_type, data in events.items()]
    from linli_kit.testing.waiting import eventually

    for event in published:
        eventually(lambda event=event: bus.handled(event), what=f"{event.type} handled")
