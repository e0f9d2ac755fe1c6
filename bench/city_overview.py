"""The street overview's issue figures from the monthly counts, beside the history query they replace.

Generates a city in PostgreSQL (the generator of `issues_stats.py`: 10,000 communities in 100
streets, issues over the last twelve months with statuses, resolution times, ratings, overdue ones
and concluded round tables), builds the counts as `linli-issues rebuild-counts` does (timed), then
times the statistics use case (`service_layer.stats.compute`, what `GET /stats` runs, plus encoding
its answer as JSON) twice for each scope and period: from the history (counts switched off) and from
the counts. Checks both give the same figures, prints p50 / p95 / max; never asserts on time.

    .venv/bin/python bench/city_overview.py [--issues 2000000] [--communities 10000] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text, update

sys.path.insert(0, str(Path(__file__).parent))
from issues_stats import generate  # noqa: E402 - the bench folder is not a package

ZONE = "Asia/Shanghai"


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95, samples[-1]


# The generator of issues_stats.py dates some acceptances, resolutions, closings, deadlines missed
# and meetings after the moment it runs (an issue reported last week "resolved" in 500 hours);
# nothing that happened can be in the future, so those steps are taken back.
SETTLE = [
    "UPDATE issues SET closed_at = NULL, rating = NULL, status = 'resolved' WHERE closed_at > now()",
    "UPDATE issues SET resolved_at = NULL, status = 'accepted' WHERE resolved_at > now()",
    "UPDATE issues SET accepted_at = NULL, status = 'reported' WHERE accepted_at > now()",
    "UPDATE issues SET overdue_at = NULL WHERE overdue_at > now()",
    "UPDATE issue_meetings SET status = 'scheduled', concluded_at = NULL WHERE concluded_at > now()",
]


def settle(database) -> None:
    with database.transaction() as session:
        for statement in SETTLE:
            session.execute(text(statement))
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE issues")


def http_and_merge(url: str, database, street_id: str, first_of_month: date, runs: int) -> None:
    """`GET /stats` through the issues service's own HTTP entry point (its Flask app, in this
    process: token check, argument and answer schemas, JSON), then the gateway's merge of that
    answer into the overview (`linli_gateway.service_layer.statistics.merge`) and its JSON: what a
    request through the gateway costs besides two local HTTP hops and the other services."""
    import os
    import tempfile

    from linli_gateway.service_layer import statistics as gateway_statistics
    from linli_kit.auth import TokenSigner
    from linli_kit.keys import generate_keypair

    private, public = generate_keypair()
    os.environ.update(
        DATABASE_URL=url,
        JWT_PUBLIC_KEY=public,
        LINLI_DATA_DIR=tempfile.mkdtemp(prefix="linli-bench-"),
        LOG_LEVEL="WARNING",
        LOG_JSON="false",
    )
    from linli_issues.entrypoints.web import create_app

    client = create_app().test_client()
    token = TokenSigner(private, issuer="linli-gateway").sign(user_id=str(uuid.uuid4()), role="city_admin")
    headers = {"Authorization": f"Bearer {token}"}
    with database.session() as s:
        names = dict(s.execute(text("SELECT community_id, name FROM directory_communities")).all())
    print("\nthe same with counts, through the service's HTTP entry point and the gateway's merge")
    print(f"{'scope, period':<34}{'p50 ms':>12}{'p95':>8}{'max':>8}{'answer KB':>11}")
    for label, query, scope, repeat in [
        ("one street, last 12 months", f"street_id={street_id}", (None, street_id), runs),
        ("one street, this month", f"street_id={street_id}&from={first_of_month}", (None, street_id), runs),
        ("whole city, last 12 months", "", (None, None), max(3, runs // 2)),
    ]:
        samples = []
        for attempt in range(repeat + 1):
            started = time.perf_counter()
            response = client.get(f"/stats?{query}", headers=headers)
            assert response.status_code == 200, response.get_json()
            answer = response.get_json()
            period = date.fromisoformat(answer["period"]["from"]), date.fromisoformat(answer["period"]["to"])
            stats_scope = gateway_statistics.StatsScope(*scope, *period)
            overview = gateway_statistics.merge(stats_scope, {"issues": answer}, [], names)
            encoded = json.dumps(overview, default=str)
            if attempt:  # the first warms the caches
                samples.append((time.perf_counter() - started) * 1000)
        p50, p95, top = percentiles(samples)
        print(f"{label:<34}{p50:>12.1f}{p95:>8.1f}{top:>8.1f}{len(encoded) / 1024:>11.0f}", flush=True)


def kept_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=2_000_000)
    parser.add_argument("--communities", type=int, default=10_000)
    parser.add_argument("--streets", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--keep",
        metavar="DATABASE",
        help="generate into this database and keep it; a later run with the same name reuses it",
    )
    args = parser.parse_args()

    from linli_issues.adapters import counters
    from linli_issues.adapters.tables import issue_counts_state
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
        url = kept_database(admin_url, args.keep) if args.keep else databases.create("bench_overview")
        migrations.upgrade(definition.migrations_dir, url)
        database = Database(url)
        with database.session() as s:
            existing = s.execute(text("SELECT count(*) FROM issues")).scalar()
        if existing:
            print(f"reusing {existing:,} issues of {args.keep}")
        else:
            started = time.perf_counter()
            print(f"generating {args.issues:,} issues in {args.communities:,} communities ...", flush=True)
            generate(url, args.communities, args.streets, args.issues)
            settle(database)
            print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            with database.transaction() as session:
                counters.rebuild(session, ZoneInfo(ZONE))
            print(f"counts built (rebuild-counts) in {time.perf_counter() - started:.1f} s", flush=True)
        with database.session() as s:
            street_id, community_id = s.execute(
                text("SELECT street_id, community_id FROM directory_communities LIMIT 1")
            ).one()
            rows = s.execute(text("SELECT count(*) FROM issue_month_counts")).scalar()
        print(f"{rows:,} rows of counts")
        admin = Principal(user_id=str(uuid.uuid4()), role=Role.CITY_ADMIN)
        today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
        year = resolve_period(today)
        month = (today.replace(day=1), today)

        def counts_on(on: bool) -> None:
            with database.transaction() as session:
                session.execute(update(issue_counts_state).values(zone=ZONE if on else None))

        def call(community: str | None, street: str | None, period: tuple[date, date]):
            query = stats.StatsQuery(community, street, *period)
            result = stats.compute(IssuesUnitOfWork(database), admin, query, ZONE)
            json.dumps(result, default=str)
            return result

        cases = [
            ("one community, last 12 months", community_id, None, (year.start, year.end), args.runs),
            ("one street, last 12 months", None, street_id, (year.start, year.end), args.runs),
            ("one street, this month", None, street_id, month, args.runs),
            ("whole city, this month", None, None, month, max(3, args.runs // 2)),
            ("whole city, last 12 months", None, None, (year.start, year.end), max(3, args.runs // 2)),
        ]
        print(f"\n/stats of the issues service on {existing or args.issues:,} issues, {args.communities:,} communities")
        print(f"{'scope, period':<34}{'history p50':>12}{'p95':>8}{'counts p50':>12}{'p95':>8}{'max':>8}  same")
        for label, community, street, period, runs in cases:
            figures = {}
            for on in (False, True):
                counts_on(on)
                figures[on] = call(community, street, period)  # warm, as a running service is
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    call(community, street, period)
                    samples.append((time.perf_counter() - started) * 1000)
                figures[(on, "t")] = percentiles(samples)
            h50, h95, _ = figures[(False, "t")]
            c50, c95, cmax = figures[(True, "t")]
            same = figures[False] == figures[True]
            # What the counts cannot hold: the median and 90th percentile hours and the
            # consultations, still read from the history of the period, timed alone.
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                with IssuesUnitOfWork(database) as uow:
                    zone = ZoneInfo(ZONE)
                    query = stats.StatsQuery(community, street, *period)
                    first, after = resolve_period(today, *period).instants(zone)
                    stats._Figures(uow, query, first, after, zone).rollup(frozenset({"resolved", "held"}))
                samples.append((time.perf_counter() - started) * 1000)
            p50, p95, _ = percentiles(samples)
            print(f"{label:<34}{h50:>12.1f}{h95:>8.1f}{c50:>12.1f}{c95:>8.1f}{cmax:>8.1f}  {same}", flush=True)
            print(f"{'  of which hours + consultations':<34}{'':>12}{'':>8}{p50:>12.1f}{p95:>8.1f}", flush=True)
        http_and_merge(url, database, street_id, month[0], args.runs)
        print("target (DESIGN section 7): street overview p95 <= 150 ms through the gateway")
        database.dispose()
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
