"""The meetings.* events, built from the domain as declared in linli_kit.events.contracts.meetings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from linli_kit.events import Event, new_event
from linli_meetings import SERVICE
from linli_meetings.domain.decision import ActionItem, Decision, FollowUp
from linli_meetings.domain.meeting import AgendaItem, Meeting
from linli_meetings.domain.proposal import MeetingProposal


def snapshot(meeting: Meeting) -> dict[str, Any]:
    return {
        "meeting_id": meeting.id,
        "community_id": meeting.community_id,
        "meeting_type": meeting.meeting_type,
        "title": meeting.title,
        "starts_at": meeting.starts_at,
        "ends_at": meeting.ends_at,
        "place": meeting.place,
        "online_url": meeting.online_url,
        "convener_id": meeting.convener_id,
        "public": meeting.public,
        "agenda": [{"item_id": i.id, "title": i.title, "issue_id": i.issue_id} for i in meeting.ordered_agenda()],
        "issue_ids": meeting.issue_ids,
        "participant_ids": meeting.participant_ids(),
        "revision": meeting.revision,
    }


def _event(event_type: str, data: dict[str, Any], community_id: str, street_id: str | None) -> Event:
    return new_event(event_type, data, producer=SERVICE, community_id=community_id, street_id=street_id)


def scheduled(meeting: Meeting, street_id: str | None) -> Event:
    return _event("meetings.meeting.scheduled", snapshot(meeting), meeting.community_id, street_id)


def rescheduled(meeting: Meeting, previous_starts_at: datetime, reason: str | None, street_id: str | None) -> Event:
    data = snapshot(meeting) | {"previous_starts_at": previous_starts_at, "reason": reason}
    return _event("meetings.meeting.rescheduled", data, meeting.community_id, street_id)


def cancelled(meeting: Meeting, reason: str, street_id: str | None) -> Event:
    return _event("meetings.meeting.cancelled", snapshot(meeting) | {"reason": reason}, meeting.community_id, street_id)


def concluded(meeting: Meeting, street_id: str | None) -> Event:
    data = snapshot(meeting) | {"attendees_count": meeting.attendees_count or 0, "concluded_at": meeting.concluded_at}
    return _event("meetings.meeting.concluded", data, meeting.community_id, street_id)


def agenda_item_added(meeting: Meeting, item: AgendaItem, street_id: str | None) -> Event:
    data = {
        "meeting_id": meeting.id,
        "community_id": meeting.community_id,
        "meeting_type": meeting.meeting_type,
        "title": meeting.title,
        "starts_at": meeting.starts_at,
        "item_id": item.id,
        "issue_id": item.issue_id,
        "item_title": item.title,
    }
    return _event("meetings.agenda_item.added", data, meeting.community_id, street_id)


def decision_recorded(decision: Decision, meeting: Meeting, actions: list[ActionItem], street_id: str | None) -> Event:
    data = {
        "decision_id": decision.id,
        "meeting_id": decision.meeting_id,
        "community_id": decision.community_id,
        "motion": decision.motion,
        "outcome": decision.outcome,
        "rule": decision.rule,
        "votes_for": decision.votes_for,
        "votes_against": decision.votes_against,
        "abstentions": decision.abstentions,
        "issue_ids": [decision.issue_id] if decision.issue_id else [],
        "issue_effect": decision.effective_issue_effect,
        "resolution_plan": decision.resolution_plan if decision.adopted else None,
        "action_items": [
            {
                "action_item_id": a.id,
                "title": a.title,
                "owner_body": a.owner_body,
                "owner_organisation_id": a.owner_organisation_id,
                "owner_organisation_name": a.owner_organisation_name,
                "due_date": a.due_date,
            }
            for a in actions
        ],
        "participant_ids": meeting.participant_ids(),
    }
    return _event("meetings.decision.recorded", data, decision.community_id, street_id)


def action_item_changed(
    item: ActionItem, street_id: str | None, change: str, decision: Decision | None, follow_up: FollowUp
) -> Event:
    """meetings.action_item.<change> (assigned, updated, completed), with how far the decision's
    action items are: the issues service moves the issue on once `decision_complete`."""
    data = {
        "action_item_id": item.id,
        "decision_id": item.decision_id,
        "meeting_id": item.meeting_id,
        "community_id": item.community_id,
        "issue_id": item.issue_id,
        "issue_ids": [item.issue_id] if item.issue_id else [],
        "title": item.title,
        "owner_body": item.owner_body,
        "owner_user_id": item.owner_user_id,
        "owner_organisation_id": item.owner_organisation_id,
        "owner_organisation_name": item.owner_organisation_name,
        "due_date": item.due_date,
        "status": item.status,
        "progress": item.progress,
        "note": item.note,
        "decision_issue_effect": decision.effective_issue_effect if decision else None,
        "decision_action_items": follow_up.action_items,
        "decision_action_items_done": follow_up.done,
        "decision_complete": follow_up.complete,
    }
    return _event(f"meetings.action_item.{change}", data, item.community_id, street_id)


def proposal(event_type: str, item: MeetingProposal, street_id: str | None, **extra: Any) -> Event:
    """meetings.proposal.submitted / accepted / declined: a resident's proposal and its answer."""
    data = {
        "proposal_id": item.id,
        "community_id": item.community_id,
        "issue_id": item.issue_id,
        "proposer_id": item.proposer_id,
        "meeting_type": item.meeting_type,
        "reason": item.reason,
        "status": item.status,
        "decided_by": item.decided_by,
        "decision_reason": item.decision_reason,
        "meeting_id": item.meeting_id,
        **extra,
    }
    return _event(f"meetings.proposal.{event_type}", data, item.community_id, street_id)
