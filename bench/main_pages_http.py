"""The activities' and notifications' main list and create over HTTP, against bare Flask + SQLAlchemy
endpoints doing the same query or insert on the same database, in one run (DESIGN section 7,
issue 15 point 2: list >= 0.70, create >= 0.60 of the bare endpoint). `issues_http.py` and
`meetings_http.py` measure the two other services.

1. **Activities, create** (community staff, `POST /` with `publish: true`): ours = token, marshmallow
   validation, the manager's scope, the domain's rules, the ORM insert of the activity and its
   community link, `activities.activity.published` into the outbox, one transaction. Bare = one
   Core INSERT.
2. **Activities, list** (a resident, `GET /?community_id=`, 20 per page by start): ours = token,
   query-string validation, scope, drafts hidden from residents, the exact total (X-Pagination) and
   the page, serialisation. Bare = the page alone (one SELECT ... LIMIT 20), and the page with its
   exact total.
3. **Notifications, the inbox** (a resident, `GET /`, 20 per page, newest first, over `--notices`
   notices of which the resident has `--own`): ours = token, the filter's validation, the total
   and the page, serialisation. Bare = the page, and the page with its total.
4. **Notifications, follow an issue** (`POST /follows`, the resident follows a new issue of their
   community with each request, so every request writes a row): ours = token, validation, the issue
   looked up and the resident's right to read it checked, `INSERT ... ON CONFLICT DO NOTHING`.
   Bare = the same insert.

Each service and each baseline runs under gunicorn with `linli_kit.gunicorn_conf` (WEB_CONCURRENCY x
WEB_THREADS as in production); `--clients` persistent connections; rounds alternate ours and bare
(the load harness is `issues_http.py`'s). Prints requests per second, the ratio, and each server's
CPU per request (the figure to compare on a shared machine). Never asserts on time.

    .venv/bin/python bench/main_pages_http.py [--requests 2000] [--clients 8]
    .venv/bin/python bench/main_pages_http.py --services notifications
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, jsonify, request
from issues_http import compare, free_ports, print_measured, run, start_gunicorn
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, create_engine, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

bare = MetaData()
bare_activities = Table(
    "bench_bare_activities",
    bare,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(12), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_bench_bare_activities_community_starts", bare_activities.c.community_id, bare_activities.c.starts_at)
bare_notices = Table(
    "bench_bare_notices",
    bare,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("category", String(30), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("read_at", DateTime(timezone=True)),
)
Index("ix_bench_bare_notices_user_created", bare_notices.c.user_id, bare_notices.c.created_at)
bare_follows = Table(
    "bench_bare_follows",
    bare,
    Column("user_id", String(36), primary_key=True),
    Column("target_type", String(20), primary_key=True),
    Column("target_id", String(36), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _iso(rows: list[dict]) -> list[dict]:
    for r in rows:
        for key, value in r.items():
            if isinstance(value, datetime):
                r[key] = value.isoformat()
    return rows


def _page(table: Table, matching: tuple, order, counted: bool):  # noqa: ANN001, ANN202
    """A bare page of 20, and with `counted` its exact total in the same statement."""
    columns = [table]
    if counted:
        columns.append(select(func.count()).select_from(table).where(*matching).scalar_subquery().label("total"))
    return select(*columns).where(*matching).order_by(order).limit(20)


def _answer_page(rows: list[dict], counted: bool):  # noqa: ANN202
    total = rows[0].get("total", 0) if rows else 0
    for r in rows:
        r.pop("total", None)
    response = jsonify(_iso(rows))
    if counted:
        response.headers["X-Total"] = str(total)
    return response


def baseline_app() -> Flask:
    """The bare endpoints: gunicorn imports this module and calls it in each worker."""
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, pool_size=5, max_overflow=5)
    app = Flask("baseline")

    @app.post("/activities")
    def create_activity():
        body = request.get_json()
        row = {
            "id": str(uuid.uuid4()),
            "community_id": body["community_ids"][0],
            "kind": body["kind"],
            "title": body["title"],
            "description": body.get("description", ""),
            "status": "published" if body.get("publish") else "draft",
            "starts_at": datetime.fromisoformat(body["starts_at"]),
            "ends_at": datetime.fromisoformat(body["ends_at"]),
            "created_by": request.headers.get("X-User", ""),
            "created_at": datetime.now(UTC),
        }
        with engine.begin() as conn:
            conn.execute(insert(bare_activities).values(**row))
        return jsonify(_iso([row])[0]), 201

    @app.get("/activities")
    def list_activities():
        counted = "counted" in request.args
        matching = (bare_activities.c.community_id == request.args["community_id"],)
        query = _page(bare_activities, matching, bare_activities.c.starts_at, counted)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        return _answer_page(rows, counted)

    @app.get("/notices")
    def inbox():
        counted = "counted" in request.args
        matching = (bare_notices.c.user_id == request.headers["X-User"],)
        query = _page(bare_notices, matching, bare_notices.c.created_at.desc(), counted)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        return _answer_page(rows, counted)

    @app.post("/follows")
    def follow():
        body = request.get_json()
        row = {
            "user_id": request.headers["X-User"],
            "target_type": body["target_type"],
            "target_id": body["target_id"],
            "created_at": datetime.now(UTC),
        }
        with engine.begin() as conn:
            conn.execute(pg_insert(bare_follows).values(**row).on_conflict_do_nothing())
        return jsonify(_iso([row])[0]), 201

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


# --- set-up -----------------------------------------------------------------------------------------
def _engine(url: str):  # noqa: ANN202
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def seed_replica(url: str, communities: list[str], street_id: str) -> None:
    from linli_kit.tables import add_directory_replica

    replica = add_directory_replica(MetaData())
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(insert(replica.streets).values(street_id=street_id, name="Bench Street", city="C", revision=1))
        conn.execute(
            insert(replica.communities),
            [
                {"community_id": c, "street_id": street_id, "name": f"C{i}", "revision": 1}
                for i, c in enumerate(communities)
            ],
        )
    engine.dispose()


def seed_notices(url: str, resident: str, own: int, total: int) -> None:
    """`total` notices in the service's inbox and the bare table, `own` of them the resident's."""
    from linli_notifications.adapters.tables import notifications

    engine = _engine(url)
    now = datetime.now(UTC)
    rnd = random.Random(11)
    others = [str(uuid.uuid4()) for _ in range(max(1, (total - own) // 50))]
    with engine.begin() as conn:
        bare.create_all(conn)
        for start in range(0, total, 5000):
            ours, theirs = [], []
            for n in range(start, min(start + 5000, total)):
                common = {
                    "id": str(uuid.uuid4()),
                    "user_id": resident if n < own else rnd.choice(others),
                    "kind": "issue.status_changed",
                    "category": "issues",
                    "title": "Your report was accepted",
                    "body": "The property company will repair the roof of Building 7 this week.",
                    "created_at": now - timedelta(minutes=rnd.randrange(525_600)),
                    "read_at": None,
                }
                theirs.append(common)
                ours.append(
                    {**common, "source_key": f"bench:{common['id']}", "source_type": "issues.issue.status_changed",
                     "urgent": False, "params": {}, "community_id": None, "subject_type": "issue",
                     "subject_id": str(uuid.uuid4())}
                )  # fmt: skip
            conn.execute(insert(notifications), ours)
            conn.execute(insert(bare_notices), theirs)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def seed_issue_subjects(url: str, community: str, count: int) -> list[str]:
    """`count` issues of the community as the notifications service knows them (from their events),
    readable by its residents; their ids."""
    from linli_notifications.adapters.tables import subjects

    ids = [str(uuid.uuid4()) for _ in range(count)]
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(subjects),
            [
                {"subject_type": "issue", "subject_id": i, "community_id": community, "title": "Roof leaks",
                 "status": "accepted", "revision": 2, "member_ids": [], "visibility": "community",
                 "reporter_id": str(uuid.uuid4()), "anonymous": False}
                for i in ids
            ],
        )  # fmt: skip
    engine.dispose()
    return ids


def seed_activities(url: str, communities: list[str], count: int) -> None:
    """`count` published activities over the communities and the coming year, both sides."""
    from linli_activities.adapters.tables import activities, activity_communities

    engine = _engine(url)
    now = datetime.now(UTC)
    rnd = random.Random(13)
    with engine.begin() as conn:
        bare.create_all(conn)
        for start in range(0, count, 5000):
            ours, links, theirs = [], [], []
            for _ in range(start, min(start + 5000, count)):
                community = rnd.choice(communities)
                starts = now + timedelta(minutes=rnd.randrange(525_600))
                common = {
                    "id": str(uuid.uuid4()),
                    "kind": "culture",
                    "title": "Calligraphy afternoon",
                    "description": "Bring a brush; paper and ink are provided.",
                    "status": "published",
                    "starts_at": starts,
                    "ends_at": starts + timedelta(hours=2),
                    "created_by": str(uuid.uuid4()),
                    "created_at": now,
                }
                theirs.append({**common, "community_id": community})
                ours.append(
                    {**common, "organiser_type": "staff", "organiser_id": common["created_by"], "audience": [],
                     "photos": [], "community_ids": [community], "capacity": 30, "max_party_size": 4,
                     "checkin_code": "123456", "confirmed_places": 0, "waiting_parties": 0, "waitlist_counter": 0,
                     "revision": 2, "announced_at": now}
                )  # fmt: skip
                links.append(
                    {"activity_id": common["id"], "community_id": community, "kind": "culture", "status": "published",
                     "starts_at": starts}
                )  # fmt: skip
            conn.execute(insert(activities), ours)
            conn.execute(insert(activity_communities), links)
            conn.execute(insert(bare_activities), theirs)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _total(port: int, path: str, headers: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    pagination = response.getheader("X-Pagination")
    return json.loads(pagination)["total"] if pagination else int(response.getheader("X-Total"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--clients", type=int, default=8, help="concurrent persistent connections")
    parser.add_argument("--activities", type=int, default=20_000, help="activities already in the table")
    parser.add_argument("--notices", type=int, default=50_000, help="notices already in the inbox table")
    parser.add_argument("--own", type=int, default=500, help="of which the listing resident's")
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument(
        "--services", nargs="+", choices=("activities", "notifications"), default=["activities", "notifications"]
    )
    args = parser.parse_args()

    from linli_kit import migrations
    from linli_kit.auth import TokenSigner
    from linli_kit.keys import generate_keypair
    from linli_kit.testing import infra

    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, infra.new_run_id())
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"main_pages_http_{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    communities = [str(uuid.uuid4()) for _ in range(args.communities)]
    community = communities[0]
    street_id = str(uuid.uuid4())
    measured: list[tuple[str, float, float, float, list[float]]] = []
    processes: list[subprocess.Popen] = []

    def token(role: str, user_id: str | None = None) -> str:
        return signer.sign(
            user_id=user_id or str(uuid.uuid4()), role=role, community_ids=[community], ttl=timedelta(hours=2)
        )

    def serve(service: str, url: str) -> tuple[int, int, int, int]:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "JWT_PUBLIC_KEY": public,
            "LINLI_DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
        }
        ours_port, bare_port = free_ports(2)
        processes.append(
            start_gunicorn(f"linli_{service}.entrypoints.web:create_app()", ours_port, env, workdir / f"{service}.log")
        )
        processes.append(
            start_gunicorn("main_pages_http:baseline_app()", bare_port, env, workdir / f"{service}.bare.log")
        )
        return ours_port, bare_port, processes[-2].pid, processes[-1].pid

    def load(port: int, pid: int, make_request):  # noqa: ANN001, ANN202
        def operation(n: int | None) -> tuple[float, int]:
            return run(port, args.clients, n or args.requests, make_request)

        operation.pid = pid
        return operation

    def pages(label: str, ours, theirs, theirs_counted) -> None:  # noqa: ANN001
        rate, bare_rate, *cpu = compare(ours, theirs)
        measured.append((label, rate, bare_rate, 0.70, cpu))
        rate, bare_rate, *cpu = compare(ours, theirs_counted)
        measured.append(("  the same, bare with its exact total", rate, bare_rate, 0.70, cpu))

    try:
        if "activities" in args.services:
            from linli_activities.definition import definition as activities_definition

            url = databases.create("bench_activities")
            migrations.upgrade(activities_definition.migrations_dir, url)
            seed_replica(url, communities, street_id)
            seed_activities(url, communities, args.activities)
            ours_port, bare_port, ours_pid, bare_pid = serve("activities", url)
            staff_id = str(uuid.uuid4())
            staff = {
                "Authorization": f"Bearer {token('community_staff', staff_id)}",
                "Content-Type": "application/json",
            }
            bare_staff = {"Content-Type": "application/json", "X-User": staff_id}
            body = json.dumps(
                {"community_ids": [community], "kind": "culture", "title": "Calligraphy afternoon",
                 "description": "Bring a brush; paper and ink are provided.",
                 "starts_at": "2099-01-01T14:00:00+08:00", "ends_at": "2099-01-01T16:00:00+08:00",
                 "capacity": 30, "publish": True}
            )  # fmt: skip
            rate, bare_rate, *cpu = compare(
                load(ours_port, ours_pid, lambda: ("POST", "/", body, staff, 201)),
                load(bare_port, bare_pid, lambda: ("POST", "/activities", body, bare_staff, 201)),
            )
            measured.append(("activities: create (staff, published)", rate, bare_rate, 0.60, cpu))
            resident = {"Authorization": f"Bearer {token('resident')}"}
            path = f"/?community_id={community}&page_size=20"
            pages(
                "activities: list page (20 of one community)",
                load(ours_port, ours_pid, lambda: ("GET", path, None, resident, 200)),
                load(bare_port, bare_pid, lambda: ("GET", "/activities" + path[1:], None, {}, 200)),
                load(bare_port, bare_pid, lambda: ("GET", "/activities" + path[1:] + "&counted=1", None, {}, 200)),
            )
            ours_total = _total(ours_port, path, resident)
            bare_total = _total(bare_port, "/activities" + path[1:] + "&counted=1", {})
            print(f"activities list totals: ours {ours_total}, bare {bare_total}")
        if "notifications" in args.services:
            from linli_notifications.definition import definition as notifications_definition

            url = databases.create("bench_notifications")
            migrations.upgrade(notifications_definition.migrations_dir, url)
            seed_replica(url, communities, street_id)
            resident_id = str(uuid.uuid4())
            seed_notices(url, resident_id, args.own, args.notices)
            ours_port, bare_port, ours_pid, bare_pid = serve("notifications", url)
            reader = {"Authorization": f"Bearer {token('resident', resident_id)}"}
            bare_reader = {"X-User": resident_id}
            pages(
                "notifications: inbox page (20 of a resident's)",
                load(ours_port, ours_pid, lambda: ("GET", "/?page_size=20", None, reader, 200)),
                load(bare_port, bare_pid, lambda: ("GET", "/notices", None, bare_reader, 200)),
                load(bare_port, bare_pid, lambda: ("GET", "/notices?counted=1", None, bare_reader, 200)),
            )
            print(
                f"inbox totals: ours {_total(ours_port, '/?page_size=20', reader)}, "
                f"bare {_total(bare_port, '/notices?counted=1', bare_reader)}"
            )
            # The resident follows a new issue with each request, so that every request writes its
            # row on both sides; ours first finds the issue and checks the resident may read it.
            issues = seed_issue_subjects(url, community, 5 * args.requests + 200)
            targets = {side: iter(issues) for side in ("ours", "bare")}
            lock = threading.Lock()

            def follow(side: str) -> str:
                with lock:
                    return json.dumps({"target_type": "issue", "target_id": next(targets[side])})

            json_type = {"Content-Type": "application/json"}
            rate, bare_rate, *cpu = compare(
                load(ours_port, ours_pid, lambda: ("POST", "/follows", follow("ours"), {**reader, **json_type}, 201)),
                load(
                    bare_port, bare_pid, lambda: ("POST", "/follows", follow("bare"), {**bare_reader, **json_type}, 201)
                ),
            )
            measured.append(("notifications: follow an issue", rate, bare_rate, 0.60, cpu))
        workers = os.environ.get("WEB_CONCURRENCY", "2")
        threads = os.environ.get("WEB_THREADS", "4")
        print(
            f"\nMain pages over HTTP: gunicorn {workers} workers x {threads} threads each side, "
            f"{args.clients} clients, {args.requests} requests per round, 4 rounds; "
            f"{args.activities} activities in {args.communities} "
            f"communities, {args.notices} notices ({args.own} the resident's)"
        )
        print_measured(measured, width=48)
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)
        databases.drop_all()


if __name__ == "__main__":
    main()
