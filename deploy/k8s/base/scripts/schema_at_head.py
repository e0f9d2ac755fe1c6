"""Wait until a service's database is at the head of its migrations: the init container of every
Deployment of the service, so that no process of a new version runs on an older schema.

    python schema_at_head.py SERVICE [--timeout SECONDS] [--interval SECONDS]

The service's setup Job (`linli-<service> migrate`, then `declare`) moves the schema; this only
reads it: the revisions in the database's `alembic_version` against the heads of the migrations in
this image. Settings are the service's own (`<SERVICE>_DATABASE_URL`). Exit status 0 at head, 1 when
the timeout passes first (the pod then retries the init container), 2 for an unknown service.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from linli_kit.migrations import alembic_config


def schema_state(service: str) -> tuple[set[str], set[str] | None]:
    """(heads of the image's migrations, revisions the database is at; None if unreachable)."""
    definition = importlib.import_module(f"linli_{service}.definition").definition
    config = alembic_config(definition.migrations_dir, definition.settings().database_url)
    wanted = set(ScriptDirectory.from_config(config).get_heads())
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            return wanted, set(MigrationContext.configure(connection).get_current_heads())
    except OperationalError:
        return wanted, None
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="schema_at_head", description=__doc__.split("\n\n")[0])
    parser.add_argument("service")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two looks")
    args = parser.parse_args(argv)
    try:
        importlib.import_module(f"linli_{args.service}.definition")
    except ModuleNotFoundError:
        print(f"schema_at_head: no service {args.service!r} in this image", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    while True:
        wanted, current = schema_state(args.service)
        if current == wanted:
            print(f"schema_at_head: {args.service} database at {', '.join(sorted(wanted))}")
            return 0
        if time.monotonic() >= deadline:
            found = "unreachable" if current is None else (", ".join(sorted(current)) or "empty")
            print(
                f"schema_at_head: {args.service} database is at {found}, not {', '.join(sorted(wanted))}: "
                f"has the {args.service}-setup Job run with this image?",
                file=sys.stderr,
            )
            return 1
        # Nothing announces a finished migration: look again after a pause.
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
