"""The street office's overview through the real gateway, on a city in PostgreSQL, beside the plain
query it replaces.

One city for every service: 10,000 communities in 100 streets (ids shared by the gateway's
directory and every service's replica), 2,000,000 issues over the last twelve months (the
generator of `issues_stats.py`: statuses, resolution times, ratings, overdue ones, concluded round
tables), meetings (`meetings_stats.py`: 6 a community, agendas, decisions, action items,
documents) and activities (`activities_stats.py`: per community 12 activities, 40 registrations,
30 check-ins, 5 service deliveries, 5 help-log entries, posts, groups, talents). Notifications get
the directory only (no deliveries). The issues' counts are built as `linli-issues rebuild-counts`
does (timed).

Then the real processes are started (`linli_kit.testing.platform`: gunicorn of each service and
of the gateway, as `make run` starts them) and `GET /api/v1/stats/overview` is timed through the
gateway for one street (as its street official) and for the whole city (as a city admin):

- `read models`: what the overview answers now (the issues' counts; the whole city per street);
- `plain`: the query it replaces — the issues' history read (its counts switched off, as before
  they were built) and, for the whole city, every community listed (`communities=true`, the
  answer before).

Both must give the same totals (checked; the issues' figures to the unit). Prints p50 / p95 / max,
the answer's size and the load average; never asserts on time.

    .venv/bin/python bench/city_overview.py [--communities 10000] [--issues 2000000] [--runs 20]
    .venv/bin/python bench/city_overview.py --communities 300 --issues 30000 --runs 10   # develop

Generating the full city takes long. `--city NAME` keeps its databases (`lt_city_<NAME>_<service>`)
after the run and uses them again on the next run with the same name and sizes: then each database
is only brought to its newest migration and the meetings' and activities' read models are built
again from the history (`rebuild-counts`, timed; the issues' counts too with `--rebuild-issues`),
so a change of code is measured on the same city. `--generate-only`
stops after generating; `--drop-city` removes a kept city.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from activities_stats import seed_sql as activities_seed_sql  # noqa: E402 - the bench folder is not a package
from issues_stats import generate as generate_issues  # noqa: E402
from meetings_stats import seed as seed_meetings  # noqa: E402

ZONE = "Asia/Shanghai"
SERVICES = ("issues", "meetings", "activities", "notifications")


def uid(n: int) -> str:
    """The ids of activities_stats.py's generator: street s is uid(s), community c uid(10000000 + c)."""
    return f"00000000-0000-4000-8000-{n:012d}"


def directory(communities: int) -> dict[str, str]:
    """community id -> street id, 100 communities a street (as activities_stats.py lays them out)."""
    return {uid(10_000_000 + c): uid(c // 100) for c in range(communities)}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# The issues' generator dates some acceptances, resolutions, closings, deadlines missed and meetings
# after the moment it runs (an issue reported last week "resolved" in 500 hours); nothing that
# happened can be in the future, so those steps are taken back.
SETTLE = [
    "UPDATE issues SET closed_at = NULL, rating = NULL, status = 'resolved' WHERE closed_at > now()",
    "UPDATE issues SET resolved_at = NULL, status = 'accepted' WHERE resolved_at > now()",
    "UPDATE issues SET accepted_at = NULL, status = 'reported' WHERE accepted_at > now()",
    "UPDATE issues SET overdue_at = NULL WHERE overdue_at > now()",
    "UPDATE issue_meetings SET status = 'scheduled', concluded_at = NULL WHERE concluded_at > now()",
]


def settle(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in SETTLE:
            conn.execute(text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE issues"))
    engine.dispose()


def seed_replica(url: str, street_of: dict[str, str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        streets = sorted(set(street_of.values()))
        conn.execute(
            text("INSERT INTO directory_streets (street_id, name, revision) VALUES (:s, :name, 1)"),
            [{"s": s, "name": f"street {int(s[-12:])}"} for s in streets],
        )
        conn.execute(
            text(
                "INSERT INTO directory_communities (community_id, street_id, name, revision) VALUES (:c, :s, :name, 1)"
            ),
            [{"c": c, "s": s, "name": f"community {int(c[-12:]) - 10_000_000}"} for c, s in street_of.items()],
        )
    engine.dispose()


def seed_gateway(url: str, street_of: dict[str, str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO streets (id, name, city, revision) VALUES (:s, :name, 'Bench city', 1)"),
            [{"s": s, "name": f"street {int(s[-12:])}"} for s in sorted(set(street_of.values()))],
        )
        conn.execute(
            text("INSERT INTO communities (id, street_id, name, revision) VALUES (:c, :s, :name, 1)"),
            [{"c": c, "s": s, "name": f"community {int(c[-12:]) - 10_000_000}"} for c, s in street_of.items()],
        )
    engine.dispose()


class KeptDatabases:
    """The databases of a city kept between runs: named after the city, created once, never dropped
    by the run (`--drop-city` drops them). Same interface as `infra.PostgresDatabases`."""

    def __init__(self, admin_url: str, city: str) -> None:
        self.admin_url = admin_url
        self.city = city

    def name(self, label: str) -> str:
        return f"lt_city_{self.city}_{label}".lower()

    def exists(self, label: str) -> bool:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name(label),)).fetchone()
        return found is not None

    def create(self, label: str) -> str:
        import psycopg
        from psycopg import sql

        if not self.exists(label):
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name(label))))
        from urllib.parse import urlparse

        return urlparse(self.admin_url)._replace(scheme="postgresql+psycopg", path=f"/{self.name(label)}").geturl()

    def drop_all(self) -> None:
        """A kept city stays: only `drop` removes it."""

    def drop(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for service in ("gateway", *SERVICES):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name(service)))
                )


def generated_city(url: str) -> tuple[int, int] | None:
    """(communities, issues) of a kept city whose generation finished, or None."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT communities, issues FROM bench_city")).first()
    except Exception:  # noqa: BLE001 - no such table: the generation never finished
        row = None
    engine.dispose()
    return None if row is None else (row[0], row[1])


def mark_generated(url: str, communities: int, issues: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_city (communities integer, issues integer)"))
        conn.execute(text("DELETE FROM bench_city"))
        conn.execute(text("INSERT INTO bench_city VALUES (:c, :i)"), {"c": communities, "i": issues})
    engine.dispose()


# Where each service records that its read models are built (the city's time zone; NULL: not built,
# the history is read): a kept city has them built once, a new city after seeding.
# The meetings' counts have no such switch: their migration builds them and every change keeps them.
COUNTS_STATE = {"activities": "activity_counts_state"}


def counts_built(url: str, service: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            zone = conn.execute(text(f"SELECT zone FROM {COUNTS_STATE[service]}")).scalar()  # noqa: S608 - a fixed name
    except Exception:  # noqa: BLE001 - no such table: the service keeps none
        zone = None
    engine.dispose()
    return zone is not None


def rebuild_read_models(platform: Any, service: str) -> str:
    """`linli-<service> rebuild-counts` where the service has it: the read models from the history."""
    import subprocess

    from linli_kit.testing.platform import BIN

    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / f"linli-{service}"), "rebuild-counts"],
        env=platform.env(service),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        return f"{service}: no rebuild-counts ({(result.stderr or result.stdout).strip().splitlines()[-1:]})"
    return f"{service}: read models rebuilt in {time.perf_counter() - started:.1f} s"


def seed_activities(url: str, communities: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in activities_seed_sql(communities).split(";"):
            if statement.strip():
                conn.execute(text(statement), {"streets": max(1, communities // 100), "communities": communities})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def build_counts(url: str) -> float:
    from linli_issues.adapters import counters
    from linli_kit.db import Database

    database = Database(url)
    started = time.perf_counter()
    with database.transaction() as session:
        counters.rebuild(session, ZoneInfo(ZONE))
    with database.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE issue_month_counts, issue_month_breakdowns,"
            " issue_consultation_counts, issue_meeting_consultations"
        )
    database.dispose()
    return time.perf_counter() - started


def counts_on(urls: dict[str, str], on: bool) -> None:
    """Read models on, or off (each service then reads its history: the plain query)."""
    for service, table in (("issues", "issue_counts_state"), *COUNTS_STATE.items()):
        engine = create_engine(urls[service])
        try:
            with engine.begin() as conn:
                conn.execute(text(f"UPDATE {table} SET zone = :zone"), {"zone": ZONE if on else None})  # noqa: S608
        except Exception:  # noqa: BLE001 - a service without read models: nothing to switch
            pass
        engine.dispose()


def timed(url: str, headers: dict[str, str], runs: int, *, whole: bool = True) -> tuple[list[float], dict, int]:
    session = requests.Session()
    answer: dict = {}
    size = 0
    samples = []
    for attempt in range(runs + 1):
        started = time.perf_counter()
        response = session.get(url, headers=headers, timeout=600)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text[:500]
        answer, size = response.json(), len(response.content)
        assert not whole or answer["complete"], answer["missing"]
        if attempt:  # the first warms the caches, as a running city's are
            samples.append(elapsed)
    return sorted(samples), answer, size


def figures(samples: list[float]) -> tuple[float, float, float]:
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95, samples[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--communities", type=int, default=10_000, help="in streets of 100 (default 10,000)")
    parser.add_argument("--issues", type=int, default=2_000_000)
    parser.add_argument("--meetings-per-community", type=int, default=6)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per case (default 20)")
    parser.add_argument("--plain-runs", type=int, default=5, help="timed requests of the plain query (default 5)")
    parser.add_argument("--city", help="keep the generated city under this name and use it again")
    parser.add_argument("--generate-only", action="store_true", help="stop once the city is generated")
    parser.add_argument("--drop-city", action="store_true", help="drop the kept city --city and stop")
    parser.add_argument(
        "--rebuild-issues", action="store_true", help="on a kept city, build the issues' counts again (kept otherwise)"
    )
    args = parser.parse_args()

    from linli_kit.auth import TokenSigner
    from linli_kit.config import BusNames
    from linli_kit.keys import generate_keypair
    from linli_kit.testing import infra
    from linli_kit.testing.platform import Platform

    admin_url, _ = infra.find_postgres()
    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    kept = KeptDatabases(admin_url, args.city) if args.city else None
    if kept is not None and args.drop_city:
        kept.drop()
        print(f"city {args.city} dropped")
        return
    databases = kept or infra.PostgresDatabases(admin_url, f"bench{run}")
    bus = BusNames(
        exchange=f"bench.{run}.events", dead_letter_exchange=f"bench.{run}.dead", queue_prefix=f"bench.{run}."
    )
    private, public = generate_keypair()
    workdir = Path(tempfile.mkdtemp(prefix="linli-city-overview-"))
    platform = Platform(databases, amqp_url, bus, public, private, workdir)
    # The plain whole-city query takes seconds a service on a loaded machine: time it, do not
    # let the gateway give up on it after its usual 10 s.
    platform.extra_env["PROXY_TIMEOUT_SECONDS"] = "120"
    try:
        street_of = directory(args.communities)
        streets = sorted(set(street_of.values()))
        print(f"load average before: {load()}", flush=True)
        started = time.perf_counter()
        reuse = kept is not None and kept.exists("issues")
        reuse = reuse and generated_city(platform.database_url("issues")) == (args.communities, args.issues)
        if kept is not None and kept.exists("issues") and not reuse:
            kept.drop()  # a half-made city, or one of other sizes: made again
        for service in ("gateway", *SERVICES):
            platform.migrate(service)
        urls = {service: platform.database_url(service) for service in ("gateway", *SERVICES)}
        if reuse:
            print(f"city {args.city} kept from an earlier run, migrated in {time.perf_counter() - started:.0f} s")
        else:
            seed_gateway(urls["gateway"], street_of)
            for service in ("issues", "notifications"):  # meetings' and activities' generators make theirs
                seed_replica(urls[service], street_of)
            print(f"generating {args.issues:,} issues in {args.communities:,} communities ...", flush=True)
            generate_issues(urls["issues"], args.communities, len(streets), args.issues, directory=False)
            settle(urls["issues"])
            seed_meetings(urls["meetings"], args.communities, args.meetings_per_community, len(streets), street_of)
            seed_activities(urls["activities"], args.communities)
            print(f"city generated in {time.perf_counter() - started:.0f} s", flush=True)
        if not reuse or args.rebuild_issues:
            print(f"issues' counts built (rebuild-counts) in {build_counts(urls['issues']):.1f} s", flush=True)
        for service in ("meetings", "activities"):
            if reuse and (service not in COUNTS_STATE or counts_built(urls[service], service)):
                print(f"{service}: read models kept from an earlier run", flush=True)
            else:
                print(rebuild_read_models(platform, service), flush=True)
        if kept is not None and not reuse:
            mark_generated(urls["issues"], args.communities, args.issues)
        if args.generate_only:
            return

        for service in SERVICES:
            platform.start_web(service)
        gateway = platform.start_web("gateway")
        signer = TokenSigner(private, issuer="linli-gateway")
        street = streets[len(streets) // 2]
        official = {
            "Authorization": "Bearer "
            + signer.sign(user_id=str(uuid.uuid4()), role="street_official", street_id=street)
        }
        admin = {"Authorization": "Bearer " + signer.sign(user_id=str(uuid.uuid4()), role="city_admin")}
        overview = f"{gateway.url}/api/v1/stats/overview"
        cases = [
            ("one street", f"{overview}?street_id={street}", f"{overview}?street_id={street}", official),
            ("whole city", overview, f"{overview}?communities=true", admin),
        ]
        print(
            f"\nGET /api/v1/stats/overview through the gateway, last 12 months: {args.issues:,} issues, "
            f"{args.communities:,} communities in {len(streets)} streets"
        )
        print(f"{'scope':<12}{'query':<13}{'p50 ms':>9}{'p95':>9}{'max':>9}{'answer KB':>11}{'rows':>7}  load")
        answers = {}
        for label, fast, plain, headers in cases:
            for kind, url, runs in (("read models", fast, args.runs), ("plain", plain, args.plain_runs)):
                counts_on(urls, kind == "read models")
                samples, answer, size = timed(url, headers, runs)
                answers[(label, kind)] = answer
                p50, p95, top = figures(samples)
                rows = len(answer["by_community"]) + len(answer["by_street"])
                print(
                    f"{label:<12}{kind:<13}{p50:>9.1f}{p95:>9.1f}{top:>9.1f}{size / 1024:>11.0f}{rows:>7}  {load()}",
                    flush=True,
                )
            same = answers[(label, "read models")]["totals"] == answers[(label, "plain")]["totals"]
            monthly = answers[(label, "read models")]["monthly"] == answers[(label, "plain")]["monthly"]
            print(f"{'':<12}same totals: {same}, same months: {monthly}", flush=True)
        counts_on(urls, True)
        # Where the time goes: each service's own /stats as the gateway asks it (its token for the
        # service, the same query), read models on.
        print("\neach service's GET /stats, as the gateway asks it")
        print(f"{'scope':<12}{'service':<15}{'p50 ms':>9}{'p95':>9}")
        for label, query, claims in (
            ("one street", {"street_id": street}, {"role": "street_official", "street_id": street}),
            ("whole city", {"by": "street"}, {"role": "city_admin"}),
        ):
            for service in SERVICES:
                token = signer.sign(user_id=str(uuid.uuid4()), audience=service, **claims)
                url = f"{platform.env(service)[service.upper() + '_URL']}/stats?" + "&".join(
                    f"{k}={v}" for k, v in query.items()
                )
                samples, _answer, _size = timed(url, {"Authorization": f"Bearer {token}"}, args.runs, whole=False)
                p50, p95, _top = figures(samples)
                print(f"{label:<12}{service:<15}{p50:>9.1f}{p95:>9.1f}", flush=True)
        print("target (issue 14, DESIGN section 7): p95 <= 150 ms through the gateway, street and whole city")
    finally:
        platform.stop_all()
        databases.drop_all()
        try:
            infra.delete_bus(amqp_url, bus.exchange, bus.dead_letter_exchange, [])
        except Exception as exc:  # noqa: BLE001 - nothing was declared, or the broker is away: nothing to remove
            print(f"(broker clean-up: {exc})")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
