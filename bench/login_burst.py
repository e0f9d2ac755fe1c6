"""A burst of logins (a city's morning) and what it does to everyone else, before and after the
bounded pool of password-hashing workers, in one run (issue 15, point 5).

Starts the gateway under gunicorn as `make run` does (WEB_CONCURRENCY 2, WEB_THREADS 4, SQLite in a
work folder), registers `--accounts` residents with passwords, then for each mode restarts the
gateway and, for `--seconds`, has `--logins` clients log in as fast as they can (argon2id at
argon2-cffi's defaults: time 3, memory 64 MiB, 4 lanes) while `--others` clients call
`GET /api/v1/auth/me` (a database read) and `GET /healthz`. Modes:

- `before`: PASSWORD_HASH_WORKERS=0, each password checked on its request thread (the old way);
- `after`: the default pool (PASSWORD_HASH_WORKERS = cores, PASSWORD_HASH_QUEUE 0, niceness 10), a
  login beyond it answered 503 `busy` at once, after which that client waits its Retry-After
  (capped at `--busy-wait`) and tries again;
- `after-nice0`: the same at the request threads' CPU priority (PASSWORD_HASH_NICENESS 0);
- `after-q`: the default pool with as many logins again waiting (PASSWORD_HASH_QUEUE = cores).

Prints, per mode, logins per second and per core, login p50/p95, busy answers, and p50/p95 of the
other routes during the burst (and without a burst, for reference).

    .venv/bin/python bench/login_burst.py [--seconds 15] [--logins 50] [--others 8] [--accounts 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import requests

from linli_gateway.adapters.passwords import hash_password, verify_password
from linli_kit.auth import TokenSigner
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform

PASSWORD = "wall-7-safe"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Burst:
    """Login clients and other clients running together until a deadline."""

    def __init__(self, base: str, phones: list[str], token: str, busy_wait: float) -> None:
        self.base = base
        self.phones = phones
        self.token = token
        self.busy_wait = busy_wait
        self.lock = threading.Lock()
        self.login_latencies: list[float] = []
        self.logins_ok = 0
        self.busy = 0
        self.login_errors: dict[int, int] = {}
        self.other: dict[str, list[float]] = {"/api/v1/auth/me": [], "/healthz": []}
        self.other_errors = 0

    def login_client(self, n: int, deadline: float) -> None:
        session = requests.Session()
        phone = self.phones[n % len(self.phones)]
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = session.post(
                f"{self.base}/api/v1/auth/login", json={"phone": phone, "password": PASSWORD}, timeout=120
            )
            took = time.perf_counter() - started
            with self.lock:
                if answer.status_code == 200:
                    self.logins_ok += 1
                    self.login_latencies.append(took)
                elif answer.status_code == 503:
                    self.busy += 1
                else:
                    self.login_errors[answer.status_code] = self.login_errors.get(answer.status_code, 0) + 1
            if answer.status_code == 503:
                # What a polite client does with Retry-After (the limiter may add its own, longer one).
                time.sleep(min(float(answer.headers.get("Retry-After", 1)), self.busy_wait))

    def other_client(self, n: int, deadline: float) -> None:
        session = requests.Session()
        path = "/api/v1/auth/me" if n % 2 == 0 else "/healthz"
        headers = {"Authorization": f"Bearer {self.token}"}
        mine, bad = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = session.get(f"{self.base}{path}", headers=headers, timeout=120)
            mine.append(time.perf_counter() - started)
            bad += answer.status_code != 200
        with self.lock:
            self.other[path].extend(mine)
            self.other_errors += bad

    def run(self, logins: int, others: int, seconds: float) -> float:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.login_client, args=(n, deadline)) for n in range(logins)]
        threads += [threading.Thread(target=self.other_client, args=(n, deadline)) for n in range(others)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--logins", type=int, default=50, help="concurrent login clients")
    parser.add_argument("--others", type=int, default=8, help="concurrent clients of /auth/me and /healthz")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--busy-wait", type=float, default=0.2, help="longest wait after a 503 busy")
    parser.add_argument("--modes", default="before,after,after-nice0,after-q")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    bus = BusNames(exchange=f"b.{run}.events", dead_letter_exchange=f"b.{run}.dead", queue_prefix=f"b.{run}.")
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    workdir = Path(tempfile.mkdtemp(prefix="linli-bench-"))
    platform = Platform(None, amqp_url, bus, public, private, workdir, web_concurrency=2)
    platform.extra_env.update(
        {
            "LOG_LEVEL": "WARNING",
            "WEB_THREADS": "4",
            "RATE_LIMIT_PER_CLIENT": "1000000/minute",
            "RATE_LIMIT_PER_ACCOUNT": "1000000/minute",
            "RATE_LIMIT_AUTH": "1000000/minute",
        }
    )
    results = []
    try:
        gateway = platform.start_web("gateway")
        api = gateway.url + "/api/v1"
        admin = {
            "Authorization": "Bearer " + signer.sign(user_id="00000000-0000-4000-8000-00000000000a", role="city_admin")
        }
        street = requests.post(f"{api}/directory/streets", json={"name": "Chengqu"}, headers=admin).json()["id"]
        community = requests.post(
            f"{api}/directory/communities", json={"street_id": street, "name": "Xihu"}, headers=admin
        ).json()["id"]
        phones = [f"1390000{n:04d}" for n in range(args.accounts)]
        for n, phone in enumerate(phones):
            body = {"display_name": f"Resident {n}", "role": "resident", "community_ids": [community],
                    "phone": phone, "password": PASSWORD}  # fmt: skip
            made = requests.post(f"{api}/auth/users", json=body, headers=admin)
            assert made.status_code == 201, made.text
        gateway.stop()
        platform.processes.remove(gateway)

        for mode in args.modes.split(","):
            platform.extra_env["PASSWORD_HASH_WORKERS"] = "0" if mode == "before" else str(cores)
            platform.extra_env["PASSWORD_HASH_QUEUE"] = str(cores) if mode == "after-q" else "0"
            platform.extra_env["PASSWORD_HASH_NICENESS"] = "0" if mode == "after-nice0" else "10"
            gateway = platform.start_web("gateway")
            base = gateway.url
            token = requests.post(f"{base}/api/v1/auth/login", json={"phone": phones[0], "password": PASSWORD})
            token = token.json()["access_token"]
            quiet = Burst(base, phones, token, args.busy_wait)
            quiet.run(0, args.others, min(5.0, args.seconds))
            burst = Burst(base, phones, token, args.busy_wait)
            took = burst.run(args.logins, args.others, args.seconds)
            results.append((mode, quiet, burst, took))
            gateway.stop()
            platform.processes.remove(gateway)
    finally:
        platform.stop_all()
        infra.delete_bus(amqp_url, bus.exchange, bus.dead_letter_exchange, [])

    started = time.perf_counter()
    verify_password(hash_password(PASSWORD), PASSWORD)
    single = time.perf_counter() - started
    print(
        f"\nLogin burst — gateway WEB_CONCURRENCY 2 x WEB_THREADS 4, SQLite, {cores} cores; "
        f"{args.logins} login clients and {args.others} other clients for {args.seconds:.0f} s; "
        f"one argon2 hash + check alone here: {single * 1000:.0f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'mode':<12}{'logins/s':>10}{'/core':>8}{'login p50':>11}{'p95':>8}{'busy':>7}{'errors':>8}"
        f"{'me p50':>9}{'p95':>8}{'healthz p50':>13}{'p95':>8}{'quiet me p50':>14}{'p95':>8}"
    )
    for mode, quiet, burst, took in results:
        rate = burst.logins_ok / took
        me, health, logins = burst.other["/api/v1/auth/me"], burst.other["/healthz"], burst.login_latencies
        quiet_me = quiet.other["/api/v1/auth/me"]
        errors = sum(burst.login_errors.values()) + burst.other_errors
        print(
            f"{mode:<12}{rate:>10.1f}{rate / cores:>8.1f}"
            f"{percentile(logins, 0.5) * 1000:>9.0f}ms{percentile(logins, 0.95) * 1000:>6.0f}ms"
            f"{burst.busy:>7}{errors:>8}"
            f"{percentile(me, 0.5) * 1000:>7.0f}ms{percentile(me, 0.95) * 1000:>6.0f}ms"
            f"{percentile(health, 0.5) * 1000:>11.0f}ms{percentile(health, 0.95) * 1000:>6.0f}ms"
            f"{percentile(quiet_me, 0.5) * 1000:>12.0f}ms{percentile(quiet_me, 0.95) * 1000:>6.0f}ms"
        )
        print(f"{'':<12}  (samples: {len(logins)} logins, {len(me)} /auth/me, {len(health)} /healthz)")
        if burst.login_errors:
            print(f"  login errors by status: {burst.login_errors}")


if __name__ == "__main__":
    main()
