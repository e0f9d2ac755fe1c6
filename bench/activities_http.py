"""Registrations per second for one popular activity under concurrent clients, against the bare
Flask + SQLAlchemy baseline, in one run (DESIGN section 7: 0 over-booked under 50 concurrent
clients; at least 500 registrations/s; create at least 60 % of the bare endpoint).

Starts, under the same gunicorn settings (workers, threads), the activities service and
bench/activities_baseline.py, each on its own PostgreSQL database migrated by the service's
migrations, both running the whole time. In each of `--rounds` rounds, each gets a new activity
with `--capacity` places (one per household) and `--clients` threads post `--registrations`
sign-ups of distinct residents as fast as they can; the clock runs from the first request to the
last answer. Rounds alternate which goes first, so the load of a shared machine drifting during the
run hits both alike; the medians are compared. After every round the database is checked: places
confirmed never above capacity, one row per person, the counters right, the waiting list one
gap-free order. Each round also measures the CPU the server's gunicorn workers and its database
backends spent per registration: on a shared machine the figure to compare, where the rate is noisy;
and the registrations per write (the service's sign-ups written together share their time stamp).

    .venv/bin/python bench/activities_http.py [--clients 50] [--registrations 1500] [--capacity 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from linli_activities.definition import definition
from linli_kit.auth import TokenSigner
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.migrations import upgrade
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform, free_port
from linli_kit.testing.waiting import eventually

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent


def drive(
    base_url: str, activity_id: str, requests_headers: list[dict], clients: int
) -> tuple[float, list[float], dict, float]:
    """Post every sign-up from `clients` threads, each on its own keep-alive connection; return
    (seconds, latencies, status counts, this process's CPU seconds per request).

    The client is http.client, not requests: with 50 threads sharing one interpreter, requests'
    own CPU per call (about a millisecond) made the load generator, not the servers, the limit of
    both sides. Its CPU per request is printed, so a client-bound run shows."""
    host, _, port = base_url.removeprefix("http://").partition(":")
    path = f"/{activity_id}/registrations"
    body = json.dumps({"party_size": 1})
    chunks = [requests_headers[i::clients] for i in range(clients)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(mine: list[dict]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        local, codes = [], {}
        barrier.wait()
        for headers in mine:
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers={**headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            local.append(time.perf_counter() - started)
            codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(local)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=client, args=(chunk,)) for chunk in chunks]
    for t in threads:
        t.start()
    barrier.wait()
    cpu_before = time.process_time()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return elapsed, latencies, statuses, (time.process_time() - cpu_before) / max(len(requests_headers), 1)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def server_cpu(master_pid: int, database_url: str) -> float:
    """CPU seconds so far of a gunicorn master's workers and of the PostgreSQL backends connected to
    the server's database (a backend that ended during a round takes its CPU with it: the figure is
    a lower bound, alike for both servers, whose pools keep their connections)."""
    workers = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_of(int(entry.name)) == master_pid
    ]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        backends = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalars()
        pids = [*workers, *backends]
    engine.dispose()
    return sum(_cpu_of(pid) for pid in pids)


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def check_booking(database_url: str, activity_id: str, capacity: int) -> dict:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        confirmed = conn.execute(
            text(
                "SELECT coalesce(sum(party_size), 0) FROM registrations WHERE activity_id = :a AND status = 'confirmed'"
            ),
            {"a": activity_id},
        ).scalar()
        # A group written together (the service's combiner) stamps its registrations alike.
        rows, people, stamps = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT user_id), count(DISTINCT created_at) FROM registrations "
                "WHERE activity_id = :a"
            ),
            {"a": activity_id},
        ).one()
        seqs = [
            s
            for (s,) in conn.execute(
                text(
                    "SELECT waitlist_seq FROM registrations WHERE activity_id = :a AND status = 'waitlisted' "
                    "ORDER BY waitlist_seq"
                ),
                {"a": activity_id},
            )
        ]
        counter = conn.execute(
            text("SELECT confirmed_places FROM activities WHERE id = :a"), {"a": activity_id}
        ).scalar()
    engine.dispose()
    return {
        "confirmed": confirmed,
        "over_booked": max(0, confirmed - capacity),
        "counter_agrees": counter == confirmed,
        "rows": rows,
        "one_row_per_person": rows == people,
        "per_write": rows / max(stamps, 1),
        "waitlist_gap_free": seqs == list(range(1, len(seqs) + 1)),
        "waitlisted": len(seqs),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def start_baseline(database_url: str, env: dict, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (workdir / "baseline.log").open("ab")
    popen = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "python:linli_kit.gunicorn_conf",
            "--pythonpath",
            str(BENCH_DIR),
            "--bind",
            f"127.0.0.1:{port}",
            "activities_baseline:create_app()",
        ],
        env={**env, "DATABASE_URL": database_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if popen.poll() is not None:
            raise RuntimeError(f"baseline exited: {(workdir / 'baseline.log').read_text()[-2000:]}")
        try:
            requests.get(url + "/", timeout=1)
            return True
        except requests.RequestException:
            return False

    eventually(up, timeout=60, interval=0.1, what="baseline up")
    return popen, url


def create_ours(url: str, staff: dict, community: str, capacity: int) -> str:
    created = requests.post(
        url + "/",
        json={
            "community_ids": [community],
            "kind": "festival",
            "title": "Neighbourhood festival",
            "starts_at": "2099-01-01T10:00:00+08:00",
            "ends_at": "2099-01-01T16:00:00+08:00",
            "capacity": capacity,
            "max_party_size": 1,
            "publish": True,
        },
        headers=staff,
        timeout=10,
    )
    created.raise_for_status()
    return created.json()["id"]


def create_bare(database_url: str, community: str, capacity: int) -> str:
    activity_id = str(uuid.uuid4())
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO activities (id, kind, title, description, organiser_type, organiser_id, audience, "
                "photos, community_ids, starts_at, ends_at, capacity, max_party_size, status, checkin_code, "
                "confirmed_places, waiting_parties, waitlist_counter, revision, created_by, created_at) "
                "VALUES (:id, 'festival', 'f', '', 'staff', :u, '[]', '[]', :cs, '2099-01-01T02:00:00Z', "
                "'2099-01-01T08:00:00Z', :cap, 1, 'published', '000000', 0, 0, 0, 2, :u, now())"
            ),
            {"id": activity_id, "u": str(uuid.uuid4()), "cs": f'["{community}"]', "cap": capacity},
        )
    engine.dispose()
    return activity_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--registrations", type=int, default=1500, help="sign-ups per round")
    parser.add_argument("--capacity", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, so load drift hits both")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for both servers")
    args = parser.parse_args()

    admin_url, _ = infra.find_postgres()
    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    databases = infra.PostgresDatabases(admin_url, f"bench{run}")
    bus = BusNames(exchange=f"b.{run}.events", dead_letter_exchange=f"b.{run}.dead", queue_prefix=f"b.{run}.")
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    workdir = Path(tempfile.mkdtemp(prefix="linli-bench-activities-"))
    platform = Platform(databases, amqp_url, bus, public, private, workdir)
    platform.extra_env.update({"WEB_CONCURRENCY": str(args.workers), "LOG_LEVEL": "WARNING"})
    baseline = None
    community, street = str(uuid.uuid4()), str(uuid.uuid4())
    results: dict[str, list[tuple[float, list[float], dict, dict]]] = {"ours": [], "bare": []}
    # CPU of the server's workers and its database backends per registration, each round.
    cpu_per_registration: dict[str, list[float]] = {"ours": [], "bare": []}
    # CPU of this process (the clients) per request: if it nears 1 / rate, the client set the pace.
    cpu_of_client: dict[str, list[float]] = {"ours": [], "bare": []}
    try:
        service = platform.start_web("activities")
        ours_db = platform.database_url("activities")
        engine = create_engine(ours_db)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO directory_communities VALUES (:c, :s, 'bench', 1)"), {"c": community, "s": street}
            )
        engine.dispose()
        bare_db = databases.create("baseline")
        upgrade(definition.migrations_dir, bare_db)
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        env.update({"WEB_CONCURRENCY": str(args.workers)})
        baseline, bare_url = start_baseline(bare_db, env, workdir)
        staff = {
            "Authorization": "Bearer "
            + signer.sign(user_id=str(uuid.uuid4()), role="community_staff", community_ids=[community])
        }
        print(f"signing {args.registrations * args.rounds} resident tokens ...", flush=True)
        tokens = [
            {
                "Authorization": "Bearer "
                + signer.sign(user_id=str(uuid.uuid4()), role="resident", community_ids=[community])
            }
            for _ in range(args.registrations * args.rounds)
        ]

        def ours_round(i: int) -> None:
            activity = create_ours(service.url, staff, community, args.capacity)
            mine = tokens[i * args.registrations : (i + 1) * args.registrations]
            cpu = server_cpu(service.popen.pid, ours_db)
            seconds, lat, codes, client_cpu = drive(service.url, activity, mine, args.clients)
            cpu = server_cpu(service.popen.pid, ours_db) - cpu
            cpu_of_client["ours"].append(client_cpu)
            results["ours"].append(
                (args.registrations / seconds, lat, codes, check_booking(ours_db, activity, args.capacity))
            )
            cpu_per_registration["ours"].append(cpu / args.registrations)

        def bare_round(_i: int) -> None:
            activity = create_bare(bare_db, community, args.capacity)
            headers = [{"X-User": str(uuid.uuid4()), "X-Community": community} for _ in range(args.registrations)]
            cpu = server_cpu(baseline.pid, bare_db)
            seconds, lat, codes, client_cpu = drive(bare_url, activity, headers, args.clients)
            cpu = server_cpu(baseline.pid, bare_db) - cpu
            cpu_of_client["bare"].append(client_cpu)
            cpu_per_registration["bare"].append(cpu / args.registrations)
            results["bare"].append(
                (args.registrations / seconds, lat, codes, check_booking(bare_db, activity, args.capacity))
            )

        for i in range(args.rounds):
            order = (ours_round, bare_round) if i % 2 == 0 else (bare_round, ours_round)
            for step in order:
                step(i)
            print(
                f"round {i + 1}: ours {results['ours'][-1][0]:.0f}/s, bare {results['bare'][-1][0]:.0f}/s", flush=True
            )
    finally:
        platform.stop_all()
        if baseline is not None and baseline.poll() is None:
            baseline.send_signal(signal.SIGTERM)
            baseline.wait(20)
        databases.drop_all()

    print()
    print(
        f"{args.rounds} alternating rounds of {args.registrations} sign-ups, one activity of {args.capacity} places, "
        f"{args.clients} concurrent clients, {args.workers} gunicorn workers x 4 threads each"
    )
    print(
        f"{'':28}{'reg/s (median)':>15}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/reg':>12}{'client us':>11}{'reg/write':>11}"
        "  over-booked  waitlist gap-free  statuses"
    )
    medians = {}
    for name, label in (("ours", "activities service"), ("bare", "bare Flask + SQLAlchemy")):
        rounds = results[name]
        rates = sorted(r[0] for r in rounds)
        medians[name] = rates[len(rates) // 2]
        latencies = [x for r in rounds for x in r[1]]
        codes: dict[int, int] = {}
        for r in rounds:
            for code, n in r[2].items():
                codes[code] = codes.get(code, 0) + n
        over = sum(r[3]["over_booked"] for r in rounds)
        ordered = all(
            r[3]["waitlist_gap_free"] and r[3]["one_row_per_person"] and r[3]["counter_agrees"] for r in rounds
        )
        print(
            f"{label:28}{medians[name]:15.0f}{percentile(latencies, 0.5) * 1000:10.1f}"
            f"{percentile(latencies, 0.99) * 1000:10.1f}{percentile(cpu_per_registration[name], 0.5) * 1e6:12.0f}"
            f"{percentile(cpu_of_client[name], 0.5) * 1e6:11.0f}"
            f"{sum(r[3]['per_write'] for r in rounds) / len(rounds):11.2f}"
            f"  {over:11d}  {str(ordered):17}  {dict(sorted(codes.items()))}"
        )
    ratios = sorted(o[0] / b[0] for o, b in zip(results["ours"], results["bare"], strict=True))
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"ratio ours / bare: median {ratios[len(ratios) // 2]:.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; "
        f"target >= 0.60); ours >= 500/s: {medians['ours'] >= 500} (target)"
    )


if __name__ == "__main__":
    main()
