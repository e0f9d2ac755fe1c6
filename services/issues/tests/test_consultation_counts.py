"""The consultations held, counted (adapters/consultation_counts.py), against the history they replace.

Random histories of meetings taking up issues — scheduled, rescheduled, cancelled and concluded,
some concluded near the midnight that ends a month in Shanghai, agenda items naming a meeting from
another community's side, events arriving out of order and some twice — handled by the issues'
own handlers, one by one or in consumer batches; then `/stats` for the whole city (per street and
per community) must give the same consultations, and every other figure, from the counts as from
the history, over random periods; and a rebuild gives the rows kept along the way.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from linli_issues.adapters import consultation_counts, counters
from linli_issues.adapters.tables import issue_consultation_counts, issue_counts_state, issue_meeting_consultations
from linli_issues.domain.model import Issue
from linli_issues.service_layer import stats
from linli_issues.service_layer.consultations import handle_batch, handle_one
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.events import new_event
from linli_kit.periods import resolve_period

ZONE = "Asia/Shanghai"
START = datetime(2026, 9, 25, tzinfo=UTC)


def _moment(rng: random.Random) -> datetime:
    """Between late September and early January; often close to 16:00 UTC, Shanghai's midnight."""
    moment = START + timedelta(hours=rng.uniform(0, 24 * 100))
    if rng.random() < 0.4:
        moment = moment.replace(hour=15 + rng.randint(0, 1), minute=rng.randint(0, 59))
    return moment


def _issues(database, communities: list[str], rng: random.Random, count: int) -> list[str]:
    ids = []
    with IssuesUnitOfWork(database) as uow:
        for _ in range(count):
            issue = Issue(
                community_id=rng.choice(communities),
                title="t",
                description="d",
                category="other",
                urgency="normal",
                tier="community",
                reporter_id=str(uuid.uuid4()),
                created_at=START + timedelta(hours=rng.uniform(0, 24 * 30)),
            )
            uow.issues.add(issue)
            ids.append(issue.id)
        uow.commit()
    return ids


def _meeting_events(communities: list[str], issue_ids: list[str], rng: random.Random, meetings: int) -> list:
    """The events of the meetings, shuffled a little (late ones, repeated ones)."""
    events = []
    for n in range(meetings):
        meeting_id = str(uuid.uuid4())
        community_id = rng.choice(communities)
        named = rng.sample(issue_ids, rng.randint(1, 3))
        starts = _moment(rng)
        base = {
            "meeting_id": meeting_id,
            "community_id": community_id,
            "meeting_type": rng.choice(["round_table", "hearing"]),
            "title": f"Round table {n}",
            "starts_at": starts.isoformat(),
        }
        snapshot = {"ends_at": (starts + timedelta(hours=2)).isoformat(), "convener_id": str(uuid.uuid4())}
        revision = 0
        for _ in range(rng.randint(1, 4)):
            revision += rng.choice([1, 1, 2])
            kind = rng.choice(["scheduled", "rescheduled", "cancelled", "concluded", "concluded", "agenda"])
            if kind == "agenda":
                # An agenda item: the link's community is the one the event names (another's at times).
                data = {**base, "issue_id": rng.choice(issue_ids), "item_id": str(uuid.uuid4()), "item_title": "x"}
                data["community_id"] = rng.choice(communities)
                events.append(new_event("meetings.agenda_item.added", data, producer="meetings"))
                continue
            if rng.random() < 0.3:
                named = rng.sample(issue_ids, rng.randint(1, 3))
            data = {**base, **snapshot, "issue_ids": list(named), "revision": revision}
            if kind == "rescheduled":
                data["previous_starts_at"] = base["starts_at"]
            if kind == "cancelled":
                data["reason"] = "the hall is flooded"
            if kind == "concluded":
                data["concluded_at"] = _moment(rng).isoformat()
                data["attendees_count"] = 9
            events.append(new_event(f"meetings.meeting.{kind}", data, producer="meetings"))
    # Late and repeated events: snapshots come out of order, links conclude in different months.
    for _ in range(len(events) // 4):
        i, j = rng.randrange(len(events)), rng.randrange(len(events))
        events[i], events[j] = events[j], events[i]
    events += rng.sample(events, len(events) // 10)
    return events


def _concluded_over_two_months(directory, issue_ids: list[str]) -> list:
    """A meeting concluded on 10 November (revision 5) and an older snapshot of it arriving late,
    concluded on 20 October, naming another issue from the street's other community: that link
    keeps 20 October; the meeting counts in both months, once over both in the street and city."""
    meeting_id = str(uuid.uuid4())
    events = []
    for revision, issue_id, community_id, concluded in [
        (5, issue_ids[0], directory.community_a1, datetime(2026, 11, 10, 8, tzinfo=UTC)),
        (3, issue_ids[1], directory.community_a2, datetime(2026, 10, 20, 8, tzinfo=UTC)),
    ]:
        data = {
            "meeting_id": meeting_id,
            "community_id": community_id,
            "meeting_type": "round_table",
            "title": "Lift",
            "starts_at": "2026-10-20T06:00:00+00:00",
            "ends_at": "2026-10-20T08:00:00+00:00",
            "convener_id": str(uuid.uuid4()),
            "issue_ids": [issue_id],
            "revision": revision,
            "concluded_at": concluded.isoformat(),
            "attendees_count": 9,
        }
        events.append(new_event("meetings.meeting.concluded", data, producer="meetings"))
    return events


def _handle(database, events: list, rng: random.Random) -> None:
    cursor = 0
    while cursor < len(events):
        size = rng.choice([1, 1, 3, 6])
        run, cursor = events[cursor : cursor + size], cursor + size
        with database.transaction() as session:
            if size == 1:
                handle_one(session, run[0])
            else:
                handle_batch(session, run)


def _figures(database, query: stats.StatsQuery) -> dict:
    admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
    return stats.compute(IssuesUnitOfWork(database), admin, query, ZONE)


def _set_zone(database, zone: str | None) -> None:
    with database.transaction() as session:
        session.execute(update(issue_counts_state).values(zone=zone))


def _kept(database) -> tuple[list, list]:
    with database.transaction() as session:
        counts = session.execute(select(issue_consultation_counts).where(issue_consultation_counts.c.held != 0)).all()
        rows = session.execute(select(issue_meeting_consultations)).all()
        return sorted(tuple(r) for r in counts), sorted(tuple(r) for r in rows)


def _periods(rng: random.Random) -> list[tuple[date, date]]:
    periods = [
        (date(2026, 10, 1), date(2026, 12, 31)),
        (date(2026, 11, 1), date(2026, 11, 30)),
        (date(2026, 9, 1), date(2027, 1, 31)),
        (date(2026, 10, 15), date(2026, 12, 20)),
        (date(2026, 10, 1), date(2026, 11, 15)),  # a whole month, then part of one
        (date(2026, 10, 10), date(2026, 11, 30)),  # part of a month, then a whole one
        (resolve_period(date(2026, 12, 3)).start, date(2026, 12, 3)),
    ]
    for _ in range(12):
        first = date(2026, 9, 20) + timedelta(days=rng.randint(0, 100))
        periods.append((first, first + timedelta(days=rng.randint(0, 80))))
    return periods


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_consultations_counted_equal_the_history(database, directory):
    rng = random.Random(20261204)
    # A community the directory does not know yet counts in the street '' (as the history says).
    unknown = str(uuid.uuid4())
    communities = [directory.community_a1, directory.community_a2, directory.community_b1, unknown]
    issue_ids = _issues(database, communities, rng, 30)
    _handle(database, _meeting_events(communities, issue_ids, rng, 80), rng)
    _handle(database, _concluded_over_two_months(directory, issue_ids[:2]), rng)
    kept = _kept(database)
    counts, rows = kept
    # The histories went through the cases the rows are for: meetings counted in two communities
    # of one street, and over two months (pair rows).
    per_meeting: dict[str, set[str]] = {}
    for meeting_id, scope, _month, _item in rows:
        per_meeting.setdefault(meeting_id, set()).add(scope)
    assert any({directory.community_a1, directory.community_a2} <= scopes for scopes in per_meeting.values())
    assert any(item for _m, scope, _month, item in rows if scope == consultation_counts.CITY)
    for start, end in _periods(rng):
        for community_id, street_id, by in [
            (None, None, "street"),
            (None, None, "community"),
            (None, directory.street_a, "community"),
        ]:
            query = stats.StatsQuery(community_id, street_id, start, end, by)
            counted = _figures(database, query)
            _set_zone(database, None)  # no counts: the history is read
            try:
                read = _figures(database, query)
            finally:
                _set_zone(database, ZONE)
            assert counted == read, (start, end, community_id, by)
    whole = _figures(database, stats.StatsQuery(None, None, date(2026, 9, 1), date(2027, 1, 31), "street"))
    assert whole["totals"]["consultations_held"] > 0
    assert sum(row["consultations_held"] for row in whole["by_street"]) >= whole["totals"]["consultations_held"]
    # Built again from the links, the rows are those kept along the way.
    with database.transaction() as session:
        counters.rebuild(session, ZoneInfo(ZONE))
    assert _kept(database) == kept


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0016_counts_the_links_of_a_database_whose_counts_are_built(backend, pg_databases, tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, insert, text

    from linli_issues.adapters.tables import issue_meetings, issues
    from linli_issues.definition import definition
    from linli_kit.migrations import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'issues.db'}" if backend == "sqlite" else pg_databases.create("issues_0016")
    upgrade(definition.migrations_dir, url, "0015")
    engine = create_engine(url)
    now = datetime(2026, 11, 30, 17, tzinfo=UTC)  # 1 December in Shanghai
    issue_id, meeting_id, community_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            insert(issues).values(
                id=issue_id, community_id=community_id, title="t", description="d", category="other",
                urgency="normal", status="deliberating", tier="community", reporter_id="r", channel="app",
                anonymous=False, supporter_count=0, consultation_count=1, created_at=now, updated_at=now, revision=1,
            )
        )  # fmt: skip
        conn.execute(
            insert(issue_meetings).values(
                issue_id=issue_id, meeting_id=meeting_id, community_id=community_id, meeting_type="round_table",
                title="Lift", starts_at=now, status="concluded", concluded_at=now, meeting_revision=2, linked_at=now,
            )
        )  # fmt: skip
        conn.execute(text("UPDATE issue_counts_state SET zone = 'Asia/Shanghai'"))
    upgrade(definition.migrations_dir, url)
    with engine.begin() as conn:
        counted = conn.execute(select(issue_consultation_counts).order_by("scope")).all()
    assert [tuple(row) for row in counted] == [
        ("*", "2026-12", "", 1),
        (community_id, "2026-12", "", 1),
        ("street:", "2026-12", "", 1),
    ]
    command.downgrade(alembic_config(definition.migrations_dir, url), "0015")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM issue_meetings")).scalar() == 1
    engine.dispose()
