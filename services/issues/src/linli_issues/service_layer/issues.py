"""Use cases of the issue lifecycle, over a unit of work; every change goes out as an `issues.*` event."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from linli_issues.adapters.images import prepare_photo
from linli_issues.adapters.photo_store import PhotoMissing, PhotoStore
from linli_issues.adapters.repository import IssueRepository
from linli_issues.domain import privacy, similarity, wording
from linli_issues.domain.model import Category, Issue, IssueSummary, TimelineEntry, sortable_id
from linli_issues.domain.photos import EXTENSIONS, MAX_PHOTO_BYTES, THUMBNAIL_SIDE
from linli_issues.service_layer import access
from linli_issues.service_layer.events import issue_event
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.errors import Conflict, Forbidden, Invalid, Label, NotFound, Text
from linli_kit.events import Event

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IssueView:
    """An issue as one caller may see it: `masked`, its text with phone and identity-card numbers
    masked (domain/privacy.py)."""

    issue: Issue | IssueSummary
    show_reporter: bool
    internal: bool
    supported_by_me: bool = False
    masked: bool = True


def _view_of(principal: Principal, issue: Issue, street_of: Callable[[str], str | None]) -> IssueView:
    return IssueView(
        issue=issue,
        show_reporter=access.sees_reporter(principal, issue, street_of),
        internal=access.sees_internal(principal, issue, street_of),
        masked=not access.sees_text_unmasked(principal, issue, street_of),
    )


def _views_of(
    principal: Principal, issues: Iterable[Issue | IssueSummary], street_of: Callable[[str], str | None]
) -> list[IssueView]:
    """`_view_of` of each issue of a page, decided once per kind of issue rather than per row.

    What the caller sees of an issue depends on nothing of it but what `_view_key` holds (the rules
    in service_layer/access.py read the community, whether the caller reported it, its anonymity and
    whom it is assigned to): the rows of a page mostly share one key, so the rules run a few times
    a page instead of twenty (tests/test_list_rows.py compares both ways)."""
    me = access.person_id(principal)
    organisation = principal.organisation_id
    decided: dict[tuple[Any, ...], tuple[bool, bool, bool]] = {}
    views = []
    for issue in issues:
        key = _view_key(issue, me, organisation)
        flags = decided.get(key)
        if flags is None:
            plain = _view_of(principal, issue, street_of)
            flags = decided[key] = (plain.show_reporter, plain.internal, plain.masked)
        views.append(IssueView(issue, flags[0], flags[1], False, flags[2]))
    return views


def _view_key(issue: Issue | IssueSummary, me: str, organisation: str | None) -> tuple[Any, ...]:
    """All an issue's view depends on for one caller (`me`, of `organisation`): `access.sees_reporter`,
    `sees_internal` and `sees_text_unmasked` read these and nothing else of the issue."""
    assigned_to_mine = organisation is not None and issue.assignee_id == organisation
    return (
        issue.community_id,
        issue.reporter_id == me,
        bool(issue.anonymous),
        assigned_to_mine,
        assigned_to_mine and issue.assignee_type == "owners_committee",
    )


# --- helpers -------------------------------------------------------------------------------------
def _load(uow: IssuesUnitOfWork, principal: Principal, issue_id: str, *, for_update: bool = False) -> Issue:
    issue = uow.issues.get(issue_id, for_update=for_update)
    return access.require_visible(principal, issue, uow.issues.street_of, issue_id, uow.issues.is_supporter)


def _category(uow: IssuesUnitOfWork, key: str) -> Category:
    category = uow.issues.category(key)
    if category is None:
        raise Invalid("unknown category", fields={"category": [Text("no category {key!r}", key=key)]})
    return category


# Categories are configuration: read on every report, changed a few times a year. Each process keeps
# them for a short while; a change made in another process is seen within CATEGORY_CACHE_SECONDS.
CATEGORY_CACHE_SECONDS = 30.0
_category_cache: dict[str, tuple[float, Category]] = {}


def _cached_category(uow: IssuesUnitOfWork, key: str) -> Category:
    hit = _category_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CATEGORY_CACHE_SECONDS:
        return hit[1]
    stored = _category(uow, key)
    # A plain copy, never attached to a session, so threads can share it.
    copy = Category(
        key=stored.key,
        name=stored.name,
        default_tier=stored.default_tier,
        responsible_body=stored.responsible_body,
        deadline_hours=dict(stored.deadline_hours),
        active=stored.active,
        position=stored.position,
        publication=stored.publication,
    )
    _category_cache[key] = (time.monotonic(), copy)
    return copy


def _note(uow: IssuesUnitOfWork, issue: Issue, kind: str, now: datetime, **values: Any) -> TimelineEntry:
    if isinstance(values.get("body"), Text):  # a machine reason: kept with its message
        values["body"], values["data"] = wording.with_message(values["body"], values.get("data") or {})
    entry = TimelineEntry(issue_id=issue.id, kind=kind, created_at=now, **values)
    uow.issues.add(entry)
    return entry


def publish_change(uow: IssuesUnitOfWork, event_type: str, issue: Issue, actor_id: str | None, **extra: Any) -> None:
    """Queue the event of a change in the unit of work: it reaches the outbox with the change."""
    uow.publish(change_event(uow, event_type, issue, actor_id, **extra))


def change_event(uow: IssuesUnitOfWork, event_type: str, issue: Issue, actor_id: str | None, **extra: Any) -> Event:
    """The event of a change (`publish_change`), for a writer that puts it in the outbox itself."""
    # A just-reported issue has no supporters yet: no need to ask the database.
    supporters = uow.issues.supporter_ids(issue.id) if issue.supporter_count else []
    return issue_event(
        event_type,
        issue,
        actor_id=actor_id,
        street_id=uow.issues.street_of(issue.community_id),
        supporter_ids=supporters,
        **extra,
    )


def change_status(
    uow: IssuesUnitOfWork,
    issue: Issue,
    status: str,
    now: datetime,
    *,
    actor_id: str | None,
    reason: str | None = None,
    internal_reason: bool = False,
) -> None:
    """Move the issue, record it on the timeline and publish the matching event.

    Every status event carries `from_status`: the move is always a real change (the transition
    table has no move to the same status), so no notice ever repeats the status an issue had.
    """
    previous = issue.move_to(status, now)
    worded, reason = reason, str(reason) if reason is not None else None  # events carry the English
    if reason is not None:
        issue.reason = reason
    if previous == "reported" and status not in ("rejected", "duplicate"):
        route_to_organisation(uow.issues, issue, now)  # accepted (or taken straight to a meeting)
    reopened = previous in {"resolved", "closed"} and status == "accepted"
    if reopened:
        # Handled again: a fresh deadline by the category's rule, or the next timer tick would
        # find the old, long-passed one and escalate at once.
        issue.restart_deadline(_category(uow, issue.category), now)
    _note(
        uow,
        issue,
        "status",
        now,
        body=worded,
        author_id=actor_id,
        internal=internal_reason,
        data={"from": previous, "to": status},
    )
    if reopened:
        publish_change(uow, "issues.issue.reopened", issue, actor_id, from_status=previous, reason=reason)
    elif status == "resolved":
        publish_change(
            uow, "issues.issue.resolved", issue, actor_id, from_status=previous, summary=issue.resolution_summary
        )
    elif status == "closed":
        publish_change(uow, "issues.issue.closed", issue, actor_id, from_status=previous, rating=issue.rating)
    else:
        accepted = status == "accepted" and previous == "reported"
        publish_change(
            uow,
            "issues.issue.accepted" if accepted else "issues.issue.status_changed",
            issue,
            actor_id,
            from_status=previous,
            reason=reason,
        )


# The bodies that are an organisation of the issue's compound, by the register's kind.
ROUTED_BODIES = {"property_company": "property_company", "owners_committee": "owners_committee"}


def route_to_organisation(repo: IssueRepository, issue: Issue, now: datetime) -> str | None:
    """A category routes to a real organisation: an issue whose responsible body is the compound's
    property company or owners' committee goes to the registered organisation of that kind serving
    its compound, when exactly one does (none, or several, leave the choice to staff). Recorded on
    the timeline; the event of the report or acceptance carries the assignee."""
    kind = ROUTED_BODIES.get(issue.assignee_type or "")
    if kind is None or issue.assignee_id is not None or issue.compound_id is None:
        return None
    found = repo.organisations_of_compound(kind, issue.compound_id)
    if len(found) != 1:
        return None
    organisation = found[0]
    issue.assignee_id = organisation["organisation_id"]
    repo.add(
        TimelineEntry(
            issue_id=issue.id,
            kind="assignment",
            created_at=now,
            body=organisation["name"],
            data={"assignee_type": issue.assignee_type, "assignee_id": issue.assignee_id, "automatic": True},
        )
    )
    return issue.assignee_id


def escalate_issue(
    uow: IssuesUnitOfWork, issue: Issue, now: datetime, *, actor_id: str | None, reason: str | None, automatic: bool
) -> None:
    category = _category(uow, issue.category)
    worded, reason = reason, str(reason) if reason is not None else None  # events carry the English
    previous = issue.escalate(category, now, reason)
    _note(
        uow,
        issue,
        "escalation",
        now,
        body=worded,
        author_id=actor_id,
        data={"from": previous, "to": issue.tier, "automatic": automatic},
    )
    publish_change(
        uow, "issues.issue.escalated", issue, actor_id, from_tier=previous, reason=reason, automatic=automatic
    )


# --- reporting ---------------------------------------------------------------------------------------
def report_issue(uow: IssuesUnitOfWork, principal: Principal, now: datetime, **fields: Any) -> Issue:
    """A resident reports for themself; staff take a report on a resident's behalf; a client via Open311."""
    community_id = str(fields["community_id"])
    on_behalf_of = fields.pop("on_behalf_of", None)
    channel = fields.pop("channel", None) or "app"
    media_url = fields.pop("media_url", None)  # an Open311 client's link to its own media
    if fields.get("compound_id") is None:
        issue = _report_in_one_statement(uow, principal, now, fields, on_behalf_of, channel, media_url)
        if issue is not None:
            return issue
    with uow:
        # The street, the category's publication and the counts' zone in one round trip.
        publication = uow.issues.report_context(community_id, str(fields["category"]))
        issue, entry, me = _new_report(uow, principal, now, fields, publication, on_behalf_of, channel)
        uow.issues.add(issue)
        uow.issues.add(TimelineEntry(**entry, data=_report_data(issue, media_url)))
        if issue.tier == "compound":
            route_to_organisation(uow.issues, issue, now)
        uow.publish(reported_event(uow, issue, me))
        uow.commit()
        return issue


def _report_in_one_statement(
    uow: IssuesUnitOfWork,
    principal: Principal,
    now: datetime,
    fields: dict[str, Any],
    on_behalf_of: Any,
    channel: str,
    media_url: str | None,
) -> Issue | None:
    """A report that reads nothing but its context (street, publication, zone), maybe held from
    the report before, written on PostgreSQL in one statement that is its own transaction (one
    round trip in all). None: it could not be written so (SQLite, an unknown category, a context
    held that no longer holds, a refusal that may come from a context held): `report_issue` then
    reports as ever, from what it reads, refusing with the same errors if they still apply."""
    with uow:
        if not uow.issues.writes_in_one_statement():
            return None
        publication = uow.issues.report_context(str(fields["community_id"]), str(fields["category"]), remembered=True)
        if publication is None:
            return None
        try:
            issue, entry, me = _new_report(
                uow, principal, now, fields, publication, on_behalf_of, channel, make_issue=uow.issues.new_written_issue
            )
        except Forbidden:
            return None  # maybe from a street held that the community has left: asked again
        event = reported_event(uow, issue, me)
        entry_row = {**entry, "data": _report_data(issue, media_url)}
        return issue if uow.issues.insert_report(issue, entry_row, uow.outbox.rows([event])[0]) else None


def _new_report(
    uow: IssuesUnitOfWork,
    principal: Principal,
    now: datetime,
    fields: dict[str, Any],
    publication: str | None,
    on_behalf_of: Any,
    channel: str,
    *,
    make_issue: Callable[..., Issue] = Issue,
) -> tuple[Issue, dict[str, Any], str]:
    """The report's checks, in their order, after the context is read (`report_context`); then the
    new issue, what its report entry says (but its data: `_report_data`) and who reports (`me`).
    `make_issue`: makes the issue from its fields (`Issue`, or the repository's maker of an issue
    written by its own statement)."""
    community_id = str(fields["community_id"])
    if not uow.issues.community_exists(community_id):
        raise Invalid("unknown community", fields={"community_id": ["no such community"]})
    if not access.in_scope(principal, community_id, uow.issues.street_of):
        raise Forbidden("you may only report issues in your own community")
    me = access.person_id(principal)
    reporter_id = me
    reported_by = None
    if principal.role == Role.RESIDENT:
        if on_behalf_of is not None or channel not in ("app",):
            raise Invalid(
                "residents report for themselves",
                fields={"on_behalf_of" if on_behalf_of else "channel": ["only staff report for others"]},
            )
    elif principal.is_staff:
        if on_behalf_of is not None:
            reporter_id, reported_by = str(on_behalf_of), me
            if channel == "app":
                channel = "phone"
    elif principal.role != Role.API_CLIENT:
        raise Forbidden("role {role} may not report issues", role=principal.role.value)
    category = _cached_category(uow, fields["category"])
    if not category.active:
        raise Invalid("category retired", fields={"category": ["this category no longer takes reports"]})
    compound_id = fields.get("compound_id")
    if compound_id is not None:
        compound = uow.issues.compound(str(compound_id))
        if compound is None or compound["community_id"] != community_id:
            raise Invalid("unknown compound", fields={"compound_id": ["not a compound of this community"]})
    urgency = fields.get("urgency") or "normal"
    issue = make_issue(
        community_id=community_id,
        compound_id=str(compound_id) if compound_id else None,
        building=fields.get("building"),
        address=fields.get("address"),
        latitude=fields.get("latitude"),
        longitude=fields.get("longitude"),
        title=fields["title"].strip(),
        description=fields["description"].strip(),
        category=category.key,
        urgency=urgency,
        tier=category.default_tier,
        reporter_id=reporter_id,
        reported_by=reported_by,
        channel=channel,
        client_name=fields.get("client_name"),
        anonymous=bool(fields.get("anonymous")),
        # Read fresh, not from the cache: a category the city just narrowed publishes no report
        # more widely, whichever process takes it (a context held is checked when written).
        publication=publication or category.publication,
        created_at=now,
        updated_at=now,
        assignee_type=category.responsible_body,
        due_at=category.deadline(urgency, now),
    )
    entry = {"id": sortable_id(), "issue_id": issue.id, "kind": "report", "body": None, "internal": False,
             "author_id": reporter_id, "created_at": now}  # fmt: skip
    return issue, entry, me


def _report_data(issue: Issue, media_url: str | None) -> dict[str, Any]:
    """What the report's timeline entry records (the channel may have been changed by the checks)."""
    data = {"channel": issue.channel, "tier": issue.tier}
    if media_url:
        data["media_url"] = media_url
    return data


def reported_event(uow: IssuesUnitOfWork, issue: Issue, me: str) -> Event:
    """`issues.issue.reported`, as `publish_change` makes any change's event."""
    return change_event(uow, "issues.issue.reported", issue, me, anonymous=issue.anonymous, channel=issue.channel)


def similar_issues(
    uow: IssuesUnitOfWork,
    principal: Principal,
    *,
    community_id: str,
    text: str,
    category: str | None,
    latitude: float | None,
    longitude: float | None,
    limit: int = 5,
) -> list[tuple[IssueView, float]]:
    with uow:
        if not access.in_scope(principal, community_id, uow.issues.street_of):
            raise Forbidden("outside your community scope")
        scored: list[tuple[Issue, float]] = []
        compounds: dict[str, dict[str, Any] | None] = {}
        for candidate in uow.issues.candidates_for_similarity(community_id, access.scope_of(principal)):
            lat, lon = candidate.latitude, candidate.longitude
            if lat is None and candidate.compound_id:
                if candidate.compound_id not in compounds:
                    compounds[candidate.compound_id] = uow.issues.compound(candidate.compound_id)
                place = compounds[candidate.compound_id]
                if place:
                    lat, lon = place["latitude"], place["longitude"]
            distance = None
            if None not in (latitude, longitude, lat, lon):
                distance = similarity.distance_metres(latitude, longitude, lat, lon)  # type: ignore[arg-type]
            score = similarity.similarity_score(
                text=text,
                candidate_text=f"{candidate.title} {candidate.description}",
                same_category=category is not None and candidate.category == category,
                distance=distance,
            )
            if score >= 0.25:
                scored.append((candidate, round(score, 3)))
        scored.sort(key=lambda pair: (-pair[1], pair[0].created_at))
        return [(_view_of(principal, issue, uow.issues.street_of), score) for issue, score in scored[:limit]]


# --- reading -------------------------------------------------------------------------------------------
def view(uow: IssuesUnitOfWork, principal: Principal, issue: Issue) -> IssueView:
    plain = _view_of(principal, issue, uow.issues.street_of)
    return IssueView(
        issue=issue,
        show_reporter=plain.show_reporter,
        internal=plain.internal,
        supported_by_me=uow.issues.is_supporter(issue.id, access.person_id(principal)),
        masked=plain.masked,
    )


def get_issue(uow: IssuesUnitOfWork, principal: Principal, issue_id: str) -> IssueView:
    with uow:
        return view(uow, principal, _load(uow, principal, issue_id))


def list_issues(
    uow: IssuesUnitOfWork,
    principal: Principal,
    now: datetime,
    *,
    offset: int,
    limit: int,
    filters: dict[str, Any],
    sort: str,
    summaries: bool = False,
) -> tuple[list[IssueView], int]:
    """A page of the issues the caller may see and how many there are; `summaries`: each issue as
    an `IssueSummary` (what a list row shows), else whole."""
    with uow:
        if filters.get("mine"):
            filters["reporter_id"] = access.person_id(principal)
        items, total = uow.issues.list(
            access.scope_of(principal),
            offset=offset,
            limit=limit,
            filters=filters,
            now=now,
            sort=sort,
            summaries=summaries,
        )
        street_of = _memo(uow.issues.street_of)
        return _views_of(principal, items, street_of), total


def search_issues(
    uow: IssuesUnitOfWork, principal: Principal, terms: list[str], limit: int
) -> list[tuple[IssueView, bool]]:
    """The issues the caller's lists would show that hold every term (with whether the title holds
    them all), each as this caller may see it."""
    with uow:
        found = uow.issues.search(access.scope_of(principal), terms, limit)
        street_of = _memo(uow.issues.street_of)
        return [(_view_of(principal, issue, street_of), in_title) for issue, in_title in found]


def _memo(function: Callable[[str], str | None]) -> Callable[[str], str | None]:
    cache: dict[str, str | None] = {}

    def cached(key: str) -> str | None:
        if key not in cache:
            cache[key] = function(key)
        return cache[key]

    return cached


def timeline(uow: IssuesUnitOfWork, principal: Principal, issue_id: str) -> list[dict[str, Any]]:
    """The entries the caller may read, as plain values: the anonymous reporter's own entries (the
    report, their replies, reopening, rating) name no author for those who may not know them, and
    text is masked for those who read it masked."""
    with uow:
        issue = _load(uow, principal, issue_id)
        the_view = _view_of(principal, issue, uow.issues.street_of)
        entries = uow.issues.timeline(issue_id, include_internal=the_view.internal)
        return [_entry_as_seen(entry, issue, the_view) for entry in entries]


def _entry_as_seen(entry: TimelineEntry, issue: Issue, seen: IssueView) -> dict[str, Any]:
    """`message`: what the body is worded from in the reader's language (a machine reason), else
    None; the answer's body is the stored one."""
    author = entry.author_id
    if not seen.show_reporter and author is not None and author == issue.reporter_id:
        author = None
    data = dict(entry.data or {})
    body = entry.body
    if seen.masked:
        body = privacy.masked(body)
        data = {k: privacy.masked(v) if isinstance(v, str) and k != "media_url" else v for k, v in data.items()}
        if isinstance(data.get("attendees"), list):
            data["attendees"] = [privacy.masked(a) if isinstance(a, str) else a for a in data["attendees"]]
        kept = data.get("message")
        if isinstance(kept, dict) and isinstance(kept.get("params"), dict):
            params = {k: privacy.masked(v) if isinstance(v, str) else v for k, v in kept["params"].items()}
            data["message"] = kept | {"params": params}
    return {
        "id": entry.id,
        "kind": entry.kind,
        "body": body,
        "message": wording.message_of(entry.kind, body, entry.author_id, data),
        "internal": entry.internal,
        "author_id": author,
        "data": data,
        "created_at": entry.created_at,
    }


def meetings(uow: IssuesUnitOfWork, principal: Principal, issue_id: str) -> list[dict[str, Any]]:
    with uow:
        _load(uow, principal, issue_id)
        return uow.issues.meetings_of(issue_id)


# --- handling ----------------------------------------------------------------------------------------------
def transition(
    uow: IssuesUnitOfWork,
    principal: Principal,
    issue_id: str,
    action: str,
    now: datetime,
    *,
    reason: str | None = None,
    duplicate_of: str | None = None,
    summary: str | None = None,
    plan: str | None = None,
) -> IssueView:
    """accept | reject | duplicate | deliberate | start_resolving | resolve | reopen."""
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        street_of = uow.issues.street_of
        if action == "reopen":
            if issue.reporter_id != me and not access.may_handle(principal, issue, street_of):
                raise Forbidden("only the reporter or the office handling the issue may reopen it")
            if not reason:
                raise Invalid("a reason is required", fields={"reason": ["say why the issue is not solved"]})
            if issue.status not in ("resolved", "closed"):
                raise Conflict(
                    "only a resolved or closed issue can be reopened; this one is {status}",
                    status=Label("issue_status", issue.status),
                )
            change_status(uow, issue, "accepted", now, actor_id=me, reason=reason)
        elif action in {"start_resolving", "resolve"} and access.is_assignee(principal, issue):
            _resolution_step(uow, issue, action, now, principal, summary=summary, plan=plan)
        else:
            access.require_handler(principal, issue, street_of)
            if action == "accept":
                change_status(uow, issue, "accepted", now, actor_id=me)
            elif action == "reject":
                if not reason:
                    raise Invalid("a reason is required", fields={"reason": ["say why the issue is rejected"]})
                change_status(uow, issue, "rejected", now, actor_id=me, reason=reason)
            elif action == "duplicate":
                if not duplicate_of:
                    raise Invalid("name the original", fields={"duplicate_of": ["required"]})
                original = uow.issues.get(duplicate_of)
                if original is None or original.id == issue.id or original.community_id != issue.community_id:
                    raise Invalid(
                        "unknown original", fields={"duplicate_of": ["no other issue of this community has that id"]}
                    )
                issue.duplicate_of = original.id
                change_status(uow, issue, "duplicate", now, actor_id=me, reason=reason)
            elif action == "deliberate":
                change_status(uow, issue, "deliberating", now, actor_id=me, reason=reason)
            else:
                _resolution_step(uow, issue, action, now, principal, summary=summary, plan=plan)
        uow.commit()
        return view(uow, principal, issue)


def _resolution_step(
    uow: IssuesUnitOfWork,
    issue: Issue,
    action: str,
    now: datetime,
    principal: Principal,
    *,
    summary: str | None,
    plan: str | None,
) -> None:
    me = access.person_id(principal)
    if action == "start_resolving":
        if plan:
            issue.resolution_plan = plan
        change_status(uow, issue, "resolving", now, actor_id=me, reason=plan)
    elif action == "resolve":
        if not summary:
            raise Invalid("a resolution summary is required", fields={"summary": ["say what was done"]})
        issue.resolution_summary = summary
        change_status(uow, issue, "resolved", now, actor_id=me, reason=summary)
    else:
        raise Invalid("unknown action", fields={"action": [Text("no action {action!r}", action=action)]})


def escalate(uow: IssuesUnitOfWork, principal: Principal, issue_id: str, reason: str, now: datetime) -> IssueView:
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        access.require_handler(principal, issue, uow.issues.street_of)
        escalate_issue(uow, issue, now, actor_id=access.person_id(principal), reason=reason, automatic=False)
        uow.commit()
        return view(uow, principal, issue)


def assign(
    uow: IssuesUnitOfWork,
    principal: Principal,
    issue_id: str,
    now: datetime,
    *,
    assignee_type: str,
    assignee_id: str | None,
    note: str | None = None,
) -> IssueView:
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        access.require_handler(principal, issue, uow.issues.street_of)
        if assignee_id is not None:
            _check_assignee(uow, issue, assignee_type, assignee_id)
        issue.assign(assignee_type, assignee_id, now)
        _note(
            uow,
            issue,
            "assignment",
            now,
            body=note,
            author_id=me,
            data={"assignee_type": assignee_type, "assignee_id": assignee_id},
        )
        publish_change(uow, "issues.issue.assigned", issue, me)
        uow.commit()
        return view(uow, principal, issue)


def accept_assignment(
    uow: IssuesUnitOfWork, principal: Principal, issue_id: str, now: datetime, *, note: str | None = None
) -> TimelineEntry:
    """The organisation the issue is assigned to takes it on (a property company's or bureau's
    account, or a member of the owners' committee acting for it): a public line of the timeline,
    so the reporter and staff see the body has it in hand. Scope first (404 to whoever may not
    read the issue, 403 to a reader who does not act for the assignee), then state (409)."""
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        if not access.is_assignee(principal, issue):
            raise Forbidden("only the organisation the issue is assigned to accepts the assignment")
        if not issue.is_open:
            raise Conflict(
                "an issue that is {status} takes no assignment",
                fields={"status": [issue.status]},
                status=Label("issue_status", issue.status),
            )
        handover = [e for e in uow.issues.timeline(issue.id, include_internal=True) if e.kind in _HANDOVER_KINDS]
        if handover and handover[-1].kind == "assignment_accepted":
            raise Conflict("the assignment is already accepted", fields={"assignee_id": ["already accepted"]})
        entry = _note(
            uow,
            issue,
            "assignment_accepted",
            now,
            body=note,
            author_id=me,
            data={"assignee_type": issue.assignee_type, "assignee_id": issue.assignee_id},
        )
        issue.updated_at = now
        # The reporter and followers are told that the body has it in hand, like any other progress.
        publish_change(uow, "issues.issue.assignment_accepted", issue, me, note=note)
        uow.commit()
        return entry


# The timeline entries that say who has the issue in hand: the last one tells whether the current
# assignment was accepted (a new assignment must be accepted again).
_HANDOVER_KINDS = ("assignment", "assignment_accepted")


# Which registered organisations each kind of assignee may be (the register's kinds).
_ASSIGNEE_KINDS = {
    "property_company": {"property_company"},
    "owners_committee": {"owners_committee"},
    "bureau": {"bureau", "agency"},
    "community": {"party_organisation", "party_branch", "agency"},
}


def _check_assignee(uow: IssuesUnitOfWork, issue: Issue, assignee_type: str, assignee_id: str) -> None:
    """An issue goes to a registered, active organisation of the kind named, that serves its place:
    a property company or owners' committee of one of the community's compounds, a bureau of the
    city or of the issue's street, a party body of the community or its street."""
    organisation = uow.issues.organisation(assignee_id)
    if organisation is None or not organisation["active"]:
        raise Invalid("unknown organisation", fields={"assignee_id": ["no such registered organisation"]})
    kinds = _ASSIGNEE_KINDS.get(assignee_type, set())
    if organisation["kind"] not in kinds:
        raise Invalid(
            "the organisation is not of that kind",
            fields={
                "assignee_id": [
                    Text("a {kind}, not a {assignee_type}", kind=organisation["kind"], assignee_type=assignee_type)
                ]
            },
        )
    street = uow.issues.street_of(issue.community_id)
    if organisation["compound_ids"]:
        communities = {(uow.issues.compound(c) or {}).get("community_id") for c in organisation["compound_ids"]}
        serves = issue.community_id in communities
    elif organisation["community_id"] is not None:
        serves = organisation["community_id"] == issue.community_id
    else:
        serves = organisation["street_id"] is None or organisation["street_id"] == street
    if not serves:
        raise Invalid(
            "the organisation does not serve this issue's community",
            fields={"assignee_id": ["does not serve this issue's community"]},
        )


def support(uow: IssuesUnitOfWork, principal: Principal, issue_id: str, now: datetime) -> IssueView:
    """'Me too': a resident of the community backs the issue, once."""
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        if principal.role != Role.RESIDENT or issue.community_id not in principal.community_ids:
            raise Forbidden("only residents of the community can support its issues")
        if issue.reporter_id == me:
            raise Conflict("you reported this issue yourself")
        if not issue.is_open:
            raise Conflict(
                "an issue that is {status} takes no more support", status=Label("issue_status", issue.status)
            )
        if uow.issues.is_supporter(issue.id, me):
            raise Conflict("you already support this issue")
        uow.issues.add_supporter(issue.id, me, now)
        issue.supporter_count += 1
        issue.touch(now)
        publish_change(uow, "issues.issue.supported", issue, me, supporter_id=me)
        uow.commit()
        return view(uow, principal, issue)


def rate(
    uow: IssuesUnitOfWork, principal: Principal, issue_id: str, now: datetime, *, rating: int, comment: str | None
) -> IssueView:
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        if issue.reporter_id != me:
            raise Forbidden("only the reporter rates the resolution")
        previous = issue.rate(rating, comment, now)
        _note(uow, issue, "rating", now, body=comment, author_id=me, data={"rating": rating})
        publish_change(uow, "issues.issue.closed", issue, me, from_status=previous, rating=rating)
        uow.commit()
        return view(uow, principal, issue)


UPDATE_KINDS = ("reply", "note", "inspection")


def add_update(
    uow: IssuesUnitOfWork,
    principal: Principal,
    issue_id: str,
    now: datetime,
    *,
    kind: str,
    body: str,
    attendees: list[str] | None = None,
    findings: str | None = None,
) -> TimelineEntry:
    """Public replies (reporter, staff, assignee), internal notes and on-site inspections (staff, assignee)."""
    me = access.person_id(principal)
    with uow:
        issue = _load(uow, principal, issue_id)
        insider = access.sees_internal(principal, issue, uow.issues.street_of)
        if kind == "reply":
            if not insider and issue.reporter_id != me:
                raise Forbidden("only the reporter, staff and the assignee reply on an issue")
        elif not insider:
            raise Forbidden("only staff and the assignee add notes and inspections")
        data: dict[str, Any] = {}
        if kind == "inspection":
            if not attendees:
                raise Invalid("who attended?", fields={"attendees": ["name at least one attendee"]})
            data = {"attendees": attendees, "findings": findings}
        entry = _note(uow, issue, kind, now, body=body, author_id=me, internal=kind == "note", data=data)
        issue.updated_at = now
        uow.commit()
        return entry


def mark_private(
    uow: IssuesUnitOfWork, principal: Principal, issue_id: str, now: datetime, *, private: bool, reason: str | None
) -> IssueView:
    """Staff of the issue's scope mark it private (only the reporter, supporters, staff and the
    assignee read it; Open311 no longer publishes it), or lift their mark."""
    with uow:
        issue = _load(uow, principal, issue_id, for_update=True)
        if not access.may_mark_private(principal, issue, uow.issues.street_of):
            raise Forbidden("only staff whose scope covers the issue mark it private")
        before = issue.visibility
        if issue.mark_private(private, now):
            _note(
                uow,
                issue,
                "privacy",
                now,
                body=reason,
                author_id=access.person_id(principal),
                internal=True,
                data={"marked_private": private, "visibility": issue.visibility},
            )
            if issue.visibility != before:
                publish_change(
                    uow,
                    "issues.issue.visibility_changed",
                    issue,
                    access.person_id(principal),
                    from_visibility=before,
                    cause="marked_private" if private else "unmarked_private",
                    reason=reason,
                )
        uow.commit()
        return view(uow, principal, issue)


# --- photos ---------------------------------------------------------------------------------------------------
def add_photo(
    uow: IssuesUnitOfWork,
    principal: Principal,
    issue_id: str,
    content: bytes,
    store: PhotoStore,
    now: datetime,
    *,
    max_bytes: int = MAX_PHOTO_BYTES,
    thumbnail_side: int = THUMBNAIL_SIDE,
) -> dict[str, Any]:
    """Check, re-encode (no metadata kept) and store a photo and its thumbnail."""
    me = access.person_id(principal)
    with uow:
        # Scope before state: who may not read the issue learns nothing of what a photo must be.
        issue = _load(uow, principal, issue_id)
        if issue.reporter_id != me and not access.sees_internal(principal, issue, uow.issues.street_of):
            raise Forbidden("only the reporter, staff and the assignee add photos")
        prepared = prepare_photo(content, max_bytes=max_bytes, thumbnail_side=thumbnail_side)
        photo_id = sortable_id()  # later photos sort later, even within one instant
        file_name = f"{photo_id}.{EXTENSIONS[prepared.content_type]}"
        thumbnail_name = f"{photo_id}.thumb.jpg"
        row = {
            "id": photo_id,
            "issue_id": issue.id,
            "content_type": prepared.content_type,
            "size": len(prepared.content),
            "file_name": file_name,
            "thumbnail_file_name": thumbnail_name,
            "width": prepared.width,
            "height": prepared.height,
            "uploaded_by": me,
            "created_at": now,
        }
        # Files first, then the row: a failed commit removes them, so no row names a missing file.
        try:
            store.put(file_name, prepared.content, prepared.content_type)
            store.put(thumbnail_name, prepared.thumbnail, "image/jpeg")
            uow.issues.add_photo(**row)
            uow.commit()
        except BaseException:
            store.delete(file_name)
            store.delete(thumbnail_name)
            raise
        return row


def list_photos(uow: IssuesUnitOfWork, principal: Principal, issue_id: str) -> list[dict[str, Any]]:
    """The issue's photos; who uploaded one is hidden as the reporter is (anonymous reports)."""
    with uow:
        issue = _load(uow, principal, issue_id)
        hide_reporter = not access.sees_reporter(principal, issue, uow.issues.street_of)
        rows = uow.issues.photos_of(issue_id)
        if hide_reporter:
            rows = [{**row, "uploaded_by": None} if row["uploaded_by"] == issue.reporter_id else row for row in rows]
        return rows


def photo_file(
    uow: IssuesUnitOfWork, principal: Principal, issue_id: str, photo_id: str, store: PhotoStore, *, thumbnail: bool
) -> tuple[bytes, str]:
    """The stored photo (or its thumbnail) and its content type, for whoever reads the issue."""
    with uow:
        _load(uow, principal, issue_id)
        row = uow.issues.photo(issue_id, photo_id)
        if row is None:
            raise NotFound("photo {photo_id} not found", photo_id=photo_id)
    return stored_photo(store, row, thumbnail=thumbnail)


def reencode_legacy_photos(uow: IssuesUnitOfWork, store: PhotoStore, *, thumbnail_side: int) -> tuple[int, list[str]]:
    """Photos stored before migration 0011 were kept as sent, metadata and all: each is stored again
    re-encoded without it (under its name: JPEG stays JPEG, PNG stays PNG), with a thumbnail.
    Returns how many were done and the ids of those that could not be decoded (left as they are)."""
    with uow:
        rows = uow.issues.photos_without_thumbnail()
    done, failed = 0, []
    for row in rows:
        try:
            # Already accepted once (up to the limit of its day): any size is re-encoded now.
            prepared = prepare_photo(store.get(row["file_name"]), max_bytes=1 << 31, thumbnail_side=thumbnail_side)
        except (Invalid, PhotoMissing):
            failed.append(row["id"])
            continue
        if prepared.content_type != row["content_type"]:
            failed.append(row["id"])  # stored under another type's name: left for a person to look at
            continue
        thumbnail_name = f"{row['id']}.thumb.jpg"
        store.put(row["file_name"], prepared.content, prepared.content_type)
        store.put(thumbnail_name, prepared.thumbnail, "image/jpeg")
        with uow:
            uow.issues.update_photo(
                row["id"],
                size=len(prepared.content),
                width=prepared.width,
                height=prepared.height,
                thumbnail_file_name=thumbnail_name,
            )
            uow.commit()
        done += 1
    return done, failed


def stored_photo(store: PhotoStore, row: dict[str, Any], *, thumbnail: bool) -> tuple[bytes, str]:
    # A photo stored before thumbnails were made is its own thumbnail.
    if thumbnail and row.get("thumbnail_file_name"):
        name, content_type = row["thumbnail_file_name"], "image/jpeg"
    else:
        name, content_type = row["file_name"], row["content_type"]
    try:
        return store.get(name), content_type
    except PhotoMissing as exc:
        raise NotFound("the file of photo {photo_id} is missing from the photo store", photo_id=row["id"]) from exc


# --- categories -------------------------------------------------------------------------------------------------
def list_categories(uow: IssuesUnitOfWork, *, include_inactive: bool = False) -> list[Category]:
    with uow:
        return uow.issues.categories(include_inactive=include_inactive)


def save_category(
    uow: IssuesUnitOfWork, principal: Principal, key: str, now: datetime | None = None, **values: Any
) -> Category:
    """Create or change a category; only the city configures them. Narrowing its publication
    narrows its issues at once, each told (`issues.issue.visibility_changed`) when who may read it
    changes."""
    now = now or utc_now()
    principal.require_role(Role.CITY_ADMIN)
    values = {k: v for k, v in values.items() if not (k == "publication" and v is None)}
    with uow:
        category = uow.issues.category(key)
        if category is None:
            category = Category(key=key, **values)
            uow.issues.add(category)
        else:
            merged = {
                "name": category.name,
                "default_tier": category.default_tier,
                "responsible_body": category.responsible_body,
                "deadline_hours": dict(category.deadline_hours),
                "active": category.active,
                "position": category.position,
                "publication": category.publication,
                **values,
            }
            Category(key=key, **merged)  # validates the result before anything changes
            for attribute, value in merged.items():
                setattr(category, attribute, value)
            # Narrowing applies at once to the category's issues; widening only to issues reported
            # from now on: nobody is ever published more widely than when they reported.
            for issue in uow.issues.to_narrow(key, category.publication):
                before = issue.visibility
                issue.publication = category.publication
                if issue.visibility != before:
                    issue.touch(now)
                    publish_change(
                        uow,
                        "issues.issue.visibility_changed",
                        issue,
                        access.person_id(principal),
                        from_visibility=before,
                        cause="category_narrowed",
                    )
        uow.commit()
        _category_cache.pop(key, None)
        return category
