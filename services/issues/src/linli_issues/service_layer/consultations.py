"""Following the meetings service: agendas, decisions and action items move the issues they name.

These run as event handlers inside the consumer's transaction (with the inbox row), so each is
applied once. Events may come late or out of order: a meeting's snapshot carries a revision, and a
link to a meeting is only changed by a newer revision. A handler never raises for a state the issue
cannot take (a decision on an issue closed meanwhile): it records what happened on the timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from linli_issues.adapters.preloaded import PreloadedRepository
from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.tables import messaging
from linli_issues.domain import wording
from linli_issues.domain.model import Issue, TimelineEntry
from linli_issues.service_layer.events import issue_event
from linli_issues.service_layer.issues import route_to_organisation
from linli_kit.errors import Conflict, Text
from linli_kit.events import Event
from linli_kit.events.consumer import BatchHandler, Handler, batch_handler
from linli_kit.events.outbox import Outbox

log = logging.getLogger(__name__)
# Issues in these states are moved into deliberation when a meeting takes them up.
ENTERS_DELIBERATION = frozenset({"reported", "accepted", "resolving"})


class _Changes:
    """Collects the events a handler raises; written to the outbox in the consumer's transaction."""

    def __init__(self, session: Session, repo: IssueRepository | None = None) -> None:
        self.session = session
        self.repo = repo or IssueRepository(session)
        self.events: list[Event] = []

    def publish(self, event_type: str, issue: Issue, **extra: Any) -> None:
        self.events.append(
            issue_event(
                event_type,
                issue,
                actor_id=None,
                street_id=self.repo.street_of(issue.community_id),
                supporter_ids=self.repo.supporter_ids(issue.id),
                **extra,
            )
        )

    def note(self, issue: Issue, kind: str, now: datetime, body: str | None, data: dict[str, Any]) -> None:
        body, data = wording.with_message(body, data)  # a machine reason (a Text): kept with its message
        if isinstance(self.repo, PreloadedRepository):
            self.repo.note(issue.id, kind, now, body, data)  # a row for the batch's one INSERT
            return
        self.repo.add(TimelineEntry(issue_id=issue.id, kind=kind, created_at=now, body=body, data=data))

    def move(self, issue: Issue, status: str, now: datetime, reason: str | None) -> bool:
        if issue.status == status:
            return False
        try:
            previous = issue.move_to(status, now)
        except Conflict:
            return False
        self.note(issue, "status", now, reason, {"from": previous, "to": status})
        if previous == "reported":
            route_to_organisation(self.repo, issue, now)
        if status == "resolved":
            self.publish("issues.issue.resolved", issue, from_status=previous, summary=issue.resolution_summary)
        else:
            # The event carries the reason's English, as ever (events carry data, not words).
            plain = str(reason) if reason is not None else None
            self.publish("issues.issue.status_changed", issue, from_status=previous, reason=plain)
        return True

    def flush(self) -> None:
        if isinstance(self.repo, PreloadedRepository):
            self.repo.write()
        self.session.flush()
        Outbox(messaging.outbox).add(self.session, self.events)
        self.events = []


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _issue_ids(data: dict[str, Any]) -> list[str]:
    ids = [str(i) for i in data.get("issue_ids") or []]
    ids += [str(item["issue_id"]) for item in data.get("agenda") or [] if item.get("issue_id")]
    return list(dict.fromkeys(ids))


def _link(changes: _Changes, issue: Issue, meeting: dict[str, Any], revision: int, now: datetime) -> None:
    """Put the meeting in the issue's history; the first time, the issue enters deliberation."""
    repo = changes.repo
    existing = repo.meeting_link(issue.id, meeting["meeting_id"])
    starts_at = _dt(meeting["starts_at"])
    if existing is None:
        repo.add_meeting_link(
            issue_id=issue.id,
            meeting_id=meeting["meeting_id"],
            community_id=meeting["community_id"],
            meeting_type=meeting["meeting_type"],
            title=meeting["title"],
            starts_at=starts_at,
            status=meeting.get("status", "scheduled"),
            concluded_at=meeting.get("concluded_at"),
            meeting_revision=revision,
            linked_at=now,
        )
        changes.note(
            issue,
            "meeting",
            now,
            meeting["title"],
            {
                "meeting_id": meeting["meeting_id"],
                "meeting_type": meeting["meeting_type"],
                "starts_at": meeting["starts_at"],
            },
        )
        _recount(changes, issue, now)
        if issue.status in ENTERS_DELIBERATION and meeting.get("status") != "cancelled":
            changes.move(issue, "deliberating", now, Text(wording.ON_THE_AGENDA, title=meeting["title"]))
    elif existing["meeting_revision"] < revision:
        repo.update_meeting_link(
            issue.id,
            meeting["meeting_id"],
            title=meeting["title"],
            starts_at=starts_at,
            status=meeting.get("status", existing["status"]),
            concluded_at=meeting.get("concluded_at") or existing["concluded_at"],
            meeting_revision=revision,
        )
        _recount(changes, issue, now)


def _recount(changes: _Changes, issue: Issue, now: datetime) -> None:
    """Keep the issue's consultation count. A new count alone publishes nothing: every `issues.*`
    event of the contract brings a notice to the reporter and supporters, and the status has not
    changed. The count rides on the issue's next event (a meeting that moves the issue into
    deliberation publishes that move with the new count)."""
    count = changes.repo.count_consultations(issue.id)
    if count != issue.consultation_count:
        issue.consultation_count = count
        issue.touch(now)


def _meeting_snapshot(status: str) -> Any:
    def handle(changes: _Changes, event: Event) -> None:
        data = event.data
        now = datetime.now(UTC)
        meeting = {
            "meeting_id": str(data["meeting_id"]),
            "community_id": str(data["community_id"]),
            "meeting_type": data["meeting_type"],
            "title": data["title"],
            "starts_at": data["starts_at"],
            "status": status,
            "concluded_at": _dt(data.get("concluded_at")),
        }
        revision = int(data["revision"])
        wanted = set(_issue_ids(data))
        # Issues already linked to this meeting follow it even if it no longer lists them.
        linked = {link["issue_id"] for link in changes.repo.meeting_links_of_meeting(meeting["meeting_id"])}
        for issue_id in sorted(wanted | linked):
            issue = changes.repo.get(issue_id, for_update=True)
            if issue is None:
                log.warning("meeting names an unknown issue", extra={"issue_id": issue_id})
                continue
            _link(changes, issue, meeting, revision, now)
            if status == "cancelled" and issue_id in linked:
                changes.note(issue, "meeting_cancelled", now, data.get("reason"), {"meeting_id": meeting["meeting_id"]})

    return handle


def on_agenda_item_added(changes: _Changes, event: Event) -> None:
    data = event.data
    issue = changes.repo.get(str(data["issue_id"]), for_update=True)
    if issue is None:
        return
    meeting = {
        "meeting_id": str(data["meeting_id"]),
        "community_id": str(data["community_id"]),
        "meeting_type": data["meeting_type"],
        "title": data["title"],
        "starts_at": data["starts_at"],
    }
    # Revision 0: any snapshot of the meeting itself is newer and will refresh this link.
    _link(changes, issue, meeting, 0, datetime.now(UTC))


def on_decision_recorded(changes: _Changes, event: Event) -> None:
    data = event.data
    now = datetime.now(UTC)
    effect = data["issue_effect"] if data["outcome"] == "adopted" else "none"
    for issue_id in [str(i) for i in data.get("issue_ids") or []]:
        issue = changes.repo.get(issue_id, for_update=True)
        if issue is None:
            continue
        changes.note(
            issue,
            "decision",
            now,
            data["motion"],
            {
                "decision_id": str(data["decision_id"]),
                "meeting_id": str(data["meeting_id"]),
                "outcome": data["outcome"],
                "rule": data["rule"],
                "votes_for": data["votes_for"],
                "votes_against": data["votes_against"],
                "abstentions": data["abstentions"],
                "issue_effect": effect,
                "resolution_plan": data.get("resolution_plan"),
            },
        )
        if effect == "resolution_plan" or (effect == "resolve" and data.get("action_items")):
            # A decision to resolve that leaves work to do resolves the issue once its action
            # items are done (see _follow); until then the issue is being resolved.
            issue.resolution_plan = data.get("resolution_plan") or data["motion"]
            if issue.status in ("reported", "accepted"):
                changes.move(issue, "deliberating", now, Text(wording.DECIDED_AT_A_MEETING))
            changes.move(issue, "resolving", now, issue.resolution_plan)
        elif effect == "resolve":
            issue.resolution_summary = data.get("resolution_plan") or data["motion"]
            if issue.status == "reported":
                changes.move(issue, "accepted", now, Text(wording.DECIDED_AT_A_MEETING))
            changes.move(issue, "resolved", now, issue.resolution_summary)
        elif effect == "escalate":
            _escalate(changes, issue, now, data["motion"])
        elif effect == "reconsult":
            if issue.status in ENTERS_DELIBERATION:
                changes.move(issue, "deliberating", now, Text(wording.TO_BE_CONSULTED_AGAIN))
        if data.get("action_items"):
            # Its action items are to do: the issue shows 0 of them done until they are reported.
            _follow(
                changes,
                issue,
                str(data["decision_id"]),
                effect=effect,
                action_items=len(data["action_items"]),
                done=0,
                complete=False,
                at=event.occurred_at,
                now=now,
            )
        issue.updated_at = now


def _escalate(changes: _Changes, issue: Issue, now: datetime, reason: str) -> None:
    category = changes.repo.category(issue.category)
    if category is None or not issue.is_open or issue.next_tier() is None:
        return
    previous = issue.escalate(category, now, reason)
    changes.note(issue, "escalation", now, reason, {"from": previous, "to": issue.tier, "automatic": False})
    changes.publish("issues.issue.escalated", issue, from_tier=previous, reason=reason, automatic=False)


def on_action_item(changes: _Changes, event: Event) -> None:
    """An action item was assigned, updated or completed: put it on the timeline of the issues of
    its decision, keep how far the decision's action items are, and once they are all done move the
    issues on as the decision said (resolution_plan: resolving; resolve: resolved)."""
    data = event.data
    now = datetime.now(UTC)
    issue_ids = [str(i) for i in data.get("issue_ids") or []]
    if data.get("issue_id"):
        issue_ids.insert(0, str(data["issue_id"]))
    for issue_id in dict.fromkeys(issue_ids):
        issue = changes.repo.get(issue_id, for_update=True)
        if issue is None:
            continue
        changes.note(
            issue,
            "action_item",
            now,
            data["title"],
            {
                "action_item_id": str(data["action_item_id"]),
                "decision_id": str(data["decision_id"]),
                "owner_body": data["owner_body"],
                "owner_organisation_name": data.get("owner_organisation_name"),
                "due_date": data.get("due_date"),
                "status": data["status"],
                "progress": data.get("progress"),
                "note": data.get("note"),
                "event": event.type,
            },
        )
        if data.get("decision_complete") is None or data.get("decision_action_items") is None:
            continue  # an event of before the counts: nothing to count
        _follow(
            changes,
            issue,
            str(data["decision_id"]),
            effect=data.get("decision_issue_effect"),
            action_items=int(data["decision_action_items"]),
            done=int(data.get("decision_action_items_done") or 0),
            complete=bool(data["decision_complete"]),
            at=event.occurred_at,
            now=now,
        )


# Where an issue goes once the action items of its decision are done, by the decision's effect;
# the first status is the way there from a reported issue (as when the decision was recorded).
_MOVES_ON = {"resolution_plan": ("deliberating", "resolving"), "resolve": ("accepted", "resolved")}


def _follow(
    changes: _Changes,
    issue: Issue,
    decision_id: str,
    *,
    effect: str | None,
    action_items: int,
    done: int,
    complete: bool,
    at: datetime,
    now: datetime,
) -> None:
    """Count the decision's action items on the issue. Events are applied in the order they
    happened (the meetings service counts a decision's items one report at a time, so a later
    event carries the later count): one older than the last counted changes nothing."""
    repo = changes.repo
    row = repo.decision_follow_up(issue.id, decision_id)
    if row is not None and row["event_at"] >= at:
        return
    effect = effect or (row["issue_effect"] if row else None)
    applied = bool(row and row["applied"])
    if complete and not applied and action_items > 0:
        target = _MOVES_ON.get(effect or "")
        moved = False
        reason = Text(wording.ACTION_ITEMS_DONE)
        if target is not None:
            way, status = target
            if issue.status == "reported":
                changes.move(issue, way, now, reason)
            if status == "resolved" and issue.can_move_to("resolved"):
                # What was decided is what was done: the summary the resolved event carries.
                issue.resolution_summary = issue.resolution_plan or str(reason)
            moved = changes.move(issue, status, now, reason)
        changes.note(
            issue,
            "follow_up",
            now,
            reason,
            {"decision_id": decision_id, "action_items": action_items, "done": done, "complete": True, "moved": moved},
        )
        applied = True
    elif not complete and applied:
        # Reopened: an item is no longer done. The issue stays where it is (staff decide whether
        # to reopen it), but its timeline says so.
        changes.note(
            issue,
            "follow_up",
            now,
            Text(wording.ACTION_ITEM_UNDONE),
            {"decision_id": decision_id, "action_items": action_items, "done": done, "complete": False},
        )
        applied = False
    repo.save_decision_follow_up(
        issue.id,
        decision_id,
        new=row is None,
        issue_effect=effect,
        action_items=action_items,
        done=done,
        complete=complete,
        applied=applied,
        event_at=at,
    )
    totals = repo.follow_up_totals(issue.id)
    if totals != (issue.action_items, issue.action_items_done):
        issue.action_items, issue.action_items_done = totals
        issue.touch(now)


_RULES: dict[str, Callable[[_Changes, Event], None]] = {
    "meetings.meeting.scheduled": _meeting_snapshot("scheduled"),
    "meetings.meeting.rescheduled": _meeting_snapshot("scheduled"),
    "meetings.meeting.cancelled": _meeting_snapshot("cancelled"),
    "meetings.meeting.concluded": _meeting_snapshot("concluded"),
    "meetings.agenda_item.added": on_agenda_item_added,
    "meetings.decision.recorded": on_decision_recorded,
    "meetings.action_item.assigned": on_action_item,
    "meetings.action_item.completed": on_action_item,
    "meetings.action_item.updated": on_action_item,
}


def handle_one(session: Session, event: Event) -> None:
    """One meetings event, alone in its transaction."""
    changes = _Changes(session)
    _RULES[event.type](changes, event)
    changes.flush()


def handle_batch(session: Session, events: list[Event]) -> None:
    """A run of meetings events in the consumer's batch: the same rules, in the order of arrival,
    over one `PreloadedRepository` (the issues and meetings they name read and locked at once; the
    issues, links, decisions and timeline entries written at the end with one statement per table
    and kind) and one write to the outbox. Same effects as `handle_one` for each event in turn
    (tests/test_meeting_event_batches.py compares them on random runs of events)."""
    repo = PreloadedRepository(session)
    issue_ids: set[str] = set()
    meeting_ids: set[str] = set()
    linked_meetings: set[str] = set()  # agenda items: the issue's link to the meeting is read
    decision_ids: set[str] = set()  # decisions and action items: the decisions followed up
    for event in events:
        data = event.data
        issue_ids.update(_issue_ids(data))
        if data.get("issue_id"):
            issue_ids.add(str(data["issue_id"]))
        if event.type.startswith("meetings.meeting."):
            meeting_ids.add(str(data["meeting_id"]))
        elif event.type == "meetings.agenda_item.added":
            linked_meetings.add(str(data["meeting_id"]))
        elif "decision_id" in data:
            decision_ids.add(str(data["decision_id"]))
    repo.load(issue_ids, meeting_ids, linked_meetings, decision_ids)
    changes = _Changes(session, repo)
    for event in events:
        _RULES[event.type](changes, event)
    changes.flush()


def meeting_handlers() -> dict[str, Handler | BatchHandler]:
    """Every meetings event type to one batch handler (a run of them in a consumer batch is handled
    with a fixed number of statements); `handle_one` is the same rules for one event."""
    batched = batch_handler(handle_batch)
    return dict.fromkeys(_RULES, batched)
