"""Calendar reads: a meeting's .ics and a community's feed.

The feed is readable without a token (calendar apps subscribe to a URL and send none); without
one it holds the community's public meetings only. A signed-in caller also gets the private
meetings their scope shows them.
"""

from __future__ import annotations

from linli_kit.auth import Principal
from linli_kit.errors import NotFound
from linli_meetings.adapters import ical, tables
from linli_meetings.domain.meeting import Meeting
from linli_meetings.service_layer import access
from linli_meetings.service_layer.issue_privacy import hidden_issues
from linli_meetings.service_layer.meetings import MeetingView, load_meeting
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork


def meeting_calendar(uow: MeetingsUnitOfWork, principal: Principal | None, meeting_id: str) -> bytes:
    with uow:
        meeting = _public_or_visible(uow, principal, meeting_id)
        view = MeetingView(meeting, hidden_issues(uow, principal, meeting.issue_ids))
        return ical.meeting_ics(view, uow.now())


def _public_or_visible(uow: MeetingsUnitOfWork, principal: Principal | None, meeting_id: str) -> Meeting:
    if principal is not None:
        return load_meeting(uow, principal, meeting_id)
    meeting = uow.meetings.get(meeting_id)
    if meeting is None or not meeting.public:
        raise NotFound("meeting {meeting_id} not found", meeting_id=meeting_id)
    return meeting


def community_feed(uow: MeetingsUnitOfWork, principal: Principal | None, community_id: str) -> bytes:
    with uow:
        visible = access.visible_meetings(principal) if principal else tables.meetings.c.public.is_(True)
        meetings = uow.meetings.iter_for_feed(community_id, visible | tables.meetings.c.public.is_(True))
        hidden = hidden_issues(uow, principal, (i for m in meetings for i in m.issue_ids))
        views = [MeetingView(m, hidden) for m in meetings]
        return ical.feed_ics(f"Linli meetings {community_id}", views, uow.now())
