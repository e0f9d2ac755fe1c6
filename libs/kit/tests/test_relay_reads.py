"""The relay's read of the next rows walks the outbox's unpublished index and stops after a batch,
even during a burst, when the outbox's statistics still say nothing is waiting (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from linli_kit.db import Database
from linli_kit.events.relay import WALK_THE_UNPUBLISHED_INDEX, next_rows_query
from linli_kit.testing import probe

pytestmark = pytest.mark.integration


def _plan(database: Database, *, walk: bool, in_flight: list[int]) -> str:
    query = next_rows_query(probe.messaging.outbox, in_flight, 500)
    compiled = query.compile(database.engine, compile_kwargs={"literal_binds": True})
    with database.engine.connect() as conn:
        with conn.begin():
            if walk:
                conn.execute(WALK_THE_UNPUBLISHED_INDEX)
            plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
        # SET LOCAL: the transaction's settings, gone with it.
        assert conn.execute(text("SHOW enable_sort")).scalar() == "on"
        assert conn.execute(text("SHOW enable_bitmapscan")).scalar() == "on"
    return plan


def test_a_burst_is_read_by_walking_the_unpublished_index(database: Database):
    with database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, payload, created_at)"
                " SELECT gen_random_uuid()::text, 'probe.happened', '{}', now() FROM generate_series(1, 5000)"
            )
        )
        # The first batches published; two more in flight.
        session.execute(text("UPDATE outbox SET published_at = now() WHERE id <= 1000"))

    in_flight = list(range(1001, 2001))
    walked = _plan(database, walk=True, in_flight=in_flight)
    assert "Index Scan using ix_outbox_unpublished" in walked, walked
    assert "Sort" not in walked and "Bitmap" not in walked, walked
    # What the planner does without it, for the record: the unpublished rows by a bitmap, then a
    # sort for the first 500 (if this ever changes, the setting may no longer be needed).
    planned = _plan(database, walk=False, in_flight=in_flight)
    assert "Sort" in planned or "Bitmap" in planned, planned
