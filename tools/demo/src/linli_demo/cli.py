"""`linli-demo`: a demo city for a newcomer, and the article's story told against the running platform.

    linli-demo load  [--gateway URL] [--wait SECONDS]   load the demo city once, print demo logins
    linli-demo story [--gateway URL]                    tell the whole story, step by step

Both talk to the gateway's public API only, as the apps do. The first city admin is made by the
operator (`linli-gateway create-admin`); `make run` does that for the demo with the phone and
password below.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from linli_demo import story
from linli_demo.client import ApiError, Session

DEMO_ADMIN_PHONE = "13800000000"
DEMO_ADMIN_PASSWORD = "linli-admin-2026"


def _wait_for_gateway(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"linli-demo: the gateway at {url} is not ready after {seconds:.0f}s")
        time.sleep(0.5)


def _print_logins(city: story.City) -> None:
    print(f"\nDemo logins (password for everyone: {story.PASSWORD}):")
    print(f"  {'city admin':<44} {DEMO_ADMIN_PHONE}  (password {DEMO_ADMIN_PASSWORD})")
    for name, role, phone in city.logins:
        print(f"  {name + ' — ' + role:<44} {phone}")


def load(gateway: str, wait: float) -> int:
    _wait_for_gateway(gateway, wait)
    admin = Session(gateway)
    try:
        admin.login(DEMO_ADMIN_PHONE, DEMO_ADMIN_PASSWORD)
    except ApiError as exc:
        print(
            f"linli-demo: cannot log in as the demo admin ({exc.status}); run `linli-gateway create-admin "
            f"--phone {DEMO_ADMIN_PHONE} --password {DEMO_ADMIN_PASSWORD}` first",
            file=sys.stderr,
        )
        return 1
    if admin.get("/api/v1/directory/streets"):
        print("linli-demo: the city already has streets; the demo is not loaded again")
        return 0
    quiet = lambda _line: None  # noqa: E731 - a sink for the story's narration
    print("linli-demo: loading the demo city of Lingwu (a minute or two)...")
    city = story.set_up_city(gateway, DEMO_ADMIN_PHONE, DEMO_ADMIN_PASSWORD, quiet)
    story.cultural_wall(city, quiet)
    story.leaking_roof(city, quiet)
    story.popular_activity(city, quiet)
    story.neighbours_helping(city, quiet)
    story.inn_programme(city, quiet)
    patrol = story.woodpecker_patrol(city, quiet)
    story.talent_matched(city, patrol["issue"]["id"], quiet)
    story.welfare_visit_kept(city, quiet)
    print(f"linli-demo: Lingwu is loaded. Open {gateway}/ in a browser, {gateway}/api/docs for the API, or try:")
    print(f"  curl {gateway}/api/v1/directory/communities")
    _print_logins(city)
    return 0


def tell(gateway: str) -> int:
    _wait_for_gateway(gateway, 30)
    # Fresh people each time, so the story can be told again on the same platform.
    base = 13700000000 + int(time.time()) % 1_000_000 * 100
    label = f" ({datetime.now().strftime('%H:%M:%S')})"
    city = story.set_up_city(gateway, DEMO_ADMIN_PHONE, DEMO_ADMIN_PASSWORD, print, phone_base=base, label=label)
    story.cultural_wall(city, print)
    story.leaking_roof(city, print)
    lamp = story.unattended_issue(city, print)
    beside = Path(sys.executable).parent / "linli-issues"
    command = shutil.which("linli-issues") or (str(beside) if beside.exists() else None)
    if command:
        as_of = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        print(
            f"   (the operator runs the deadline pass as of two days later: linli-issues run-deadlines --as-of {as_of})"
        )
        subprocess.run(
            [command, "run-deadlines", "--as-of", as_of], check=True, env=os.environ.copy(), stdout=subprocess.DEVNULL
        )
        story.escalated_to_street(city, lamp, print)
    else:
        print("   (run `linli-issues run-deadlines` on the server to see it escalate)")
    story.popular_activity(city, print)
    story.neighbours_helping(city, print)
    story.inn_programme(city, print)
    patrol = story.woodpecker_patrol(city, print)
    story.talent_matched(city, patrol["issue"]["id"], print)
    story.welfare_visit_kept(city, print)
    story.street_overview(city, print)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="linli-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", default=os.environ.get("LINLI_GATEWAY", "http://127.0.0.1:8000"))
    sub = parser.add_subparsers(dest="command", required=True)
    loading = sub.add_parser("load", help="load the demo city once")
    loading.add_argument("--wait", type=float, default=120, help="seconds to wait for the gateway")
    sub.add_parser("story", help="tell the article's story against the running platform")
    args = parser.parse_args()
    gateway = args.gateway.rstrip("/")
    try:
        sys.exit(load(gateway, args.wait) if args.command == "load" else tell(gateway))
    except (ApiError, TimeoutError) as exc:
        print(f"linli-demo: {exc}", file=sys.stderr)
        sys.exit(1)
