"""How the issues service plugs into the shared runtime: tables, migrations, event handlers, timers."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from linli_issues import SERVICE
from linli_issues.adapters import counters
from linli_issues.adapters.photo_store import photo_store_from
from linli_issues.adapters.tables import messaging, metadata, replica
from linli_issues.config import load_issues_config
from linli_issues.service_layer.consultations import meeting_handlers
from linli_issues.service_layer.deadlines import close_unrated, escalate_overdue
from linli_issues.service_layer.doorstep import doorstep_handlers
from linli_issues.service_layer.issues import reencode_legacy_photos, utc_now
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork
from linli_kit.config import Settings
from linli_kit.db import Database
from linli_kit.events.consumer import BatchHandler, Handler
from linli_kit.periods import EARLIEST, LATEST
from linli_kit.replica import replica_handlers
from linli_kit.service import ServiceDefinition, rebuild_counts_command
from linli_kit.worker import Timer


def handlers(_settings: Settings, _database: Database) -> dict[str, Handler | BatchHandler]:
    return {**replica_handlers(replica), **meeting_handlers(), **doorstep_handlers()}


# How often the worker folds the statistics' counts written in writers' shards into shard 0: the
# shards a minute of concurrent writers leaves stay few rows for /stats to add up.
FOLD_COUNTS_SECONDS = 60.0


def fold_counts(database: Database) -> int:
    """The counts' shards folded into shard 0 (adapters/counters.py), in a transaction of its own."""
    with database.transaction() as session:
        return counters.fold(session.connection())


def timers(_settings: Settings, database: Database, clock: Callable[[], datetime] = utc_now) -> list[Timer]:
    """Deadline escalation, auto-closing and folding the counts' shards; `clock` is injectable so
    tests need not wait."""
    config = load_issues_config()
    return [
        Timer(
            "escalate-overdue",
            config.deadline_check_seconds,
            lambda: escalate_overdue(IssuesUnitOfWork(database), clock()),
        ),
        Timer(
            "close-unrated",
            config.deadline_check_seconds,
            lambda: close_unrated(IssuesUnitOfWork(database), clock(), config.auto_close_after),
        ),
        Timer("fold-counts", FOLD_COUNTS_SECONDS, lambda: fold_counts(database)),
    ]


def run_deadlines(_settings: Settings, database: Database, args: list[str]) -> int:
    """Escalate every overdue issue now, as the worker's timer does.

    Each open issue past its deadline is reported overdue (`issues.issue.overdue`) and moved one
    tier up with a fresh deadline (`issues.issue.escalated`); at the city tier it is reported
    overdue once per deadline. The worker does this every ISSUES_DEADLINE_CHECK_SECONDS; this
    command does it at once, e.g. after the worker was stopped. `--as-of` runs it as of another
    instant: a drill sees what will have escalated by then, a demo need not wait a day.
    """
    summary, _, details = (run_deadlines.__doc__ or "").partition("\n")
    parser = argparse.ArgumentParser(
        prog="linli-issues run-deadlines",
        description=f"{summary}\n{textwrap.dedent(details)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--as-of",
        type=_instant,
        default=None,
        metavar="INSTANT",
        help="the instant to run as, ISO 8601 with its UTC offset (e.g. 2026-12-01T09:00:00+08:00); default: now",
    )
    options = parser.parse_args(args)
    when = options.as_of or utc_now()
    handled = escalate_overdue(IssuesUnitOfWork(database), when)
    print(f"linli-issues: {handled} overdue issue(s) reported and escalated as of {when.isoformat()}")
    return 0


rebuild_counts = rebuild_counts_command(
    SERVICE,
    lambda session, settings: counters.rebuild(session, ZoneInfo(settings.timezone)),
    "issue(s)",
    """Build the statistics' counts per community and month again from the history.

    /stats adds up counts kept with every change (per community and month of LINLI_TIMEZONE, per
    street, and the hours issues took to resolve) instead of reading the history of every issue. A
    database that had issues before the counts existed (or before migration 0014), or a city whose
    time zone changed, needs them built once: until then /stats reads the history, exactly but
    slowly. A street's rows follow the street the directory gave each community when its issues
    changed: after communities move to another street, build them again. Writers wait while it
    runs (one transaction).
""",
)


def reencode_photos(settings: Settings, database: Database, args: list[str]) -> int:
    """Re-encode the photos stored before thumbnails were made, without their metadata.

    Until migration 0011 a photo was kept as it was sent, its EXIF (GPS location, camera) included.
    This stores each such photo again, decoded and re-encoded with no metadata, under the same name
    in the photo store (PHOTO_STORAGE), and makes its thumbnail. A photo that cannot be decoded is
    named and left as it is. Run once after upgrading; running it again does nothing more.
    """
    summary, _, details = (reencode_photos.__doc__ or "").partition("\n")
    argparse.ArgumentParser(
        prog="linli-issues reencode-photos",
        description=f"{summary}\n{textwrap.dedent(details)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(args)
    config = load_issues_config().photos
    store = photo_store_from(config, settings.data_dir)
    done, failed = reencode_legacy_photos(IssuesUnitOfWork(database), store, thumbnail_side=config.thumbnail_side)
    print(f"linli-issues: {done} photo(s) re-encoded without metadata, with a thumbnail")
    for photo_id in failed:
        print(f"linli-issues: photo {photo_id} could not be decoded; left as it is", file=sys.stderr)
    return 1 if failed else 0


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add e.g. +08:00 or Z)")
    if not EARLIEST <= value.date() <= LATEST:
        raise argparse.ArgumentTypeError(f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return value


definition = ServiceDefinition(
    name=SERVICE,
    metadata=metadata,
    messaging=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    handlers=handlers,
    timers=timers,
    commands={"run-deadlines": run_deadlines, "rebuild-counts": rebuild_counts, "reencode-photos": reencode_photos},
    # `check-config` reads ISSUES_AUTO_CLOSE_DAYS, ISSUES_DEADLINE_CHECK_SECONDS and OPEN311_PUBLIC_URL too.
    check_settings=lambda _settings: load_issues_config(),
    # The meetings' events are handled a batch at a time with a fixed number of statements (the
    # issues locked, their details read, each table written once, the inbox claimed): batches of
    # 1,000 share those, and the commit, among twice the events (EVENTS_BATCH_SIZE and
    # EVENTS_PREFETCH still decide when set).
    events_batch_size=1000,
    events_prefetch=2000,
)
