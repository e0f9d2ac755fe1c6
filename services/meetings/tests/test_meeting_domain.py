"""Meeting life cycle, registrations and voting eligibility (domain only, no database)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from linli_kit.errors import Conflict, Invalid
from linli_meetings.domain.decision import ActionItem, ActionStatus, Choice, Decision, Method
from linli_meetings.domain.meeting import Enrolment, Meeting, Status
from linli_meetings.domain.procedure import DEFAULT_RULES, Outcome

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def meeting(**kw) -> Meeting:
    start = NOW + timedelta(days=1)
    values = dict(
        community_id="c",
        meeting_type="round_table",
        title="Roof",
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        convener_id="u0",
        local_date=start.astimezone(TZ).date(),
        place="hall",
    )
    return Meeting(**(values | kw))


def test_status_machine_and_illegal_transitions():
    m = meeting()
    m.start(NOW)
    assert m.status == Status.IN_PROGRESS and len(m.checkin_code) == 6
    for illegal in (
        lambda: m.start(NOW),
        lambda: m.cancel("x"),
        lambda: m.reschedule(NOW, NOW + timedelta(hours=1), None, TZ),
    ):
        with pytest.raises(Conflict):
            illegal()
    m.conclude(NOW, minutes="done", closing_report=None, attendees_count=None, photo_urls=None)
    assert m.status == Status.CONCLUDED and m.checkin_code is None
    with pytest.raises(Conflict):
        m.conclude(NOW, minutes=None, closing_report=None, attendees_count=None, photo_urls=None)
    cancelled = meeting()
    cancelled.cancel("rain")
    with pytest.raises(Conflict):
        cancelled.start(NOW)


def test_reschedule_keeps_the_previous_start_and_the_local_date():
    m = meeting()
    before = m.starts_at
    new_start = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 January in Shanghai
    m.reschedule(new_start, new_start + timedelta(hours=1), "typhoon", TZ)
    assert m.previous_starts_at == before and m.rescheduled_count == 1 and m.status == Status.SCHEDULED
    assert m.local_date.isoformat() == "2027-01-01"
    with pytest.raises(Invalid):
        m.reschedule(new_start, new_start, "no length", TZ)


def test_registration_capacity_waiting_list_and_promotion():
    m = meeting(meeting_type="bench", capacity=2)
    a, b, c = m.register("a", None), m.register("b", None), m.register("c", None)
    assert [p.enrolment for p in (a, b, c)] == [Enrolment.REGISTERED, Enrolment.REGISTERED, Enrolment.WAITLISTED]
    with pytest.raises(Conflict):
        m.register("a", None)
    promoted = m.cancel_registration(a)
    assert promoted is c and c.enrolment == Enrolment.REGISTERED
    assert m.registered_count() == 2
    private = meeting(public=False)
    with pytest.raises(Conflict):
        private.register("x", None)


def test_check_in_by_code_and_walk_ins():
    m = meeting(meeting_type="bench")
    invited = m.invite(role="party_member", user_id="p", name=None, organisation_id=None)
    with pytest.raises(Conflict):
        m.check_in_with_code("000000", "p", NOW)  # not started: no code yet
    m.start(NOW)
    with pytest.raises(Invalid):
        m.check_in_with_code("x" + m.checkin_code[1:], "p", NOW)
    assert m.check_in_with_code(m.checkin_code, "p", NOW) is invited
    walk_in = m.check_in_with_code(m.checkin_code, "neighbour", NOW)
    assert walk_in.enrolment == Enrolment.WALK_IN and walk_in.present
    with pytest.raises(Conflict):
        m.check_in(walk_in, NOW, "staff")
    m.conclude(NOW, minutes=None, closing_report=None, attendees_count=None, photo_urls=None)
    assert m.attendees_count == 2


def test_only_present_voting_members_vote():
    m = meeting()
    policy = DEFAULT_RULES.policy_for("round_table")
    rep = m.invite(role="resident_representative", user_id="rep", name=None, organisation_id=None)
    bureau = m.invite(role="bureau", user_id="bureau", name=None, organisation_id=None)
    m.invite(role="owners_committee", user_id="absent", name=None, organisation_id=None)
    m.start(NOW)
    for p in (rep, bureau):
        m.check_in(p, NOW, "staff")
    motion = Decision(
        meeting_id=m.id, community_id="c", motion="Fix it", method=Method.ROLL_CALL, threshold="two_thirds"
    )
    assert motion.cast(m, policy, m.participant_of("rep"), Choice.FOR, already_voted=False).choice == "for"
    with pytest.raises(Conflict, match="already voted"):
        motion.cast(m, policy, m.participant_of("rep"), Choice.FOR, already_voted=True)
    with pytest.raises(Conflict, match="does not vote"):
        motion.cast(m, policy, m.participant_of("bureau"), Choice.FOR, already_voted=False)  # advisory at a round table
    with pytest.raises(Conflict, match="present"):
        motion.cast(m, policy, m.participant_of("absent"), Choice.FOR, already_voted=False)
    with pytest.raises(Conflict, match="present"):
        motion.cast(m, policy, None, Choice.FOR, already_voted=False)


def test_recording_counts_only_voting_members_and_creates_actions_when_adopted():
    m = meeting()
    policy = DEFAULT_RULES.policy_for("round_table")
    people = [
        m.invite(role="resident_representative", user_id=f"r{i}", name=None, organisation_id=None) for i in range(3)
    ]
    m.invite(role="bureau", user_id="b", name=None, organisation_id=None)  # not a voting member
    m.start(NOW)
    for p in people[:2]:
        m.check_in(p, NOW, "staff")
    motion = Decision(
        meeting_id=m.id,
        community_id="c",
        motion="Repair",
        method=Method.SHOW_OF_HANDS,
        threshold="two_thirds",
        proposed_actions=[{"title": "Repair roof", "owner_body": "property_company", "due_date": "2026-12-31"}],
    )
    motion.record_tally(2, 0, 0)
    actions = motion.record(m, policy, quorum=policy.quorum, abstention_blocks_unanimity=True, now=NOW)
    assert motion.outcome == Outcome.ADOPTED and (motion.voting_members, motion.present_voting_members) == (3, 2)
    assert [a.title for a in actions] == ["Repair roof"] and actions[0].due_date.isoformat() == "2026-12-31"
    with pytest.raises(Conflict):
        motion.record_tally(1, 1, 0)


def test_action_item_transitions_and_overdue():
    item = ActionItem(decision_id="d", meeting_id="m", community_id="c", title="t", owner_body="community")
    item.due_date = NOW.date()
    assert item.is_overdue(NOW.date() + timedelta(days=1)) and not item.is_overdue(NOW.date())
    item.change_status(ActionStatus.DONE, "fixed", NOW)
    assert item.completed_at == NOW and not item.is_overdue(NOW.date() + timedelta(days=5))
    with pytest.raises(Conflict):
        item.change_status(ActionStatus.CANCELLED, None, NOW)
    item.change_status(ActionStatus.IN_PROGRESS, "leaks again", NOW)  # reopened
    assert item.completed_at is None
    item.change_status(ActionStatus.CANCELLED, None, NOW)
    with pytest.raises(Conflict):
        item.change_status(ActionStatus.OPEN, None, NOW)


def test_agenda_order_and_duplicate_issue():
    m = meeting()
    first = m.add_agenda_item("A", duration_minutes=10, issue_id="i1")
    second = m.add_agenda_item("B", duration_minutes=None, issue_id=None)
    with pytest.raises(Conflict):
        m.add_agenda_item("A again", duration_minutes=None, issue_id="i1")
    m.move_agenda_item(second, 1)
    assert [i.title for i in m.ordered_agenda()] == ["B", "A"]
    m.remove_agenda_item(second)
    assert [(i.title, i.position) for i in m.ordered_agenda()] == [("A", 1)] and first.position == 1
    assert m.issue_ids == ["i1"]
