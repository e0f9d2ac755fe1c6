"""Private issues (DESIGN section 4, publication): the issues service marks an issue `private`
(anonymous reports, categories about a person, or staff's choice) and its snapshot says so. Here a
private issue's title - on the candidate list, on an agenda, on the noticeboard, on a proposal -
is shown only to the staff and officials whose scope covers its community, its reporter and its
supporters; anyone else sees PRIVATE_ISSUE_TITLE in its place, never the title. An issue the
replica does not know (yet) is shown as its agenda item was written by the staff.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from linli_kit.auth import Principal
from linli_meetings.domain.decision import ActionItem
from linli_meetings.service_layer import access
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

# The service does not localise its answers: the placeholder is in Chinese, as the city reads.
PRIVATE_ISSUE_TITLE = "一项不公开的议题"


def hidden_issues(uow: MeetingsUnitOfWork, principal: Principal | None, issue_ids: Iterable[str | None]) -> set[str]:
    """Of these issues, those whose title `principal` may not read (None: an anonymous caller)."""
    ids = {i for i in issue_ids if i}
    if not ids:
        return set()
    return hidden_of_private(
        uow, principal, uow.meetings.issues_hidden_from(ids, principal.user_id if principal else None)
    )


def hidden_of_private(uow: MeetingsUnitOfWork, principal: Principal | None, private: dict[str, str]) -> set[str]:
    """Of the private issues `principal` neither reported nor supports ({issue_id: community_id}),
    those whose title they may not read: all, but for the staff and officials whose scope covers
    the issue's community."""
    if principal is None or principal.role not in access.MANAGERS:
        return set(private)
    return {
        i for i, community in private.items() if not principal.can_access_community(community, uow.meetings.street_of)
    }


class AgendaItemLike(Protocol):
    """What a caller is shown of an agenda item (an AgendaItem, a stored row, an AgendaItemView)."""

    @property
    def id(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def duration_minutes(self) -> int | None: ...
    @property
    def issue_id(self) -> str | None: ...
    @property
    def notes(self) -> str | None: ...


class AgendaItemView(NamedTuple):
    """An agenda item on an issue hidden from the caller: without its title and notes. A tuple in
    the order of a stored agenda row's first fields, so a list writes both alike."""

    id: str
    position: int
    title: str
    duration_minutes: int | None
    issue_id: str | None
    notes: str | None


def agenda_view(items: Iterable[AgendaItemLike], hidden: set[str]) -> list[AgendaItemLike]:
    """The items as the caller sees them: those on a hidden issue replaced by an AgendaItemView
    without their words, the others as they are (to be read, not changed: a list page shows some
    400 and copying each was a tenth of its work)."""
    if not hidden:
        return list(items)
    return [
        AgendaItemView(i.id, i.position, PRIVATE_ISSUE_TITLE, i.duration_minutes, i.issue_id, None)
        if i.issue_id in hidden
        else i
        for i in items
    ]


def item_hidden(principal: Principal | None, item: ActionItem, hidden: set[str]) -> bool:
    """Whether an action item's words are withheld from `principal`: it is on a hidden issue and
    they do not own it (an owner is told what to do, whatever the issue's visibility)."""
    if item.issue_id not in hidden or principal is None:
        return item.issue_id in hidden
    if item.owner_user_id and item.owner_user_id == principal.user_id:
        return False
    return not (principal.organisation_id and item.owner_organisation_id == principal.organisation_id)


@dataclass(frozen=True)
class ActionItemView:
    """An action item as a caller sees it: on a private issue they may not read, without its
    title (a placeholder) and note."""

    item: ActionItem
    hidden: bool = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.item, name)

    @property
    def title(self) -> str:
        return PRIVATE_ISSUE_TITLE if self.hidden else self.item.title

    @property
    def note(self) -> str | None:
        return None if self.hidden else self.item.note


def action_item_views(uow: MeetingsUnitOfWork, principal: Principal, items: list[ActionItem]) -> list[ActionItemView]:
    hidden = hidden_issues(uow, principal, (i.issue_id for i in items))
    return [ActionItemView(i, item_hidden(principal, i, hidden)) for i in items]
