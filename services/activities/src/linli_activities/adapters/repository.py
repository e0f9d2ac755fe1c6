"""Reading and writing the service's objects with SQLAlchemy."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, configure_mappers
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.instrumentation import manager_of_class

from linli_activities.adapters import counts, tables
from linli_activities.domain.activities import Activity, ActivityStatus, Registration, RegistrationStatus
from linli_activities.domain.care import HOLDING_SLOT
from linli_activities.domain.places import CompoundPoint, ServicePost
from linli_activities.domain.reminders import ActivityReminder, ReminderState
from linli_kit.db import autocommit_rowcount, driver_rowcount, driver_rows
from linli_kit.events.envelope import Event
from linli_kit.events.outbox import Outbox
from linli_kit.search import TextIndex
from linli_kit.tables import UtcDateTime

T = TypeVar("T")

# --- a sign-up's statements, built once (run with parameters: no expression built per request) ----
_a = tables.activities.c
_party = bindparam("party_size", type_=Integer)
_now = bindparam("now", type_=UtcDateTime)
_fits = and_(_a.waiting_parties == 0, or_(_a.capacity.is_(None), _a.confirmed_places + _party <= _a.capacity))
TAKE_PLACE_RETURNS = ("confirmed_places", "waiting_parties", "waitlist_counter", "starts_at", "title")
TAKE_PLACE = (
    update(tables.activities)
    .where(
        _a.id == bindparam("activity_id"),
        _a.status == ActivityStatus.PUBLISHED,
        _a.announced_at.is_not(None),
        _a.max_party_size >= _party,
        or_(_a.registration_opens_at.is_(None), _a.registration_opens_at <= _now),
        func.coalesce(_a.registration_closes_at, _a.starts_at) > _now,
    )
    .values(
        confirmed_places=_a.confirmed_places + case((_fits, _party), else_=0),
        waiting_parties=_a.waiting_parties + case((_fits, 0), else_=1),
        waitlist_counter=_a.waitlist_counter + case((_fits, 0), else_=1),
    )
    .returning(*(_a[name] for name in TAKE_PLACE_RETURNS))
)
REGISTRATION_INSERT = insert(tables.registrations).values(
    {c.name: bindparam(f"registration_{c.name}") for c in tables.registrations.columns}
)
# PostgreSQL: a whole first sign-up in one statement (data-modifying WITH), run on its own in
# autocommit, so the activity's row is locked from that statement's UPDATE to its commit, all
# inside the server: no round trip of the client's while it is held (the sign-ups of a popular
# activity take turns on that row). The UPDATE is TAKE_PLACE's, and also requires the activity's
# revision as read before it (every change of its title, start, communities, window or limits
# moves it), so the event and the counts, made from that reading, are the locked row's. Whether
# the party is confirmed or waits is decided by the UPDATE; the registration, the statistics'
# counts (SIGN_UP_COUNTS of both outcomes, adapters/counts.py) and the event (its two versions,
# the waiting one given its place in the line here) follow what it returns. No row returned:
# nothing was written (the caller takes the general path, which says why). A second sign-up of
# one person fails the unique (activity, user) constraint, and the whole statement with it.
_REGISTRATION_COLUMNS = [c.name for c in tables.registrations.columns]
_WAITS = "place.waiting_parties > 0"  # a waitlisted party always leaves someone waiting
_SIGN_UP_VALUES = {
    "status": f"CASE WHEN {_WAITS} THEN '{RegistrationStatus.WAITLISTED}' ELSE '{RegistrationStatus.CONFIRMED}' END",
    "waitlist_seq": f"CASE WHEN {_WAITS} THEN place.waitlist_counter END",
}
# TAKE_PLACE's rules and counting, in PostgreSQL's words (with the revision): the test of the
# sign-up paths holds both to the domain's Activity.register on the same sign-ups.
_FITS_SQL = (
    "activities.waiting_parties = 0 AND (activities.capacity IS NULL "
    "OR activities.confirmed_places + :party_size <= activities.capacity)"
)
_PLACE_SQL = (
    "UPDATE activities SET "
    f"confirmed_places = confirmed_places + CASE WHEN {_FITS_SQL} THEN :party_size ELSE 0 END, "
    f"waiting_parties = waiting_parties + CASE WHEN {_FITS_SQL} THEN 0 ELSE 1 END, "
    f"waitlist_counter = waitlist_counter + CASE WHEN {_FITS_SQL} THEN 0 ELSE 1 END "
    f"WHERE id = :activity_id AND revision = :revision AND status = '{ActivityStatus.PUBLISHED}' "
    "AND announced_at IS NOT NULL AND max_party_size >= :party_size "
    "AND (registration_opens_at IS NULL OR registration_opens_at <= :now) "
    "AND coalesce(registration_closes_at, starts_at) > :now "
    "RETURNING " + ", ".join(TAKE_PLACE_RETURNS)
)
# A sign-up's amounts added to its scopes' rows of the month (both sign-up statements end so).
# Only the columns a registration moves are named (counts.REGISTRATION_COLUMNS): the statements'
# texts stay under psycopg's limit for caching their parsing (4,096 characters, 50 parameters),
# which they are otherwise split again on every execution.
_COUNTED = counts.REGISTRATION_COLUMNS


def _added_to_the_counts(columns: Iterable[str]) -> str:
    """The end of an INSERT into activity_counts that adds its `columns` to a month's row already there."""
    return " ON CONFLICT (scope, month) DO UPDATE SET " + ", ".join(
        f"{n} = activity_counts.{n} + excluded.{n}" for n in columns
    )


_ADDED_TO_THE_COUNTS = _added_to_the_counts(_COUNTED)
SIGN_UP_IN_ONE_STATEMENT = text(
    "WITH place AS ("
    + _PLACE_SQL
    + "), registration AS (INSERT INTO registrations ("
    + ", ".join(_REGISTRATION_COLUMNS)
    + ") SELECT "
    + ", ".join(_SIGN_UP_VALUES.get(name, f":registration_{name}") for name in _REGISTRATION_COLUMNS)
    + " FROM place RETURNING status), counts AS (INSERT INTO activity_counts (scope, month, "
    + ", ".join(_COUNTED)
    + ") SELECT scopes.scope, :month, "
    + ", ".join(
        f"CASE WHEN registration.status = '{RegistrationStatus.CONFIRMED}' THEN :confirmed_c_{n} "
        f"ELSE :waitlisted_c_{n} END"
        for n in _COUNTED
    )
    + " FROM registration CROSS JOIN (SELECT CAST(:community AS text) AS scope UNION ALL SELECT :street_prefix || "
    "COALESCE((SELECT street_id FROM directory_communities WHERE community_id = :community), '')) AS scopes"
    + _ADDED_TO_THE_COUNTS
    + "), event AS (INSERT INTO outbox (event_id, event_type, payload, created_at, published_at) SELECT "
    f"CASE WHEN {_WAITS} THEN :waitlisted_event_id ELSE :confirmed_event_id END, "
    f"CASE WHEN {_WAITS} THEN :waitlisted_event_type ELSE :confirmed_event_type END, "
    f"CASE WHEN {_WAITS} THEN CAST(jsonb_set(CAST(:waitlisted_payload AS jsonb), "
    "'{data,waitlist_position}', to_jsonb(place.waiting_parties)) AS text) ELSE :confirmed_payload END, "
    ":event_created_at, NULL FROM place, registration) "
    "SELECT " + ", ".join(f"place.{name}" for name in TAKE_PLACE_RETURNS) + " FROM place"
)
# PostgreSQL: the first sign-ups of one activity gathered by a process (service_layer/combiner.py)
# in one statement: one turn on the activity's row and one commit for them all. `members` is a JSON
# array of them in their order (`taken`: the places taken by those up to and including each). The
# row is locked (FOR UPDATE, under the conditions of TAKE_PLACE for the largest party, and the
# revision), then each is decided as one by one they would be: confirmed while nobody waits and
# the places taken so far fit (a prefix: once one does not, none after it does), the others in the
# line in their order. The counts are summed per scope (an upsert touches a row once).
_MEMBER_COLUMNS = (
    "ord int, id text, user_id text, community_id text, party_size int, registered_by text, taken int, "
    "confirmed_event_id text, confirmed_payload text, waitlisted_event_id text, waitlisted_payload text, "
    "confirmed_counts jsonb, waitlisted_counts jsonb"
)
SIGN_UPS_TOGETHER = text(
    f"WITH members AS (SELECT * FROM jsonb_to_recordset(CAST(:members AS jsonb)) AS m({_MEMBER_COLUMNS})), "
    "locked AS (SELECT confirmed_places, waiting_parties, waitlist_counter, capacity FROM activities "
    f"WHERE id = :activity_id AND revision = :revision AND status = '{ActivityStatus.PUBLISHED}' "
    "AND announced_at IS NOT NULL AND max_party_size >= :largest_party "
    "AND (registration_opens_at IS NULL OR registration_opens_at <= :now) "
    "AND coalesce(registration_closes_at, starts_at) > :now FOR UPDATE), "
    "decided AS (SELECT m.*, (l.waiting_parties = 0 AND (l.capacity IS NULL "
    "OR l.confirmed_places + m.taken <= l.capacity)) AS fits, l.waiting_parties AS waiting_before, "
    "l.waitlist_counter AS counter_before FROM members m CROSS JOIN locked l), "
    "ranked AS (SELECT d.*, CASE WHEN NOT d.fits THEN d.counter_before + count(*) FILTER (WHERE NOT d.fits) "
    "OVER (ORDER BY d.ord) END AS seq, CASE WHEN NOT d.fits THEN d.waiting_before + count(*) "
    "FILTER (WHERE NOT d.fits) OVER (ORDER BY d.ord) END AS position FROM decided d), "
    "place AS (UPDATE activities SET confirmed_places = l.confirmed_places + t.places, "
    "waiting_parties = l.waiting_parties + t.waits, waitlist_counter = l.waitlist_counter + t.waits "
    "FROM locked l, (SELECT coalesce(sum(party_size) FILTER (WHERE fits), 0) AS places, "
    "count(*) FILTER (WHERE NOT fits) AS waits FROM decided) t WHERE activities.id = :activity_id "
    "RETURNING " + ", ".join(f"activities.{name}" for name in TAKE_PLACE_RETURNS) + "), "
    "registration AS (INSERT INTO registrations ("
    + ", ".join(_REGISTRATION_COLUMNS)
    + ") SELECT "
    + ", ".join(
        {
            "activity_id": ":activity_id",
            "status": f"CASE WHEN r.fits THEN '{RegistrationStatus.CONFIRMED}' "
            f"ELSE '{RegistrationStatus.WAITLISTED}' END",
            "waitlist_seq": "r.seq",
            "created_at": ":now",
            "updated_at": ":now",
        }.get(name, f"r.{name}")
        for name in _REGISTRATION_COLUMNS
    )
    + " FROM ranked r ORDER BY r.ord), "
    "counts AS (INSERT INTO activity_counts (scope, month, "
    + ", ".join(_COUNTED)
    + ") SELECT s.scope, :month, "
    + ", ".join(
        f"coalesce(sum(CAST((CASE WHEN r.fits THEN r.confirmed_counts ELSE r.waitlisted_counts END) ->> 'c_{n}' "
        "AS numeric)), 0)"
        for n in _COUNTED
    )
    + " FROM ranked r CROSS JOIN LATERAL (SELECT r.community_id AS scope UNION ALL SELECT :street_prefix || "
    "COALESCE((SELECT street_id FROM directory_communities WHERE community_id = r.community_id), '')) AS s "
    "GROUP BY s.scope"
    + _ADDED_TO_THE_COUNTS
    + "), event AS (INSERT INTO outbox (event_id, event_type, payload, created_at, published_at) SELECT "
    "CASE WHEN r.fits THEN r.confirmed_event_id ELSE r.waitlisted_event_id END, "
    "CASE WHEN r.fits THEN :confirmed_event_type ELSE :waitlisted_event_type END, "
    "CASE WHEN r.fits THEN r.confirmed_payload ELSE CAST(jsonb_set(CAST(r.waitlisted_payload AS jsonb), "
    "'{data,waitlist_position}', to_jsonb(r.position)) AS text) END, :event_created_at, NULL "
    "FROM ranked r ORDER BY r.ord) "
    "SELECT r.fits, r.seq, r.position, r.ord, "
    + ", ".join(f"p.{name}" for name in TAKE_PLACE_RETURNS)
    + " FROM ranked r CROSS JOIN place p ORDER BY r.ord"
)
ACTIVITY_WITH_REGISTRATION = (
    select(Activity, Registration)
    .outerjoin(
        Registration,
        and_(Registration.activity_id == Activity.id, Registration.user_id == bindparam("user_id")),
    )
    .where(Activity.id == bindparam("activity_id"))
)


@dataclass(frozen=True)
class SignUpTarget:
    """What the common first sign-up (PostgreSQL, before its one statement) reads of an activity:
    who may see it and for which communities (status, community_ids), the revision its statement
    requires, and what its event says (title, start). Not an object of the session: the sign-up
    writes by its own statement, and the general path, which needs the rest, reads the activity."""

    id: str
    community_ids: list[str]
    status: str
    revision: int
    title: str
    starts_at: datetime


# A new activity's rows (Repository.insert_new_activity), their statements built once.
# Plain str names: orjson takes no subclass of str (SQLAlchemy's quoted_name) as a key.
_ACTIVITY_COLUMNS = tuple(str(c.name) for c in tables.activities.columns)
_ACTIVITY_VALUES = operator.attrgetter(*_ACTIVITY_COLUMNS)
_ACTIVITY_INSERT = insert(tables.activities)
_LINKS_INSERT = insert(tables.activity_communities)
_REMINDER_COLUMNS = tuple(str(c.name) for c in tables.activity_reminders.columns)
_REMINDER_VALUES = operator.attrgetter(*_REMINDER_COLUMNS)
_REMINDERS_INSERT = insert(tables.activity_reminders)


# What a list of activities shows of each (Repository.activity_page): the columns of its schema,
# not the check-in code nor the bookkeeping of announcing and waiting.
LISTED_COLUMNS = tuple(
    c.name for c in tables.activities.columns if c.name not in ("checkin_code", "announced_at", "waitlist_counter")
)
_LISTED = tuple(_a[name] for name in LISTED_COLUMNS)


def _rows_of(table: Any, document: str) -> str:
    """The rows of `table` a JSON array parameter holds (each value typed by its column), none
    unless the streets the statement was made from still hold (`ok`)."""
    return f"SELECT r.* FROM ok, json_populate_recordset(NULL::{table.name}, CAST(%({document})s AS json)) AS r"


# Whether the streets a new activity's counts and event were made from (`streets`: a JSON object of
# community ids and their street ids, null for a community the directory did not know; maybe held
# from an earlier activity, `Repository.held_streets`) are still the directory's, in the statement's
# own snapshot: one row if so, none otherwise.
_STREETS_STILL_HOLD = (
    "ok AS MATERIALIZED (SELECT 1 AS ok WHERE NOT EXISTS (SELECT 1 FROM json_each_text(CAST(%(streets)s AS json)) "
    f"AS held (community_id, street_id) WHERE held.street_id IS DISTINCT FROM (SELECT c.street_id FROM "
    f"{tables.replica.communities.name} AS c WHERE c.community_id = held.community_id)))"
)
# PostgreSQL: a new activity's rows in one statement (data-modifying WITH; the foreign keys are
# checked at its end), written only if the streets they were made from still hold (`ok`; its row
# count then 1, else 0 with nothing written): what it adds to the counts (each key once: an upsert
# touches a row once), its community links, its reminders and itself, each table's rows one JSON
# document read as rows of that table. A fixed text, so psycopg prepares it once per connection; run
# by the driver itself (`driver_rowcount`: SQLAlchemy's execution and result were a tenth of a new
# activity's CPU).
_NEW_ACTIVITY = (
    f"counted AS (INSERT INTO {tables.activity_counts.name} {_rows_of(tables.activity_counts, 'counts')}"
    # Every column: a new activity adds to more than a registration's four (`_ADDED_TO_THE_COUNTS`).
    + _added_to_the_counts(counts.COLUMNS)
    + f"), kinds AS (INSERT INTO {tables.activity_kind_counts.name} {_rows_of(tables.activity_kind_counts, 'kinds')}"
    " ON CONFLICT (scope, month, kind) DO UPDATE SET held = activity_kind_counts.held + excluded.held, "
    "held_city = activity_kind_counts.held_city + excluded.held_city), "
    f"links AS (INSERT INTO {tables.activity_communities.name} {_rows_of(tables.activity_communities, 'links')}), "
    f"reminders AS (INSERT INTO {tables.activity_reminders.name} {_rows_of(tables.activity_reminders, 'reminders')}) "
    f"INSERT INTO {tables.activities.name} SELECT r.* FROM ok, "
    f"json_populate_record(NULL::{tables.activities.name}, CAST(%(activity)s AS json)) AS r"
)
# The same with the events published so far (its announcement): the outbox rows written by the
# same statement, not a round trip of their own. Only when there are events: every statement that
# inserts into the outbox notifies the relay (a statement trigger), rows or none.
_OUTBOX_COLUMNS = ("event_id", "event_type", "payload", "created_at", "published_at")
_NEW_ACTIVITY_ALONE = f"WITH {_STREETS_STILL_HOLD}, {_NEW_ACTIVITY}"
_NEW_ACTIVITY_AND_EVENTS = (
    f"WITH {_STREETS_STILL_HOLD}, events AS (INSERT INTO {tables.messaging.outbox.name} ({', '.join(_OUTBOX_COLUMNS)}) "
    "SELECT "
    + ", ".join(f"r.{name}" for name in _OUTBOX_COLUMNS)
    + f" FROM ok, json_populate_recordset(NULL::{tables.messaging.outbox.name}, CAST(%(events)s AS json)) AS r), "
    + _NEW_ACTIVITY
)
# The streets of communities as last read (`Repository.streets_of`), for the new activities that
# follow (`Repository.held_streets`): a statement written from them checks that they still hold
# and writes nothing otherwise (`_STREETS_STILL_HOLD`), and they are then forgotten. Only known
# communities' are held (the directory may learn of another any moment). Bounded: cleared when full.
_held_streets: dict[str, str] = {}
STREETS_HELD = 20_000


def _document(value: Any) -> str:
    """A JSON document of rows for the statement above: orjson, a fraction of the json module's
    time; its instants and dates still written by `_instant` (which refuses a naive one)."""
    return orjson.dumps(value, default=_instant, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _instant(value: Any) -> str:
    """A date or an instant in a JSON document (an instant with its offset: never a naive one)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime: times are stored as instants with an offset")
    return value.isoformat()  # anything else than a date or datetime: AttributeError, not serialisable


@dataclass(frozen=True)
class DriverStatement:
    """A statement as PostgreSQL's driver (psycopg) runs it: its text, with `%(name)s` parameters,
    and the values of those SQLAlchemy gave (its literals'). Its parameters are given as psycopg
    sends them: none of SQLAlchemy's processing of values on the way in or out."""

    text: str
    values: dict[str, Any]

    @classmethod
    def of(cls, statement: Any) -> DriverStatement:
        compiled = statement.compile(dialect=_PSYCOPG)
        text = str(compiled)
        if "POSTCOMPILE" in text:  # an expanding parameter: its text would depend on its values
            raise ValueError("a statement for the driver takes no expanding parameter")
        return cls(text, {name: value for name, value in compiled.params.items() if value is not None})


_PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
# Where LISTED_COLUMNS hold instants (read in UTC by their type; the driver reads them in the
# session's time zone).
_LISTED_INSTANTS = tuple(index for index, column in enumerate(_LISTED) if isinstance(column.type, UtcDateTime))
# Time zones of PostgreSQL sessions whose instants are read in UTC already.
_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"})


@dataclass(frozen=True)
class ActivityPage:
    """The statements of a list of activities meeting some conditions (their values bind
    parameters): a page of their LISTED_COLUMNS by start with their total, and the total alone;
    on PostgreSQL maybe the same with the total added up from the kept totals
    (`activity_list_totals`), when the list's conditions are theirs (`kept_page`, `kept_count`:
    run by the driver itself, `Repository.activity_page`)."""

    page: Any
    count: Any
    kept_page: DriverStatement | None = None
    kept_count: DriverStatement | None = None

    @classmethod
    def of(cls, where: Iterable[ColumnElement[bool]]) -> ActivityPage:
        conditions = list(where)
        total = select(func.count()).select_from(tables.activities).where(*conditions).scalar_subquery()
        page = (
            select(*_LISTED, total.label("total"))
            .where(*conditions)
            .order_by(_a.starts_at, _a.id)
            .offset(bindparam("page_offset"))
            .limit(bindparam("page_limit"))
        )
        return cls(page, select(total))

    @classmethod
    def of_one_community(
        cls,
        link_where: Iterable[ColumnElement[bool]],
        own_where: Iterable[ColumnElement[bool]],
        kept: tuple[Iterable[ColumnElement[bool]], Iterable[ColumnElement[bool]]] | None = None,
    ) -> ActivityPage:
        """The same for a list of one community (`link_where` names it): read from its rows of
        `activity_communities` in their index's order (community, start), each activity once (one
        row per activity and community; its start copied there), joined to the activity. `of`
        would find the community's activities among all and sort them, and count them again.
        `kept`: when the kept totals can say the list's conditions (no condition of the activity's
        own, nor of its start), those conditions on the links for PostgreSQL's driver (no expanding
        parameter: `scope.visible_in(..., array=True)`) and on the rows of `activity_list_totals`:
        the kept statements add those rows up instead of counting the community's rows each time."""
        links = tables.activity_communities
        own = list(own_where)
        joined = links.join(tables.activities, tables.activities.c.id == links.c.activity_id)

        def page_with(conditions: list[ColumnElement[bool]], total: Any) -> Any:
            return (
                select(*_LISTED, total.label("total"))
                .select_from(joined)
                .where(*conditions)
                .order_by(links.c.starts_at, links.c.activity_id)
                .offset(bindparam("page_offset"))
                .limit(bindparam("page_limit"))
            )

        conditions = [*link_where, *own]
        counted = joined if own else links  # the activity's own filters need its row; the rest do not
        total = select(func.count()).select_from(counted).where(*conditions).scalar_subquery()
        if kept is None:
            return cls(page_with(conditions, total), select(total))
        kept_link_where, kept_total_where = kept
        totals = tables.activity_list_totals
        kept_total = select(func.coalesce(func.sum(totals.c.activities), 0)).where(*kept_total_where).scalar_subquery()
        return cls(
            page_with(conditions, total),
            select(total),
            DriverStatement.of(page_with([*kept_link_where, *own], kept_total)),
            DriverStatement.of(select(kept_total)),
        )


def _driver_rows(connection: Connection, statement: DriverStatement, parameters: dict[str, Any]) -> list[tuple]:
    """The rows of `statement` run by PostgreSQL's driver on `connection`, prepared (once per
    connection): `linli_kit.db.driver_rows`, with the values SQLAlchemy gave its literals."""
    return driver_rows(connection, statement.text, {**statement.values, **parameters})


# A SignUpTarget's read, with whether the person has a registration for it already, in one statement prepared
# and run by the driver (`_driver_rows`): the ORM's loading of an entity and an outer-joined one
# cost a sixth of a sign-up's CPU, for six values and a yes or no.
SIGN_UP_TARGET = DriverStatement(
    "SELECT a.community_ids, a.status, a.revision, a.title, a.starts_at, EXISTS (SELECT 1 FROM registrations r "
    "WHERE r.activity_id = a.id AND r.user_id = %(user_id)s) FROM activities a WHERE a.id = %(activity_id)s",
    {},
)


# The sign-up statements as the driver runs them (`_driver_rows`: prepared once per connection),
# their parameters passed as they are: SQLAlchemy's execution of a text of 40 parameters, and its
# result, cost as much of a sign-up's CPU as the rest of its writing.
_SIGN_UP_ALONE = DriverStatement.of(SIGN_UP_IN_ONE_STATEMENT)
_SIGN_UPS_GROUPED = DriverStatement.of(SIGN_UPS_TOGETHER)
_WAITING_AT = TAKE_PLACE_RETURNS.index("waiting_parties")
_COUNTER_AT = TAKE_PLACE_RETURNS.index("waitlist_counter")
_STARTS_AT = TAKE_PLACE_RETURNS.index("starts_at")


def _places(values: Sequence[Any]) -> tuple[Any, ...]:
    """TAKE_PLACE_RETURNS as the driver read them, the start in UTC as its column's type reads it
    (the driver reads an instant in the session's time zone)."""
    places = list(values)
    places[_STARTS_AT] = places[_STARTS_AT].astimezone(UTC)
    return tuple(places)


@lru_cache(maxsize=4096)
def _sign_up_counts(zone: str, *values: Any) -> tuple[tuple[str, Any], ...]:
    """A first registration's amounts for the columns the sign-up statements write (_COUNTED),
    from what they depend on (the zone, the registration's counts.FIELDS in order, the activity's
    start): each sign-up made both of its outcomes' anew, and they are the same for every party
    of one size in one community. A figure in any other column would be lost, so it is refused."""
    *fields, starts_at = values
    registration = SimpleNamespace(**dict(zip(counts.FIELDS[Registration], fields, strict=True)))
    figures = counts.sign_up_parameters(zone, registration, starts_at)  # type: ignore[arg-type]
    written = tuple((f"c_{name}", figures.pop(f"c_{name}")) for name in _COUNTED)
    if any(value for name, value in figures.items() if name.startswith("c_")):
        raise ValueError(f"a sign-up's counts name a column its statements do not write: {figures}")
    return written


@dataclass(frozen=True)
class FirstSignUp:
    """A first sign-up to write: its registration as it is in either outcome, and the event of
    each (the waiting one's place in the line is set by the statement that decides it)."""

    confirmed: Registration
    waitlisted: Registration
    events: tuple[Event, Event]

    def outcomes(self) -> tuple[tuple[str, Registration, Event], tuple[str, Registration, Event]]:
        return ("confirmed", self.confirmed, self.events[0]), ("waitlisted", self.waitlisted, self.events[1])


@dataclass(frozen=True)
class SignUpOutcome:
    """What the database decided for a first sign-up, and the activity's places after it
    (TAKE_PLACE_RETURNS)."""

    waits: bool
    waitlist_seq: int | None
    waitlist_position: int | None
    places: tuple[Any, ...]


def registration_parameters(registration: Registration) -> dict[str, Any]:
    return {f"registration_{c.name}": getattr(registration, c.name) for c in tables.registrations.columns}


@dataclass(frozen=True)
class _Making:
    """How `made_as_loaded` makes objects of a mapped dataclass."""

    manager: Any
    defaults: dict[str, Any]
    factories: dict[str, Callable[[], Any]]
    names: frozenset[str]
    required: frozenset[str]


@cache
def _making(kind: type) -> _Making:
    # The mappers made whole first: their attributes know how to load only then, and nothing may
    # have asked them yet (the ORM does so at its first query, or when a statement names them).
    configure_mappers()
    fields = [f for f in dataclasses.fields(kind) if f.init]
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = {f.name: f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING}
    names = frozenset(f.name for f in fields)
    return _Making(manager_of_class(kind), defaults, factories, names, names - defaults.keys() - factories.keys())


def made_as_loaded(kind: type[T], /, **values: Any) -> T:
    """`kind(**values)` for a mapped dataclass (its defaults, its factories, its `__post_init__`),
    made as the ORM makes an object it loads (a new instance, its state and its dict at once) rather
    than through the attribute events of each field set by `__init__` (an activity's, a tenth of
    its creation's time). The object is as the ORM makes any transient one, only without a history
    of changes, which nothing asks of one never added to a session: for objects written by their
    own statements (`Repository.insert_new_activity`)."""
    making = _making(kind)
    unknown, missing = values.keys() - making.names, making.required - values.keys()
    if unknown or missing:
        raise TypeError(f"{kind.__name__}: unknown {sorted(unknown)}, missing {sorted(missing)}")
    made = making.manager.new_instance()
    state = made.__dict__
    state.update(making.defaults)
    for name, factory in making.factories.items():
        if name not in values:
            state[name] = factory()
    state.update(values)
    post_init = getattr(made, "__post_init__", None)
    if post_init is not None:
        post_init()
    return made


# Per engine, the same engine whose connections run in autocommit: made once (each call of
# `execution_options` makes another), handed out with that setting and reset when returned.
_AUTOCOMMITTING: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _autocommitting(engine: Engine) -> Engine:
    autocommitting = _AUTOCOMMITTING.get(engine)
    if autocommitting is None:
        autocommitting = _AUTOCOMMITTING[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return autocommitting


def _is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _in_utc(row: tuple) -> tuple:
    """A row of LISTED_COLUMNS (and more) read in a session's time zone, its instants in UTC."""
    values = list(row)
    for index in _LISTED_INSTANTS:
        if values[index] is not None:
            values[index] = values[index].astimezone(UTC)
    return tuple(values)


class Repository:
    outbox = Outbox(tables.messaging.outbox)

    def __init__(self, session: Session) -> None:
        self.session = session
        self._one_statement = False  # `writes_in_one_statement`
        self._autocommit: Connection | None = None  # `one_statement_follows_reads`

    # --- generic ---------------------------------------------------------------------------------
    def add(self, obj: object) -> None:
        self.session.add(obj)

    @staticmethod
    def new_written(kind: type[T], /, **values: Any) -> T:
        """A new object to be written by the repository's own statements, never by the session
        (`made_as_loaded`): `kind(**values)`, without the ORM's events."""
        return made_as_loaded(kind, **values)

    def get(self, kind: type[T], obj_id: str, *, lock: bool = False) -> T | None:
        """The object; `lock`: its row locked until commit (two callers changing it take turns)."""
        return self.session.get(kind, obj_id, with_for_update=lock or None)

    def text_search(
        self,
        index: TextIndex,
        where: Iterable[ColumnElement[bool]],
        terms: list[str],
        columns: Iterable[Any],
        date: Any,
        limit: int,
    ) -> list[Any]:
        """Rows of `index`'s table meeting `where` and holding every term (the `columns` asked
        for, and `in_title`): titles holding them all first, then by `date`, latest first."""
        source = tables.metadata.tables[index.table]
        in_title = index.in_title(source, terms)
        query = (
            select(*columns, in_title.label("in_title"))
            .where(index.matches(source, terms, self.session.get_bind().dialect.name), *where)
            .order_by(case((in_title, 1), else_=0).desc(), date.desc(), source.c[index.key])
            .limit(limit)
        )
        return list(self.session.execute(query))

    def page(
        self, kind: type[T], where: Iterable[ColumnElement[bool]], order_by: Iterable[Any], *, offset: int, limit: int
    ) -> tuple[list[T], int]:
        query = select(kind)
        for condition in where:
            query = query.where(condition)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(*order_by).offset(offset).limit(limit)).all()
        return list(rows), total

    def activity_page(
        self, statements: ActivityPage, parameters: dict[str, Any], *, offset: int, limit: int
    ) -> tuple[list[Sequence[Any]], int]:
        """A page of activities (rows of their LISTED_COLUMNS in that order, by start) and their
        total, in one statement (the total a subquery beside each row, after those columns). A page
        past the end has no row to carry it: then it is counted alone."""
        connection = self.session.connection()
        if statements.kept_page is not None and statements.kept_count is not None and _is_postgresql(connection):
            # The totals kept there; the rows read by the driver, their instants in UTC as their type reads them.
            rows = _driver_rows(
                connection, statements.kept_page, {**parameters, "page_offset": offset, "page_limit": limit}
            )
            zone = connection.connection.driver_connection.info.timezone  # type: ignore[union-attr]
            if rows and zone is not UTC and getattr(zone, "key", None) not in _UTC_ZONES:
                rows = [_in_utc(row) for row in rows]
            if rows:
                return rows, rows[0][-1]
            return [], (_driver_rows(connection, statements.kept_count, parameters)[0][0] or 0) if offset else 0
        rows = connection.execute(statements.page, {**parameters, "page_offset": offset, "page_limit": limit}).all()
        if rows:
            return rows, rows[0].total
        return [], (connection.execute(statements.count, parameters).scalar() or 0) if offset else 0

    def all(self, kind: type[T], where: Iterable[ColumnElement[bool]], order_by: Iterable[Any] = ()) -> list[T]:
        query = select(kind)
        for condition in where:
            query = query.where(condition)
        return list(self.session.scalars(query.order_by(*order_by)))

    # --- activities --------------------------------------------------------------------------------
    def streets_of(self, community_ids: Iterable[str]) -> dict[str, str | None]:
        """The street of each community, as the directory replica knows it now (None: unknown).
        Held for the new activities that follow (`held_streets`) when it knows them all."""
        streets = counts.streets_of(self.session.connection(), community_ids)
        if None not in streets.values():
            if len(_held_streets) + len(streets) > STREETS_HELD:
                _held_streets.clear()
            _held_streets.update(streets)  # type: ignore[arg-type]  # no None among them
        return streets

    def held_streets(self, community_ids: Iterable[str]) -> dict[str, str | None] | None:
        """The streets of the communities as last read in this process, not read again, for a new
        activity written in one statement (`writes_in_one_statement`), which writes nothing unless
        they still hold; None when one of them is not held, or the activity is written otherwise."""
        if not self._one_statement:
            return None
        held: dict[str, str | None] = {}
        for community_id in community_ids:
            street = _held_streets.get(community_id)
            if street is None:
                return None
            held[community_id] = street
        return held

    def writes_in_one_statement(self) -> bool:
        """Whether a new activity can be written by one statement of its own (PostgreSQL, no
        transaction begun): then what is read before it and that statement each run in autocommit,
        their own transaction, without the BEGIN and COMMIT round trips; no connection is taken
        until a statement needs one (nothing may be read at all). There is no falling back to a
        transaction in this unit of work. Asked before anything is read or written."""
        bind = self.session.get_bind()
        self._one_statement = bind.dialect.name == "postgresql" and not self.session.in_transaction()
        if self._one_statement:
            self.session.bind = _autocommitting(bind)
        return self._one_statement

    def insert_new_activity(
        self,
        activity: Activity,
        streets: dict[str, str | None],
        reminders: Iterable[ActivityReminder],
        events: Sequence[Event] = (),
    ) -> bool:
        """Write a new activity, its community links, its `reminders` and, as the counts' hook counts
        a new activity, what it adds to the statistics' counts (`streets`: its communities'), by
        Core statements: no ORM flush for a row the session would only write. `activity` stays out
        of the session (nothing changes it after). `events` (taken from the unit of work) go to the
        outbox with it. On PostgreSQL all in one statement, written only if `streets` are still
        the directory's: returns whether it was (if not, nothing was written and the streets are
        no longer held). In the session's transaction, or, written in one statement
        (`writes_in_one_statement`) with nothing read before, on a connection of its own in
        autocommit, without the session's bookkeeping. SQLite: in the session's transaction."""
        zone = self.session.info.get(counts.ZONE_KEY)
        counted = {name: getattr(activity, name) for name in counts.FIELDS[Activity]}
        row = dict(zip(_ACTIVITY_COLUMNS, _ACTIVITY_VALUES(activity), strict=True))
        links = [
            {
                "activity_id": activity.id,
                "community_id": community_id,
                "kind": activity.kind,
                "status": activity.status,
                "starts_at": activity.starts_at,
            }
            # In community order: the totals of their lists are locked in that order (migration 0017).
            for community_id in sorted(set(activity.community_ids))
        ]
        reminder_rows = [dict(zip(_REMINDER_COLUMNS, _REMINDER_VALUES(r), strict=True)) for r in reminders]
        bind = self.session.get_bind()
        if bind.dialect.name == "postgresql":
            wide, kinds = counts.new_activity_rows(ZoneInfo(zone), counted, streets) if zone else ([], [])
            documents = {"activity": row, "links": links, "reminders": reminder_rows, "counts": wide, "kinds": kinds}
            if events:
                documents["events"] = self.outbox.rows(events)
            parameters = {name: _document(value) for name, value in documents.items()}
            parameters["streets"] = _document(streets)
            statement = _NEW_ACTIVITY_AND_EVENTS if events else _NEW_ACTIVITY_ALONE
            if self._one_statement and not self.session.in_transaction():
                # In autocommit (`writes_in_one_statement`), on a pooled connection of its own.
                written = autocommit_rowcount(bind, statement, parameters) == 1
            else:
                written = driver_rowcount(self.session.connection(), statement, parameters) == 1
            if not written:
                for community_id in streets:
                    _held_streets.pop(community_id, None)
            return written
        connection = self.session.connection()
        self.outbox.add(self.session, events)
        if zone is not None:
            counts.count_new_activity(connection, ZoneInfo(zone), counted, streets)
        connection.execute(_ACTIVITY_INSERT, row)
        connection.execute(_LINKS_INSERT, links)
        if reminder_rows:
            connection.execute(_REMINDERS_INSERT, reminder_rows)
        return True

    def activity_for_update(self, activity_id: str) -> Activity | None:
        """The activity, its row locked until commit: every change of places goes through here."""
        return self.session.get(Activity, activity_id, with_for_update=True, populate_existing=True)

    # What a sign-up decides on, re-read under the lock; the rest of the row (title, communities)
    # is read before it, so the lock is held for as little work as possible.
    PLACE_COLUMNS = (
        "status",
        "capacity",
        "max_party_size",
        "confirmed_places",
        "waiting_parties",
        "waitlist_counter",
        "registration_opens_at",
        "registration_closes_at",
        "starts_at",
        "ends_at",
        "revision",
        "announced_at",
    )

    def lock_places(self, activity: Activity) -> None:
        """Lock the activity's row until commit and bring its places up to date (not marked changed)."""
        columns = [tables.activities.c[name] for name in self.PLACE_COLUMNS]
        row = self.session.execute(
            select(*columns).where(tables.activities.c.id == activity.id).with_for_update()
        ).one()
        for name, value in zip(self.PLACE_COLUMNS, row, strict=True):
            set_committed_value(activity, name, value)

    def take_place(self, activity: Activity, party_size: int, now: datetime) -> bool:
        """A sign-up's place decided and counted in one conditional UPDATE ... RETURNING, which locks
        the activity's row until commit: the lock is taken by the statement that moves the counters,
        so it is held for the insert of the registration and its event, and the commit, only.

        The statement (TAKE_PLACE) applies the rules of `Activity.register` for a first registration
        to the row as it is at that moment: published and announced, registration open at `now`, the
        party within the per-household maximum; confirmed when nobody waits and the party fits,
        otherwise the next place in the line. Returns False, changing nothing, when the row does not
        meet them (the caller then takes the general path, which says why). On True, the activity's
        places and start are brought up to date from the row (not marked changed)."""
        row = self.session.execute(
            TAKE_PLACE, {"activity_id": activity.id, "party_size": party_size, "now": now}
        ).first()
        if row is None:
            return False
        for name, value in zip(TAKE_PLACE_RETURNS, row, strict=True):
            set_committed_value(activity, name, value)
        return True

    def insert_registration(self, registration: Registration) -> None:
        """One INSERT of a new registration (no ORM flush): the unique (activity, user) constraint
        still refuses a second one."""
        self.session.execute(REGISTRATION_INSERT, registration_parameters(registration))

    def count_sign_up(self, registration: Registration, starts_at: datetime) -> None:
        """The statistics' counts of a first registration made by `take_place` and
        `insert_registration` (Core statements the flush's hook does not see): one statement."""
        zone = self.session.info.get(counts.ZONE_KEY)
        if zone is not None:
            self.session.execute(counts.sign_up_statement(zone, registration, starts_at))

    def one_statement_follows_reads(self) -> bool:
        """PostgreSQL: the sign-up statements of this repository (`sign_up_target`,
        `sign_up_in_one_statement`, `sign_up_together`) run from here on a pooled connection of
        their own in autocommit, each atomic on its own, for a use case that reads, then makes its
        whole change in one statement (no BEGIN and no COMMIT round trips; a row that statement
        locks is held only while it runs and commits), without the session's bookkeeping of a
        transaction on it (a tenth of a sign-up's CPU). Returns False, changing nothing, on SQLite
        or in a transaction already begun. `end_one_statement` gives the connection back; the
        session, untouched, then begins its own transaction for whatever follows."""
        bind = self.session.get_bind()
        if bind.dialect.name != "postgresql" or self.session.in_transaction():
            return False
        self._autocommit = _autocommitting(bind).connect()
        return True

    def end_one_statement(self) -> None:
        """The connection of `one_statement_follows_reads` back to the pool (it has no transaction)."""
        if self._autocommit is not None:
            self._autocommit.close()
            self._autocommit = None

    def _sign_up_connection(self) -> Connection:
        return self._autocommit if self._autocommit is not None else self.session.connection()

    def _sign_up_parameters(self, activity: Activity | SignUpTarget) -> dict[str, Any]:
        return {
            "activity_id": activity.id,
            "revision": activity.revision,
            "month": counts.month_of(activity.starts_at, ZoneInfo(self.session.info[counts.ZONE_KEY])),
            "street_prefix": counts.STREET,
            "confirmed_event_type": "activities.registration.confirmed",
            "waitlisted_event_type": "activities.registration.waitlisted",
        }

    def _counts_of(self, registration: Registration, starts_at: datetime) -> dict[str, Any]:
        """The registration's amounts for the columns the sign-up statements write (_COUNTED)."""
        return dict(
            _sign_up_counts(
                self.session.info[counts.ZONE_KEY],
                *(getattr(registration, name) for name in counts.FIELDS[Registration]),
                starts_at,
            )
        )

    def sign_up_in_one_statement(self, activity: Activity | SignUpTarget, sign_up: FirstSignUp) -> SignUpOutcome | None:
        """PostgreSQL, in autocommit (`one_statement_follows_reads`): a first sign-up of `activity`
        (as read: its revision) written by SIGN_UP_IN_ONE_STATEMENT, its place, registration, counts
        and event. None, with nothing written, when the activity does not take it so now."""
        confirmed = sign_up.confirmed
        parameters = self._sign_up_parameters(activity) | registration_parameters(confirmed)
        parameters.update(party_size=confirmed.party_size, now=confirmed.created_at, community=confirmed.community_id)
        for outcome, registration, event in sign_up.outcomes():
            for name, value in self._counts_of(registration, activity.starts_at).items():
                parameters[f"{outcome}_{name}"] = value
            (row,) = self.outbox.rows([event])
            parameters[f"{outcome}_event_id"] = row["event_id"]
            parameters[f"{outcome}_payload"] = row["payload"]
            parameters["event_created_at"] = row["created_at"]
        rows = _driver_rows(self._sign_up_connection(), _SIGN_UP_ALONE, parameters)
        if not rows:
            return None
        places = _places(rows[0])
        waiting = places[_WAITING_AT]
        return SignUpOutcome(
            waits=waiting > 0,
            waitlist_seq=places[_COUNTER_AT] if waiting > 0 else None,
            waitlist_position=waiting if waiting > 0 else None,
            places=places,
        )

    def sign_up_together(
        self, activity: Activity | SignUpTarget, sign_ups: list[FirstSignUp]
    ) -> list[SignUpOutcome] | None:
        """PostgreSQL, in autocommit: first sign-ups of `activity` (as read: its revision), in their
        order, written by SIGN_UPS_TOGETHER in one statement (places decided one after the other,
        as one by one they would be). Their outcomes in order, or None with nothing written when
        the activity does not take them all so now (one of them may be the cause: take them one
        by one). A second registration of someone fails the whole statement (IntegrityError)."""
        parameters = self._sign_up_parameters(activity)
        members, taken = [], 0
        for order, sign_up in enumerate(sign_ups):
            confirmed = sign_up.confirmed
            taken += confirmed.party_size
            rows = [self.outbox.rows([event])[0] for _outcome, _registration, event in sign_up.outcomes()]
            members.append(
                {
                    "ord": order,
                    "id": confirmed.id,
                    "user_id": confirmed.user_id,
                    "community_id": confirmed.community_id,
                    "party_size": confirmed.party_size,
                    "registered_by": confirmed.registered_by,
                    "taken": taken,
                    "confirmed_event_id": rows[0]["event_id"],
                    "confirmed_payload": rows[0]["payload"],
                    "waitlisted_event_id": rows[1]["event_id"],
                    "waitlisted_payload": rows[1]["payload"],
                    "confirmed_counts": self._counts_of(confirmed, activity.starts_at),
                    "waitlisted_counts": self._counts_of(sign_up.waitlisted, activity.starts_at),
                }
            )
            parameters["event_created_at"] = rows[0]["created_at"]
        parameters.update(
            members=json.dumps(members),
            largest_party=max(s.confirmed.party_size for s in sign_ups),
            now=sign_ups[0].confirmed.created_at,
        )
        rows = _driver_rows(self._sign_up_connection(), _SIGN_UPS_GROUPED, parameters)
        if not rows:
            return None
        # Each row: fits, seq, position, ord, then TAKE_PLACE_RETURNS.
        return [
            SignUpOutcome(waits=not row[0], waitlist_seq=row[1], waitlist_position=row[2], places=_places(row[4:]))
            for row in rows
        ]

    def note_places(self, activity: Activity, places: tuple[Any, ...]) -> None:
        """Bring the activity's places and start up to date from a sign-up's (TAKE_PLACE_RETURNS),
        not marked changed."""
        for name, value in zip(TAKE_PLACE_RETURNS, places, strict=True):
            set_committed_value(activity, name, value)

    def update_activity_links(self, activity: Activity) -> None:
        links = tables.activity_communities
        self.session.execute(
            update(links)
            .where(links.c.activity_id == activity.id)
            .values(kind=activity.kind, status=activity.status, starts_at=activity.starts_at)
        )

    def activity_with_registration(self, activity_id: str, user_id: str) -> tuple[Activity | None, Registration | None]:
        """The activity and this user's registration for it, if any, in one query. While the caller
        holds the activity, getting it again from the session costs no round trip."""
        row = self.session.execute(ACTIVITY_WITH_REGISTRATION, {"activity_id": activity_id, "user_id": user_id}).first()
        return (None, None) if row is None else (row[0], row[1])

    def sign_up_target(self, activity_id: str, user_id: str) -> tuple[SignUpTarget | None, bool]:
        """PostgreSQL: the activity as a first sign-up reads it (None if there is none) and whether
        this user has a registration for it, in one prepared statement (on the connection of
        `one_statement_follows_reads`: in autocommit)."""
        rows = _driver_rows(
            self._sign_up_connection(), SIGN_UP_TARGET, {"activity_id": activity_id, "user_id": user_id}
        )
        if not rows:
            return None, False
        community_ids, status, revision, title, starts_at, registered = rows[0]
        # The driver reads an instant in the session's time zone; the column's type, in UTC.
        target = SignUpTarget(activity_id, community_ids, status, revision, title, starts_at.astimezone(UTC))
        return target, registered

    def registration_of(self, activity_id: str, user_id: str) -> Registration | None:
        return self.session.scalars(
            select(Registration).where(Registration.activity_id == activity_id, Registration.user_id == user_id)
        ).first()

    def waitlist(self, activity_id: str) -> list[Registration]:
        return list(
            self.session.scalars(
                select(Registration)
                .where(
                    Registration.activity_id == activity_id,
                    Registration.status == RegistrationStatus.WAITLISTED,
                )
                .order_by(Registration.waitlist_seq)
            )
        )

    def registrant_ids(self, activity_id: str) -> list[str]:
        return list(
            self.session.scalars(
                select(Registration.user_id).where(
                    Registration.activity_id == activity_id, Registration.status != RegistrationStatus.CANCELLED
                )
            )
        )

    def confirmed_ids(self, activity_id: str) -> list[str]:
        """Who holds a place (confirmed or already checked in): the people a reminder is for."""
        return list(
            self.session.scalars(
                select(Registration.user_id)
                .where(
                    Registration.activity_id == activity_id,
                    Registration.status.in_((RegistrationStatus.CONFIRMED, RegistrationStatus.CHECKED_IN)),
                )
                .order_by(Registration.user_id)
            )
        )

    def unannounced_between(self, now: Any, moment: Any, limit: int) -> list[Activity]:
        """Published activities not yet announced that start between `now` and `moment` (one already
        started is not news any more), locked, skipping those another worker holds on PostgreSQL."""
        query = (
            select(Activity)
            .where(
                Activity.announced_at.is_(None),
                Activity.status == "published",
                Activity.starts_at > now,
                Activity.starts_at <= moment,
            )
            .order_by(Activity.starts_at, Activity.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    # --- series ------------------------------------------------------------------------------------
    def occurrence_count(self, series_id: str) -> int:
        return self.session.scalar(select(func.count()).where(Activity.series_id == series_id)) or 0

    def occurrences(self, series_id: str, *, lock: bool = False) -> list[Activity]:
        query = select(Activity).where(Activity.series_id == series_id).order_by(Activity.occurrence_date)
        if lock:
            query = query.with_for_update()
        return list(self.session.scalars(query))

    def occurrence_on(self, series_id: str, day: Any) -> Activity | None:
        return self.session.scalars(
            select(Activity).where(Activity.series_id == series_id, Activity.occurrence_date == day).with_for_update()
        ).first()

    # --- reminders ------------------------------------------------------------------------------------
    def scheduled_reminders(self, activity_id: str) -> list[ActivityReminder]:
        return list(
            self.session.scalars(
                select(ActivityReminder).where(
                    ActivityReminder.activity_id == activity_id, ActivityReminder.state == ReminderState.SCHEDULED
                )
            )
        )

    def reminder_exists(self, activity_id: str, lead_minutes: int, starts_at: Any) -> bool:
        return (
            self.session.scalar(
                select(ActivityReminder.id).where(
                    ActivityReminder.activity_id == activity_id,
                    ActivityReminder.lead_minutes == lead_minutes,
                    ActivityReminder.starts_at == starts_at,
                )
            )
            is not None
        )

    def due_reminders(self, now: Any, limit: int) -> list[ActivityReminder]:
        """Scheduled reminders come due, oldest first, locked (on PostgreSQL, skipping those another
        worker is sending: two workers never send one reminder twice)."""
        query = (
            select(ActivityReminder)
            .where(ActivityReminder.state == ReminderState.SCHEDULED, ActivityReminder.due_at <= now)
            .order_by(ActivityReminder.due_at, ActivityReminder.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    # --- bookings ------------------------------------------------------------------------------------
    def lock_provider(self, provider_key: str) -> None:
        """Hold the provider's calendar until commit, so that two bookings of one slot are decided one
        after the other. PostgreSQL: a transaction-level advisory lock on the key's hash (a collision
        only makes two providers wait for each other). SQLite: every write transaction already
        begins IMMEDIATE, holding the database's one write lock (linli_kit.db), so nothing to add."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        digest = hashlib.sha256(provider_key.encode()).digest()
        self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
        )

    def provider_busy(
        self, provider_key: str, start: Any, end: Any, *, exclude_id: str | None = None
    ) -> list[tuple[Any, Any]]:
        """The slots the provider already holds that overlap [start, end)."""
        b = tables.bookings.c
        query = select(b.slot_start, b.slot_end).where(
            b.provider_key == provider_key, b.status.in_(HOLDING_SLOT), b.slot_start < end, b.slot_end > start
        )
        if exclude_id is not None:
            query = query.where(b.id != exclude_id)
        return [(row.slot_start, row.slot_end) for row in self.session.execute(query)]

    # --- places and the directory replica ----------------------------------------------------------------
    def posts_in_box(self, min_lat: float, max_lat: float, min_lon: float, max_lon: float) -> list[ServicePost]:
        return list(
            self.session.scalars(
                select(ServicePost).where(
                    ServicePost.active.is_(True),
                    ServicePost.latitude.between(min_lat, max_lat),
                    ServicePost.longitude.between(min_lon, max_lon),
                )
            )
        )

    def compound(self, compound_id: str) -> tuple[CompoundPoint, str] | None:
        c = tables.replica.compounds.c
        row = self.session.execute(
            select(c.compound_id, c.name, c.latitude, c.longitude, c.community_id).where(c.compound_id == compound_id)
        ).first()
        if row is None:
            return None
        return CompoundPoint(row.compound_id, row.name, row.latitude, row.longitude), row.community_id

    def compounds_of(self, community_id: str) -> list[CompoundPoint]:
        c = tables.replica.compounds.c
        rows = self.session.execute(
            select(c.compound_id, c.name, c.latitude, c.longitude)
            .where(c.community_id == community_id)
            .order_by(c.name)
        )
        return [CompoundPoint(r.compound_id, r.name, r.latitude, r.longitude) for r in rows]

    def street_of(self, community_id: str) -> str | None:
        c = tables.replica.communities.c
        return self.session.scalar(select(c.street_id).where(c.community_id == community_id))

    def community_exists(self, community_id: str) -> bool:
        c = tables.replica.communities.c
        return self.session.scalar(select(c.community_id).where(c.community_id == community_id)) is not None

    # --- patrols ---------------------------------------------------------------------------------------
    def patrol_figures(self, group_id: str) -> dict[str, int]:
        r, f = tables.patrol_rounds.c, tables.patrol_findings.c
        rounds, walked = self.session.execute(
            select(func.count(r.id), func.count(r.walked_at)).where(r.group_id == group_id)
        ).one()
        findings, raised = self.session.execute(
            select(func.count(f.id), func.count(f.issue_id)).where(f.group_id == group_id)
        ).one()
        return {"rounds": rounds, "rounds_walked": walked, "findings": findings, "issues_raised": raised}
