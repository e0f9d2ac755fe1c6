"""The `/stats` query on a generated city: 10,000 communities in 100 streets and 2,000,000 issues.

Generates the city inside PostgreSQL (generate_series, so the run is not limited by the client),
over the last twelve months, with a realistic spread of statuses, resolution times, ratings and
concluded meetings; then times the statistics use case (`service_layer.stats.compute`, the same
code `GET /stats` runs) for one community, one street and the whole city, over the default
period and over one month. Prints p50 / p95 / max per query; never asserts on time.

    .venv/bin/python bench/issues_stats.py [--issues 2000000] [--communities 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

CATEGORIES = [
    "safety_hazard",
    "repairs_facilities",
    "environment_sanitation",
    "property_management",
    "parking",
    "neighbour_dispute",
    "elderly_vulnerable_support",
    "other",
]


def generate(url: str, communities: int, streets: int, issues: int, *, directory: bool = True) -> None:
    """`directory=False`: the directory replica is there already (bench/city_overview.py makes one
    city for every service)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    categories = "ARRAY[" + ",".join(f"'{c}'" for c in CATEGORIES) + "]"
    with engine.begin() as conn:
        if directory:
            conn.execute(
                text(
                    "INSERT INTO directory_streets SELECT gen_random_uuid()::text, 'Street ' || g, 'Bench city', 1 "
                    "FROM generate_series(1, :n) g"
                ),
                {"n": streets},
            )
            conn.execute(
                text(
                    "WITH s AS (SELECT street_id, row_number() OVER (ORDER BY street_id) AS rn "
                    "FROM directory_streets) "
                    "INSERT INTO directory_communities "
                    "SELECT gen_random_uuid()::text, s.street_id, 'Community ' || g, 1 "
                    "FROM generate_series(0, :n - 1) g JOIN s ON s.rn = g % :streets + 1"
                ),
                {"n": communities, "streets": streets},
            )
        conn.execute(
            text(
                "CREATE TABLE bench_communities AS SELECT community_id, "
                "row_number() OVER (ORDER BY community_id) - 1 AS rn FROM directory_communities"
            )
        )
    chunk = 200_000
    for start in range(0, issues, chunk):
        count = min(chunk, issues - start)
        with engine.begin() as conn:
            # One row per issue: reported in the last year; 85 % accepted within 2 days; 70 % resolved
            # within 1-400 hours; of those, most closed, 60 % with a rating; 10 % went overdue.
            conn.execute(
                text(
                    f"""
                    INSERT INTO issues (id, community_id, title, description, category, urgency, status, tier,
                        reporter_id, channel, anonymous, supporter_count, consultation_count, created_at, due_at,
                        accepted_at, resolved_at, closed_at, overdue_at, rating, updated_at, revision)
                    SELECT gen_random_uuid()::text, c.community_id, 'Generated issue', 'Generated for the bench',
                        ({categories})[1 + floor(r.k * 8)::int],
                        (ARRAY['low','normal','high','urgent'])[1 + floor(r.u * 4)::int],
                        CASE WHEN r.a > 0.85 THEN 'reported' WHEN r.s > 0.7 THEN 'accepted'
                             WHEN r.s > 0.6 THEN 'resolved' ELSE 'closed' END,
                        (ARRAY['compound','community','street','city'])[1 + floor(r.t * r.t * 4)::int],
                        gen_random_uuid()::text, 'app', false, floor(r.u * 10)::int, floor(r.k * 3)::int,
                        r.created, r.created + interval '14 days',
                        CASE WHEN r.a <= 0.85 THEN r.created + r.a * interval '48 hours' END,
                        CASE WHEN r.a <= 0.85 AND r.s <= 0.7 THEN r.created + (1 + r.s * 570) * interval '1 hour' END,
                        CASE WHEN r.a <= 0.85 AND r.s <= 0.6 THEN r.created + (1 + r.s * 700) * interval '1 hour' END,
                        CASE WHEN r.t > 0.9 THEN r.created + interval '14 days' END,
                        CASE WHEN r.a <= 0.85 AND r.s <= 0.36 THEN 1 + floor(r.u * 5)::int END,
                        r.created, 1
                    FROM (
                        SELECT g, now() - random() * interval '365 days' AS created, random() AS a, random() AS s,
                               random() AS t, random() AS u, random() AS k
                        FROM generate_series(:start, :start + :count - 1) g
                    ) r JOIN bench_communities c ON c.rn = r.g % :communities
                    """
                ),
                {"start": start, "count": count, "communities": communities},
            )
        print(f"  {start + count:>9,} issues", flush=True)
    with engine.begin() as conn:
        # One concluded round table for every fifty issues.
        conn.execute(
            text(
                "INSERT INTO issue_meetings (issue_id, meeting_id, community_id, meeting_type, title, starts_at, "
                "status, concluded_at, meeting_revision, linked_at) "
                "SELECT id, gen_random_uuid()::text, community_id, 'round_table', 'Round table', created_at, "
                "'concluded', created_at + interval '7 days', 2, created_at "
                "FROM issues TABLESAMPLE SYSTEM (2)"
            )
        )
        conn.execute(text("DROP TABLE bench_communities"))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def timed(label: str, runs: int, call) -> None:
    call()  # warm the caches and the statement cache, as a running service would be
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    print(f"{label:<44}{statistics.median(samples):>10.1f}{p95:>10.1f}{samples[-1]:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=2_000_000)
    parser.add_argument("--communities", type=int, default=10_000)
    parser.add_argument("--streets", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from linli_issues.adapters import counters
    from linli_issues.definition import definition
    from linli_issues.service_layer import stats
    from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
    from linli_kit import migrations
    from linli_kit.auth import Principal, Role
    from linli_kit.db import Database
    from linli_kit.periods import resolve_period
    from linli_kit.testing import infra

    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, infra.new_run_id())
    try:
        url = databases.create("bench_stats")
        migrations.upgrade(definition.migrations_dir, url)
        started = time.perf_counter()
        print(f"generating {args.issues:,} issues in {args.communities:,} communities ...", flush=True)
        generate(url, args.communities, args.streets, args.issues)
        print(f"generated in {time.perf_counter() - started:.0f} s")

        # Steps the generator dated after now are taken back, as bench/city_overview.py does.
        from city_overview import settle

        settle(url.replace("postgresql://", "postgresql+psycopg://", 1))
        database = Database(url)
        # The generator writes past the hooks that keep the read models: built as
        # `linli-issues rebuild-counts` builds them (else /stats would read empty counts).
        started = time.perf_counter()
        with database.transaction() as session:
            counters.rebuild(session, ZoneInfo("Asia/Shanghai"))
        with database.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        print(f"counts built (rebuild-counts) in {time.perf_counter() - started:.1f} s")
        with database.session() as s:
            street_id, community_id = s.execute(
                text("SELECT street_id, community_id FROM directory_communities LIMIT 1")
            ).one()
        admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
        today = datetime.now(UTC).date()
        period = resolve_period(today)
        year = (period.start, period.end)
        month = (today.replace(day=1), today)

        def run(community: str | None, street: str | None, period: tuple[date, date], by: str = "community"):
            query = stats.StatsQuery(community, street, *period, by)
            return lambda: stats.compute(IssuesUnitOfWork(database), admin, query, "Asia/Shanghai")

        print(f"\n/stats on {args.issues:,} issues, {args.communities:,} communities ({args.runs} runs each)")
        print(f"{'scope, period':<44}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        timed("one community, last 12 months", args.runs, run(community_id, None, year))
        timed("one street (100 communities), last 12 months", args.runs, run(None, street_id, year))
        timed("one street, this month", args.runs, run(None, street_id, month))
        timed("whole city, this month", max(3, args.runs // 4), run(None, None, month))
        timed("whole city, last 12 months", max(3, args.runs // 4), run(None, None, year))
        timed("whole city by street, last 12 months", args.runs, run(None, None, year, "street"))
        print("target (DESIGN section 7): street overview p95 <= 150 ms through the gateway")
        database.dispose()
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
