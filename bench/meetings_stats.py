"""`GET /stats` of the meetings service on a city of 10,000 communities.

Seeds a migrated PostgreSQL database with a year of a large city's meetings (COPY, so seeding takes
seconds) and builds the statistics' counts from them as `linli-meetings rebuild-counts` does (timed;
the service keeps them with every change, COPY goes around it), then asks for the figures of one
community, one street and the whole city, as community staff, a street official and a city admin
would, through the service's WSGI app in this process.
Prints p50 and p95 per scope, from the counts and from the history query they replace (checked to
give the same answer). The gateway's street overview (DESIGN section 7: p95 <= 150 ms through
the gateway) waits on this answer among others.

    .venv/bin/python bench/meetings_stats.py [--communities 10000] [--meetings-per-community 6] [--calls 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from linli_kit import migrations
from linli_kit.auth import TokenSigner
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra
from linli_meetings.adapters import counts

TYPES = ("bench", "pavilion", "round_table")


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows) -> int:
    n = 0
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def seed(
    url: str, communities: int, per_community: int, streets: int, street_of: dict[str, str] | None = None
) -> tuple[str, str, str]:
    """`street_of` (community id -> street id): the city's directory, when another service's
    generator made it (bench/city_overview.py); by default one of new ids."""
    rng = random.Random(7)
    today = date.today()
    if street_of is None:
        street_ids = [str(uuid.uuid4()) for _ in range(streets)]
        community_ids = [str(uuid.uuid4()) for _ in range(communities)]
        street_of = {c: street_ids[i % streets] for i, c in enumerate(community_ids)}
    else:
        community_ids = sorted(street_of)
        street_ids = sorted(set(street_of.values()))
        communities, streets = len(community_ids), len(street_ids)
    now = datetime.now(UTC)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        copy_rows(
            conn,
            "directory_streets",
            ["street_id", "name", "revision"],
            ((s, f"Street {s[:6]}", 1) for s in street_ids),
        )
        copy_rows(
            conn,
            "directory_communities",
            ["street_id", "community_id", "name", "revision"],
            ((street_of[c], c, f"Community {c[:6]}", 1) for c in community_ids),
        )
        meetings, agenda, deliberations, decisions, actions, issues, documents = [], [], [], [], [], [], []
        for c in community_ids:
            for _ in range(per_community):
                mid = str(uuid.uuid4())
                day = today - timedelta(days=rng.randrange(365))
                start = datetime(day.year, day.month, day.day, 11, tzinfo=UTC)
                status = "concluded" if rng.random() < 0.9 else "cancelled"
                meetings.append(
                    (
                        mid,
                        c,
                        rng.choice(TYPES),
                        "Meeting",
                        "Hall",
                        start,
                        start + timedelta(hours=1),
                        day,
                        str(uuid.uuid4()),
                        True,
                        status,
                        0,
                        rng.randrange(5, 60),
                        json.dumps([]),
                        3,
                        now,
                    )
                )
                for position in (1, 2):
                    issue_id = str(uuid.uuid4())
                    agenda.append((str(uuid.uuid4()), mid, position, "Item", issue_id))
                    if status == "concluded":
                        deliberations.append((mid, issue_id, c, day, 1))
                    issues.append(
                        (
                            issue_id,
                            c,
                            "Issue",
                            "repairs",
                            "normal",
                            rng.choice(("resolved", "deliberating", "closed")),
                            "community",
                            0,
                            1,
                            now,
                        )
                    )
                did = str(uuid.uuid4())
                outcome = rng.choice(("adopted", "adopted", "rejected", "no_quorum"))
                decisions.append(
                    (
                        did,
                        mid,
                        c,
                        "Motion",
                        "show_of_hands",
                        "simple_majority",
                        "none",
                        json.dumps([]),
                        "recorded",
                        outcome,
                        "rule",
                        3,
                        1,
                        0,
                        now,
                        day if status == "concluded" else None,
                    )
                )
                if outcome == "adopted" and rng.random() < 0.5:
                    actions.append(
                        (
                            str(uuid.uuid4()),
                            did,
                            mid,
                            c,
                            "Action",
                            "property_company",
                            day + timedelta(days=30),
                            rng.choice(("open", "in_progress", "done")),
                            now,
                        )
                    )
            if rng.random() < 0.15:
                for kind in ("convention", "rules_of_procedure"):
                    documents.append((str(uuid.uuid4()), c, kind, 1, "Doc", "Body", now))
        copy_rows(
            conn,
            "meetings",
            [
                "id",
                "community_id",
                "meeting_type",
                "title",
                "place",
                "starts_at",
                "ends_at",
                "local_date",
                "convener_id",
                "public",
                "status",
                "rescheduled_count",
                "attendees_count",
                "photo_urls",
                "revision",
                "created_at",
            ],
            meetings,
        )
        copy_rows(conn, "agenda_items", ["id", "meeting_id", "position", "title", "issue_id"], agenda)
        copy_rows(
            conn,
            "deliberations",
            ["meeting_id", "issue_id", "community_id", "local_date", "consultation_number"],
            deliberations,
        )
        copy_rows(
            conn,
            "issue_replica",
            [
                "issue_id",
                "community_id",
                "title",
                "category",
                "urgency",
                "status",
                "tier",
                "supporter_count",
                "revision",
                "updated_at",
            ],
            issues,
        )
        copy_rows(
            conn,
            "decisions",
            [
                "id",
                "meeting_id",
                "community_id",
                "motion",
                "method",
                "threshold",
                "issue_effect",
                "proposed_actions",
                "status",
                "outcome",
                "rule",
                "votes_for",
                "votes_against",
                "abstentions",
                "opened_at",
                "local_date",
            ],
            decisions,
        )
        copy_rows(
            conn,
            "action_items",
            [
                "id",
                "decision_id",
                "meeting_id",
                "community_id",
                "title",
                "owner_body",
                "due_date",
                "status",
                "created_at",
            ],
            actions,
        )
        copy_rows(
            conn,
            "community_documents",
            ["id", "community_id", "kind", "version", "title", "body", "adopted_at"],
            documents,
        )
        conn.execute("ANALYZE")
        print(
            f"seeded {communities} communities in {streets} streets: {len(meetings)} meetings, "
            f"{len(agenda)} agenda items, {len(decisions)} decisions, {len(actions)} action items, "
            f"{len(documents)} documents"
        )
    # The statistics' counts (linli_meetings.adapters.counts), as `linli-meetings rebuild-counts`
    # builds them: the service keeps them with every change, COPY went around it.
    started = time.perf_counter()
    engine = create_engine(url if "+" in url.split(":", 1)[0] else url.replace("postgresql", "postgresql+psycopg", 1))
    with Session(engine) as session:
        counted = counts.rebuild(session)
        session.commit()
    engine.dispose()
    print(f"counts of {counted} meetings built in {time.perf_counter() - started:.1f} s (as rebuild-counts does)")
    return community_ids[0], street_of[community_ids[0]], street_ids[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--communities", type=int, default=10_000)
    parser.add_argument("--streets", type=int, default=100)
    parser.add_argument("--meetings-per-community", type=int, default=6)
    parser.add_argument("--history-calls", type=int, default=5, help="calls of the history query per scope")
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()

    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, infra.new_run_id())
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    try:
        url = databases.create("bench_stats")
        os.environ.update({"DATABASE_URL": url, "JWT_PUBLIC_KEY": public, "LOG_LEVEL": "WARNING", "LOG_JSON": "false"})
        from linli_kit.config import load_settings
        from linli_kit.db import Database
        from linli_meetings.definition import definition
        from linli_meetings.entrypoints.web import create_app

        migrations.upgrade(definition.migrations_dir, url)
        started = time.perf_counter()
        community_id, street_id, _ = seed(url, args.communities, args.meetings_per_community, args.streets)
        print(f"seeding took {time.perf_counter() - started:.1f} s")
        settings = load_settings("meetings")
        client = create_app(settings, Database(settings.database_url)).test_client()

        def bearer(role: str, **claims) -> dict:
            return {"Authorization": "Bearer " + signer.sign(user_id=str(uuid.uuid4()), role=role, **claims)}

        scopes = (
            (
                "community (staff)",
                {"community_id": community_id},
                bearer("community_staff", community_ids=[community_id]),
            ),
            ("street (official)", {"street_id": street_id}, bearer("street_official", street_id=street_id)),
            ("city (admin)", {}, bearer("city_admin")),
            ("city by street (admin)", {"by": "street"}, bearer("city_admin")),
        )
        from linli_meetings.service_layer import stats

        counted = stats._from_counts

        def timed(query: dict, headers: dict, calls: int) -> tuple[list[float], Any]:
            client.get("/stats", query_string=query, headers=headers)  # warm
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                response = client.get("/stats", query_string=query, headers=headers)
                times.append(time.perf_counter() - t0)
                assert response.status_code == 200, response.get_data(as_text=True)
            return sorted(times), response

        print(f"\nGET /stats, last 12 months, {args.calls} calls per scope (history: {args.history_calls})")
        print(f"{'scope':<24}{'counts p50':>11}{'p95 ms':>8}{'history p50':>12}{'p95 ms':>8}{'rows':>7}{'KiB':>6}")
        for name, query, headers in scopes:
            stats._from_counts = counted
            times, response = timed(query, headers, args.calls)
            # The history query /stats ran before the counts: the same answer, to the unit.
            stats._from_counts = lambda *_args, **_kwargs: None
            plain, reference = timed(query, headers, args.history_calls)
            assert response.get_json() == reference.get_json(), f"{name}: the counts and the history differ"
            body = response.get_json()
            p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(0.95 * len(times)))]
            h50, h95 = plain[len(plain) // 2], plain[min(len(plain) - 1, int(0.95 * len(plain)))]
            rows, size = len(body["by_community"]) + len(body["by_street"]), len(response.data) / 1024
            print(
                f"{name:<24}{p50 * 1000:>11.1f}{p95 * 1000:>8.1f}{h50 * 1000:>12.1f}{h95 * 1000:>8.1f}"
                f"{rows:>7}{size:>6.0f}"
            )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
