"""The lean writes of issue 15 (points 1 and 4): arrays sent as one literal, the COPY staging table
kept per connection, and the indexes that hold reminders only (0011) with the notice's deliveries
found by their keys: each checked against the plain way on random data."""

from __future__ import annotations

import random
import re
import uuid

import pytest
from sqlalchemy import Text, bindparam, cast, delete, func, select
from sqlalchemy.dialects import postgresql

from linli_kit.auth import Principal, Role
from linli_notifications.adapters import repository
from linli_notifications.adapters.tables import deliveries, follows, notifications
from linli_notifications.domain.model import Category, Channel, Intent
from linli_notifications.service_layer.planning import plan_many
from linli_notifications.service_layer.recipient import list_deliveries

from .test_delivery import TZ, add_people

ALPHABET = ['"', "\\", "{", "}", ",", " ", "a", "Z", "0", "社", "NULL", "'", "\t", ""]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize("seed", range(5))
def test_a_text_array_literal_reads_back_as_the_list_it_was_made_of(database, seed):
    rng = random.Random(seed)
    cases = [[], [None], [""], [str(uuid.uuid4()) for _ in range(50)], ["+8613800000000", None]]
    cases += [[rng.choice([None, _random_text(rng)]) for _ in range(rng.randint(1, 30))] for _ in range(30)]
    cases += [[_random_text(rng) for _ in range(rng.randint(1, 30))] for _ in range(30)]
    with database.session() as session:
        for values in cases:
            literal = repository.text_array(values)
            read = session.scalar(select(cast(bindparam("v", literal, type_=Text), postgresql.ARRAY(Text))))
            assert read == values, (values, literal)
            # `among` takes the literal too, and finds what an IN list finds.
            wanted = [v for v in values if v is not None]
            if wanted:
                column = cast(bindparam("w", wanted[0], type_=Text), Text)
                condition = repository.among(session, column, wanted)
                assert session.scalar(select(condition)) is True
                # Bound untyped: cast from a typed text value, PostgreSQL would parse the literal
                # again for every row a sequential scan reads.
                rendered = str(condition.compile(session.get_bind()))
                assert re.search(r"ANY \(CAST\(%\(\w+\)s AS ", rendered), rendered
                # Read as rows for a batch's look-ups, the array likewise bound untyped.
                rows = repository.among_rows(session, column, wanted)
                assert session.scalar(select(rows)) is True
                rendered = str(rows.compile(session.get_bind()))
                assert re.search(r"IN \(SELECT unnest\(CAST\(%\(\w+\)s AS ", rendered), rendered


def test_the_staging_table_serves_twice_in_a_transaction_and_after_a_rollback(database, clock):
    def rows(n: int, target: str) -> list[dict]:
        return [
            {
                "user_id": str(uuid.uuid4()),
                "target_type": "issue",
                "target_id": target,
                "reason": "x",
                "created_at": clock(),
            }
            for _ in range(n)
        ]

    keys = ["target_type", "target_id", "user_id"]
    first, second = rows(300, "a"), rows(250, "b")
    with database.transaction() as session:
        assert repository._copy_insert_ignore(session, follows, first, keys, repository.json_encoder()) == 300
        # The first call's rows are not staged again: only the new ones count.
        assert (
            repository._copy_insert_ignore(session, follows, second + first[:5], keys, repository.json_encoder()) == 250
        )
    with pytest.raises(RuntimeError), database.transaction() as session:
        repository._copy_insert_ignore(session, follows, rows(220, "c"), keys, repository.json_encoder())
        raise RuntimeError("rolled back")
    with database.transaction() as session:
        assert (
            repository._copy_insert_ignore(
                session, follows, rows(210, "d") + first[:3], keys, repository.json_encoder()
            )
            == 210
        )
    with database.session() as session:
        counts = dict(session.execute(select(follows.c.target_id, func.count()).group_by(follows.c.target_id)).all())
    assert counts == {"a": 300, "b": 250, "d": 210}


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_deliveries_of_a_notice_are_those_the_plain_filter_finds(request, backend, clock):
    database = request.getfixturevalue("database" if backend == "postgresql" else "sqlite_database")
    rng = random.Random(15)
    people = add_people(database, clock, n=12)
    sources = ["activities.registration.promoted", "reminder.day_before", "activities.activity.reminder", "broadcast"]
    intents = [
        Intent(
            source_key=str(uuid.uuid4()),
            source_type=rng.choice(sources),
            kind="registration.promoted",
            category=Category.REGISTRATION,
            user_ids=tuple(rng.sample(people, rng.randint(1, 6))),
            params={"title": "书法班", "position": 1, "when_at": "2026-11-27T02:00:00+00:00"},
            community_id=None,
            channels=frozenset({Channel.SMS, Channel.PUSH}),
        )
        for _ in range(8)
    ]
    with database.transaction() as session:
        assert plan_many(session, intents, clock(), TZ) > 0
    with database.session() as session:
        notices = list(session.scalars(select(notifications.c.id)))
        every = session.execute(select(deliveries.c.id, deliveries.c.notification_id)).all()
    pruned = rng.choice(notices)
    with database.transaction() as session:  # retention may prune a notice and keep its deliveries
        session.execute(delete(notifications).where(notifications.c.id == pruned))
    admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
    for notice in [*notices, str(uuid.uuid4())]:
        expected = {d for d, n in every if n == notice}
        with database.session() as session:
            rows, total = list_deliveries(session, admin, filters={"notification_id": notice}, offset=0, limit=100)
        assert {r["id"] for r in rows} == expected and total == len(expected)
