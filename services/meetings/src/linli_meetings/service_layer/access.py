"""Who sees and who manages what (DESIGN section 4), as decisions over a Principal.

- city_admin: everything; street_official: communities of their street (per the replica);
  community_staff: their communities. These three manage meetings and see private ones.
- resident and api_client: public meetings of their communities, and meetings they take part in.
- property_manager: like a resident for the communities their company serves, plus every meeting
  their organisation takes part in.
- a resident on an owners' committee: also the meetings the committee is invited to as a body.
- agency (a bureau): meetings it takes part in (as a user or as an organisation), and action
  items assigned to it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true

from linli_kit.auth import Principal, Role
from linli_kit.errors import Forbidden
from linli_meetings.adapters import tables
from linli_meetings.adapters.repository import MeetingRepository
from linli_meetings.domain.decision import ActionItem
from linli_meetings.domain.meeting import Meeting
from linli_meetings.domain.proposal import MeetingProposal

MANAGERS = (Role.COMMUNITY_STAFF, Role.STREET_OFFICIAL, Role.CITY_ADMIN)


def community_scope(principal: Principal, column: ColumnElement) -> ColumnElement[bool]:
    """The communities a principal's role covers, as a condition on `column`."""
    if principal.role == Role.CITY_ADMIN:
        return true()
    if principal.role == Role.STREET_OFFICIAL:
        if not principal.street_id:
            return false()
        return column.in_(MeetingRepository.communities_of_street(principal.street_id))
    if principal.role == Role.AGENCY:
        return false()
    return column.in_(list(principal.community_ids)) if principal.community_ids else false()


def is_committee_member(principal: Principal) -> bool:
    """A resident who sits on an owners' committee (the gateway lets a resident act for an owners'
    committee of their own community, and for no other body): they see the meetings the committee
    is invited to as a body, and vote for it there."""
    return principal.role == Role.RESIDENT and principal.organisation_id is not None


def visible_meetings(principal: Principal) -> ColumnElement[bool]:
    m = tables.meetings.c
    in_scope = community_scope(principal, m.community_id)
    if principal.role in MANAGERS:
        return in_scope
    mine = m.id.in_(MeetingRepository.meetings_of_user(principal.user_id))
    conditions = [mine]
    if principal.role != Role.AGENCY:
        conditions.append(in_scope & m.public.is_(True))
    if principal.organisation_id and principal.role in (Role.PROPERTY_MANAGER, Role.AGENCY):
        conditions.append(m.id.in_(MeetingRepository.meetings_of_organisation(principal.organisation_id)))
    if is_committee_member(principal):
        conditions.append(m.id.in_(MeetingRepository.meetings_of_committee(str(principal.organisation_id))))
    return or_(*conditions)


def visible_action_items(principal: Principal) -> ColumnElement[bool]:
    a = tables.action_items.c
    in_scope = community_scope(principal, a.community_id)
    if principal.role in MANAGERS or principal.role in (Role.RESIDENT, Role.API_CLIENT):
        # Action items are the public follow-up of decisions: residents see their community's.
        return in_scope
    conditions = [a.owner_user_id == principal.user_id]
    if principal.role == Role.PROPERTY_MANAGER:
        conditions.append(in_scope)
    if principal.organisation_id:
        conditions.append(a.owner_organisation_id == principal.organisation_id)
    return or_(*conditions)


def visible_proposals(principal: Principal) -> ColumnElement[bool]:
    """Staff and officials: the proposals of the communities they cover; anyone else: their own."""
    pr = tables.proposals.c
    if principal.role in MANAGERS:
        return community_scope(principal, pr.community_id)
    return pr.proposer_id == principal.user_id


def can_see_proposal(principal: Principal, repo: MeetingRepository, proposal: MeetingProposal) -> bool:
    if principal.role in MANAGERS:
        return principal.can_access_community(proposal.community_id, repo.street_of)
    return proposal.proposer_id == principal.user_id


def can_manage_community(principal: Principal, repo: MeetingRepository, community_id: str) -> bool:
    if principal.role not in MANAGERS:
        return False
    return principal.can_access_community(community_id, repo.street_of)


def require_manager(principal: Principal, repo: MeetingRepository, community_id: str) -> None:
    if principal.role not in MANAGERS:
        raise Forbidden("role {role} may not manage meetings", role=principal.role.value)
    if not principal.can_access_community(community_id, repo.street_of):
        raise Forbidden("outside your community scope")


def is_community_member(principal: Principal, repo: MeetingRepository, community_id: str) -> bool:
    """Whether the caller's scope covers the community (an agency's never does)."""
    return principal.role != Role.AGENCY and principal.can_access_community(community_id, repo.street_of)


def require_community_member(principal: Principal, repo: MeetingRepository, community_id: str) -> None:
    """Reading a community's documents or candidate items: anyone whose scope covers it."""
    if not is_community_member(principal, repo, community_id):
        raise Forbidden("outside your community scope")


def can_see_meeting(principal: Principal, repo: MeetingRepository, meeting: Meeting) -> bool:
    if principal.role in MANAGERS:
        return principal.can_access_community(meeting.community_id, repo.street_of)
    if meeting.participant_of(principal.user_id) is not None:
        return True
    if is_committee_member(principal) and meeting.committee(principal.organisation_id) is not None:
        return True
    if principal.organisation_id and any(p.organisation_id == principal.organisation_id for p in meeting.participants):
        return principal.role in (Role.PROPERTY_MANAGER, Role.AGENCY)
    if principal.role == Role.AGENCY:
        return False
    return meeting.public and meeting.community_id in principal.community_ids


def can_see_meeting_in_scope(principal: Principal, repo: MeetingRepository, meeting: Meeting) -> bool:
    """Whether a caller who takes no part in the meeting may see it (without loading its people)."""
    if principal.role in MANAGERS:
        return principal.can_access_community(meeting.community_id, repo.street_of)
    if principal.role == Role.AGENCY:
        return False
    return meeting.public and meeting.community_id in principal.community_ids


def can_see_action_item(principal: Principal, repo: MeetingRepository, item: ActionItem) -> bool:
    if principal.role in MANAGERS or principal.role in (Role.RESIDENT, Role.API_CLIENT, Role.PROPERTY_MANAGER):
        if principal.can_access_community(item.community_id, repo.street_of):
            return True
    if item.owner_user_id == principal.user_id:
        return True
    return bool(principal.organisation_id) and item.owner_organisation_id == principal.organisation_id


def can_update_action_item(principal: Principal, repo: MeetingRepository, item: ActionItem) -> bool:
    """Staff of the community, or the owner (person or organisation) reporting progress."""
    if can_manage_community(principal, repo, item.community_id):
        return True
    if item.owner_user_id and item.owner_user_id == principal.user_id:
        return True
    return bool(principal.organisation_id) and item.owner_organisation_id == principal.organisation_id
