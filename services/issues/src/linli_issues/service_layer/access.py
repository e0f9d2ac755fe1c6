"""Who may see and do what with an issue (DESIGN section 4), as plain decisions over a Principal."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from linli_issues.adapters.repository import Scope
from linli_issues.domain import privacy
from linli_issues.domain.model import Issue
from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden, NotFound

StreetOf = Callable[[str], str | None]
# Whether a person (by id) supports an issue (by id): asked only when it decides something.
Supports = Callable[[str, str], bool]
ORGANISATION_ROLES = frozenset({Role.PROPERTY_MANAGER, Role.AGENCY})
# Token subjects that are not UUIDs (an API client's subject is its key id, e.g. `963b5197e99f`)
# stand in records and events as the UUID made from them in this namespace: the same key always
# gives the same reporter, and no user's id can collide with it.
SUBJECT_NAMESPACE = uuid.UUID("5f0c1a0e-4d1b-5c43-9a57-1b3c2d4e5f60")


def person_id(principal: Principal) -> str:
    """Who the caller is in issues, timelines and events: their user id, or for a subject that is
    not a UUID (an API client's key id) the deterministic UUID made from it."""
    return _person_id(principal.role.value, principal.user_id)


# Asked several times per issue of a list page: parsed once per caller, not each time.
@functools.lru_cache(maxsize=4096)
def _person_id(role: str, user_id: str) -> str:
    try:
        uuid.UUID(user_id)
    except ValueError:
        return str(uuid.uuid5(SUBJECT_NAMESPACE, f"{role}:{user_id}"))
    return user_id


def is_city_wide_client(principal: Principal) -> bool:
    """An API key issued with neither a street nor communities is the city's own (its hotline)."""
    return principal.role == Role.API_CLIENT and not principal.street_id and not principal.community_ids


def scope_of(principal: Principal) -> Scope:
    """Which issues the caller's lists hold: their scope, and of its private issues only those they
    reported or support (unless they are staff, who read every issue of their scope)."""
    if principal.role == Role.CITY_ADMIN:
        return Scope(everything=True)
    if is_city_wide_client(principal):
        return Scope(everything=True, private_reader=person_id(principal))
    if principal.role == Role.STREET_OFFICIAL:
        return Scope(street_id=principal.street_id or "-")
    if principal.role in ORGANISATION_ROLES:
        # A property company or bureau sees what was assigned to it, nothing else.
        return Scope(assignee_id=principal.organisation_id or "-")
    if principal.role == Role.API_CLIENT and principal.street_id:
        return Scope(
            street_id=principal.street_id,
            community_ids=tuple(principal.community_ids),
            private_reader=person_id(principal),
        )
    if principal.is_staff:
        return Scope(community_ids=tuple(principal.community_ids))
    return Scope(
        community_ids=tuple(principal.community_ids),
        private_reader=person_id(principal),
        # A committee member also reads the private issues assigned to the committee.
        private_assignee=principal.organisation_id if is_committee_member(principal) else None,
    )


def is_committee_member(principal: Principal) -> bool:
    """A resident who sits on their compound's owners' committee acts for it (the gateway lets a
    resident act for an owners' committee of their own community and for no other body)."""
    return principal.role == Role.RESIDENT and principal.organisation_id is not None


def is_assignee(principal: Principal, issue: Issue) -> bool:
    """Whether the caller acts for the organisation the issue is assigned to: an account of the
    property company or bureau, or a member of the owners' committee."""
    if principal.organisation_id is None or issue.assignee_id != principal.organisation_id:
        return False
    if principal.role in ORGANISATION_ROLES:
        return True
    return is_committee_member(principal) and issue.assignee_type == "owners_committee"


def in_scope(principal: Principal, community_id: str, street_of: StreetOf) -> bool:
    if principal.role in ORGANISATION_ROLES:
        return False
    if is_city_wide_client(principal):
        return True
    if principal.role == Role.API_CLIENT and principal.street_id:
        return community_id in principal.community_ids or street_of(community_id) == principal.street_id
    return principal.can_access_community(community_id, street_of)


def can_see(principal: Principal, issue: Issue, street_of: StreetOf, supports: Supports | None = None) -> bool:
    """The domain's reading rule (domain/privacy.py) for this caller and issue."""
    me = person_id(principal)
    community = in_scope(principal, issue.community_id, street_of)
    return privacy.may_read(
        issue.visibility,
        is_reporter=issue.reporter_id == me,
        is_assignee=is_assignee(principal, issue),
        is_staff_in_scope=principal.is_staff and community,
        in_community_scope=community,
        # Asked last, and only of a private issue that nothing else opens.
        is_supporter=community
        and issue.visibility == privacy.PRIVATE
        and supports is not None
        and supports(issue.id, me),
    )


def require_visible(
    principal: Principal, issue: Issue | None, street_of: StreetOf, issue_id: str, supports: Supports | None = None
) -> Issue:
    """The issue, or 404 when it does not exist or the caller may not read it."""
    # Outside the scope answers 404, not 403: another community's issues (or a neighbour's private
    # one) are not even confirmed.
    if issue is None or not can_see(principal, issue, street_of, supports):
        raise NotFound("issue {issue_id} not found", issue_id=issue_id)
    return issue


def is_staff_in_scope(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    return principal.is_staff and in_scope(principal, issue.community_id, street_of)


def may_handle(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    """Accept, reject, assign, escalate, resolve: the office responsible for the issue's tier."""
    if principal.role == Role.CITY_ADMIN:
        return True
    if principal.role == Role.STREET_OFFICIAL:
        return in_scope(principal, issue.community_id, street_of)
    if principal.role == Role.COMMUNITY_STAFF:
        # Once an issue reached the street or the city, the community no longer decides it.
        return issue.tier in ("compound", "community") and in_scope(principal, issue.community_id, street_of)
    return False


def require_handler(principal: Principal, issue: Issue, street_of: StreetOf) -> None:
    if not may_handle(principal, issue, street_of):
        raise Forbidden("only the office handling this issue's tier may do this")


def sees_internal(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    return is_staff_in_scope(principal, issue, street_of) or is_assignee(principal, issue)


def sees_reporter(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    """Whether the caller may know who reported the issue (an anonymous reporter: themself and the
    staff of its scope only; not the assignee, neighbours or clients)."""
    return privacy.may_know_reporter(
        anonymous=issue.anonymous,
        is_reporter=issue.reporter_id == person_id(principal),
        is_staff_in_scope=is_staff_in_scope(principal, issue, street_of),
    )


def sees_text_unmasked(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    """Whether the caller reads the issue's text with its phone and identity-card numbers."""
    return privacy.sees_text_unmasked(
        is_reporter=issue.reporter_id == person_id(principal),
        knows_reporter=sees_reporter(principal, issue, street_of),
        handles=sees_internal(principal, issue, street_of),
    )


def may_mark_private(principal: Principal, issue: Issue, street_of: StreetOf) -> bool:
    """Staff whose scope covers the issue's community mark it private (or lift their mark)."""
    return is_staff_in_scope(principal, issue, street_of)
