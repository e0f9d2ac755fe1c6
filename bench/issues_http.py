"""Issues over HTTP against a bare Flask + SQLAlchemy endpoint, same database, same gunicorn settings.

Two operations, each measured on the issues service and on the baseline in one run, alternating
rounds so that load from other processes on the shared machine falls on both sides alike:

1. **Create an issue**: ours = bearer token check, marshmallow validation, scope check against the
   directory replica, category and deadline, the ORM insert of the issue and its first timeline
   entry, `issues.issue.reported` into the outbox, one transaction. Baseline = `request.get_json()`
   and one Core INSERT.
2. **A filtered list page** (one community, status reported, newest first, 20 per page, over a
   table of `--seed` issues): ours = token, query-string validation, scope, the exact total for
   the X-Pagination header and the page query, serialisation. Two baselines: the page alone (one
   SELECT ... LIMIT 20: less work than the contract asks, no total) and the page with its exact
   total as a bare endpoint gets it (a COUNT of the matching rows in the same statement).

Both apps run under gunicorn with `linli_kit.gunicorn_conf` (WEB_CONCURRENCY and WEB_THREADS as in
production, default 2 x 4) on the same PostgreSQL database (the baseline has its own table); the
client keeps `--clients` persistent connections busy. Prints requests per second and the ratio
ours / baseline (DESIGN section 7 targets: list >= 0.70, create >= 0.60), and the CPU time per
request of each side's servers and of PostgreSQL during its rounds (the machine's two cores are
shared by the servers, the database and the client). Never asserts on time.

    .venv/bin/python bench/issues_http.py [--requests 2000] [--clients 8] [--seed 20000]
    .venv/bin/python bench/issues_http.py --operations create --without-notify   # diagnosis

The creates run first and all report in the list's community, so the list page is read over
thousands of matching issues (both sides): its X-Pagination total counts them all. `--operations`
measures one of the two; `--without-notify` drops the outbox's NOTIFY trigger (migration 0013) on
the bench database, to see what it costs the reports (a transaction that notifies commits under
PostgreSQL's one notification-queue lock, so reports commit one at a time): diagnosis only, the
relay relies on it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask, jsonify, request
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, create_engine, func, insert, select

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent

bare = MetaData()
bare_issues = Table(
    "bench_bare_issues",
    bare,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(80), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("reporter_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_bench_bare_community_created", bare_issues.c.community_id, bare_issues.c.created_at)


def baseline_app() -> Flask:
    """The bare endpoint: gunicorn imports this module and calls it in each worker."""
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, pool_size=5, max_overflow=5)
    app = Flask("baseline")

    @app.post("/")
    def create():
        body = request.get_json()
        row = {
            "id": str(uuid.uuid4()),
            "community_id": body["community_id"],
            "title": body["title"],
            "description": body["description"],
            "category": body["category"],
            "urgency": body.get("urgency", "normal"),
            "status": "reported",
            "reporter_id": request.headers.get("X-User", ""),
            "created_at": datetime.now(UTC),
        }
        with engine.begin() as conn:
            conn.execute(insert(bare_issues).values(**row))
        return jsonify({**row, "created_at": row["created_at"].isoformat()}), 201

    @app.get("/")
    def page():
        query = (
            select(bare_issues)
            .where(
                bare_issues.c.community_id == request.args["community_id"],
                bare_issues.c.status == request.args["status"],
            )
            .order_by(bare_issues.c.created_at.desc())
            .limit(20)
        )
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for r in rows:
            r["created_at"] = r["created_at"].isoformat()
        return jsonify(rows)

    @app.get("/counted")
    def counted_page():
        """The page and its exact total (what X-Pagination carries), the total counted."""
        matching = (
            bare_issues.c.community_id == request.args["community_id"],
            bare_issues.c.status == request.args["status"],
        )
        total = select(func.count()).select_from(bare_issues).where(*matching).scalar_subquery()
        query = (
            select(bare_issues, total.label("total"))
            .where(*matching)
            .order_by(bare_issues.c.created_at.desc())
            .limit(20)
        )
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        count = rows[0].pop("total") if rows else 0
        for r in rows:
            r.pop("total", None)
            r["created_at"] = r["created_at"].isoformat()
        response = jsonify(rows)
        response.headers["X-Total"] = str(count)
        return response

    return app


# --- set-up -----------------------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: the sockets stay open until all are chosen (one at a time, the
    kernel may hand the same port out twice, and both servers would then answer on it)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def seed(url: str, communities: list[str], street_id: str, count: int) -> None:
    """The directory replica and `count` issues in both tables, spread over the communities and a year."""
    from linli_issues.adapters.tables import issue_updates, issues, replica

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    bare.create_all(engine)
    now = datetime.now(UTC)
    rnd = random.Random(7)
    with engine.begin() as conn:
        conn.execute(insert(replica.streets).values(street_id=street_id, name="Bench Street", city="C", revision=1))
        conn.execute(
            insert(replica.communities),
            [
                {"community_id": c, "street_id": street_id, "name": f"C{i}", "revision": 1}
                for i, c in enumerate(communities)
            ],
        )
        for start in range(0, count, 5000):
            ours_rows, bare_rows, timeline = [], [], []
            for _ in range(start, min(start + 5000, count)):
                created = now - timedelta(minutes=rnd.randrange(525_600))
                community = rnd.choice(communities)
                status = rnd.choice(("reported", "accepted", "resolved", "closed"))
                common = {
                    "id": str(uuid.uuid4()),
                    "community_id": community,
                    "title": "Roof of Building 7 leaks",
                    "description": "Rain comes through the roof into the top-floor flats.",
                    "category": "repairs_facilities",
                    "urgency": "normal",
                    "status": status,
                    "reporter_id": str(uuid.uuid4()),
                    "created_at": created,
                }
                bare_rows.append(common)
                ours_rows.append(
                    {**common, "tier": "compound", "channel": "app", "anonymous": False, "supporter_count": 0,
                     "consultation_count": 0, "revision": 1, "due_at": created + timedelta(days=14),
                     "updated_at": created, "assignee_type": "property_company"}
                )  # fmt: skip
                timeline.append(
                    {"id": str(uuid.uuid4()), "issue_id": common["id"], "kind": "report", "internal": False,
                     "data": {}, "created_at": created}
                )  # fmt: skip
            conn.execute(insert(issues), ours_rows)
            conn.execute(insert(issue_updates), timeline)
            conn.execute(insert(bare_issues), bare_rows)
    # The read models built from what was seeded, as `linli-issues rebuild-counts` builds them.
    from zoneinfo import ZoneInfo

    from sqlalchemy.orm import Session

    from linli_issues.adapters import counters

    with Session(engine) as session, session.begin():
        counters.rebuild(session, ZoneInfo(os.environ.get("LINLI_TIMEZONE", "Asia/Shanghai")))
    # Committed: in a transaction rolled back, the statistics ANALYZE gathered would go with it.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def start_gunicorn(app_spec: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    argv = [str(BIN / "gunicorn"), "-c", "python:linli_kit.gunicorn_conf", "--bind", f"127.0.0.1:{port}", app_spec]
    process = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=HERE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{app_spec} exited:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{app_spec} did not start")


# --- load -------------------------------------------------------------------------------------------------
def run(port: int, clients: int, total: int, make_request) -> tuple[float, int]:
    """Requests per second with `clients` persistent connections sharing `total` requests, and how
    many were made."""
    per_client = max(1, total // clients)
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per_client):
            method, path, body, headers, expected = make_request()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != expected and len(errors) < 3:
                errors.append(f"{method} {path}: {response.status} {data[:300]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError("; ".join(errors))
    return per_client * clients / elapsed, per_client * clients


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a gunicorn master and its workers so far, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def database_cpu_seconds() -> float:
    """CPU time so far of every PostgreSQL process on this machine (the server and its backends):
    the rounds alternate, so what it gains during a side's round is that side's (with the little
    the server does on its own)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] != "postgres":
            continue
        fields = stat.rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def compare(ours, theirs, rounds: int = 4) -> tuple[float, float, tuple[float, float], tuple[float, float]]:
    """Requests per second of each side (rounds alternating), and CPU ms per request of each side's
    servers and of the database server during its rounds."""
    ours(50)  # warm up: pools, caches, compiled statements
    theirs(50)
    results: list[list[float]] = [[], []]
    cpu = [0.0, 0.0]
    database_cpu = [0.0, 0.0]
    requests = [0, 0]
    for _ in range(rounds):
        for side, operation in enumerate((ours, theirs)):
            before, database_before = cpu_seconds(operation.pid), database_cpu_seconds()
            rate, count = operation(None)
            cpu[side] += cpu_seconds(operation.pid) - before
            database_cpu[side] += database_cpu_seconds() - database_before
            requests[side] += count
            results[side].append(rate)
    return (
        sum(results[0]) / rounds,
        sum(results[1]) / rounds,
        (1000 * cpu[0] / requests[0], 1000 * database_cpu[0] / requests[0]),
        (1000 * cpu[1] / requests[1], 1000 * database_cpu[1] / requests[1]),
    )


def print_measured(measured: list, width: int) -> None:
    """The table of (operation, ours /s, bare /s, target, (ours CPU, bare CPU)), and the load."""
    print(
        f"{'operation':<{width}}{'ours /s':>10}{'bare /s':>10}{'ratio':>8}{'target':>8}"
        f"{'CPU ms/req: ours':>18}{'(db)':>7}{'bare':>7}{'(db)':>7}"
    )
    for name, mine, theirs, target, ((cpu_ours, db_ours), (cpu_bare, db_bare)) in measured:
        print(
            f"{name:<{width}}{mine:>10.1f}{theirs:>10.1f}{mine / theirs:>8.2f}{target:>8.2f}"
            f"{cpu_ours:>18.2f}{db_ours:>7.2f}{cpu_bare:>7.2f}{db_bare:>7.2f}"
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--clients", type=int, default=8, help="concurrent persistent connections")
    parser.add_argument("--seed", type=int, default=20_000, help="issues already in the table")
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument(
        "--operations", nargs="+", choices=("create", "list"), default=["create", "list"], help="which to measure"
    )
    parser.add_argument(
        "--without-notify",
        action="store_true",
        help="diagnosis only: drop the outbox's NOTIFY trigger (migration 0013), to see what it costs the reports",
    )
    args = parser.parse_args()

    from linli_issues.definition import definition
    from linli_kit import migrations
    from linli_kit.auth import TokenSigner
    from linli_kit.keys import generate_keypair
    from linli_kit.testing import infra

    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, infra.new_run_id())
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"issues_http_{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    processes: list[subprocess.Popen] = []
    try:
        url = databases.create("bench_issues")
        migrations.upgrade(definition.migrations_dir, url)
        if args.without_notify:
            from linli_kit.tables import drop_notify_trigger_ddl

            engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                for statement in drop_notify_trigger_ddl("outbox"):
                    conn.exec_driver_sql(statement)
            engine.dispose()
        communities = [str(uuid.uuid4()) for _ in range(args.communities)]
        seed(url, communities, str(uuid.uuid4()), args.seed)
        private, public = generate_keypair()
        signer = TokenSigner(private, issuer="linli-gateway")
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "JWT_PUBLIC_KEY": public,
            "LINLI_DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        }
        ours_port, bare_port = free_ports(2)
        processes.append(
            start_gunicorn("linli_issues.entrypoints.web:create_app()", ours_port, env, workdir / "ours.log")
        )
        processes.append(start_gunicorn("issues_http:baseline_app()", bare_port, env, workdir / "bare.log"))

        community = communities[0]
        resident_id = str(uuid.uuid4())
        token = signer.sign(user_id=resident_id, role="resident", community_ids=[community], ttl=timedelta(hours=2))
        staff = signer.sign(user_id=str(uuid.uuid4()), role="community_staff", community_ids=[community],
                            ttl=timedelta(hours=2))  # fmt: skip
        body = json.dumps(
            {
                "community_id": community,
                "title": "Roof of Building 7 leaks",
                "description": "Rain comes through the roof into the top-floor flats.",
                "category": "repairs_facilities",
                "urgency": "high",
            }
        )
        ours_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        bare_headers = {"Content-Type": "application/json", "X-User": resident_id}
        list_path = f"/?community_id={community}&status=reported&sort=-created_at&page_size=20"
        staff_headers = {"Authorization": f"Bearer {staff}"}

        pids = {ours_port: processes[0].pid, bare_port: processes[1].pid}

        def load(port, req):
            def operation(n):
                return run(port, args.clients, n or args.requests, req)

            operation.pid = pids[port]
            return operation

        measured = []
        if "create" in args.operations:
            ours_create, bare_create, *cpu = compare(
                load(ours_port, lambda: ("POST", "/", body, ours_headers, 201)),
                load(bare_port, lambda: ("POST", "/", body, bare_headers, 201)),
            )
            measured.append(("create an issue (validate, insert, outbox)", ours_create, bare_create, 0.60, cpu))
        if "list" in args.operations:
            ours_list, bare_list, *cpu = compare(
                load(ours_port, lambda: ("GET", list_path, None, staff_headers, 200)),
                load(bare_port, lambda: ("GET", list_path, None, {}, 200)),
            )
            measured.append(("filtered list page (20 of one community)", ours_list, bare_list, 0.70, cpu))
            ours_again, bare_counted, *cpu = compare(
                load(ours_port, lambda: ("GET", list_path, None, staff_headers, 200)),
                load(bare_port, lambda: ("GET", "/counted" + list_path[1:], None, {}, 200)),
            )
            measured.append(("  the same, bare with its exact total", ours_again, bare_counted, 0.70, cpu))
            # Both answer the same total (the same issues were seeded and reported on both sides).
            totals = []
            for port, path, headers in (
                (ours_port, list_path, staff_headers),
                (bare_port, "/counted" + list_path[1:], {}),
            ):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                pagination = response.getheader("X-Pagination")
                totals.append(json.loads(pagination)["total"] if pagination else int(response.getheader("X-Total")))
                conn.close()
            print(f"list totals: ours {totals[0]}, bare {totals[1]}" + ("" if totals[0] == totals[1] else "  DIFFER"))
        workers = os.environ.get("WEB_CONCURRENCY", "2")
        threads = os.environ.get("WEB_THREADS", "4")
        print(
            f"\nIssues over HTTP: gunicorn {workers} workers x {threads} threads each side, {args.clients} clients, "
            f"{args.requests} requests per round, 4 rounds, {args.seed} issues in {args.communities} communities"
        )
        print_measured(measured, width=44)
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)
        databases.drop_all()


if __name__ == "__main__":
    main()
