"""Use cases of decisions: open a motion, vote, record the decision under the community's rules of
procedure, follow its action items; and the versioned rules and conventions it may adopt."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError

from linli_kit.auth import Principal
from linli_kit.errors import Conflict, Forbidden, Invalid, NotFound
from linli_meetings.domain.decision import (
    ActionItem,
    ActionStatus,
    Choice,
    CommunityDocument,
    Decision,
    DocumentKind,
    IssueEffect,
    Method,
    Vote,
    check_proposed_actions,
)
from linli_meetings.domain.meeting import Meeting, Status
from linli_meetings.domain.procedure import DEFAULT_RULES, RulesOfProcedure, Threshold
from linli_meetings.service_layer import access, events
from linli_meetings.service_layer.meetings import commit_or_conflict, load_meeting, managed_meeting
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


def rules_in_force(uow: MeetingsUnitOfWork, community_id: str) -> tuple[RulesOfProcedure, int | None]:
    """The community's current rules of procedure and their version; the defaults when it has none."""
    current = uow.meetings.current_document(community_id, DocumentKind.RULES_OF_PROCEDURE)
    return _rules(current.rules if current else None), current.version if current else None


def _rules(structured: dict[str, Any] | None) -> RulesOfProcedure:
    return RulesOfProcedure.from_dict(structured) if structured else DEFAULT_RULES


def open_motion(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, data: dict[str, Any]) -> Decision:
    with uow:
        meeting = managed_meeting(uow, principal, meeting_id, lock=True)
        if meeting.status != Status.IN_PROGRESS:
            raise Conflict(
                f"motions are put while the meeting is in progress; it is {meeting.status}",
                fields={"status": [meeting.status]},
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
        return decision


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
        raise NotFound(f"motion {decision_id} not found")
    return meeting, decision


def cast_vote(uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str, choice: Choice) -> Vote:
    with uow:
        # A vote reads the motion with its meeting, and the voter's own participation: not the
        # whole list of people, which every one of fifty votes would otherwise load again.
        found = uow.meetings.motion_with_meeting(meeting_id, decision_id)
        voter, already = uow.meetings.voter(meeting_id, decision_id, principal.user_id) if found else (None, False)
        if found is None or (voter is None and not access.can_see_meeting_in_scope(principal, uow.meetings, found[1])):
            raise NotFound(f"motion {decision_id} of meeting {meeting_id} not found")
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
) -> Decision:
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id, lock=True)
        access.require_manager(principal, uow.meetings, meeting.community_id)
        decision.record_tally(tally["votes_for"], tally["votes_against"], tally["abstentions"])
        uow.commit()
        return decision


def record_decision(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str
) -> tuple[Decision, list[ActionItem]]:
    """Close the vote; adopt what an adopted motion carries; announce it to the issues service."""
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
            roll_call=uow.meetings.roll_call(decision.id) if decision.method == Method.ROLL_CALL else None,
        )
        uow.meetings.add(*actions)
        street_id = uow.meetings.street_for_event(meeting.community_id)
        if decision.adopted and decision.document_kind:
            _adopt_document(uow, decision)
        uow.publish(events.decision_recorded(decision, meeting, actions, street_id))
        for action in actions:
            uow.publish(events.action_item_changed(action, street_id, completed=False))
        commit_or_conflict(uow)
        return decision, actions


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


def get_decision(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str, decision_id: str
) -> tuple[Decision, list[ActionItem], list[Vote]]:
    with uow:
        meeting, decision = _decision_of(uow, principal, meeting_id, decision_id)
        votes = uow.meetings.votes_of(decision.id)
        if not access.can_manage_community(principal, uow.meetings, meeting.community_id):
            # Who voted how is for the chair; others see the counts.
            votes = [v for v in votes if v.voter_id == principal.user_id]
        return decision, uow.meetings.action_items_of([decision.id]), votes


def list_decisions(
    uow: MeetingsUnitOfWork, principal: Principal, meeting_id: str
) -> list[tuple[Decision, list[ActionItem]]]:
    with uow:
        meeting = load_meeting(uow, principal, meeting_id)
        decisions = uow.meetings.decisions_of(meeting.id)
        actions = uow.meetings.action_items_of([d.id for d in decisions])
        return [(d, [a for a in actions if a.decision_id == d.id]) for d in decisions]


# --- action items ------------------------------------------------------------------------------------------
def list_action_items(
    uow: MeetingsUnitOfWork, principal: Principal, *, offset: int, limit: int, overdue: bool | None, **filters: Any
) -> tuple[list[ActionItem], int]:
    with uow:
        if overdue:
            filters["overdue_on"] = uow.today()
        return uow.meetings.list_action_items(
            access.visible_action_items(principal), offset=offset, limit=limit, **filters
        )


def get_action_item(uow: MeetingsUnitOfWork, principal: Principal, item_id: str) -> ActionItem:
    with uow:
        item = uow.meetings.action_item(item_id)
        if item is None or not access.can_see_action_item(principal, uow.meetings, item):
            raise NotFound(f"action item {item_id} not found")
        return item


def update_action_item(
    uow: MeetingsUnitOfWork, principal: Principal, item_id: str, changes: dict[str, Any]
) -> ActionItem:
    with uow:
        item = uow.meetings.action_item(item_id)
        if item is None or not access.can_see_action_item(principal, uow.meetings, item):
            raise NotFound(f"action item {item_id} not found")
        if not access.can_update_action_item(principal, uow.meetings, item):
            raise Forbidden("only the community's staff or the item's owner may update it")
        managing = access.can_manage_community(principal, uow.meetings, item.community_id)
        reassigned = False
        for name in ("owner_body", "owner_user_id", "owner_organisation_id", "due_date", "title"):
            if name in changes and getattr(item, name) != changes[name]:
                if not managing:
                    raise Forbidden("only the community's staff may reassign or reschedule an action item")
                setattr(item, name, changes[name])
                reassigned = True
        was_done = item.status == ActionStatus.DONE
        if "status" in changes:
            item.change_status(ActionStatus(changes["status"]), changes.get("note"), uow.now())
        elif "note" in changes:
            item.note = changes["note"]
        street_id = uow.meetings.street_for_event(item.community_id)
        if item.status == ActionStatus.DONE and not was_done:
            uow.publish(events.action_item_changed(item, street_id, completed=True))
        elif reassigned:
            uow.publish(events.action_item_changed(item, street_id, completed=False))
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
