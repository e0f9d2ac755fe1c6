"""The gateway hop: the same request to a service, directly and through the gateway, in one run.

Starts real processes (the issues service and the gateway under gunicorn, with their workers) on
the local PostgreSQL and RabbitMQ, seeds a community with issues, then drives
`GET /?community_id=…` (a resident's list page) with a fixed number of concurrent clients, first
straight at the issues service and then at `/api/v1/issues/…` on the gateway. Prints requests per
second, p50 and p99 latency, the ratio (issue 15's target: the hop costs at most 1.5x the direct
call), and the CPU each process spent per request.

    .venv/bin/python bench/gateway_hop.py [--seconds 10] [--clients 8] [--issues 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from linli_kit.auth import TokenSigner
from linli_kit.config import BusNames
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra
from linli_kit.testing.platform import Platform
from linli_kit.testing.waiting import eventually


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (gunicorn's workers):
    what a request costs each process, whatever else the machine is doing."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        # After the name: state, ppid, ..., utime (12th) and stime (13th) of the fields that follow.
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def drive(url: str, headers: dict, clients: int, seconds: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        session = requests.Session()
        mine, bad = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = session.get(url, headers=headers, timeout=10)
            mine.append(time.perf_counter() - started)
            bad += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.monotonic() - started), latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--issues", type=int, default=50)
    args = parser.parse_args()

    admin_url, _ = infra.find_postgres()
    amqp_url, _ = infra.find_rabbitmq()
    run = infra.new_run_id()
    databases = infra.PostgresDatabases(admin_url, run)
    bus = BusNames(exchange=f"b.{run}.events", dead_letter_exchange=f"b.{run}.dead", queue_prefix=f"b.{run}.")
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    workdir = Path(tempfile.mkdtemp(prefix="linli-bench-"))
    platform = Platform(databases, amqp_url, bus, public, private, workdir)
    platform.extra_env.update(
        {
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": "2",
            "RATE_LIMIT_PER_CLIENT": "1000000/minute",
            "RATE_LIMIT_PER_ACCOUNT": "1000000/minute",
        }
    )
    try:
        issues = platform.start_web("issues")
        platform.start_worker("issues")
        gateway = platform.start_web("gateway")
        platform.start_worker("gateway")
        api = gateway.url + "/api/v1"
        admin = {
            "Authorization": "Bearer " + signer.sign(user_id="00000000-0000-4000-8000-00000000000a", role="city_admin")
        }
        street = requests.post(f"{api}/directory/streets", json={"name": "Chengqu"}, headers=admin).json()["id"]
        community = requests.post(
            f"{api}/directory/communities", json={"street_id": street, "name": "Xihu"}, headers=admin
        ).json()["id"]
        resident = {
            "Authorization": "Bearer "
            + signer.sign(
                user_id="00000000-0000-4000-8000-00000000000b",
                role="resident",
                street_id=street,
                community_ids=[community],
            )
        }
        eventually(
            lambda: (
                requests.post(
                    f"{issues.url}/",
                    headers=resident,
                    json={
                        "title": "Cultural wall is unsafe",
                        "description": "A child was nearly hit by falling tiles.",
                        "category": "safety_hazard",
                        "community_id": community,
                        "urgency": "urgent",
                    },
                ).status_code
                == 201
            ),
            timeout=30,
            interval=0.2,
            what="community reaches the issues service's replica",
        )
        for i in range(args.issues - 1):
            requests.post(
                f"{issues.url}/",
                headers=resident,
                json={
                    "title": f"Roof of Building {i} leaks",
                    "description": "Water comes in when it rains.",
                    "category": "repairs_facilities",
                    "community_id": community,
                    "urgency": "normal",
                },
            )

        query = f"?community_id={community}"
        direct_url, hop_url = f"{issues.url}/{query}", f"{api}/issues/{query}"
        drive(direct_url, resident, 2, 1)  # warm both paths (pools, caches)
        drive(hop_url, resident, 2, 1)
        pids = {"issues": issues.popen.pid, "gateway": gateway.popen.pid}
        used: dict[str, dict[str, float]] = {}
        results = {}
        for path, url in (("direct", direct_url), ("hop", hop_url)):
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            results[path] = drive(url, resident, args.clients, args.seconds)
            used[path] = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        (direct_rps, direct_lat, direct_err), (hop_rps, hop_lat, hop_err) = results["direct"], results["hop"]

        print(f"\nGateway hop — GET list of {args.issues} issues, {args.clients} clients, {args.seconds:.0f} s each")
        print(f"{'path':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for name, rps, lat, err in (
            ("direct to issues service", direct_rps, direct_lat, direct_err),
            ("through the gateway", hop_rps, hop_lat, hop_err),
        ):
            print(
                f"{name:<28}{rps:>10.0f}{percentile(lat, 0.5) * 1000:>10.1f}{percentile(lat, 0.99) * 1000:>10.1f}"
                f"{err:>8}"
            )
        cost = statistics.mean(hop_lat) / statistics.mean(direct_lat)
        print(f"hop cost (mean latency through gateway / direct): {cost:.2f}x   target <= 1.50x (issue 15)")
        print(f"throughput ratio (gateway / direct): {hop_rps / direct_rps:.2f}")
        # CPU per request does not depend on what else the machine runs: on 2 cores, the hop's
        # share of the work is what it must stay under for the hop to stay cheap when saturated.
        for path, lat in (("direct", direct_lat), ("hop", hop_lat)):
            requests_done = max(1, len(lat))
            figures = ", ".join(f"{name} {used[path][name] / requests_done * 1000:.2f} ms" for name in pids)
            print(f"CPU per request, {path:<7}: {figures}")
        issues_cpu = used["hop"]["issues"] / max(1, len(hop_lat))
        gateway_cpu = used["hop"]["gateway"] / max(1, len(hop_lat))
        print(f"CPU through the gateway / the service's own: {(issues_cpu + gateway_cpu) / issues_cpu:.2f}x")
    finally:
        platform.stop_all()
        databases.drop_all()
        infra.delete_bus(
            amqp_url,
            bus.exchange,
            bus.dead_letter_exchange,
            [bus.queue(s) for s in ("issues", "gateway")] + [bus.dead_letter_queue("issues")],
        )


if __name__ == "__main__":
    main()
