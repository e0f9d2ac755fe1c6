"""The statistics' monthly counts (adapters/counters.py) against the history they replace.

Random histories of issues — reported, accepted, resolved, reopened, closed with a rating, gone
overdue, escalated, some near the midnight that ends a month in Shanghai — written through the
ORM as any use case writes them; then `/stats`' use case over random periods and scopes must give
the same figures from the counts as from the history, and a rebuild must give the very counts
that were kept along the way.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from linli_issues.adapters import counters
from linli_issues.adapters.tables import issue_counts_state, issue_month_breakdowns, issue_month_counts
from linli_issues.domain.model import Issue, TimelineEntry
from linli_issues.service_layer import stats
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.periods import resolve_period

ZONE = "Asia/Shanghai"
CATEGORIES = ("safety_hazard", "parking", "other", "neighbour_dispute")
TIERS = ("compound", "community", "street", "city")
START = datetime(2026, 9, 25, tzinfo=UTC)


def _moment(rng: random.Random, after: datetime) -> datetime:
    """Later than `after`; often close to 16:00 UTC, the midnight of Shanghai, where months turn."""
    later = after + timedelta(hours=rng.uniform(0.5, 400))
    if rng.random() < 0.3:
        later = later.replace(hour=15 + rng.randint(0, 1), minute=rng.randint(0, 59))
        if later <= after:
            later += timedelta(days=1)
    return later


def _write_history(database, communities: list[str], rng: random.Random, issues: int) -> None:
    ids = []
    with IssuesUnitOfWork(database) as uow:
        for _ in range(issues):
            created = START + timedelta(hours=rng.uniform(0, 24 * 95))
            issue = Issue(
                community_id=rng.choice(communities),
                title="t",
                description="d",
                category=rng.choice(CATEGORIES),
                urgency="normal",
                tier=rng.choice(TIERS[:2]),
                reporter_id=str(uuid.uuid4()),
                created_at=created,
            )
            uow.issues.add(issue)
            ids.append(issue.id)
        uow.commit()
    # Each issue walks on in transactions of its own, as use cases and timers move it.
    for issue_id in ids:
        for _ in range(rng.randint(0, 6)):
            with IssuesUnitOfWork(database) as uow:
                issue = uow.issues.get(issue_id, for_update=True)
                assert issue is not None
                now = _moment(rng, issue.updated_at or issue.created_at)
                step = rng.choice(["accept", "resolve", "close", "reopen", "overdue", "escalate", "recategorise"])
                if step == "accept" and issue.accepted_at is None:
                    issue.status, issue.accepted_at = "accepted", now
                elif step == "resolve" and issue.status not in stats.DONE:
                    issue.status, issue.resolved_at = "resolved", now
                elif step == "close" and issue.status == "resolved":
                    issue.status, issue.closed_at = "closed", now
                    issue.rating = rng.choice([None, 1, 2, 3, 4, 5])
                elif step == "reopen" and issue.status in stats.DONE:
                    issue.status, issue.resolved_at, issue.closed_at, issue.rating = "accepted", None, None, None
                elif step == "overdue":
                    issue.overdue_at = now
                elif step == "escalate" and issue.tier != "city":
                    previous, issue.tier = issue.tier, TIERS[TIERS.index(issue.tier) + 1]
                    move = {"from": previous, "to": issue.tier}
                    uow.issues.add(TimelineEntry(issue.id, "escalation", now, data=move))
                elif step == "recategorise":
                    issue.category = rng.choice(CATEGORIES)
                issue.updated_at = now
                uow.commit()


def _figures(database, query: stats.StatsQuery) -> dict:
    admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
    return stats.compute(IssuesUnitOfWork(database), admin, query, ZONE)


def _differences(a: object, b: object, path: str = "") -> list[str]:
    """Where two answers differ (path: a != b), for a failure that says what."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for key in keys for d in _differences(a.get(key), b.get(key), f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _set_zone(database, zone: str | None) -> None:
    with database.transaction() as session:
        session.execute(update(issue_counts_state).values(zone=zone))


def _counts(database) -> tuple[list, list]:
    with database.transaction() as session:
        rows = session.execute(select(issue_month_counts).order_by("community_id", "month"))
        # A month whose counts all went back to nought (a reopened issue, say) is as good as none.
        wide = [tuple(r) for r in rows if any(r[2:])]
        narrow = session.execute(select(issue_month_breakdowns).where(issue_month_breakdowns.c.count != 0))
        return wide, sorted(tuple(r) for r in narrow)


def _periods(rng: random.Random) -> list[tuple[date, date]]:
    periods = [(date(2026, 10, 1), date(2026, 12, 31)), (date(2026, 11, 1), date(2026, 11, 30))]
    periods.append((resolve_period(date(2026, 12, 3)).start, date(2026, 12, 3)))  # the default, on a day
    for _ in range(5):
        first = date(2026, 9, 20) + timedelta(days=rng.randint(0, 100))
        periods.append((first, first + timedelta(days=rng.randint(0, 70))))
    return periods


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
def test_counts_equal_the_history_they_replace(database, directory):
    rng = random.Random(20261203)
    communities = [directory.community_a1, directory.community_a2, directory.community_b1]
    _write_history(database, communities, rng, issues=40)
    kept = _counts(database)
    scopes = [
        (None, None, "community"),
        (None, None, "street"),
        (None, directory.street_a, "community"),
        (None, directory.street_a, "street"),
        (directory.community_a1, None, "community"),
    ]
    for start, end in _periods(rng):
        for community_id, street_id, by in scopes:
            query = stats.StatsQuery(community_id, street_id, start, end, by)
            counted = _figures(database, query)
            _set_zone(database, None)  # no counts: the history is read
            try:
                read = _figures(database, query)
            finally:
                _set_zone(database, ZONE)
            assert counted == read, (start, end, community_id, street_id, _differences(counted, read)[:5])
    # No row for the whole city that every change updates: streets' rows, and the city's hours
    # to resolve by month and number of hours.
    wide, narrow = kept
    assert not [row for row in wide if row[0] == counters.CITY]
    assert {row[2] for row in narrow if row[0] == counters.CITY} == {"hours"}
    streets = {row[0] for row in wide if row[0].startswith(counters.STREET)}
    assert streets == {counters.street_key(directory.street_a), counters.street_key(directory.street_b)}
    by_street = _figures(database, stats.StatsQuery(None, None, date(2026, 9, 1), date(2027, 3, 31), "street"))
    assert by_street["by_community"] == [] and len(by_street["by_street"]) == 2
    assert sum(row["raised"] for row in by_street["by_street"]) == 40
    # The history walked through every kind of step the counts follow.
    whole = _figures(database, stats.StatsQuery(None, None, date(2026, 9, 1), date(2027, 3, 31)))["totals"]
    assert whole["raised"] == 40 and whole["resolved"] and whole["overdue"] and whole["ratings"]
    assert whole["escalated_by_tier"]["community_to_street"] and whole["accepted"]
    # Built again from the history, the counts are those kept along the way.
    with database.transaction() as session:
        counted_issues = counters.rebuild(session, ZoneInfo(ZONE))
    assert counted_issues == 40
    assert _counts(database) == kept


def test_counts_in_another_zone_are_not_used(database, directory):
    _write_history(database, [directory.community_a1], random.Random(7), issues=5)
    _set_zone(database, "Europe/Paris")
    query = stats.StatsQuery(None, None, date(2026, 10, 1), date(2026, 12, 31))
    from_history = _figures(database, query)
    with database.transaction() as session:
        session.execute(update(issue_month_counts).values(raised=1000))  # would show if they were read
    assert _figures(database, query) == from_history


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0014_leaves_the_history_read_until_the_counts_are_built_again(backend, pg_databases, tmp_path):
    """Counts of 0009 (with the whole city's row) are not the counts of 0014 (street rows, hours):
    a database with issues reads its history until `rebuild-counts`; downgrading works too."""
    from alembic import command
    from sqlalchemy import column, create_engine, insert, table, text

    from linli_issues.adapters.tables import issues
    from linli_issues.definition import definition
    from linli_kit.migrations import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'issues.db'}" if backend == "sqlite" else pg_databases.create("issues_0014")
    upgrade(definition.migrations_dir, url, "0009")
    engine = create_engine(url)
    # The table as these versions have it (no shard: migration 0017 adds it).
    issue_month_counts = table(
        "issue_month_counts", *[column(name) for name in ("community_id", "month", *counters.FIGURES)]
    )
    now = datetime(2026, 11, 2, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(issues).values(
                id=str(uuid.uuid4()), community_id=str(uuid.uuid4()), title="t", description="d", category="other",
                urgency="normal", status="reported", tier="community", reporter_id="r", channel="app",
                anonymous=False, supporter_count=0, consultation_count=0, created_at=now, updated_at=now, revision=1,
            )
        )  # fmt: skip
        conn.execute(text("UPDATE issue_counts_state SET zone = 'Asia/Shanghai'"))
        conn.execute(
            insert(issue_month_counts).values(
                community_id="*", month="2026-11", **dict.fromkeys(counters.FIGURES, 0) | {"raised": 1}
            )
        )
    upgrade(definition.migrations_dir, url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT zone FROM issue_counts_state")).scalar() is None
        assert conn.execute(text("SELECT count(*) FROM issue_month_counts WHERE community_id = '*'")).scalar() == 0
        street_row = "street:" + "0" * 36  # the longer key fits
        conn.execute(
            insert(issue_month_counts).values(
                community_id=street_row, month="2026-11", **dict.fromkeys(counters.FIGURES, 0)
            )
        )
    command.downgrade(alembic_config(definition.migrations_dir, url), "0009")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM issue_month_counts")).scalar() == 0
    engine.dispose()
