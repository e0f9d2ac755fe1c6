"""The batch's issue book answers who may read an issue from memory, made once per snapshot: a
change of the snapshot (a supporter added, the visibility changed) is seen by the next question."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import subjects
from linli_notifications.domain.access import PRIVATE, Reader
from linli_notifications.service_layer.issue_book import IssueBook, _locked_snapshots

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


def test_the_book_reads_and_locks_the_snapshots_of_its_issues_only(database) -> None:
    """On PostgreSQL each snapshot is found by its key (a lateral look-up per id, not a scan of
    every issue) and locked, as `_record_issue` locks one: another transaction cannot take it."""
    issues = [f"i{n:03}" for n in range(30)]
    with database.transaction() as session:
        session.execute(
            subjects.insert(),
            [{"subject_type": "issue", "subject_id": i, **SNAPSHOT, "revision": n} for n, i in enumerate(issues)]
            + [{"subject_type": "meeting", "subject_id": "i001", **SNAPSHOT, "revision": 99}],  # another type
        )
    wanted = [issues[0], issues[7], issues[29], "unknown", "i001"]
    statement, _ = _locked_snapshots(database.session(), sorted(set(wanted)))
    assert "LATERAL" in str(statement.compile(database.engine)), "each id looked up by the key"
    with database.transaction() as session:
        book = IssueBook()
        book.load(session, wanted)
        assert {i: (s or {}).get("revision") for i, s in book.snapshots.items()} == {
            "i000": 0,
            "i007": 7,
            "i029": 29,
            "i001": 1,
            "unknown": None,
        }
        assert book.snapshots["i001"]["member_ids"] == ["a"]
        with database.engine.connect() as other:
            for issue_id, locked in (("i007", True), ("i008", False)):
                probe = (
                    select(subjects.c.subject_id)
                    .where(subjects.c.subject_type == "issue", subjects.c.subject_id == issue_id)
                    .with_for_update(nowait=True)
                )
                if locked:
                    with pytest.raises(OperationalError):
                        other.execute(probe)
                    other.rollback()
                else:
                    assert other.execute(probe).scalar() == issue_id
                    other.rollback()


def test_a_text_array_literal_is_the_elements_quoted_one_by_one() -> None:
    """The literal escaped in one pass equals each element quoted on its own, whatever the text
    holds (a NUL, which no stored text holds, takes the element-by-element way)."""
    rng = random.Random(7)
    alphabet = ['"', "\\", "{", "}", ",", " ", "a", "社", "NULL", "\0", ""]
    for _ in range(20_000):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.2:
            values[rng.randrange(len(values))] = None
        one_by_one = "{" + ",".join("NULL" if v is None else repository._quoted(v) for v in values) + "}"
        assert repository.text_array(values) == one_by_one, values
