"""Queries over the notifications tables (SQLAlchemy Core), shared by the use cases."""

from __future__ import annotations

import functools
import json
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import JSON, ColumnElement, Select, Table, any_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from linli_kit.tables import UtcDateTime
from linli_notifications.adapters.tables import (
    devices,
    follows,
    preferences,
    recipient_communities,
    recipients,
    replica,
    sms_opt_outs,
    subjects,
)
from linli_notifications.domain.access import COMMUNITY, Reader, Subject
from linli_notifications.domain.model import Recipient

CHUNK = 2000
# From this many rows on, PostgreSQL gets them through COPY into a temporary table and one
# INSERT ... SELECT ... ON CONFLICT DO NOTHING: about five times faster for a broadcast.
COPY_THRESHOLD = 200


def insert_ignore(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    *,
    encode: Callable[[Any], str] | None = None,
) -> int:
    """Insert rows, skipping those that collide on `keys`; return how many were inserted.
    `encode` (from `json_encoder`): shared by several inserts whose rows share JSON values."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        if len(rows) >= COPY_THRESHOLD:
            return _copy_insert_ignore(session, table, rows, keys, encode or json_encoder())
        return _many_insert_ignore(session, table, rows, keys, encode or json_encoder())
    inserted = 0
    for start in range(0, len(rows), CHUNK):
        # RETURNING counts what was really inserted (rowcount is not reliable for executemany).
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=keys).returning(table.c[keys[0]])
        inserted += len(session.execute(statement, list(rows[start : start + CHUNK])).all())
    return inserted


def insert_new(session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]) -> int:
    """`insert_ignore` of rows whose values are text, numbers, booleans, instants or JSON (what
    a batch of events writes to follows and reminders): on PostgreSQL one statement over arrays
    (`insert_arrays`), the first of two rows with the same `keys` kept, as row by row."""
    if not rows:
        return 0
    if session.get_bind().dialect.name != "postgresql":
        return insert_ignore(session, table, rows, keys)
    return insert_arrays(session, table, rows, conflict=f"ON CONFLICT ({', '.join(keys)}) DO NOTHING")


def upsert_newer(session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]) -> None:
    """Insert rows, or replace the stored row with the same `keys` when its `revision` is older."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = [c.name for c in table.columns if c.name in rows[0]]
        assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments} WHERE t.revision < EXCLUDED.revision"
        pick = operator.itemgetter(*keys)
        if len({pick(row) for row in rows}) == len(rows):
            insert_arrays(session, table, rows, conflict=conflict)  # one statement (see `insert_arrays`)
            return
        # A key twice: one statement would update its row twice, which PostgreSQL refuses; row by
        # row (one statement of fixed text, executed per row in one pipeline) the later one decides.
        statement_text = (
            f"INSERT INTO {table.name} AS t ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            + conflict
        )
        session.connection().exec_driver_sql(statement_text, list(_raw_lines(table, columns, rows, json_encoder())))
        return
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={c: statement.excluded[c] for c in rows[0] if c not in keys},
        where=table.c.revision < statement.excluded.revision,
    )
    session.execute(statement, list(rows))


def _recipient_columns() -> tuple[Any, ...]:
    """The columns a Recipient holds, with its opt-out and whether it has a live device (the query
    joins `sms_opt_outs` on the phone), read as plain rows: a broadcast reads 50,000 of them."""
    has_device = (
        select(devices.c.id)
        .where(devices.c.user_id == recipients.c.user_id, devices.c.pruned_at.is_(None))
        .exists()
        .label("has_device")
    )
    r = recipients.c
    return (
        r.user_id,
        r.role,
        r.locale,
        r.phone,
        r.timezone,
        r.quiet_start,
        r.quiet_end,
        r.active,
        sms_opt_outs.c.phone.isnot(None).label("opted_out"),
        has_device,
    )


def _recipients_of(rows: Iterable[Any], city_timezone: str) -> Iterator[Recipient]:
    for user_id, role, locale, phone, timezone, quiet_start, quiet_end, active, opted_out, device in rows:
        yield Recipient(
            user_id=user_id,
            role=role,
            locale=locale,
            phone=phone,
            timezone=timezone or city_timezone,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            active=active,
            sms_opted_out=bool(opted_out),
            has_devices=bool(device),
        )


def load_recipients(session: Session, user_ids: Iterable[str], city_timezone: str) -> dict[str, Recipient]:
    """Recipients by id, with their opt-out and whether they have a live device: one query per
    2,000 (a batch of events looks its recipients up once, as a broadcast chunk does)."""
    ids = sorted(set(user_ids))
    found: dict[str, Recipient] = {}
    statement = _recipients_among(dialect_of(session))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(statement, {IDS: ids_value(session, ids[start : start + CHUNK])}).all()
        found.update((recipient.user_id, recipient) for recipient in _recipients_of(rows, city_timezone))
    return found


@functools.cache
def _recipients_among(dialect_name: str) -> Select:
    r = recipients.c
    return (
        select(*_recipient_columns())
        .outerjoin(sms_opt_outs, sms_opt_outs.c.phone == r.phone)
        .where(among_given(dialect_name, r.user_id))
    )


def community_recipients(
    session: Session, community_id: str, *, after: str | None, limit: int, city_timezone: str
) -> list[Recipient]:
    """The next `limit` members of a community by user id, with opt-out and devices, in one query.

    The members are taken first, in the order of the community's key (community, user) and no
    further than `limit`: joined before being cut off, the planner may join every member left and
    sort them all for each chunk (it did on tables not yet analysed: 0.5 s a chunk of 5,000 of a
    community of 50,000, ten times the rest of the chunk's planning)."""
    chunk = select(recipient_communities.c.user_id).where(recipient_communities.c.community_id == community_id)
    if after:
        chunk = chunk.where(recipient_communities.c.user_id > after)
    chunk = chunk.order_by(recipient_communities.c.user_id).limit(limit).subquery("chunk")
    r = recipients.c
    query = (
        select(*_recipient_columns())
        .select_from(chunk)
        .join(recipients, r.user_id == chunk.c.user_id)
        .outerjoin(sms_opt_outs, sms_opt_outs.c.phone == r.phone)
        .order_by(chunk.c.user_id)
    )
    return list(_recipients_of(session.execute(query), city_timezone))


def community_preferences(
    session: Session, community_id: str, first: str, last: str
) -> dict[str, dict[tuple[str, str], bool]]:
    """Preferences of the community's members whose ids lie in [first, last]."""
    rows = session.execute(
        select(preferences)
        .join(recipient_communities, recipient_communities.c.user_id == preferences.c.user_id)
        .where(
            recipient_communities.c.community_id == community_id,
            preferences.c.user_id >= first,
            preferences.c.user_id <= last,
        )
    ).mappings()
    result: dict[str, dict[tuple[str, str], bool]] = {}
    for r in rows:
        result.setdefault(r["user_id"], {})[(r["category"], r["channel"])] = r["enabled"]
    return result


def load_preferences(session: Session, user_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], bool]]:
    ids = sorted(set(user_ids))
    result: dict[str, dict[tuple[str, str], bool]] = {}
    statement = _preferences_among(dialect_of(session))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(statement, {IDS: ids_value(session, ids[start : start + CHUNK])}).mappings().all()
        for r in rows:
            result.setdefault(r["user_id"], {})[(r["category"], r["channel"])] = r["enabled"]
    return result


@functools.cache
def _preferences_among(dialect_name: str) -> Select:
    return select(preferences).where(among_given(dialect_name, preferences.c.user_id))


def street_lookup(session: Session) -> Callable[[str], str | None]:
    """community id -> its street id, from the directory replica, read through `session`."""

    def street_of(community_id: str) -> str | None:
        return session.scalar(
            select(replica.communities.c.street_id).where(replica.communities.c.community_id == community_id)
        )

    return street_of


def members_with_role(session: Session, community_ids: Iterable[str], roles: Iterable[str]) -> list[str]:
    return list(
        session.scalars(
            select(recipient_communities.c.user_id)
            .where(
                recipient_communities.c.community_id.in_(list(community_ids)),
                recipient_communities.c.role.in_(list(roles)),
            )
            .distinct()
        )
    )


def members_with_role_by_community(
    session: Session, community_ids: Sequence[str], roles: Iterable[str]
) -> dict[str, list[str]]:
    """`members_with_role` of each community, with one statement (every community in the answer)."""
    found: dict[str, list[str]] = {c: [] for c in community_ids}
    if not community_ids:
        return found
    statement = _members_with_role_among(dialect_of(session), tuple(roles))
    for community_id, user_id in session.execute(statement, {IDS: ids_value(session, community_ids)}).all():
        found[community_id].append(user_id)
    return found


@functools.cache
def _members_with_role_among(dialect_name: str, roles: tuple[str, ...]) -> Select:
    rc = recipient_communities.c
    return (
        select(rc.community_id, rc.user_id)
        .where(among_given(dialect_name, rc.community_id), rc.role.in_(roles))
        .distinct()
    )


def officials_of_street(session: Session, street_id: str | None) -> list[str]:
    if not street_id:
        return []
    return list(
        session.scalars(
            select(recipients.c.user_id).where(
                recipients.c.street_id == street_id,
                recipients.c.role == "street_official",
                recipients.c.active.is_(True),
            )
        )
    )


def users_with_role(session: Session, role: str) -> list[str]:
    return list(session.scalars(select(recipients.c.user_id).where(recipients.c.role == role)))


def followers(session: Session, target_type: str, target_ids: Iterable[str]) -> list[str]:
    ids = [str(t) for t in target_ids]
    if not ids:
        return []
    return list(
        session.scalars(
            select(follows.c.user_id)
            .where(follows.c.target_type == target_type, follows.c.target_id.in_(ids))
            .distinct()
        )
    )


def load_readers(session: Session, user_ids: Iterable[str]) -> dict[str, Reader]:
    """What decides what each person may read: role, communities, street, organisation. One query
    per 2,000 people: each person joined to their communities (a row per community, one with none
    for a person of none), not the people and then their communities in two round trips."""
    ids = sorted(set(user_ids))
    found: dict[str, Reader] = {}
    statement = _readers_among(dialect_of(session))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(statement, {IDS: ids_value(session, ids[start : start + CHUNK])}).all()
        people: dict[str, tuple] = {}
        communities: dict[str, set[str]] = {}
        for user_id, role, street_id, organisation_id, active, community_id in rows:
            people[user_id] = (role, street_id, organisation_id, active)
            if community_id is not None:
                communities.setdefault(user_id, set()).add(community_id)
        for user_id, (role, street_id, organisation_id, active) in people.items():
            found[user_id] = Reader(
                user_id=user_id,
                role=role,
                community_ids=frozenset(communities.get(user_id, ())),
                street_id=street_id,
                organisation_id=organisation_id,
                active=bool(active),
            )
    return found


@functools.cache
def _readers_among(dialect_name: str) -> Select:
    r, rc = recipients.c, recipient_communities.c
    return (
        select(r.user_id, r.role, r.street_id, r.organisation_id, r.active, rc.community_id)
        .outerjoin(recipient_communities, rc.user_id == r.user_id)
        .where(among_given(dialect_name, r.user_id))
    )


# What deciding who may read a subject takes from its row and its community's.
_SUBJECT_COLUMNS = (
    subjects.c.subject_id,
    subjects.c.community_id,
    subjects.c.visibility,
    subjects.c.reporter_id,
    subjects.c.member_ids,
    subjects.c.assignee_id,
    replica.communities.c.street_id,
)


def load_subjects(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Subject]:
    """What is known of each (subject_type, subject_id) for deciding who may read it; unknown
    subjects are missing from the answer."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], Subject] = {}
    for subject_type in sorted({t for t, _ in wanted}):
        ids = [i for t, i in wanted if t == subject_type]
        rows = session.execute(
            _subjects_among(dialect_of(session)), {"subject_type": subject_type, IDS: ids_value(session, ids)}
        ).all()
        for r in rows:
            found[(subject_type, r.subject_id)] = _subject(subject_type, r)
    return found


@functools.cache
def _subjects_among(dialect_name: str) -> Select:
    return (
        select(*_SUBJECT_COLUMNS)
        .outerjoin(replica.communities, replica.communities.c.community_id == subjects.c.community_id)
        .where(subjects.c.subject_type == bindparam("subject_type"), among_given(dialect_name, subjects.c.subject_id))
    )


# One subject (`load_subject`), built once: a statement used again keeps its cache key.
_ONE_SUBJECT = (
    select(*_SUBJECT_COLUMNS)
    .outerjoin(replica.communities, replica.communities.c.community_id == subjects.c.community_id)
    .where(subjects.c.subject_type == bindparam("subject_type"), subjects.c.subject_id == bindparam("subject_id"))
)


def load_subject(session: Session, subject_type: str, subject_id: str) -> Subject | None:
    """`load_subjects` of one subject (a resident following an issue): one prepared statement."""
    row = session.execute(_ONE_SUBJECT, {"subject_type": subject_type, "subject_id": subject_id}).first()
    return None if row is None else _subject(subject_type, row)


def _subject(subject_type: str, r: Any) -> Subject:
    return Subject(
        subject_type=subject_type,
        subject_id=r.subject_id,
        community_id=r.community_id,
        street_id=r.street_id,
        visibility=r.visibility or COMMUNITY,
        reporter_id=r.reporter_id,
        member_ids=frozenset(r.member_ids or ()),
        assignee_id=r.assignee_id,
    )


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that must be new (a collision fails, as a plain INSERT does), every row with the
    columns of the first. On PostgreSQL one statement over arrays (`insert_arrays`)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), list(rows))
        return
    insert_arrays(session, table, rows)


# --- many rows as one statement over arrays (PostgreSQL) ------------------------------------------
# A batch of events writes a few hundred rows to each of its small tables (snapshots, follows, what
# people know, reminders). One single-row statement per row in a pipeline cost psycopg some 40 us of
# Python per row (dumping, pipeline results) and PostgreSQL an executor start per row; here each
# column goes as one array literal (`text_array`) and the rows are made by `unnest`: a statement of
# fixed text per table and columns (prepared by psycopg), a join per column in Python.
def _column_arrays(
    table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]], encode: Callable[[Any], str]
) -> dict[str, str]:
    """Each column's values as the text literal of an array of its type: JSON encoded (None as a
    JSON null, as `_raw_lines` writes it), instants with their offset (a naive one is refused, as
    `UtcDateTime` refuses it), booleans as t/f."""
    arrays: dict[str, str] = {}
    for i, name in enumerate(columns):
        column_type = table.c[name].type
        values: Sequence[Any] = [row[name] for row in rows]
        if isinstance(column_type, JSON):
            values = [encode(v) for v in values]
        elif isinstance(column_type, UtcDateTime):
            for v in values:
                if v is not None and v.tzinfo is None:
                    raise ValueError("naive datetime: times are stored as instants with an offset")
            values = [None if v is None else v.isoformat() for v in values]
        elif not _TEXTUAL.issuperset(map(type, values)):
            values = [None if v is None else ("t" if v else "f") if type(v) is bool else str(v) for v in values]
        arrays[f"a{i}"] = text_array(values)
    return arrays


# What `text_array` takes as it is (checked by type over a column in C, not by a loop here).
_TEXTUAL = frozenset({str, type(None)})


def _unnest(table: Table, columns: Sequence[str]) -> str:
    """`unnest(CAST(%(a0)s AS type[]), ...) AS u(columns)` of `columns`, for `_column_arrays`."""
    dialect = postgresql.dialect()
    casts = ", ".join(
        f"CAST(%(a{i})s AS {_COLLATION.sub('', table.c[name].type.compile(dialect=dialect))}[])"
        for i, name in enumerate(columns)
    )
    return f"unnest({casts}) AS u({', '.join(columns)})"


# An array's element type takes no COLLATE (`VARCHAR(36) COLLATE "C"[]` is a syntax error); the
# values get the column's collation as they are assigned to it (tables.py, `ascii_key`).
_COLLATION = re.compile(r' COLLATE "[^"]*"')


_ARRAY_STATEMENTS: dict[tuple, str] = {}


def insert_arrays(session: Session, table: Table, rows: Sequence[dict[str, Any]], *, conflict: str = "") -> int:
    """`INSERT ... SELECT` the rows (each with the first row's columns) from arrays, in their order,
    with `conflict` (an ON CONFLICT clause) at its end; PostgreSQL only. The number inserted."""
    if not rows:
        return 0
    columns = [c.name for c in table.columns if c.name in rows[0]]
    key = ("insert", table.name, tuple(columns), conflict)
    statement = _ARRAY_STATEMENTS.get(key)
    if statement is None:
        names = ", ".join(columns)
        statement = _ARRAY_STATEMENTS[key] = (
            f"INSERT INTO {table.name} AS t ({names}) SELECT {names} FROM {_unnest(table, columns)} {conflict}"
        ).strip()
    arrays = _column_arrays(table, columns, rows, json_encoder())
    return max(session.connection().exec_driver_sql(statement, arrays).rowcount, 0)


def update_arrays(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str], fixed: dict[str, str]
) -> None:
    """Set each row's other columns on the row of `table` whose `keys` match it, and whose `fixed`
    columns have these values, with one `UPDATE ... FROM unnest(...)`; PostgreSQL only. A key must
    not repeat among the rows (one row of the table is updated once by a statement)."""
    if not rows:
        return
    columns = list(rows[0])
    key = ("update", table.name, tuple(columns), tuple(keys), tuple(sorted(fixed.items())))
    statement = _ARRAY_STATEMENTS.get(key)
    if statement is None:
        assignments = ", ".join(f"{c} = u.{c}" for c in columns if c not in keys)
        matches = " AND ".join([f"t.{k} = u.{k}" for k in keys] + [f"t.{c} = %(f_{c})s" for c in sorted(fixed)])
        statement = _ARRAY_STATEMENTS[key] = (
            f"UPDATE {table.name} AS t SET {assignments} FROM {_unnest(table, columns)} WHERE {matches}"
        )
    arrays: dict[str, Any] = _column_arrays(table, columns, rows, json_encoder())
    arrays |= {f"f_{c}": v for c, v in fixed.items()}
    session.connection().exec_driver_sql(statement, arrays)


def _many_insert_ignore(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: list[str], encode: Callable[[Any], str]
) -> int:
    """A few rows: one single-row statement of fixed text, executed for each row in one pipeline
    (psycopg's executemany), its rowcount the sum of the rows inserted. The ORM's multi-row VALUES
    statement would be new text for every count of rows, thousands of placeholders that psycopg
    splits anew each time. Values go as they are, as they do through COPY (JSON as its text,
    which PostgreSQL reads as the column's type)."""
    columns = [c.name for c in table.columns if c.name in rows[0]]
    lines = list(_raw_lines(table, columns, rows, encode))
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    )
    # Through SQLAlchemy's connection (the driver's executemany): its errors come as the ORM's do,
    # which the consumer reads to tell a database outage from a failed batch.
    return max(session.connection().exec_driver_sql(statement, lines).rowcount, 0)


def _raw_lines(
    table: Table, columns: list[str], rows: Sequence[dict[str, Any]], encode: Callable[[Any], str]
) -> Iterable[tuple[Any, ...]]:
    """Each row's values in `columns` order as the driver takes them past the ORM's types: JSON
    encoded, and instants checked as `UtcDateTime` checks them (a naive one is refused)."""
    values = operator.itemgetter(*columns)
    encoded = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    instants = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, UtcDateTime)]
    for row in rows:
        line = list(values(row)) if len(columns) > 1 else [row[columns[0]]]
        for i in encoded:
            line[i] = encode(line[i])
        for i in instants:
            if line[i] is not None and line[i].tzinfo is None:
                raise ValueError("naive datetime: times are stored as instants with an offset")
        yield tuple(line)


def _copy_insert_ignore(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: list[str], encode: Callable[[Any], str]
) -> int:
    columns = [c.name for c in table.columns if c.name in rows[0]]
    # One staging table per table and connection, kept: made and dropped for every call, it cost
    # 2 ms of catalog writes each time (several times per batch of events). Emptied at each commit
    # (only by a transaction that used it) and before each use (twice in one transaction); made
    # again after a rollback of the transaction that made it. One round trip for both.
    staging = f"staging_{table.name}"
    names = ", ".join(columns)
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS; "
            f"DELETE FROM {staging}"
        )
        with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            for line in _raw_lines(table, columns, rows, encode):
                copy.write_row(line)
        cursor.execute(
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
            f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
        )
        inserted = cursor.rowcount
    return max(inserted, 0)


def _json_text() -> Callable[[Any], str]:
    """`json.dumps(value, ensure_ascii=False)`, its C encoder made once: `dumps`, and even
    `JSONEncoder.encode`, make one for every call, as much work as encoding a template's parameters
    (a batch of events encodes two values per group of recipients, and a row's JSON columns). Made
    without the circular-reference check, whose memo a failed call would leave holding ids: what is
    encoded here is parsed JSON and values built from it, never a cycle (one would end in a
    RecursionError, not a ValueError)."""
    if c_make_encoder is None:  # no C accelerator: the pure Python encoder, made per call as before
        return json.JSONEncoder(ensure_ascii=False).encode
    options = json.JSONEncoder(ensure_ascii=False)
    encoder = c_make_encoder(
        None,
        options.default,
        encode_basestring,
        None,
        options.key_separator,
        options.item_separator,
        options.sort_keys,
        options.skipkeys,
        options.allow_nan,
    )

    def to_json(value: Any) -> str:
        return "".join(encoder(value, 0))

    return to_json


to_json = _json_text()


def json_encoder() -> Callable[[Any], str]:
    """json.dumps for one COPY: rows of one plan share their parameters object, encoded once (by
    identity, so only while the rows, and with them those objects, are alive)."""
    done: dict[int, tuple[Any, str]] = {}

    def encode(value: Any) -> str:
        if value is None:
            return "null"  # as json.dumps says it (a JSON null, as the ORM's insert writes it)
        if type(value) is list and not value:
            return "[]"  # every delivery's own empty `providers_tried`
        known = done.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        text = to_json(value)
        done[id(value)] = (value, text)  # holding the value keeps its id from being reused
        return text

    return encode


def bulk_update(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Set each row's columns on the row whose `key` matches (one statement on PostgreSQL)."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        statement = (
            table.update()
            .where(table.c[key] == bindparam("_key"))
            .values({c: bindparam(c) for c in columns})
            .execution_options(synchronize_session=False)
        )
        session.execute(statement, [{**{c: r[c] for c in columns}, "_key": r[key]} for r in rows])
        return
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    staging = f"staging_{table.name}_{uuid.uuid4().hex[:8]}"
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor:
        # CREATE ... AS ... WITH NO DATA copies the column types but not the NOT NULL constraints.
        cursor.execute(
            f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {key}, {', '.join(columns)} "
            f"FROM {table.name} WITH NO DATA"
        )
        encode = json_encoder()
        with cursor.copy(f"COPY {staging} ({key}, {', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[key]] + [encode(row[c]) if c in as_json else row[c] for c in columns])
        assignments = ", ".join(f"{c} = s.{c}" for c in columns)
        cursor.execute(f"UPDATE {table.name} AS t SET {assignments} FROM {staging} AS s WHERE t.{key} = s.{key}")
        cursor.execute(f"DROP TABLE {staging}")


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows (COPY on PostgreSQL when there are many)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        session.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    driver = session.connection().connection.driver_connection
    encode = json_encoder()
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([encode(row[c]) if c in as_json else row[c] for c in columns])


def among(session: Session, column: ColumnElement, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL: thousands of ids cost one bound
    value, not thousands of placeholders to render and parse. Text values go as one array literal
    (`text_array`)."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        if all(type(v) is str for v in values):
            return column == any_(as_array(text_array(values), column.type))
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type), unique=True))
    return column.in_(values)


def among_rows(session: Session, column: ColumnElement, values: Sequence[str]) -> ColumnElement[bool]:
    """`among` of ids, read as rows on PostgreSQL (`IN (SELECT unnest(...))`), not as `= ANY(array)`,
    for the look-ups of a batch of events. Once psycopg prepares a statement (its fifth run)
    PostgreSQL may keep a generic plan, and where that plan scans (tables not analysed since a
    burst began: a batch's follows of its issues, its recipients) `= ANY` compares every row with
    every element of the parameter array, never hashed: 250 issues against 5,000 follows cost 30 ms
    a batch, growing with the table. As a semi-join the array is hashed once (or drives an index
    when the planner knows the table)."""
    if session.get_bind().dialect.name == "postgresql":
        return column.in_(select(func.unnest(as_array(text_array(values), column.type))))
    return column.in_(values)


# --- look-ups built once ---------------------------------------------------------------------------
# A batch of events runs a dozen look-ups by ids. Building a Core statement and its cache key anew
# for each cost 0.1 to 0.4 ms of Python, more than running it: those statements are built once per
# dialect (`functools.cache`), the ids given when they run as the parameter `IDS`.
IDS = "ids"


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def among_given(dialect_name: str, column: ColumnElement, key: str = IDS) -> ColumnElement[bool]:
    """`among_rows` of values given when the statement runs, as the parameter `key` (`ids_value`)."""
    if dialect_name == "postgresql":
        return column.in_(select(func.unnest(as_array("", column.type, key))))
    return column.in_(bindparam(key, expanding=True))


def ids_value(session: Session, values: Sequence[str]) -> str | list[str]:
    """The parameter of `among_given` for `values` (ids: text)."""
    return text_array(values) if dialect_of(session) == "postgresql" else list(values)


def text_array(values: Sequence[str | None]) -> str:
    """PostgreSQL's literal of a text array (`{"a","b",NULL}`), for a parameter cast to an array
    type: psycopg dumps a list element by element in Python (9 ms for 5,000 ids, a broadcast
    chunk's every array and a delivery round's every batch of keys), this is one join."""
    if not values:
        return "{}"
    if None not in values:
        # Joined on a character no stored text holds (PostgreSQL refuses NUL in text), escaped in one
        # pass, then split into elements: titles, bodies and parameters quote their own quotes.
        plain = "\0".join(values)  # type: ignore[arg-type]
        if plain.count("\0") == len(values) - 1:
            if '"' in plain or "\\" in plain:
                plain = plain.replace("\\", "\\\\").replace('"', '\\"')
            return '{"' + plain.replace("\0", '","') + '"}'
        return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"
    # With NULLs (a batch's reasons, finish times): each element quoted as it is, unless one needs
    # escaping (checked once, on them all joined).
    plain = "".join([v for v in values if v is not None])  # type: ignore[misc]
    if '"' in plain or "\\" in plain:
        return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"
    return "{" + ",".join("NULL" if v is None else f'"{v}"' for v in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_array(literal: str, element_type: Any, key: str | None = None) -> ColumnElement:
    """A `text_array` literal cast to an array of `element_type`. Bound untyped (psycopg sends a
    str as `unknown`), so PostgreSQL reads the parameter as the array itself when it binds it.
    Bound as text, the cast would be a coercion of a text value, evaluated again for every row a
    sequential scan reads: 5,000 ids parsed 50,000 times."""
    return cast(bindparam(key, literal, type_=NullType(), unique=key is None), postgresql.ARRAY(element_type))


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | dict) else value


def _alike(rows: Sequence[dict[str, Any]], vary: str) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Rows grouped by every value but `vary`'s (first-seen order)."""
    columns = [c for c in rows[0] if c != vary]
    values = operator.itemgetter(*columns, vary)  # a tuple even for one column; `vary` is cut off below
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = values(row)[:-1]
        try:
            group = groups.get(key)
        except TypeError:  # a list or dict among the values
            key = tuple(_hashable(v) for v in key)
            group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    return columns, list(groups.values())


def update_grouped(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Like `bulk_update`, but rows that set the same values (a provider batch answered alike) share
    one `UPDATE ... WHERE key = ANY(keys)`, all sent in one pipeline on PostgreSQL."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        bulk_update(session, table, rows, key)
        return
    columns, groups = _alike(rows, key)
    singles = [g[0] for g in groups if len(g) == 1]
    shared = [g for g in groups if len(g) > 1]
    if shared:
        statement = (
            table.update()
            .where(table.c[key] == any_(as_array("", table.c[key].type, "_keys")))
            .values({c: bindparam(c) for c in columns})
            .execution_options(synchronize_session=False)
        )
        session.execute(
            statement, [{**{c: g[0][c] for c in columns}, "_keys": text_array([r[key] for r in g])} for g in shared]
        )
    bulk_update(session, table, singles, key)


def insert_grouped(session: Session, table: Table, rows: Sequence[dict[str, Any]], vary: str) -> None:
    """Like `bulk_insert`, but rows alike but for `vary` (the attempts of one provider call) go in as
    one `INSERT ... SELECT unnest(values), ...` each on PostgreSQL: no per-row work on either side."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        bulk_insert(session, table, rows)
        return
    columns, groups = _alike(rows, vary)
    singles = [g[0] for g in groups if len(g) == 1]
    shared = [g for g in groups if len(g) > 1]
    if shared:
        # Text values (a delivery's id) as one array literal (`text_array`).
        textual = all(type(r[vary]) is str for g in shared for r in g)
        values = (
            as_array("", table.c[vary].type, "_values")
            if textual
            else bindparam("_values", type_=postgresql.ARRAY(table.c[vary].type))
        )
        statement = table.insert().from_select(
            [vary, *columns],
            select(func.unnest(values), *[cast(bindparam(c, type_=table.c[c].type), table.c[c].type) for c in columns]),
        )
        pack = text_array if textual else list
        session.execute(
            statement, [{**{c: g[0][c] for c in columns}, "_values": pack([r[vary] for r in g])} for g in shared]
        )
    bulk_insert(session, table, singles)


# --- writes prepared before their transaction ---------------------------------------------------
# On SQLite a write transaction holds the database's one write lock from its first statement to its
# commit, and every other writer waits meanwhile. Turning thousands of rows into driver values
# (JSON, times, booleans) is slow Python work: it is done here before the transaction begins, so
# the transaction only hands ready values to the driver. PostgreSQL has row locks; there the rows
# go as they are, through COPY or grouped statements.
Write = Callable[[Session], None]


def prepare_insert(dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]]) -> Write:
    """`bulk_insert` of `rows`, converted now and written when the returned function is called."""
    if not rows or dialect.name != "sqlite":
        return lambda session: bulk_insert(session, table, rows)
    statement = table.insert().compile(dialect=dialect, column_keys=list(rows[0]))
    return _prepared(str(statement), statement.positiontup, {c.name: c.type for c in table.columns}, rows, dialect)


def prepare_update(dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]], key: str) -> Write:
    """`update_grouped` of `rows` (each sets its columns on the row whose `key` matches), converted
    now and written when the returned function is called."""
    if not rows or dialect.name != "sqlite":
        return lambda session: update_grouped(session, table, rows, key)
    columns = [c for c in rows[0] if c != key]
    statement = (
        table.update()
        .where(table.c[key] == bindparam("_key"))
        .values({c: bindparam(c) for c in columns})
        .compile(dialect=dialect)
    )
    types = {c.name: c.type for c in table.columns} | {"_key": table.c[key].type}
    keyed = [{**row, "_key": row[key]} for row in rows]
    return _prepared(str(statement), statement.positiontup, types, keyed, dialect)


def _prepared(
    sql: str, names: Sequence[str], types: dict[str, Any], rows: Sequence[dict[str, Any]], dialect: Dialect
) -> Write:
    convert = []
    for name in names:
        processor = types[name].bind_processor(dialect)
        if isinstance(types[name], JSON):
            processor = _once_per_object(processor)  # rows of one plan share their parameters object
        convert.append((name, processor))
    values = [tuple(p(row[n]) if p else row[n] for n, p in convert) for row in rows]

    def write(session: Session) -> None:
        session.connection().exec_driver_sql(sql, values)

    return write


def _once_per_object(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    done: dict[int, tuple[Any, Any]] = {}

    def convert(value: Any) -> Any:
        known = done.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        converted = processor(value) if processor else value
        done[id(value)] = (value, converted)  # holding the value keeps its id from being reused
        return converted

    return convert
