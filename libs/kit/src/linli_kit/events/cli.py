"""`linli-events`: operate the event bus of one service.

linli-events dead-letters list SERVICE
linli-events dead-letters replay SERVICE [--event-id ID]
"""

from __future__ import annotations

import argparse
import sys

from linli_kit.config import ConfigError, load_settings
from linli_kit.events.deadletters import list_dead_letters, replay_dead_letters, to_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="linli-events", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="group", required=True)
    dead = sub.add_parser("dead-letters", help="inspect or replay dead letters").add_subparsers(
        dest="action", required=True
    )
    listing = dead.add_parser("list", help="show dead letters without removing them")
    listing.add_argument("service")
    listing.add_argument("--limit", type=int, default=100)
    replay = dead.add_parser("replay", help="put dead letters back on the service's queue")
    replay.add_argument("service")
    replay.add_argument("--event-id", default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.service)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.action == "list":
        print(to_json(list_dead_letters(settings.amqp_url, settings.bus, args.service, limit=args.limit)))
        return 0
    count = replay_dead_letters(settings.amqp_url, settings.bus, args.service, event_id=args.event_id)
    print(f"replayed {count} dead letter(s) onto {settings.bus.queue(args.service)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
