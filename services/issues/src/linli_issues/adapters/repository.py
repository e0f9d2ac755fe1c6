"""Issues, their timelines, supporters, meetings and photos in the database."""

from __future__ import annotations

import operator
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Select, and_, asc, bindparam, case, desc, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import manager_of_class

from linli_issues.adapters import (
    consultation_counts,  # its hook keeps the consultations held
    counters,  # its hook keeps the statistics' counts
)
from linli_issues.adapters.tables import categories as categories_table
from linli_issues.adapters.tables import (
    issue_counts_state,
    issue_decisions,
    issue_meetings,
    issue_status_counts,
    issue_updates,
    messaging,
    photos,
    replica,
    supporters,
)
from linli_issues.adapters.tables import issues as issues_table
from linli_issues.domain import privacy
from linli_issues.domain.model import DONE_STATUSES, URGENCIES, Category, Issue, IssueSummary, TimelineEntry
from linli_kit.db import autocommit_rowcount, driver_rowcount
from linli_kit.events.waker import DEFER_NOTIFY_SQL, waker_for
from linli_kit.search import TextIndex

# What a search reads of an issue: its title and description (migration 0010 made the index).
ISSUE_TEXT = TextIndex("issues", "id", ("title", "description"))


@dataclass(frozen=True)
class Scope:
    """Which issues a caller may see, as a filter: None for a field means no limit on it.

    `private_reader`: the caller reads the private issues of the scope only when they reported or
    support them (residents, API clients); None: every issue of the scope (staff, assignees).
    """

    everything: bool = False
    community_ids: tuple[str, ...] | None = None
    street_id: str | None = None
    assignee_id: str | None = None
    private_reader: str | None = None
    # The private issues of the scope assigned to this organisation are read too (an owners'
    # committee member reads what the committee handles).
    private_assignee: str | None = None

    def clause(self) -> Any:
        return _scope_condition(self.shape(), self.parameters())

    def shape(self) -> tuple[bool, ...]:
        """Which limits apply (the form of `clause`, whatever their values)."""
        return (
            self.everything,
            self.community_ids is not None,
            self.street_id is not None,
            self.assignee_id is not None,
            self.private_reader is not None,
            bool(self.private_assignee),
        )

    def parameters(self) -> dict[str, Any]:
        return {
            "scope_communities": self.community_ids,
            "scope_street": self.street_id,
            "scope_assignee": self.assignee_id,
            "scope_reader": self.private_reader,
            "scope_private_assignee": self.private_assignee,
        }


def _scope_condition(shape: tuple[bool, ...], values: dict[str, Any]) -> Any:
    """The condition of a scope of this `shape`; `values` by name: the scope's own (literal values)
    or bind parameters (a statement built once per shape, run with each caller's values)."""
    everything, communities, street, assignee, reader, private_assignee = shape
    where = None
    if not everything:
        parts = []
        if communities:
            parts.append(Issue.community_id.in_(values["scope_communities"]))
        if street:
            parts.append(Issue.community_id.in_(communities_of_street_query(values["scope_street"])))
        if assignee:
            parts.append(Issue.assignee_id == values["scope_assignee"])
        where = or_(*parts) if parts else Issue.id.is_(None)
    if reader:
        readable = or_(
            ~is_private_clause(),
            Issue.reporter_id == values["scope_reader"],
            Issue.id.in_(select(supporters.c.issue_id).where(supporters.c.user_id == values["scope_reader"])),
            *([Issue.assignee_id == values["scope_private_assignee"]] if private_assignee else []),
        )
        where = readable if where is None else and_(where, readable)
    return where


def is_private_clause() -> Any:
    """The domain's private visibility (domain/privacy.py) as SQL."""
    return or_(Issue.publication == privacy.PRIVATE, Issue.anonymous.is_(True), Issue.marked_private.is_(True))


def is_published_clause() -> Any:
    """The domain's public visibility as SQL: what Open311 publishes."""
    return and_(Issue.publication == privacy.PUBLIC, Issue.anonymous.is_(False), Issue.marked_private.is_(False))


def communities_of_street_query(street_id: str) -> Select:
    return select(replica.communities.c.community_id).where(replica.communities.c.street_id == street_id)


# Urgency sorts by its rank, not its name; priority is the domain's: urgency first, then support.
URGENCY_RANK = case({u: n for n, u in enumerate(URGENCIES)}, value=Issue.urgency, else_=0)
SORTS = {
    "created_at": Issue.created_at,
    "updated_at": Issue.updated_at,
    "due_at": Issue.due_at,
    "supporter_count": Issue.supporter_count,
    "urgency": URGENCY_RANK,
    "priority": URGENCY_RANK * 1000 + Issue.supporter_count,
    "consultation_count": Issue.consultation_count,
}


# Sorts whose column may be NULL (NULLs last either way).
NULLABLE_SORTS = frozenset({"updated_at", "due_at"})
# What an `IssueSummary` is read from, in its fields' order.
SUMMARY_COLUMNS = [issues_table.c[f.name] for f in fields(IssueSummary)]


# The filters a list page takes, in the order their conditions are written.
PAGE_FILTERS = (
    "community_id", "status", "tier", "category", "urgency", "assignee_type", "assignee_id", "street_id",
    "reporter_id", "published", "overdue", "q", "created_from", "created_to",
)  # fmt: skip
_EQUALITY_FILTERS = frozenset(PAGE_FILTERS[:7])


def _counted_per_status(scope: Scope, given: dict[str, Any]) -> bool:
    """Whether the issues a page's filters and the caller's scope select are exactly those of one
    community in some statuses: then their total is the sum of `issue_status_counts`, not a count
    of thousands of rows. The community is given as one value, no other filter than the status is
    given, and the scope lets the caller read every issue of that community."""
    community = given["community_id"]
    if not isinstance(community, str) or not community:
        return False
    for name in PAGE_FILTERS:
        value = given[name]
        if name not in ("community_id", "status") and (value is not None if name == "overdue" else value):
            return False
    if scope.private_reader is not None:
        return False
    # A scope of several parts reads a row when any part holds: the community's part holds for all of its rows.
    return scope.everything or (scope.community_ids is not None and community in scope.community_ids)


def _total_per_status(statuses: bool | None) -> Any:
    """The issues of the community (in the given statuses) from the read model, as a subquery."""
    c = issue_status_counts.c
    conditions = [c.community_id == bindparam("community_id")]
    if statuses is not None:
        conditions.append(
            c.status.in_(bindparam("status", expanding=True)) if statuses else c.status == bindparam("status")
        )
    return select(func.coalesce(func.sum(c.count), 0)).where(*conditions).scalar_subquery()


@lru_cache(maxsize=256)
def _page_statements(
    scope_shape: tuple[bool, ...],
    filters: tuple[tuple[str, bool | None], ...],
    sort: str,
    summaries: bool,
    counted_per_status: bool = False,
) -> tuple[Any, Any]:
    """The page query and its count alone, for a scope of this shape and these filters (each: its
    name, and whether a list of values is given or, for `overdue`, which way), with bind parameters
    for every value. Built once per form: a list page is the hottest read, and building and keying
    the statement again for each request cost more than running it. `counted_per_status`: the
    total is read from the issues per status (`_counted_per_status` says when it is the same)."""
    conditions = []
    clause = _scope_condition(scope_shape, {name: bindparam(name, expanding=name == "scope_communities") for name in (
        "scope_communities", "scope_street", "scope_assignee", "scope_reader", "scope_private_assignee")})  # fmt: skip
    # Where the total comes from the issues per status, the community asked for lies in the scope
    # (`_counted_per_status`): the scope's condition holds for every row the filters select, and
    # left out it does not make the planner expect one row (two conditions on the community).
    if clause is not None and not counted_per_status:
        conditions.append(clause)
    for name, how in filters:
        if name in _EQUALITY_FILTERS:
            column = getattr(Issue, name)
            conditions.append(column.in_(bindparam(name, expanding=True)) if how else column == bindparam(name))
        elif name == "street_id":
            conditions.append(Issue.community_id.in_(communities_of_street_query(bindparam("street_id"))))
        elif name == "reporter_id":
            conditions.append(Issue.reporter_id == bindparam("reporter_id"))
        elif name == "published":
            conditions.append(is_published_clause())
        elif name == "overdue":
            overdue = and_(Issue.status.not_in(DONE_STATUSES), Issue.due_at <= bindparam("now"))
            conditions.append(overdue if how else ~overdue)
        elif name == "q":
            pattern = bindparam("q")
            conditions.append(or_(func.lower(Issue.title).like(pattern), func.lower(Issue.description).like(pattern)))
        elif name == "created_from":
            conditions.append(Issue.created_at >= bindparam("created_from"))
        elif name == "created_to":
            conditions.append(Issue.created_at < bindparam("created_to"))
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    column = SORTS[name]
    if name in NULLABLE_SORTS:
        order = desc(column).nulls_last() if descending else asc(column).nulls_last()
    else:
        # No NULLS clause on a column that holds none: an index on it (community, created_at)
        # then gives the page in order, without sorting every matching row.
        order = desc(column) if descending else asc(column)
    # The total rides along with the page (one round trip), as a subquery PostgreSQL runs once
    # (from an index when it can), not a count over every matching row of the page's query.
    total = select(func.count()).select_from(issues_table).where(*conditions).scalar_subquery()
    if counted_per_status:
        total = _total_per_status(dict(filters).get("status"))
    if summaries:
        query = select(*SUMMARY_COLUMNS, total.label("total")).order_by(order, issues_table.c.id)
    else:
        query = select(Issue, total.label("total")).order_by(order, Issue.id)
    page = query.where(*conditions).offset(bindparam("page_offset")).limit(bindparam("page_limit"))
    return page, select(total)


# What reporting reads first (`IssueRepository.report_context`), built once: it runs with every report.
_REPORT_CONTEXT = select(
    select(replica.communities.c.street_id)
    .where(replica.communities.c.community_id == bindparam("community_id"))
    .scalar_subquery()
    .label("street_id"),
    select(categories_table.c.publication)
    .where(categories_table.c.key == bindparam("category_key"))
    .scalar_subquery()
    .label("publication"),
    select(issue_counts_state.c.zone).where(issue_counts_state.c.id == 1).scalar_subquery().label("zone"),
)


@dataclass(frozen=True)
class ReportContext:
    """What a report reads besides the category (`IssueRepository.report_context`): the community's
    street (None: no such community), the category's publication (None: no such category) and the
    zone of the statistics' counts (None: not built)."""

    street_id: str | None
    publication: str | None
    zone: str | None


# The report contexts read last, per (community, category), for `report_context(remembered=True)`.
# Held without a time limit: a report written from one (`insert_report`) checks in its own
# statement that it still holds and writes nothing otherwise, and the entry is then forgotten.
# Contexts of unknown communities or categories are never held (the replica may learn of them any
# moment). Bounded: cleared when full (some hundreds of communities, a dozen categories).
_report_contexts: dict[tuple[str, str], ReportContext] = {}
REPORT_CONTEXTS_HELD = 20_000


_REPORT_GUARD = f"""ok AS MATERIALIZED (
    SELECT 1 AS ok FROM {replica.communities.name} AS c JOIN {categories_table.name} AS k
        ON k.key = CAST(%(category)s AS text) AND k.publication = CAST(%(publication)s AS text)
    WHERE c.community_id = CAST(%(community_id)s AS text) AND c.street_id = CAST(%(street_id)s AS text)
      AND (SELECT zone FROM {issue_counts_state.name} WHERE id = 1) IS NOT DISTINCT FROM CAST(%(zone)s AS text)
)"""
# PostgreSQL: a whole report in one statement, atomic by itself (run in autocommit, it is its own
# transaction: no BEGIN and COMMIT round trips): the issue, its report entry, its counts and its
# event, written only if the context the report was made from (`ReportContext`, maybe held from an
# earlier report) still holds, checked in the statement's own snapshot (`ok`). The event is its main
# INSERT: its row count says whether the report was written. The issue and its entry each go as one
# JSON document read as a row of its table (`json_populate_record`: each value typed by its column,
# in the table's own order), the counts as `counters.added_counts_ctes`. A text of fixed form,
# short and with few parameters, so psycopg converts it once (it converts anew each time a text of
# over 4 kB or 50 parameters) and prepares it once per connection; run by the driver as it stands
# (`driver_rowcount`), without SQLAlchemy's compiling, execution and result set-up.
# It does not notify the relay from the outbox's trigger (DEFER_NOTIFY_SQL): its writer pokes the
# process's waker once it is written (linli_kit.events.waker), so reports commit side by side
# instead of one at a time under PostgreSQL's notification lock.
_REPORT = (
    f"WITH {_REPORT_GUARD}, "
    f"issue AS (INSERT INTO {issues_table.name} SELECT r.* FROM ok, "
    f"json_populate_record(NULL::{issues_table.name}, CAST(%(issue)s AS json)) AS r RETURNING id), "
    f"entry AS (INSERT INTO {issue_updates.name} SELECT r.* FROM issue, "
    f"json_populate_record(NULL::{issue_updates.name}, CAST(%(entry)s AS json)) AS r), "
    f"{counters.added_counts_ctes('ok')} "
    f"INSERT INTO {messaging.outbox.name} (event_id, event_type, payload, created_at) "
    "SELECT CAST(%(event_id)s AS text), CAST(%(event_type)s AS text), CAST(%(payload)s AS text), "
    f"CAST(%(created_at)s AS timestamptz) FROM ok WHERE {DEFER_NOTIFY_SQL}"
)
_ISSUE_COLUMNS = tuple(str(c.name) for c in issues_table.columns)  # plain str: orjson takes no subclass as a key
_ISSUE_VALUES = operator.attrgetter(*_ISSUE_COLUMNS)
_ISSUE_ITEMS = operator.itemgetter(*_ISSUE_COLUMNS)


def _issue_values(issue: Issue) -> dict[str, Any]:
    """Each column's value of a new issue (`new_written_issue`), read from its state's dict, where
    it holds them all, rather than through the ORM's attribute descriptor per column (a column
    missing there, as in an issue made otherwise: read through them)."""
    state = issue.__dict__
    if state.keys() >= _ISSUE_COLUMN_SET:
        return state
    return dict(zip(_ISSUE_COLUMNS, _ISSUE_VALUES(issue), strict=True))


_ISSUE_DEFAULTS = {f.name: f.default for f in fields(Issue) if f.default is not MISSING}
_ISSUE_FACTORIES = {f.name: f.default_factory for f in fields(Issue) if f.default_factory is not MISSING}
_ISSUE_REQUIRED = frozenset(f.name for f in fields(Issue)) - set(_ISSUE_DEFAULTS) - set(_ISSUE_FACTORIES)
_ISSUE_FIELDS = frozenset(f.name for f in fields(Issue))
_ISSUE_COLUMN_SET = frozenset(_ISSUE_COLUMNS)


def new_written_issue(**values: Any) -> Issue:
    """`Issue(**values)` for a report `insert_report` writes: the same values, set as the ORM sets
    those of an issue it loads (a new instance, its state and its dict at once) rather than through
    the 42 attribute events of a new one's `__init__` (a twelfth of a report's time). The issue is
    as the ORM makes any transient one, only without a history of changes, which nothing asks of
    an issue never added to a session: `insert_report` writes it with its own statement."""
    unknown = values.keys() - _ISSUE_FIELDS
    missing = _ISSUE_REQUIRED - values.keys()
    if unknown or missing:
        raise TypeError(f"Issue: unknown {sorted(unknown)}, missing {sorted(missing)}")
    issue = _issue_manager().new_instance()
    state = issue.__dict__
    state.update(_ISSUE_DEFAULTS)
    for name, factory in _ISSUE_FACTORIES.items():
        if name not in values:
            state[name] = factory()
    state.update(values)
    return issue


@lru_cache(maxsize=1)
def _issue_manager() -> Any:
    return manager_of_class(Issue)


def _autocommits(connection: Connection) -> bool:
    """Whether each statement on `connection` is its own transaction, committed when it ends."""
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _document(values: dict[str, Any]) -> str:
    """A row as the JSON document `json_populate_record` reads (`_REPORT`): orjson, a tenth of the
    json module's time; its instants still written by `_instant` (which refuses a naive one)."""
    return orjson.dumps(values, default=_instant, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _instant(value: datetime) -> str:
    """An instant in a JSON document (the only values json does not write itself)."""
    if value.tzinfo is None:  # as the column's type refuses them: an instant without its offset is not one
        raise ValueError("naive datetime: times are stored as instants with an offset")
    return value.isoformat()  # anything else than a datetime: AttributeError, not serialisable


class IssueRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.report_read: ReportContext | None = None  # the last `report_context`
        self._one_statement = False  # `writes_in_one_statement`
        # community -> street, for this unit of work; in the session's info so the counts' hook
        # (adapters/counters.py) finds the streets already read instead of reading them again.
        self._streets: dict[str, str | None] = session.info.setdefault(counters.STREETS_KEY, {})

    # --- categories ---------------------------------------------------------------------------
    def categories(self, *, include_inactive: bool = False) -> list[Category]:
        query = select(Category).order_by(Category.position, Category.key)
        if not include_inactive:
            query = query.where(Category.active.is_(True))
        return list(self.session.scalars(query))

    def category(self, key: str) -> Category | None:
        return self.session.get(Category, key)

    def publication_of(self, key: str) -> str | None:
        return self.session.scalar(select(Category.publication).where(Category.key == key))

    def report_context(self, community_id: str, category_key: str, *, remembered: bool = False) -> str | None:
        """What reporting an issue reads, in one round trip: the community's street (kept as
        `street_of` would; None: no such community), the category's publication (returned; None:
        no such category) and the zone of the statistics' counts (for the counts' hook).
        `remembered`: the context held from an earlier report if there is one, not read (for
        `insert_report`, which checks it). What is read is held for the next reports."""
        key = (community_id, category_key)
        context = _report_contexts.get(key) if remembered else None
        if context is None:
            # In a report of one statement (`writes_in_one_statement`), read in autocommit: no
            # BEGIN and ROLLBACK round trips for a read that the statement checks anyway.
            options = {"isolation_level": "AUTOCOMMIT"} if self._one_statement else None
            row = (
                self.session.connection(execution_options=options)
                .execute(_REPORT_CONTEXT, {"community_id": community_id, "category_key": category_key})
                .one()
            )
            context = ReportContext(row.street_id, row.publication, row.zone)
            if context.street_id is not None and context.publication is not None:
                if len(_report_contexts) >= REPORT_CONTEXTS_HELD:
                    _report_contexts.clear()
                _report_contexts[key] = context
        self._streets[community_id] = context.street_id
        counters.remember_zone(self.session, context.zone)
        self.report_read = context
        return context.publication

    def writes_in_one_statement(self) -> bool:
        """Whether a change made of one statement can be written as such (PostgreSQL): then what
        the unit of work reads and that statement each run in autocommit, their own transaction,
        without the BEGIN and COMMIT round trips. Asked before anything is read or written."""
        self._one_statement = self.session.get_bind().dialect.name == "postgresql" and not self.session.in_transaction()
        return self._one_statement

    def insert_report(self, issue: Issue, entry: dict[str, Any], event_row: dict[str, Any]) -> bool:
        """Write a new issue, its report entry (the columns of `issue_updates`), its event (the
        outbox's row) and its counts in one statement (`writes_in_one_statement`), provided the
        context it was made from (the last `report_context`) still holds: returns whether it did.
        Nothing else is in the session: the ORM, its flush and the counts' hooks are bypassed (the
        counts are written here as the hook would count a new issue)."""
        context = self.report_read
        assert context is not None and context.publication is not None and context.street_id is not None
        # Counted as the counts' hook counts a new issue (adapters/counters.py).
        zone = ZoneInfo(context.zone) if context.zone else None
        tally = counters.Tally(zone, {issue.community_id: context.street_id})
        tally.add_status(issue.community_id, issue.status)
        values = _issue_values(issue)
        tally.add(issue.community_id, counters.issue_figures(values))
        parameters = {
            "community_id": issue.community_id,
            "street_id": context.street_id,
            "category": issue.category,
            "publication": context.publication,
            "zone": context.zone,
            "issue": _document(dict(zip(_ISSUE_COLUMNS, _ISSUE_ITEMS(values), strict=True))),
            "entry": _document(entry),
            "event_id": event_row["event_id"],
            "event_type": event_row["event_type"],
            "payload": event_row["payload"],
            "created_at": event_row["created_at"],
            **counters.tally_documents(tally),
        }
        # The statement must commit by itself: run inside a transaction the session began, it would
        # be rolled back with it when the unit of work closes, after the report's 201.
        session_connection = self.session.connection() if self.session.in_transaction() else None
        # Run by the driver itself (`driver_rowcount`): SQLAlchemy's execution and result were a
        # tenth of a report's CPU.
        if session_connection is not None and _autocommits(session_connection):
            # The context was read (in autocommit): on that connection.
            written = driver_rowcount(session_connection, _REPORT, parameters) == 1
        else:
            # Nothing read, or read in a transaction (a category read again when its copy held in
            # memory expired): a connection of the pool in autocommit, without the session's
            # transaction and its bookkeeping (a tenth of a report's time, with the session's close)
            # nor SQLAlchemy's connection (`autocommit_rowcount`).
            written = autocommit_rowcount(self.session.get_bind(), _REPORT, parameters) == 1
        if written:
            waker_for(self.session.get_bind()).poke()
        else:
            # The context changed since it was read: forgotten, the next report reads it again.
            _report_contexts.pop((issue.community_id, issue.category), None)
        return written

    @staticmethod
    def new_written_issue(**values: Any) -> Issue:
        """A new issue for `insert_report` (`new_written_issue`), never added to the session."""
        return new_written_issue(**values)

    def add(self, thing: Issue | Category | TimelineEntry) -> None:
        self.session.add(thing)

    def to_narrow(self, category_key: str, publication: str) -> list[Issue]:
        """The category's issues published more widely than `publication`, locked to narrow them."""
        wider = [p for p in privacy.PUBLICATIONS if privacy.is_wider(p, publication)]
        if not wider:
            return []
        query = select(Issue).where(Issue.category == category_key, Issue.publication.in_(wider))
        return list(self.session.scalars(query.order_by(Issue.id).with_for_update()))

    def narrow_publication(self, category_key: str, publication: str) -> int:
        """Issues of the category published more widely than `publication` are narrowed to it."""
        wider = [p for p in privacy.PUBLICATIONS if privacy.is_wider(p, publication)]
        if not wider:
            return 0
        result = self.session.execute(
            update(Issue)
            .where(Issue.category == category_key, Issue.publication.in_(wider))
            .values(publication=publication)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    # --- issues ---------------------------------------------------------------------------------
    def get(self, issue_id: str, *, for_update: bool = False) -> Issue | None:
        if for_update:
            return self.session.scalars(select(Issue).where(Issue.id == issue_id).with_for_update()).first()
        return self.session.get(Issue, issue_id)

    def list(
        self,
        scope: Scope,
        *,
        offset: int,
        limit: int,
        filters: dict[str, Any],
        now: datetime,
        sort: str = "-created_at",
        summaries: bool = False,
    ) -> tuple[list[Any], int]:
        """A page of issues and how many match; `summaries`: as `IssueSummary` (only the columns a
        list row shows, no ORM objects), else whole `Issue`s."""
        given = {name: filters.get(name) for name in PAGE_FILTERS}
        shape = (
            scope.shape(),
            tuple(
                (name, isinstance(value, list | tuple)) if name != "overdue" else (name, value)
                for name, value in given.items()
                if (value is not None if name == "overdue" else value)
            ),
            sort,
            summaries,
        )
        parameters = {**scope.parameters(), **given, "now": now, "page_offset": offset, "page_limit": limit}
        if given["q"]:
            parameters["q"] = f"%{given['q'].lower()}%"
        for name, value in given.items():
            if isinstance(value, tuple):
                parameters[name] = list(value)
        page_statement, total_statement = _page_statements(*shape, _counted_per_status(scope, given))
        if summaries:
            # Plain columns, run on the session's connection: no ORM entities to load, so the
            # ORM's execution (its context, identity map, loading) is spared for a page of rows.
            page = self.session.connection().execute(page_statement, parameters).all()
        else:
            page = self.session.execute(page_statement, parameters).all()
        if not page:
            # Past the last page the total is still asked for; on the first, nothing matches.
            return [], (self.session.connection().execute(total_statement, parameters).scalar() or 0) if offset else 0
        if summaries:
            return [IssueSummary(*row[:-1]) for row in page], page[0][-1]
        return [row[0] for row in page], page[0][1]

    def overdue(self, now: datetime, limit: int = 500) -> list[Issue]:
        """Open issues past their deadline, locked so two workers never escalate one twice."""
        query = (
            select(Issue)
            .where(Issue.status.not_in(DONE_STATUSES), Issue.due_at <= now)
            # At the city tier an issue is reported overdue once per deadline, then left alone.
            .where(or_(Issue.tier != "city", Issue.overdue_at.is_(None), Issue.overdue_at < Issue.due_at))
            .order_by(Issue.due_at)
            .limit(limit)
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def resolved_before(self, cutoff: datetime, limit: int = 500) -> list[Issue]:
        query = select(Issue).where(Issue.status == "resolved", Issue.resolved_at <= cutoff).limit(limit)
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def search(self, scope: Scope, terms: list[str], limit: int) -> list[tuple[Issue, bool]]:
        """Issues of the scope holding every term, with whether their title holds them all: those
        first, then the newest."""
        source = issues_table
        in_title = ISSUE_TEXT.in_title(source, terms)
        query = select(Issue, in_title).where(ISSUE_TEXT.matches(source, terms, self.session.get_bind().dialect.name))
        clause = scope.clause()
        if clause is not None:
            query = query.where(clause)
        query = query.order_by(desc(case((in_title, 1), else_=0)), Issue.created_at.desc(), Issue.id).limit(limit)
        return [(issue, bool(title_hit)) for issue, title_hit in self.session.execute(query)]

    def candidates_for_similarity(self, community_id: str, scope: Scope, limit: int = 300) -> list[Issue]:
        """Recent open issues of a community that the caller may read (`scope`); the few hundred a
        resident could be duplicating."""
        query = (
            select(Issue)
            .where(Issue.community_id == community_id, Issue.status.not_in(("rejected", "duplicate", "closed")))
            .order_by(Issue.created_at.desc())
            .limit(limit)
        )
        clause = scope.clause()
        if clause is not None:
            query = query.where(clause)
        return list(self.session.scalars(query))

    # --- timeline ---------------------------------------------------------------------------------
    def timeline(self, issue_id: str, *, include_internal: bool) -> list[TimelineEntry]:
        query = select(TimelineEntry).where(TimelineEntry.issue_id == issue_id)
        if not include_internal:
            query = query.where(TimelineEntry.internal.is_(False))
        return list(self.session.scalars(query.order_by(TimelineEntry.created_at, TimelineEntry.id)))

    def status_history(self, issue_ids: list[str]) -> dict[str, list[tuple[datetime, str]]]:
        """(when, new status) of every status change of these issues, oldest first."""
        rows = self.session.execute(
            select(TimelineEntry.issue_id, TimelineEntry.created_at, TimelineEntry.data)
            .where(TimelineEntry.issue_id.in_(issue_ids), TimelineEntry.kind == "status")
            .order_by(TimelineEntry.created_at, TimelineEntry.id)
        )
        history: dict[str, list[tuple[datetime, str]]] = {}
        for issue_id, when, data in rows:
            history.setdefault(issue_id, []).append((when, data.get("to")))
        return history

    def public_updates(
        self, *, since: datetime | None, until: datetime | None, issue_ids: list[str] | None, limit: int
    ) -> list[TimelineEntry]:
        """The public steps of published issues only (Open311)."""
        query = select(TimelineEntry).where(
            TimelineEntry.internal.is_(False),
            TimelineEntry.kind.in_(("report", "status", "reply", "escalation")),
            TimelineEntry.issue_id.in_(select(Issue.id).where(is_published_clause())),
        )
        if since is not None:
            query = query.where(TimelineEntry.created_at >= since)
        if until is not None:
            query = query.where(TimelineEntry.created_at <= until)
        if issue_ids:
            query = query.where(TimelineEntry.issue_id.in_(issue_ids))
        return list(self.session.scalars(query.order_by(TimelineEntry.created_at.desc()).limit(limit)))

    # --- supporters ---------------------------------------------------------------------------------
    def is_supporter(self, issue_id: str, user_id: str) -> bool:
        found = self.session.scalar(
            select(supporters.c.user_id).where(supporters.c.issue_id == issue_id, supporters.c.user_id == user_id)
        )
        return found is not None

    def add_supporter(self, issue_id: str, user_id: str, now: datetime) -> None:
        self.session.execute(insert(supporters).values(issue_id=issue_id, user_id=user_id, created_at=now))

    def supporter_ids(self, issue_id: str) -> list[str]:
        return list(self.session.scalars(select(supporters.c.user_id).where(supporters.c.issue_id == issue_id)))

    # --- meetings -------------------------------------------------------------------------------------
    def meeting_link(self, issue_id: str, meeting_id: str) -> dict[str, Any] | None:
        row = self.session.execute(
            select(issue_meetings).where(
                issue_meetings.c.issue_id == issue_id, issue_meetings.c.meeting_id == meeting_id
            )
        ).first()
        return dict(row._mapping) if row else None

    def add_meeting_link(self, **values: Any) -> None:
        consultation_counts.touch(self.session, [values["meeting_id"]])
        self.session.execute(insert(issue_meetings).values(**values))

    def update_meeting_link(self, issue_id: str, meeting_id: str, **values: Any) -> None:
        consultation_counts.touch(self.session, [meeting_id])
        self.session.execute(
            update(issue_meetings)
            .where(issue_meetings.c.issue_id == issue_id, issue_meetings.c.meeting_id == meeting_id)
            .values(**values)
        )

    def meeting_links_of_meeting(self, meeting_id: str) -> list[dict[str, Any]]:
        rows = self.session.execute(select(issue_meetings).where(issue_meetings.c.meeting_id == meeting_id))
        return [dict(r._mapping) for r in rows]

    def meetings_of(self, issue_id: str) -> list[dict[str, Any]]:
        rows = self.session.execute(
            select(issue_meetings).where(issue_meetings.c.issue_id == issue_id).order_by(issue_meetings.c.starts_at)
        )
        return [dict(r._mapping) for r in rows]

    def count_consultations(self, issue_id: str) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(issue_meetings)
                .where(issue_meetings.c.issue_id == issue_id, issue_meetings.c.status != "cancelled")
            )
            or 0
        )

    # --- decisions' follow-up ---------------------------------------------------------------------------
    def decision_follow_up(self, issue_id: str, decision_id: str) -> dict[str, Any] | None:
        row = self.session.execute(
            select(issue_decisions).where(
                issue_decisions.c.issue_id == issue_id, issue_decisions.c.decision_id == decision_id
            )
        ).first()
        return dict(row._mapping) if row else None

    def save_decision_follow_up(self, issue_id: str, decision_id: str, *, new: bool, **values: Any) -> None:
        if new:
            self.session.execute(insert(issue_decisions).values(issue_id=issue_id, decision_id=decision_id, **values))
        else:
            self.session.execute(
                update(issue_decisions)
                .where(issue_decisions.c.issue_id == issue_id, issue_decisions.c.decision_id == decision_id)
                .values(**values)
            )

    def follow_up_totals(self, issue_id: str) -> tuple[int, int]:
        """(action items, done) over the decisions taken on the issue."""
        row = self.session.execute(
            select(
                func.coalesce(func.sum(issue_decisions.c.action_items), 0),
                func.coalesce(func.sum(issue_decisions.c.done), 0),
            ).where(issue_decisions.c.issue_id == issue_id)
        ).one()
        return int(row[0]), int(row[1])

    # --- photos ----------------------------------------------------------------------------------------
    def add_photo(self, **values: Any) -> None:
        self.session.execute(insert(photos).values(**values))

    def photos_of(self, issue_id: str) -> list[dict[str, Any]]:
        rows = self.session.execute(
            select(photos).where(photos.c.issue_id == issue_id).order_by(photos.c.created_at, photos.c.id)
        )
        return [dict(r._mapping) for r in rows]

    def photo(self, issue_id: str, photo_id: str) -> dict[str, Any] | None:
        row = self.session.execute(select(photos).where(photos.c.issue_id == issue_id, photos.c.id == photo_id)).first()
        return dict(row._mapping) if row else None

    def photos_without_thumbnail(self) -> list[dict[str, Any]]:
        """Photos stored before thumbnails were made (migration 0011): kept as sent, oldest first."""
        rows = self.session.execute(
            select(photos).where(photos.c.thumbnail_file_name.is_(None)).order_by(photos.c.created_at, photos.c.id)
        )
        return [dict(r._mapping) for r in rows]

    def update_photo(self, photo_id: str, **values: Any) -> None:
        self.session.execute(update(photos).where(photos.c.id == photo_id).values(**values))

    def photo_by_id(self, photo_id: str) -> dict[str, Any] | None:
        row = self.session.execute(select(photos).where(photos.c.id == photo_id)).first()
        return dict(row._mapping) if row else None

    def first_photos(self, issue_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The first photo attached to each of these issues (by time), in one query."""
        if not issue_ids:
            return {}
        rows = self.session.execute(
            select(photos)
            .where(photos.c.issue_id.in_(issue_ids))
            .order_by(photos.c.created_at.desc(), photos.c.id.desc())
        )
        # Newest first, so the oldest of each issue is written last and stays.
        return {row.issue_id: dict(row._mapping) for row in rows}

    def report_data(self, issue_ids: list[str]) -> dict[str, dict[str, Any]]:
        """What was recorded with each issue's report (channel, tier, a client's media URL)."""
        if not issue_ids:
            return {}
        rows = self.session.execute(
            select(TimelineEntry.issue_id, TimelineEntry.data).where(
                TimelineEntry.issue_id.in_(issue_ids), TimelineEntry.kind == "report"
            )
        )
        return {issue_id: data or {} for issue_id, data in rows}

    # --- directory replica -------------------------------------------------------------------------------
    def street_of(self, community_id: str) -> str | None:
        if community_id not in self._streets:
            self._streets[community_id] = self.session.scalar(
                select(replica.communities.c.street_id).where(replica.communities.c.community_id == community_id)
            )
        return self._streets[community_id]

    def community_exists(self, community_id: str) -> bool:
        return self.street_of(community_id) is not None

    def organisation(self, organisation_id: str) -> dict[str, Any] | None:
        """A registered organisation, as the gateway's register has it (replicated)."""
        assert replica.organisations is not None
        row = self.session.execute(
            select(replica.organisations).where(replica.organisations.c.organisation_id == organisation_id)
        ).first()
        return dict(row._mapping) if row else None

    def organisations_of_compound(self, kind: str, compound_id: str) -> list[dict[str, Any]]:
        """The active registered organisations of `kind` that serve the compound."""
        assert replica.organisations is not None
        o = replica.organisations.c
        rows = self.session.execute(
            select(replica.organisations).where(o.kind == kind, o.active.is_(True)).order_by(o.organisation_id)
        )
        # The register is small (a few per compound); the list of compounds is JSON on both databases.
        return [dict(r._mapping) for r in rows if compound_id in (r.compound_ids or [])]

    def compound(self, compound_id: str) -> dict[str, Any] | None:
        row = self.session.execute(
            select(replica.compounds).where(replica.compounds.c.compound_id == compound_id)
        ).first()
        return dict(row._mapping) if row else None

    def compounds_near(
        self, latitude: float, longitude: float, degrees: tuple[float, float], scope: Scope
    ) -> list[dict[str, Any]]:
        """Compounds with coordinates in a box of (latitude, longitude) half-sizes around a point,
        among the communities of `scope`."""
        c = replica.compounds.c
        query = select(replica.compounds).where(
            c.latitude.between(latitude - degrees[0], latitude + degrees[0]),
            c.longitude.between(longitude - degrees[1], longitude + degrees[1]),
        )
        clause = _community_clause(scope, c.community_id)
        if clause is not None:
            query = query.where(clause)
        return [dict(r._mapping) for r in self.session.execute(query)]

    def places(self, scope: Scope) -> list[tuple[str, str, str | None]]:
        """(name, community id, compound id or None) of every community and compound in `scope`."""
        communities, compounds = replica.communities.c, replica.compounds.c
        query = select(communities.name, communities.community_id)
        clause = _community_clause(scope, communities.community_id)
        if clause is not None:
            query = query.where(clause)
        found: list[tuple[str, str, str | None]] = [(n, c, None) for n, c in self.session.execute(query)]
        query = select(compounds.name, compounds.community_id, compounds.compound_id)
        clause = _community_clause(scope, compounds.community_id)
        if clause is not None:
            query = query.where(clause)
        found += [(n, c, k) for n, c, k in self.session.execute(query)]
        return found


def _community_clause(scope: Scope, column: Any) -> Any:
    """`scope` as a filter on a community id column (None: no limit)."""
    if scope.everything:
        return None
    parts = []
    if scope.community_ids is not None:
        parts.append(column.in_(scope.community_ids))
    if scope.street_id is not None:
        parts.append(column.in_(communities_of_street_query(scope.street_id)))
    return or_(*parts) if parts else column.is_(None)
