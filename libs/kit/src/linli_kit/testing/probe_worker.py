"""The probe service (`linli_kit.testing.probe`) as a worker process of its own, for the tests that
run several copies of a relay or a consumer against a broker they disturb:

    python -m linli_kit.testing.probe_worker relay|consumer --health-port PORT

It is the kit's real `Worker` (outbox relay, consumer, retention; /healthz, /readyz, /metrics on
PORT), with the settings every service reads (DATABASE_URL, AMQP_URL: one broker or several,
EVENTS_EXCHANGE, QUEUE_PREFIX...). A `relay` publishes its database's probe outbox; a `consumer`
handles probe events into its database's `effects` table, one row per handling, so an event handled
twice shows as two rows. The tables are the probe's (`probe.metadata.create_all`).
"""

from __future__ import annotations

import argparse
import sys

from linli_kit.config import ConfigError, load_settings
from linli_kit.db import Database
from linli_kit.logs import configure_logging
from linli_kit.testing import probe
from linli_kit.worker import Worker

SERVICE = "probe"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe_worker", description=__doc__)
    parser.add_argument("role", choices=["relay", "consumer"])
    parser.add_argument("--health-port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(SERVICE)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.service, level=settings.log_level, json_format=settings.log_json)
    handlers = {probe.PROBE_EVENT: probe.record_effect} if args.role == "consumer" else None
    worker = Worker(settings, Database(settings.database_url), probe.messaging, handlers=handlers)
    worker.serve_forever(args.health_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
