"""Who may read the subject of a notice (an issue, a meeting): "scope before state".

A person may follow only what they may read, and a notice is delivered only to those who may read
its subject when it is planned and again when it is sent (an issue may have become private since,
or the person moved to another community). The rules mirror the owning services' own read rules
(DESIGN section 4, publication), from what the events tell this service:

- issue (`visibility` in its events): its reporter always; `public` anyone; the property company or
  bureau it is assigned to; staff whose scope covers its community (community staff, the street's
  officials, city admins); `community`: the people of its community; `private`: besides the staff
  and assignee, only its supporters.
- meeting (`public` in its events): staff whose scope covers its community; its participants; a
  public meeting also the residents (and property managers) of its community; never an agency
  that takes no part.

Plain rules over plain values; nothing here reads a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PUBLIC, COMMUNITY, PRIVATE = "public", "community", "private"
VISIBILITIES = (PUBLIC, COMMUNITY, PRIVATE)
STAFF_ROLES = frozenset({"community_staff", "street_official", "city_admin"})
ORGANISATION_ROLES = frozenset({"property_manager", "agency"})
GATED_SUBJECTS = ("issue", "meeting")


@dataclass(frozen=True)
class Reader:
    """A person as far as reading goes: a recipient (at delivery) or a caller (at follow time)."""

    user_id: str
    role: str
    community_ids: frozenset[str] = frozenset()
    street_id: str | None = None
    organisation_id: str | None = None
    active: bool = True

    def covers(self, community_id: str | None, street_id: str | None) -> bool:
        """Whether the person's own scope covers a community (whose street is `street_id`)."""
        if self.role == "city_admin":
            return True
        if self.role == "street_official":
            return self.street_id is not None and street_id == self.street_id
        return community_id is not None and community_id in self.community_ids


@dataclass(frozen=True)
class Subject:
    """What this service knows of an issue or a meeting, for deciding who may read it."""

    subject_type: str  # issue | meeting
    subject_id: str
    community_id: str | None
    street_id: str | None = None  # the community's street, from the directory replica
    visibility: str = COMMUNITY
    reporter_id: str | None = None  # issues
    member_ids: frozenset[str] = field(default_factory=frozenset)  # supporters; participants
    assignee_id: str | None = None  # the organisation an issue is assigned to

    def readable_by(self, reader: Reader) -> bool:
        if not reader.active:
            return False
        if self.subject_type == "issue":
            return self._issue_readable_by(reader)
        if self.subject_type == "meeting":
            return self._meeting_readable_by(reader)
        return False

    def _issue_readable_by(self, reader: Reader) -> bool:
        if reader.user_id == self.reporter_id or self.visibility == PUBLIC:
            return True
        if reader.role in ORGANISATION_ROLES:
            # A property company or bureau reads what is assigned to it, nothing else.
            return self.assignee_id is not None and reader.organisation_id == self.assignee_id
        if reader.role in STAFF_ROLES:
            return reader.covers(self.community_id, self.street_id)
        if self.visibility == PRIVATE:
            return reader.user_id in self.member_ids
        return reader.covers(self.community_id, self.street_id)

    def _meeting_readable_by(self, reader: Reader) -> bool:
        if reader.role in STAFF_ROLES:
            return reader.covers(self.community_id, self.street_id)
        if reader.user_id in self.member_ids:
            return True
        if reader.role == "agency":
            return False
        return self.visibility != PRIVATE and self.community_id in reader.community_ids


def readable(subjects: list[Subject | None], reader: Reader) -> bool:
    """Whether `reader` may read every one of `subjects`; an unknown one (None) reads as no."""
    return all(s is not None and s.readable_by(reader) for s in subjects)


def who_may_read(
    subjects: list[Subject | None], user_ids: Iterable[str], readers: Mapping[str, Reader]
) -> tuple[str, ...]:
    """Those of `user_ids` (in their order) who are among `readers` and may read every one of
    `subjects` (`readable`). A batch of events asks for every notice about an issue, mostly of one
    subject: that is checked person by person without `readable`'s loop."""
    if any(s is None for s in subjects):
        return ()  # an unknown subject reads as no, for everyone
    if len(subjects) == 1:
        subject = subjects[0]
        assert subject is not None
        return tuple(u for u in user_ids if u in readers and subject.readable_by(readers[u]))
    return tuple(u for u in user_ids if u in readers and readable(subjects, readers[u]))
