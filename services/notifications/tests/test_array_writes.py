"""The batch's small tables written over arrays on PostgreSQL (`repository.insert_arrays`,
`update_arrays`, `insert_new`, `upsert_newer`): each checked against the ORM's plain statements on
random rows (text to escape, NULLs, booleans, JSON, instants with offsets)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, select, update

from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import follows, issue_knowledge, reminders, subjects

from .test_lean_writes import _random_text

COLUMNS = ("subject_id", "community_id", "title", "starts_at", "place", "status", "revision", "member_ids",
           "visibility", "reporter_id", "assignee_id", "anonymous")  # fmt: skip


def _snapshot(rng: random.Random, subject_id: str) -> dict:
    zone = timezone(timedelta(hours=rng.choice([0, 8, -5])))
    return {
        "subject_id": subject_id,
        "community_id": rng.choice([None, _random_text(rng)]),
        "title": _random_text(rng),
        "starts_at": rng.choice(
            [None, datetime(2026, 5, 1, 9, 30, tzinfo=zone) + timedelta(minutes=rng.randint(0, 10**5))]
        ),
        "place": rng.choice([None, _random_text(rng)]),
        "status": _random_text(rng)[:30],
        "revision": rng.randint(-5, 10**6),
        "member_ids": rng.choice([[], None, [_random_text(rng) for _ in range(rng.randint(1, 4))]]),
        "visibility": rng.choice([None, "community", "private"]),
        "reporter_id": rng.choice([None, _random_text(rng)]),
        "assignee_id": rng.choice([None, _random_text(rng)]),
        "anonymous": rng.choice([None, True, False]),
    }


def _read(session, subject_type: str) -> dict[str, tuple]:
    rows = session.execute(select(*(subjects.c[c] for c in COLUMNS)).where(subjects.c.subject_type == subject_type))
    return {r.subject_id: tuple(r) for r in rows}


@pytest.mark.parametrize("seed", range(3))
def test_snapshots_inserted_and_updated_over_arrays_read_back_as_the_orm_writes_them(database, seed):
    rng = random.Random(seed)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    first = [_snapshot(rng, i) for i in ids]
    second = [_snapshot(rng, i) for i in ids[::2]]
    with database.transaction() as session:
        # The same rows twice: as the ORM writes them (type "orm") and over arrays (type "issue").
        session.execute(subjects.insert(), [{"subject_type": "orm", **r} for r in first])
        repository.insert_rows(session, subjects, [{"subject_type": "issue", **r} for r in first])
        assert _read(session, "issue") == _read(session, "orm")
        session.execute(
            update(subjects)
            .where(subjects.c.subject_type == "orm", subjects.c.subject_id == bindparam("key"))
            .values({c: bindparam(f"new_{c}") for c in COLUMNS if c != "subject_id"}),
            [{"key": r["subject_id"], **{f"new_{c}": r[c] for c in COLUMNS if c != "subject_id"}} for r in second],
        )
        repository.update_arrays(session, subjects, second, ["subject_id"], {"subject_type": "issue"})
        assert _read(session, "issue") == _read(session, "orm")


def test_a_naive_instant_is_refused_over_arrays_as_by_the_column(database):
    row = {"subject_type": "meeting", **_snapshot(random.Random(1), "m1"), "starts_at": datetime(2026, 5, 1, 9)}
    with database.session() as session, pytest.raises(ValueError, match="naive"):
        repository.insert_rows(session, subjects, [row])


def test_insert_new_keeps_the_first_of_two_rows_with_one_key_and_counts_what_it_inserted(database):
    now = datetime.now(UTC)
    target = str(uuid.uuid4())
    rows = [
        {"user_id": "u1", "target_type": "issue", "target_id": target, "reason": "reporter", "created_at": now},
        {"user_id": "u2", "target_type": "issue", "target_id": target, "reason": "supporter", "created_at": now},
        {"user_id": "u1", "target_type": "issue", "target_id": target, "reason": "supporter", "created_at": now},
    ]
    keys = ["target_type", "target_id", "user_id"]
    with database.transaction() as session:
        assert repository.insert_new(session, follows, rows, keys) == 2
        assert repository.insert_new(session, follows, rows, keys) == 0
        found = {
            u: r
            for u, r in session.execute(
                select(follows.c.user_id, follows.c.reason).where(follows.c.target_id == target)
            )
        }
    assert found == {"u1": "reporter", "u2": "supporter"}
    starts = datetime(2026, 6, 1, 10, tzinfo=UTC)
    reminder = {"id": "r1", "subject_type": "meeting", "subject_id": "m", "kind": "day_before", "starts_at": starts,
                "due_at": starts - timedelta(days=1), "state": "scheduled"}  # fmt: skip
    occurrence = ["subject_type", "subject_id", "kind", "starts_at"]
    with database.transaction() as session:
        assert repository.insert_new(session, reminders, [reminder, {**reminder, "id": "r2"}], occurrence) == 1
        assert repository.insert_new(session, reminders, [reminder], occurrence) == 0
        assert session.scalars(select(reminders.c.id)).all() == ["r1"]


def test_upsert_newer_over_arrays_and_row_by_row_when_a_key_repeats(database):
    def row(user: str, revision: int, status: str) -> dict:
        return {"issue_id": "i", "user_id": user, "status": status, "assignee": None, "revision": revision}

    keys = ["issue_id", "user_id"]
    with database.transaction() as session:
        repository.upsert_newer(session, issue_knowledge, [row("a", 2, "accepted"), row("b", 1, "reported")], keys)
        # An older revision leaves the row; a newer one replaces it.
        repository.upsert_newer(session, issue_knowledge, [row("a", 1, "reported"), row("b", 3, "resolved")], keys)
        # A key twice in one call: row by row, the later newer one decides.
        repository.upsert_newer(session, issue_knowledge, [row("c", 1, "reported"), row("c", 2, "accepted")], keys)
        found = {r.user_id: (r.status, r.revision) for r in session.execute(select(issue_knowledge))}
    assert found == {"a": ("accepted", 2), "b": ("resolved", 3), "c": ("accepted", 2)}
