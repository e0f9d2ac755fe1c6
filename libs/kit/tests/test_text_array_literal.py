"""The inbox claim sends its ids and types as one text literal of an array (one string, where a list
goes through psycopg's array dumper element by element): PostgreSQL must read back exactly the
strings given, whatever characters they hold."""

from __future__ import annotations

import random

from sqlalchemy import text

from linli_kit.events.consumer import text_array_literal

AWKWARD = ["", "NULL", "null", "a,b", "{x}", '"quoted"', "back\\slash", "  blanks ", "é ü 中", '\\"', "}", "{"]


def test_postgresql_reads_back_exactly_the_strings_given(database):
    rnd = random.Random(15)
    alphabet = 'ab,{}" \\NUL\t\né'
    cases = [[], [""], AWKWARD, ["11111111-2222-3333-4444-555555555555", "meetings.meeting.scheduled"]]
    cases += [["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(8))) for _ in range(rnd.randrange(1, 6))]
              for _ in range(200)]  # fmt: skip
    with database.engine.connect() as connection:
        for values in cases:
            read = connection.execute(text("SELECT CAST(:v AS text[])"), {"v": text_array_literal(values)}).scalar_one()
            assert read == values
            # A generator is taken as well as a list.
            assert text_array_literal(iter(values)) == text_array_literal(values)
