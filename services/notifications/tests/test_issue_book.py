"""The batch's issue book answers who may read an issue from memory, made once per snapshot: a
change of the snapshot (a supporter added, the visibility changed) is seen by the next question."""

from __future__ import annotations

from linli_notifications.domain.access import PRIVATE, Reader
from linli_notifications.service_layer.issue_book import IssueBook

SNAPSHOT = {
    "community_id": "c1",
    "title": "楼道灯坏了",
    "status": "reported",
    "revision": 1,
    "member_ids": ["a"],
    "visibility": PRIVATE,
    "reporter_id": "r",
    "assignee_id": None,
}


def resident(user_id: str) -> Reader:
    return Reader(user_id=user_id, role="resident", community_ids=frozenset({"c1"}))


def test_who_may_read_follows_each_change_of_the_snapshot() -> None:
    book = IssueBook()
    book.know_street("c1", "s1")  # no database look-up: the session is never used
    book.snapshots["i1"] = None
    assert book.subject(None, "i1") is None  # not known yet

    book.insert_snapshot("i1", dict(SNAPSHOT))
    first = book.subject(None, "i1")
    assert first is not None and first.street_id == "s1"
    assert first.readable_by(resident("a")) and not first.readable_by(resident("b"))
    assert book.subject(None, "i1") is first  # asked again, unchanged: the same answer

    book.update_snapshot("i1", {"member_ids": ["a", "b"]})
    assert book.subject(None, "i1").readable_by(resident("b"))

    book.update_snapshot("i1", {"visibility": "community", "revision": 2})
    assert book.subject(None, "i1").readable_by(resident("z"))

    book.insert_snapshot("i1", {**SNAPSHOT, "member_ids": []})  # as a rule would, written anew
    assert not book.subject(None, "i1").readable_by(resident("a"))
