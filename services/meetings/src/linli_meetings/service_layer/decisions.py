"""Use cases of decisions: open a motion, vote, record the decision under the community's rules of
procedure, follow its action items; and the versioned rules and conventions it may adopt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError

from linli_kit.auth import Principal
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound
from linli_meetings.domain.decision import (
    ActionItem,
    ActionStatus,
    Choice,
    CommunityDocument,
    Decision,
    DocumentKind,
    FollowUp,
    IssueEffect,
    Method,
    Vote,
    check_proposed_actions,
    owner_problems,
)
from linli_meetings.domain.meeting import Meeting, Status
from linli_meetings.domain.procedure import DEFAULT_RULES, Count, RulesOfProcedure, Threshold
from linli_meetings.service_layer import access, events
from linli_meetings.service_layer.issue_privacy import (
    PRIVATE_ISSUE_TITLE,
    ActionItemView,
    action_item_views,
    hidden_issues,
    item_hidden,
)
from linli_meetings.service_layer.meetings import commit_or_conflict, load_meeting, managed_meeting
from linli_meetings.service_layer.organisations import named_owner, named_owners
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


@dataclass(frozen=True)
class MotionView:
    """A motion as the caller may see it: the decision, its action items, the roll-call votes the
    caller may see (see `visible_votes`) and its counts. An open roll-call motion counts the votes
    cast so far; a recorded one, the counts it was decided on (the same votes: a vote either
    commits before the motion is recorded or is refused)."""

    decision: Decision
    action_items: list[ActionItem] | list[ActionItemView]
    votes: list[Vote]
    count: Count
    hidden: bool = False  # on a private issue the caller may not read: its words withheld

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decision, name)

    @property
    def motion(self) -> str:
        return PRIVATE_ISSUE_TITLE if self.hidden else self.decision.motion

    @property
    def resolution_plan(self) -> str | None:
        return None if self.hidden else self.decision.resolution_plan

    @property
    def proposed_actions(self) -> list[dict[str, Any]]:
        actions = self.decision.proposed_actions or []
        return [a | {"title": PRIVATE_ISSUE_TITLE} for a in actions] if self.hidden else actions

    @property
    def votes_for(self) -> int:
        return self.count.votes_for

    @property
    def votes_against(self) -> int:
        return self.count.votes_against

    @property
    def abstentions(self) -> int:
        return self.count.abstentions


def _stored_count(decision: Decision) -> Count:
    return Count(decision.votes_for, decision.votes_against, decision.abstentions)


def visible_votes(
    uow: MeetingsUnitOfWork, principal: Principal, meeting: Meeting, decisions: list[Decision]
) -> dict[str, list[Vote]]:
    """Who voted how on each roll-call motion, as far as the caller may know it.

    A roll call is a named vote: the platform has no secret ballot (a show of hands stores no
    individual votes at all). The chair and the officials over the community see every vote, so
    they can check a count; anyone else sees their own vote only, since how a neighbour voted is
    theirs to tell; the counts are for everyone who sees the motion.
    """
    roll_calls = [d.id for d in decisions if d.method == Method.ROLL_CALL]
    if access.can_manage_community(principal, uow.meetings, meeting.community_id):
        votes = uow.meetings.votes_of(roll_calls)
    else:
        votes = uow.meetings.votes_of(roll_calls, voter_id=principal.user_id)
    by_decision: dict[str, list[Vote]] = {d.id: [] for d in decisions}
    for vote in votes:
        by_decision[vote.decision_id].append(vote)
    return by_decision


def _motion_views(
    uow: MeetingsUnitOfWork, principal: Principal, meeting: Meeting, decisions: list[Decision]
) -> list[MotionView]:
    votes = visible_votes(uow, principal, meeting, decisions)
    actions = uow.meetings.action_items_of([d.id for d in decisions])
    live = uow.meetings.roll_calls([d.id for d in decisions if d.is_open and d.method == Method.ROLL_CALL])
    # A decision on a private issue the caller may not read shows its counts, not its words.
    hidden = hidden_issues(uow, principal, [d.issue_id for d in decisions])
    return [
        MotionView(
            decision=d,
            action_items=[
                ActionItemView(a, item_hidden(principal, a, hidden)) for a in actions if a.decision_id == d.id
            ],
            votes=votes[d.id],
            count=live.get(d.id) or _stored_count(d),
            hidden=d.issue_id in hidden,
        )
        for d in decisions
    ]


def rules_in_force(uow: MeetingsUnitOfWork, community_id: str) -> tuple[RulesOfProcedure, int | None]:
    """The community's current rules of procedure and their version; the defaults when it has none."""
    current = uow.meetings.current_document(community_id, DocumentKind.RULES_OF_PROCEDURE)
    return _rules(current.rules if current else None), current.version if current else None


def _rules(structured: dict[str, Any] | None) -> RulesOfProcedure:
    return RulesOfProcedure.from_dict(structured) if structured else DEFAULT_RULES


def open_motion(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> MotionView:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        if meeting.status != Status.IN_PROGRESS:
            raise Conflict(
                "motions are put while the meeting is in progress; it is {status}",
                fields={"status": [meeting.status]},
                status=Label("meeting_status", meeting.status),
            )
        item = None
        if data.get("agenda_item_id"):
            item = meeting.agenda_item(data["agenda_item_id"])
            if item is None:
                raise Invalid("unknown agenda item", fields={"agenda_item_id": ["not on this meeting's agenda"]})
        effect = IssueEffect(data.get("issue_effect", IssueEffect.NONE))
        if effect != IssueEffect.NONE and (item is None or item.issue_id is None):
            raise Invalid(
                "an effect on an issue needs an agenda item linked to an issue",
                fields={"issue_effect": ["the agenda item has no linked issue"]},
            )
        if effect == IssueEffect.RESOLUTION_PLAN and not data.get("resolution_plan"):
            raise Invalid("a resolution plan needs its text", fields={"resolution_plan": ["required for this effect"]})
        actions = [_plain_action(a) for a in data.get("action_items") or []]
        check_proposed_actions(actions)
        actions = named_owners(uow, meeting.community_id, actions)
        document = data.get("document")
        if document is not None:
            _check_document(document)
        rules, _version = rules_in_force(uow, meeting.community_id)
        requested = Threshold(data["threshold"]) if data.get("threshold") else None
        threshold = rules.threshold_for(meeting.meeting_type, requested)
        decision = Decision(
            meeting_id=meeting.id,
            community_id=meeting.community_id,
            motion=data["motion"],
            method=data.get("method", Method.ROLL_CALL),
            threshold=threshold.value,
            issue_effect=effect.value,
            agenda_item_id=item.id if item else None,
            issue_id=item.issue_id if item else None,
            resolution_plan=data.get("resolution_plan"),
            proposed_actions=actions,
            document_kind=document["kind"] if document else None,
            document_title=document["title"] if document else None,
            document_body=document["body"] if document else None,
            document_rules=document.get("rules") if document else None,
            opened_at=uow.now(),
        )
        uow.meetings.add(decision)
        uow.commit()
        return MotionView(decision, [], [], _stored_count(decision))


def _plain_action(action: dict[str, Any]) -> dict[str, Any]:
    plain = dict(action)
    if isinstance(plain.get("due_date"), date):
        plain["due_date"] = plain["due_date"].isoformat()
    for key in ("owner_user_id", "owner_organisation_id"):
        if plain.get(key) is not None:
            plain[key] = str(plain[key])
    return plain


def _check_document(document: dict[str, Any]) -> None:
    if document["kind"] == DocumentKind.RULES_OF_PROCEDURE:
        if not document.get("rules"):
            raise Invalid("new rules of procedure need their rules", fields={"document.rules": ["required"]})
        RulesOfProcedure.from_dict(document["rules"])  # refuses bad rules now, not at adoption
    elif document.get("rules"):
        raise Invalid("only rules of procedure carry rules", fields={"document.rules": ["not for a convention"]})


def _decision_of(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str, *, lock: bool = False
) -> tuple[Meeting, Decision]:
    meeting = load_meeting(uow, principal, meeting_id, lock=lock)
    decision = uow.meetings.decision(decision_id, lock=lock)
    if decision is None or decision.meeting_id != meeting.id:
        raise NotFound("motion {decision_id} not found", decision_id=decision_id)
    return meeting, decision


def cast_vote(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str, choice: Choice) -> Vote:
    with uow:
        # A vote reads the motion with its meeting, and the voter's own participation: not the
        # whole list of people, which every one of fifty votes would otherwise load again. The
        # motion is locked (shared) before it is read open: recording it waits for this vote to
        # commit and counts it, or this vote waits for the recording and is refused (409).
        found_for_vote = uow.meetings.motion_for_vote(meeting_id, decision_id, principal.user_id)
        found = found_for_vote[:3] if found_for_vote else None
        voter, already = found_for_vote[3:] if found_for_vote else (None, False)
        if found and voter is None and access.is_committee_member(principal):
            # A member of an owners' committee invited as a body votes for it (once for all members).
            voter, already = uow.meetings.committee_voter(meeting_id, decision_id, str(principal.organisation_id))
        if found is None or (voter is None and not access.can_see_meeting_in_scope(principal, uow.meetings, found[1])):
            raise NotFound(
                "motion {decision_id} of meeting {meeting_id} not found", decision_id=decision_id, meeting_id=meeting_id
            )
        decision, meeting, structured_rules = found
        policy = _rules(structured_rules).policy_for(meeting.meeting_type)
        vote = decision.cast(meeting, policy, voter, choice, already)
        uow.meetings.add(vote)
        try:
            uow.commit()
        except IntegrityError as exc:
            # Two votes of one member raced; the primary key kept the first.
            uow.rollback()
            raise Conflict("you have already voted on this motion", fields={"voter": ["already voted"]}) from exc
        return vote


def record_tally(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str, tally: dict[str, int]
) -> MotionView:
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id, lock=True)
        access.require_manager(principal, uow.meetings, meeting.community_id)
        decision.record_tally(tally["votes_for"], tally["votes_against"], tally["abstentions"])
        uow.commit()
        return MotionView(decision, [], [], _stored_count(decision))


def record_decision(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str) -> MotionView:
    """Close the vote; adopt what an adopted motion carries; announce it to the issues service.

    The motion's row is locked (FOR UPDATE) before its votes are counted, so a vote being cast
    commits first and is counted, or waits and is refused."""
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id, lock=True)
        access.require_manager(principal, uow.meetings, meeting.community_id)
        rules, _ = rules_in_force(uow, meeting.community_id)
        policy = rules.policy_for(meeting.meeting_type)
        actions = decision.record(
            meeting,
            policy,
            quorum=policy.quorum,
            abstention_blocks_unanimity=rules.abstention_blocks_unanimity,
            now=uow.now(),
            roll_call=uow.meetings.roll_calls([decision.id])[decision.id]
            if decision.method == Method.ROLL_CALL
            else None,
        )
        uow.meetings.add(*actions)
        street_id = uow.meetings.street_for_event(meeting.community_id)
        if decision.adopted and decision.document_kind:
            _adopt_document(uow, decision)
        uow.publish(events.decision_recorded(decision, meeting, actions, street_id))
        follow_up = FollowUp.of(actions)
        for action in actions:
            uow.publish(events.action_item_changed(action, street_id, "assigned", decision, follow_up))
        # The votes counted, read under the motion's lock before it is released.
        votes = visible_votes(uow, principal, meeting, [decision])[decision.id]
        commit_or_conflict(uow)
        return MotionView(decision, actions, votes, _stored_count(decision))


def withdraw_motion(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str) -> None:
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id, lock=True)
        access.require_manager(principal, uow.meetings, meeting.community_id)
        if not decision.is_open:
            raise Conflict("a recorded decision cannot be withdrawn", fields={"status": [decision.status]})
        uow.session.delete(decision)
        uow.commit()


def _adopt_document(uow: MeetingsUnitOfWork, decision: Decision) -> CommunityDocument:
    current = uow.meetings.current_document(decision.community_id, decision.document_kind or "")
    document = CommunityDocument(
        community_id=decision.community_id,
        kind=decision.document_kind or "",
        version=(current.version + 1) if current else 1,
        title=decision.document_title or "",
        body=decision.document_body or "",
        rules=decision.document_rules,
        decision_id=decision.id,
        meeting_id=decision.meeting_id,
        adopted_at=decision.recorded_at or uow.now(),
    )
    uow.meetings.add(document)
    return document


def get_decision(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str) -> MotionView:
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id)
        [view] = _motion_views(uow, principal, meeting, [decision])
        return view


def list_decisions(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str) -> list[MotionView]:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id)
        return _motion_views(uow, principal, meeting, uow.meetings.decisions_of(meeting.id))


# --- action items ------------------------------------------------------------------------------------------
def list_action_items(
    uow: MeetingsUnitOfWork, principal: Principal, *, offset: int, limit: int, overdue: bool | None, **filters: Any
) -> tuple[list[ActionItemView], int]:
    with uow:
        if overdue:
            filters["overdue_on"] = uow.today()
        items, total = uow.meetings.list_action_items(
            access.visible_action_items(principal), offset=offset, limit=limit, **filters
        )
        return action_item_views(uow, principal, items), total


def get_action_item(uow: MeetingsUnitOfWork, principal: Principal, item_id: str) -> ActionItemView:
    with uow:
        item = uow.meetings.action_item(item_id)
        if item is None or not access.can_see_action_item(principal, uow.meetings, item):
            raise NotFound("action item {item_id} not found", item_id=item_id)
        [view] = action_item_views(uow, principal, [item])
        return view


def update_action_item(
    uow: MeetingsUnitOfWork, principal: Principal, item_id: str, changes: dict[str, Any]
) -> ActionItem:
    """Reassign or reschedule (the staff), or report status, progress and a note (the staff or the
    owner). Completing an item publishes meetings.action_item.completed; other reports publish
    meetings.action_item.updated; a reassignment, meetings.action_item.assigned. Each carries how
    far the decision's action items are (`decision_complete` once all are done), for the issue."""
    with uow:
        # The item, then its decision, locked in that order: two reports on one item, or on two
        # items of one decision, are counted one after the other, so exactly one of them sees the
        # decision complete.
        item = uow.meetings.action_item(item_id, lock=True)
        if item is None or not access.can_see_action_item(principal, uow.meetings, item):
            raise NotFound("action item {item_id} not found", item_id=item_id)
        if not access.can_update_action_item(principal, uow.meetings, item):
            raise Forbidden("only the community's staff or the item's owner may update it")
        managing = access.can_manage_community(principal, uow.meetings, item.community_id)
        reassigned = False
        changed: set[str] = set()
        for name in (
            "owner_body",
            "owner_user_id",
            "owner_organisation_id",
            "owner_organisation_name",
            "due_date",
            "title",
        ):
            if name in changes and getattr(item, name) != changes[name]:
                if not managing:
                    raise Forbidden("only the community's staff may reassign or reschedule an action item")
                setattr(item, name, changes[name])
                changed.add(name)
                reassigned = True
        if reassigned:
            problems = owner_problems(
                {
                    "owner_body": item.owner_body,
                    "owner_organisation_id": item.owner_organisation_id,
                    "owner_organisation_name": item.owner_organisation_name,
                }
            )
            if problems:
                raise Invalid("invalid owner", fields=problems)
            # A new party owner is checked against the register; one left nameless takes its name.
            new_owner = changed & {"owner_body", "owner_organisation_id"} or not item.owner_organisation_name
            if new_owner and item.owner_body == "party_organisation" and item.owner_organisation_id:
                owner = named_owner(
                    uow,
                    item.community_id,
                    {
                        "owner_body": item.owner_body,
                        "owner_organisation_id": item.owner_organisation_id,
                        # A new organisation without a name given takes the register's.
                        "owner_organisation_name": changes.get("owner_organisation_name")
                        if "owner_organisation_id" in changed
                        else item.owner_organisation_name,
                    },
                )
                item.owner_organisation_name = owner["owner_organisation_name"]
        before = (item.status, item.progress, item.note)
        decision = uow.meetings.decision(item.decision_id, lock=True)
        item.report(
            status=ActionStatus(changes["status"]) if "status" in changes else None,
            progress=changes.get("progress"),
            note=changes.get("note"),
            now=uow.now(),
        )
        street_id = uow.meetings.street_for_event(item.community_id)
        uow.session.flush()
        follow_up = FollowUp.of(uow.meetings.action_items_of([item.decision_id]))
        if item.status == ActionStatus.DONE and before[0] != ActionStatus.DONE:
            uow.publish(events.action_item_changed(item, street_id, "completed", decision, follow_up))
        elif (item.status, item.progress, item.note) != before:
            uow.publish(events.action_item_changed(item, street_id, "updated", decision, follow_up))
        if reassigned:
            uow.publish(events.action_item_changed(item, street_id, "assigned", decision, follow_up))
        uow.commit()
        return item


# --- documents ----------------------------------------------------------------------------------------------
def documents(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str, kind: DocumentKind
) -> tuple[CommunityDocument | None, list[CommunityDocument]]:
    """The current version (None when the community has adopted none) and the whole history."""
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        history = uow.meetings.document_history(community_id, kind)
        return (history[0] if history else None), history


def effective_rules(
    uow: MeetingsUnitOfWork, principal: Principal, community_id: str
) -> tuple[RulesOfProcedure, int | None]:
    with uow:
        access.require_community_member(principal, uow.meetings, community_id)
        return rules_in_force(uow, community_id)
