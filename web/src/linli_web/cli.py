"""`linli-web`: the web front's commands.

    linli-web i18n extract|update|compile   refresh the message catalogues (babel.cfg, translations/)
    linli-web check-config                   check the settings and that the gateway answers
    linli-web screenshots [--out DIR]        start an isolated platform with the demo city, the web
                                             process, and take the main pages' screenshots (Chromium)

The web process itself runs under gunicorn: `gunicorn 'linli_web.app:create_app()'` (see Procfile).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PROJECT = PACKAGE.parent.parent  # web/
TRANSLATIONS = PACKAGE / "translations"
POT = TRANSLATIONS / "messages.pot"


def _babel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=PROJECT)


def i18n(action: str) -> int:
    if action in ("extract", "update"):
        _babel(
            "extract", "-F", "babel.cfg", "-k", "lazy_gettext", "--no-location", "--sort-output", "-o", str(POT), "."
        )
    if action == "update":
        _babel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-fuzzy-matching", "--ignore-obsolete")
    if action in ("update", "compile"):
        _babel("compile", "-d", str(TRANSLATIONS), "--statistics")
    return 0


def check_config() -> int:
    from linli_web.gateway_client import ApiError, GatewayClient
    from linli_web.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"linli-web: {exc}", file=sys.stderr)
        return 1
    try:
        GatewayClient(settings.gateway_url, timeout=5).request(
            "GET", "/api/v1/directory/streets", params={"page_size": 1}
        )
    except ApiError as exc:
        print(f"linli-web: the gateway at {settings.gateway_url} does not answer ({exc})", file=sys.stderr)
        return 1
    print(f"linli-web: settings good; gateway {settings.gateway_url} answers")
    return 0


def screenshots(out: str) -> int:
    tests = PROJECT / "tests"
    command = [sys.executable, "-m", "pytest", str(tests / "screenshots.py"), "-q", "-p", "no:cacheprovider"]
    env = {**os.environ, "LINLI_SCREENSHOTS_OUT": str(Path(out).resolve())}
    return subprocess.run(command, cwd=PROJECT.parent, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="linli-web", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    messages = sub.add_parser("i18n", help="refresh the message catalogues")
    messages.add_argument("action", choices=["extract", "update", "compile"])
    sub.add_parser("check-config", help="check the settings and the gateway")
    shots = sub.add_parser("screenshots", help="take the main pages' screenshots")
    shots.add_argument("--out", default=str(PROJECT / "screenshots"))
    args = parser.parse_args()
    if args.command == "i18n":
        sys.exit(i18n(args.action))
    if args.command == "check-config":
        sys.exit(check_config())
    sys.exit(screenshots(args.out))
