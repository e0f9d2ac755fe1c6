"""The platform under a realistic mix through the gateway (issue 15, point 6), with Locust.

Starts the platform as `make run` does (every web and worker process, SQLite files; or PostgreSQL
with `--postgres`), loads the demo city of the source article through the public API (the same
loader as `linli-demo load`), logs its people in once (a login is argon2 work, measured by
`login_burst.py`, not here), then runs `locust_mixed.py` headless for `--seconds` at each of
`--users` concurrent users: residents (6 in 10) reading their community's issues, meetings,
activities and inbox, reporting and pressing "me too"; community staff (3 in 10) on the triage
queue, timelines and internal notes; street officials (1 in 10) on the overview and the street's
list. Each user waits 0.5-2 s between actions, as a person does.

Prints per load: requests per second, p50/p95/p99 per route and overall, failures (5xx apart), and
the highest load that kept the overall p95 within 300 ms, per core: the platform's capacity here.
Rate limits are raised for the run (a few demo accounts stand for hundreds of users; the limits are
tested elsewhere). Never asserts on time.

    .venv/bin/python bench/mixed_load.py [--users 50,100,200] [--seconds 30] [--postgres]

Locust runs from its own virtual environment (var/peers/locust, made with pip the first time).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from linli_demo import story
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform, daytime_zone

HERE = Path(__file__).resolve().parent
PEERS = HERE.parent / "var" / "peers"
ADMIN_PHONE, ADMIN_PASSWORD = "13800000000", "linli-admin-2026"
ROLES = ("resident", "community_staff", "street_official")
CAPACITY_P95_MS = 300


def locust_venv() -> Path:
    """Locust's own virtual environment under var/peers, made with pip the first time."""
    venv = PEERS / "locust"
    if not (venv / ".installed").exists():
        print(f"installing locust into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "locust==2.32.4"], check=True)
        (venv / ".installed").touch()
    return venv


def load_plan(gateway: str, workdir: Path) -> Path:
    """The demo city, its people logged in, and the issues each may read: what the users act on."""
    quiet = lambda _line: None  # noqa: E731
    city = story.set_up_city(gateway, ADMIN_PHONE, ADMIN_PASSWORD, quiet)
    story.cultural_wall(city, quiet)
    story.leaking_roof(city, quiet)
    story.popular_activity(city, quiet)
    story.neighbours_helping(city, quiet)
    people: dict[str, list[dict]] = {role: [] for role in ROLES}
    for session in city.people.values():
        me = session.get("/api/v1/auth/me")
        if me["role"] not in people:
            continue
        community = (me.get("community_ids") or [None])[0]
        params = {"community_id": community} if community else {}
        readable = [issue["id"] for issue in session.get("/api/v1/issues/", params=params)]
        if readable:
            people[me["role"]].append({"token": session.token, "community_id": community, "issue_ids": readable})
    path = workdir / "plan.json"
    path.write_text(json.dumps({"people": people}))
    print("people: " + ", ".join(f"{len(v)} {k}" for k, v in people.items()), flush=True)
    return path


def run_locust(venv: Path, plan: Path, host: str, users: int, seconds: int, out: Path) -> dict[str, dict]:
    prefix = out / f"u{users}"
    env = {**os.environ, "LINLI_LOAD_PLAN": str(plan)}
    command = [str(venv / "bin" / "locust"), "-f", str(HERE / "locust_mixed.py"), "--headless",
               "--users", str(users), "--spawn-rate", str(max(10, users // 5)), "--run-time", f"{seconds}s",
               "--host", host, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
               "--stop-timeout", "10"]  # fmt: skip
    with open(f"{prefix}.log", "w") as log:  # Locust's own summary, kept beside its CSV files
        subprocess.run(command, env=env, check=False, stdout=log, stderr=subprocess.STDOUT)
    rows = {}
    with open(f"{prefix}_stats.csv", newline="") as stats:
        for row in csv.DictReader(stats):
            rows[row["Name"]] = row
    server_errors = 0
    with open(f"{prefix}_failures.csv", newline="") as failures:
        for row in csv.DictReader(failures):
            if row["Error"].split(":")[0].strip().startswith(("5", "CatchResponseError('5")):
                server_errors += int(row["Occurrences"])
    rows["_server_errors"] = {"count": server_errors}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="50,100,200", help="concurrent users, one run per figure")
    parser.add_argument("--seconds", type=int, default=30, help="length of each run")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite files")
    parser.add_argument("--web-concurrency", type=int, default=2, help="gunicorn workers per web process")
    args = parser.parse_args()
    levels = [int(n) for n in args.users.split(",")]
    cores = len(os.sched_getaffinity(0))
    venv = locust_venv()

    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    bus = BusNames(exchange=f"b.{run}.events", dead_letter_exchange=f"b.{run}.dead", queue_prefix=f"b.{run}.")
    databases = None
    if args.postgres:
        pg_url, _ = infra.find_postgres()
        databases = infra.PostgresDatabases(pg_url, run)
    private, public = generate_keypair()
    workdir = Path(tempfile.mkdtemp(prefix="linli-load-"))
    platform = Platform(databases, amqp_url, bus, public, private, workdir / "platform",
                        web_concurrency=args.web_concurrency)  # fmt: skip
    platform.extra_env.update(
        {
            "LOG_LEVEL": "WARNING",
            "LINLI_TIMEZONE": daytime_zone(),  # notices go out at once rather than wait for morning
            "ACCESS_TOKEN_TTL_SECONDS": "7200",
            "RATE_LIMIT_PER_CLIENT": "10000000/minute",
            "RATE_LIMIT_PER_ACCOUNT": "10000000/minute",
            "RATE_LIMIT_AUTH": "10000000/minute",
        }
    )
    results: list[tuple[int, dict[str, dict]]] = []
    try:
        gateway = platform.start_all()
        platform.command("gateway", "create-admin", "--phone", ADMIN_PHONE, "--password", ADMIN_PASSWORD)
        plan = load_plan(gateway.url, workdir)
        for users in levels:
            print(f"running {users} users for {args.seconds} s ...", flush=True)
            results.append((users, run_locust(venv, plan, gateway.url, users, args.seconds, workdir)))
            requests.get(f"{gateway.url}/healthz", timeout=30)  # the platform is still up
    finally:
        platform.stop_all()
        if databases is not None:
            databases.drop_all()
        infra.delete_bus(amqp_url, bus.exchange, bus.dead_letter_exchange, [])

    print(
        f"\nMixed load through the gateway — {'PostgreSQL' if args.postgres else 'SQLite (make run)'}, "
        f"WEB_CONCURRENCY {args.web_concurrency}, {cores} cores, {args.seconds} s per load, "
        f"load average {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    capacity = None
    for users, rows in results:
        total = rows["Aggregated"]
        print(
            f"\n{users} users: {float(total['Requests/s']):.0f} req/s, {total['Request Count']} requests, "
            f"{total['Failure Count']} failed ({rows['_server_errors']['count']} server errors)"
        )
        print(f"  {'route':<40}{'req':>7}{'fail':>6}{'p50':>7}{'p95':>7}{'p99':>7}  ms")
        for name, row in sorted(rows.items()):
            if name.startswith("_"):
                continue
            print(
                f"  {name:<40}{row['Request Count']:>7}{row['Failure Count']:>6}"
                f"{row['50%']:>7}{row['95%']:>7}{row['99%']:>7}"
            )
        if float(total["95%"]) <= CAPACITY_P95_MS and int(rows["_server_errors"]["count"]) == 0:
            capacity = (users, float(total["Requests/s"]))
    if capacity:
        users, rate = capacity
        print(
            f"\ncapacity (overall p95 ≤ {CAPACITY_P95_MS} ms, no server error): {users} users, "
            f"{rate:.0f} req/s = {rate / cores:.0f} req/s per core"
        )
    else:
        print(f"\ncapacity: no load kept the overall p95 within {CAPACITY_P95_MS} ms")


if __name__ == "__main__":
    main()
