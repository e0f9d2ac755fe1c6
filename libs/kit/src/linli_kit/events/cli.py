"""`linli-events`: operate the event bus of one service.

linli-events dead-letters list SERVICE
linli-events dead-letters replay SERVICE [--event-id ID]
linli-events dead-letters list --unrouted                  events no queue was bound for
linli-events dead-letters replay --unrouted [--event-id ID] [--event-type TYPE]
"""

from __future__ import annotations

import argparse
import sys

from linli_kit.config import ConfigError, load_settings
from linli_kit.events.deadletters import (
    list_dead_letters,
    list_unrouted,
    replay_dead_letters,
    replay_unrouted,
    to_json,
)

# Whose settings to read when no service is named: only the broker's are used.
UNROUTED_SETTINGS = "events"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="linli-events", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="group", required=True)
    dead = sub.add_parser("dead-letters", help="inspect or replay dead letters").add_subparsers(
        dest="action", required=True
    )
    listing = dead.add_parser("list", help="show dead letters without removing them")
    listing.add_argument("service", nargs="?")
    listing.add_argument("--unrouted", action="store_true", help="the events no queue was bound for")
    listing.add_argument("--limit", type=int, default=100)
    replay = dead.add_parser("replay", help="put dead letters back on the service's queue")
    replay.add_argument("service", nargs="?")
    replay.add_argument("--unrouted", action="store_true", help="publish unrouted events to the exchange again")
    replay.add_argument("--event-id", default=None)
    replay.add_argument("--event-type", default=None, help="with --unrouted: only events of this type")
    args = parser.parse_args(argv)
    if args.unrouted == (args.service is not None):
        parser.error("name a SERVICE, or give --unrouted")
    if getattr(args, "event_type", None) is not None and not args.unrouted:
        parser.error("--event-type goes with --unrouted")
    try:
        settings = load_settings(args.service or UNROUTED_SETTINGS)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    bus = settings.bus
    if args.action == "list":
        if args.unrouted:
            print(to_json(list_unrouted(settings.amqp_url, bus, limit=args.limit)))
        else:
            print(to_json(list_dead_letters(settings.amqp_url, bus, args.service, limit=args.limit)))
        return 0
    if args.unrouted:
        count = replay_unrouted(settings.amqp_url, bus, event_id=args.event_id, event_type=args.event_type)
        print(
            f"replayed {count} unrouted event(s) onto {bus.exchange}; any whose type still has no queue "
            f"bound is back in {bus.unrouted_queue}"
        )
        return 0
    count = replay_dead_letters(settings.amqp_url, bus, args.service, event_id=args.event_id)
    print(f"replayed {count} dead letter(s) onto {bus.queue(args.service)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
