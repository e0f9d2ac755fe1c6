"""`GET /stats` of the activities service on a city of 10,000 communities (DESIGN section 7: the
street overview the gateway builds answers in p95 <= 150 ms).

Seeds one PostgreSQL database (migrated by the service's migrations) with 100 streets of 100
communities each and a year of activity: per community 12 activities, 40 registrations, 30
check-ins, 5 completed service bookings, 5 help-log entries, plus posts, groups and talents
(about 1.2 million rows), and builds the statistics' counts from it as `linli-activities
rebuild-counts` does (timed). Then asks the service in-process (Flask test client, so the figure is
the service's own time, without a network hop) for a community, a street, the whole city per
community and the whole city per street (what the gateway's overview asks), and prints p50 / p95 /
max per scope: answered from the counts ("counts"), then from the history they replace ("history",
the counts switched off); the two answers' totals and months are compared.

    .venv/bin/python bench/activities_stats.py [--communities 10000] [--repeat 30] [--history-repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from linli_activities.adapters import counts
from linli_activities.definition import definition
from linli_kit.auth import TokenSigner
from linli_kit.db import Database
from linli_kit.keys import generate_keypair
from linli_kit.migrations import upgrade
from linli_kit.testing import infra


def uid(expression: str) -> str:
    """A deterministic UUID text from an integer SQL expression."""
    return f"('00000000-0000-4000-8000-' || lpad(({expression})::text, 12, '0'))"


SEED = """
INSERT INTO directory_streets (street_id, name, revision)
  SELECT {street}, 'street ' || s, 1 FROM generate_series(0, :streets - 1) s;
INSERT INTO directory_communities (community_id, street_id, name, revision)
  SELECT {community}, {street_of_c}, 'community ' || c, 1 FROM generate_series(0, :communities - 1) c;
INSERT INTO activities (id, kind, title, description, organiser_type, organiser_id, audience, photos, community_ids,
    starts_at, ends_at, capacity, max_party_size, status, checkin_code, confirmed_places, waiting_parties,
    waitlist_counter, revision, created_by, created_at)
  SELECT {activity}, (ARRAY['festival','sports','culture','volunteering','education','service_day','other'])[1 + a % 7],
    'activity', '', 'staff', {community_of_a}, '[]', '[]', '[]',
    now() - ((a % 360) || ' days')::interval, now() - ((a % 360) || ' days')::interval + interval '2 hours',
    50, 4, 'published', '000000', 0, 0, 0, 2, {community_of_a}, now()
  FROM generate_series(0, :communities * 12 - 1) a;
INSERT INTO activity_communities (activity_id, community_id, kind, status, starts_at)
  SELECT id, organiser_id, kind, status, starts_at FROM activities;
INSERT INTO registrations (id, activity_id, user_id, community_id, party_size, status, waitlist_seq, registered_by,
    created_at)
  SELECT {registration}, {activity_of_r}, {user_of_r}, {community_of_r}, 1 + r % 3,
    CASE WHEN r % 4 = 0 THEN 'confirmed' ELSE 'checked_in' END, NULL, {user_of_r}, now()
  FROM generate_series(0, :communities * 40 - 1) r;
INSERT INTO checkins (id, activity_id, registration_id, user_id, community_id, participants, method, recorded_by,
    checked_in_at)
  SELECT {checkin}, {activity_of_r}, {registration}, {user_of_r}, {community_of_r}, 1 + r % 3, 'list', 'x',
    now() - ((r % 360) || ' days')::interval
  FROM generate_series(0, :communities * 40 - 1) r WHERE r % 4 <> 0;
INSERT INTO service_posts (id, community_id, name, latitude, longitude, address, opening_hours, facilities, services,
    compound_ids, residents_served, active, created_at)
  SELECT {post}, {community_of_p}, 'post', 38, 106, '', '', '[]', '[]', '[]', 700, true, now()
  FROM generate_series(0, :communities / 3 - 1) p;
INSERT INTO mutual_aid_groups (id, community_id, name, purpose, coordinator_id, active, created_at)
  SELECT {group}, {community_of_g}, 'group ' || g, '', 'x', true, now() FROM generate_series(0, :communities / 2 - 1) g;
INSERT INTO group_members (id, group_id, user_id, display_name, joined_at)
  SELECT {member}, {group_of_m}, {member}, 'm', now() FROM generate_series(0, :communities * 4 - 1) m;
INSERT INTO help_logs (id, group_id, community_id, helper_id, helped_id, helped_description, helped_on, hours, note,
    recorded_by, recorded_at)
  SELECT {help}, {group_of_h}, {community_of_h}, 'x', NULL, 'y', (now() - ((h % 360) || ' days')::interval)::date,
    1.5, '', 'x', now()
  FROM generate_series(0, :communities * 5 - 1) h;
INSERT INTO talents (id, community_id, user_id, display_name, skills, availability, description, contact_note, active,
    created_at)
  SELECT {talent}, {community_of_t}, {talent}, 't', ',repair,', '', '', '', true, now()
  FROM generate_series(0, :communities - 1) t;
INSERT INTO service_offerings (id, community_id, name, kind, description, post_id, provider_type, provider_id,
    provider_name, at_post, door_to_door, active, created_at)
  SELECT {offering}, {community}, 'massage', 'massage', '', NULL, 'business', NULL, 'b', false, true, true, now()
  FROM generate_series(0, :communities - 1) c;
INSERT INTO bookings (id, offering_id, community_id, resident_id, booked_by, slot_start, slot_end, door_to_door,
    address, note, status, provider_talent_id, person_times, completed_at, created_at)
  SELECT {booking}, {offering_of_b}, {community_of_b}, 'r', 'r', now(), now(), b % 3 = 0, 'a', '', 'completed', NULL,
    1 + b % 2, now() - ((b % 360) || ' days')::interval, now()
  FROM generate_series(0, :communities * 5 - 1) b;
-- Rows written here bypass the statistics' counts: mark them not built (/stats reads the history)
-- until they are built from these rows (`linli-activities rebuild-counts`, as main() does).
UPDATE activity_counts_state SET zone = NULL;
"""


def seed_sql(communities: int) -> str:
    return SEED.format(
        street=uid("s"),
        community=uid("10000000 + c"),
        street_of_c=uid("c / 100"),
        offering=uid("60000000 + c"),
        activity=uid("20000000 + a"),
        community_of_a=uid(f"10000000 + a % {communities}"),
        registration=uid("30000000 + r"),
        activity_of_r=uid(f"20000000 + r % ({communities} * 12)"),
        user_of_r=uid("40000000 + r % 300000"),
        community_of_r=uid(f"10000000 + (r % ({communities} * 12)) % {communities}"),
        checkin=uid("50000000 + r"),
        post=uid("70000000 + p"),
        community_of_p=uid("10000000 + p * 3"),
        group=uid("80000000 + g"),
        community_of_g=uid("10000000 + g * 2"),
        member=uid("90000000 + m"),
        group_of_m=uid(f"80000000 + m % ({communities} / 2)"),
        help=uid("100000000 + h"),
        group_of_h=uid(f"80000000 + h % ({communities} / 2)"),
        community_of_h=uid(f"10000000 + (h % ({communities} / 2)) * 2"),
        talent=uid("110000000 + t"),
        community_of_t=uid("10000000 + t"),
        booking=uid("120000000 + b"),
        offering_of_b=uid(f"60000000 + b % {communities}"),
        community_of_b=uid(f"10000000 + b % {communities}"),
    )


def measure(client, headers: dict, query: dict, repeat: int) -> tuple[list[float], dict]:
    timings, body = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/stats", query_string=query, headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
    return sorted(timings), body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--communities", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--history-repeat", type=int, default=3, help="requests read from the history (slow)")
    args = parser.parse_args()
    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, f"bench{infra.new_run_id()}")
    try:
        url = databases.create("stats")
        upgrade(definition.migrations_dir, url)
        engine = create_engine(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            for statement in seed_sql(args.communities).split(";"):
                if statement.strip():
                    conn.execute(text(statement), {"streets": args.communities // 100, "communities": args.communities})
        # What autovacuum does in a running city: statistics and the visibility map (index-only scans).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        with engine.connect() as conn:
            rows = sum(
                conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in (
                    "activities",
                    "activity_communities",
                    "registrations",
                    "checkins",
                    "bookings",
                    "help_logs",
                    "group_members",
                    "talents",
                    "directory_communities",
                )
            )
        engine.dispose()
        print(f"seeded {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
        database = Database(url)
        started = time.perf_counter()
        with database.transaction() as session:
            counted = counts.rebuild(session, ZoneInfo("Asia/Shanghai"))
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE activity_counts, activity_kind_counts, activity_first_seen"))
        print(f"counts of {counted:,} rows built (rebuild-counts) in {time.perf_counter() - started:.1f}s", flush=True)
        print(f"load average: {os.getloadavg()}", flush=True)

        def counts_on(on: bool) -> None:
            with database.transaction() as session:
                session.execute(counts.activity_counts_state.update().values(zone="Asia/Shanghai" if on else None))

        private, public = generate_keypair()
        os.environ.update({"DATABASE_URL": url, "JWT_PUBLIC_KEY": public, "LOG_LEVEL": "WARNING"})
        from linli_activities.entrypoints.web import create_app

        app = create_app()
        client = app.test_client()
        signer = TokenSigner(private, issuer="linli-gateway")
        street = "00000000-0000-4000-8000-000000000007"
        community = "00000000-0000-4000-8000-000010000701"
        scopes = [
            ("one community", "community_staff", {"community_id": community}, {"community_ids": [community]}),
            ("one street (100 communities)", "street_official", {}, {"street_id": street}),
            (f"whole city ({args.communities:,} communities)", "city_admin", {}, {}),
        ]
        scopes.append((scopes[-1][0] + " by street", "city_admin", {"by": "street"}, {}))
        print(f"{'scope':46}{'read':>9}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}  totals")
        for name, role, query, claims in scopes:
            headers = {"Authorization": "Bearer " + signer.sign(user_id=str(uuid.uuid4()), role=role, **claims)}
            answers = {}
            for kind, repeat in (("counts", args.repeat), ("history", args.history_repeat)):
                counts_on(kind == "counts")
                measure(client, headers, query, 1)  # warm the caches, as a running city's are
                timings, body = measure(client, headers, query, repeat)
                answers[kind] = body
                p50, p95 = timings[len(timings) // 2], timings[min(len(timings) - 1, int(0.95 * len(timings)))]
                totals = body["totals"]
                print(
                    f"{name:46}{kind:>9}{p50 * 1000:10.1f}{p95 * 1000:10.1f}{timings[-1] * 1000:10.1f}  "
                    f"activities {totals['activities_held']:,}, participant-times {totals['participant_times']:,}, "
                    f"rows {len(body['by_community']) + len(body['by_street']):,}",
                    flush=True,
                )
            same = all(answers["counts"][key] == answers["history"][key] for key in ("totals", "monthly"))
            print(f"{'':46}same totals and months: {same}; load average {os.getloadavg()}", flush=True)
        counts_on(True)
        database.dispose()
        app.extensions["linli.database"].dispose()
    finally:
        databases.drop_all()
    print("target (DESIGN section 7, through the gateway, for the street overview): p95 <= 150 ms")


if __name__ == "__main__":
    main()
