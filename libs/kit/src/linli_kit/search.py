"""Text search over a service's own rows, Chinese included, on SQLite and PostgreSQL.

Chinese is written without spaces between words, so a search cannot rely on word boundaries. Both
indexes therefore work on character trigrams, which find any substring of three characters or more
without a word list:

- SQLite: an FTS5 table `search_<table>` with the `trigram` tokenizer, kept by triggers on the
  table, so it changes in the same transaction as the row.
- PostgreSQL: a GIN index `search_<table>_trgm` of `pg_trgm` over the text columns (zhparser and
  pg_jieba are not available here; pg_trgm reads CJK characters as word characters under a
  UTF-8 ctype such as C.UTF-8 or zh_CN.UTF-8 — under plain `C` it would index no Chinese trigram,
  and the search stays correct but reads the whole table).

A query is split on white space into terms; a row matches when each term is in one of its text
columns. Terms shorter than three characters (漏水, 楼) have no trigram: they are matched with
`LIKE` on the columns themselves, which both databases answer correctly, if by reading more.

Every object of a search index is named `search_…`, so schema comparisons can leave them out
(`is_search_object`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import ColumnElement, Table, and_, column, literal, literal_column, or_, select, table
from webargs.fields import DelimitedList

MAX_QUERY_CHARS = 100
MAX_TERMS = 8
# The trigram tokenizer (and pg_trgm) index substrings of three characters; shorter terms use LIKE.
MIN_INDEXED_CHARS = 3
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
SNIPPET_CHARS = 80


def terms_of(query: str) -> list[str]:
    """The distinct terms of a query, in the order typed (white space, full-width included, separates them)."""
    seen: list[str] = []
    for term in query.split():
        if term.lower() not in (t.lower() for t in seen):
            seen.append(term)
    return seen


def search_query_schema(kinds: Sequence[str], *, name: str) -> type[Schema]:
    """The query of a search endpoint: `q` (required, 1 to 100 characters, at most 8 words),
    `kinds` (comma-separated, some of `kinds`; default all) and `limit` (1 to 50, default 20)."""
    known = list(kinds)
    listed = ", ".join(known)

    class SearchQuery(Schema):
        q = fields.String(
            required=True,
            metadata={
                "description": f"the words to find (Chinese or not), 1 to {MAX_QUERY_CHARS} characters, "
                f"at most {MAX_TERMS} words separated by spaces; every word must be found",
                "minLength": 1,
                "maxLength": MAX_QUERY_CHARS,
            },
        )
        kinds = DelimitedList(
            fields.String(validate=validate.OneOf(known)),
            load_default=tuple(known),
            metadata={"description": f"what to search (comma-separated): {listed}; default all"},
        )
        limit = fields.Integer(
            load_default=DEFAULT_LIMIT,
            validate=validate.Range(1, MAX_LIMIT),
            metadata={"description": f"at most this many hits (1 to {MAX_LIMIT})"},
        )

        @validates("q")
        def _check_q(self, value: str, **_: Any) -> None:
            check_query(value)

    SearchQuery.__name__ = name
    return SearchQuery


def check_query(value: str) -> None:
    """Raise ValidationError saying what is wrong with a search text."""
    if not value.strip():
        raise ValidationError("must not be empty: type what to find")
    if len(value) > MAX_QUERY_CHARS:
        raise ValidationError(f"too long: at most {MAX_QUERY_CHARS} characters, got {len(value)}")
    if len(terms_of(value)) > MAX_TERMS:
        raise ValidationError(f"too many words: at most {MAX_TERMS}")


class HitSchema(Schema):
    """One thing found, as every search endpoint answers it."""

    kind = fields.String(required=True, metadata={"description": "issue, meeting, activity, post, group or talent"})
    id = fields.String(required=True)
    title = fields.String(required=True, metadata={"description": "as the caller may read it (masked if need be)"})
    snippet = fields.String(required=True, metadata={"description": "where the words were found, shortened"})
    community_id = fields.String(allow_none=True, required=True)
    date = fields.String(
        allow_none=True, required=True, metadata={"format": "date-time", "description": "when it happens or happened"}
    )
    score = fields.Float(required=True, metadata={"description": "1 when the title holds every word, 0.5 otherwise"})


@dataclass(frozen=True)
class TextIndex:
    """The searchable text columns of one table, and the index that finds rows by them."""

    table: str
    key: str
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"search_{self.table}"

    # --- the index, for migrations ----------------------------------------------------------------
    def create_statements(self, dialect: str) -> list[str]:
        """DDL that creates the index and fills it with the rows already there."""
        if dialect == "postgresql":
            operators = ", ".join(f"{c} gin_trgm_ops" for c in self.columns)
            return [
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                f"CREATE INDEX {self.name}_trgm ON {self.table} USING gin ({operators})",
            ]
        if dialect != "sqlite":
            raise ValueError(f"no text search for {dialect}")
        listed = ", ".join(self.columns)
        values = ", ".join(f"coalesce(new.{c}, '')" for c in self.columns)
        # The key is indexed too, so that a trigger finds a row's entry by the index (the FTS rowid
        # cannot stand for the table's own: VACUUM may renumber a table without an INTEGER key).
        # Searches name the text columns, so nobody finds anything by its id.
        entry = f"{self.name} MATCH '{self.key} : \"' || replace(old.{self.key}, '\"', '\"\"') || '\"'"
        found = f"SELECT rowid FROM {self.name} WHERE {entry} AND {self.key} = old.{self.key}"
        delete = (
            f"DELETE FROM {self.name} WHERE rowid IN ({found}); "
            # A key under three characters has no trigram to find it by: read the whole index for it.
            f"DELETE FROM {self.name} WHERE length(old.{self.key}) < {MIN_INDEXED_CHARS} "
            f"AND {self.key} = old.{self.key};"
        )
        insert = f"INSERT INTO {self.name} ({self.key}, {listed}) VALUES (new.{self.key}, {values});"
        return [
            f"CREATE VIRTUAL TABLE {self.name} USING fts5({self.key}, {listed}, tokenize='trigram')",
            f"INSERT INTO {self.name} ({self.key}, {listed}) "
            f"SELECT {self.key}, {', '.join(f'coalesce({c}, {chr(39) * 2})' for c in self.columns)} FROM {self.table}",
            f"CREATE TRIGGER {self.name}_insert AFTER INSERT ON {self.table} BEGIN {insert} END",
            f"CREATE TRIGGER {self.name}_update AFTER UPDATE OF {self.key}, {listed} ON {self.table} "
            f"BEGIN {delete} {insert} END",
            f"CREATE TRIGGER {self.name}_delete AFTER DELETE ON {self.table} BEGIN {delete} END",
        ]

    def drop_statements(self, dialect: str) -> list[str]:
        if dialect == "postgresql":
            return [f"DROP INDEX IF EXISTS {self.name}_trgm"]
        return [
            *(f"DROP TRIGGER IF EXISTS {self.name}_{event}" for event in ("insert", "update", "delete")),
            f"DROP TABLE IF EXISTS {self.name}",
        ]

    # --- the query ----------------------------------------------------------------------------------
    def matches(self, source: Table, terms: Sequence[str], dialect: str) -> ColumnElement[bool]:
        """Rows of `source` (this index's table) holding every term in one of the text columns."""
        conditions: list[ColumnElement[bool]] = []
        indexed = [t for t in terms if len(t) >= MIN_INDEXED_CHARS]
        if dialect == "sqlite" and indexed:
            fts = table(self.name, column(self.key))
            columns = "{" + " ".join(self.columns) + "}"
            phrase = " AND ".join(f'{columns} : "' + t.replace('"', '""') + '"' for t in indexed)
            found = select(fts.c[self.key]).where(literal_column(self.name).op("MATCH")(literal(phrase)))
            conditions.append(source.c[self.key].in_(found))
            rest = [t for t in terms if len(t) < MIN_INDEXED_CHARS]
        else:
            rest = list(terms)
        for term in rest:
            conditions.append(or_(*(contains(source.c[c], term) for c in self.columns)))
        return and_(*conditions)

    def in_title(self, source: Table, terms: Sequence[str]) -> ColumnElement[bool]:
        """Whether the first text column (the title or name) holds every term."""
        return and_(*(contains(source.c[self.columns[0]], t) for t in terms))


def contains(expression: Any, term: str) -> ColumnElement[bool]:
    """`expression` holds `term`, whatever its case; `ILIKE` on PostgreSQL, which pg_trgm indexes."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return expression.ilike(f"%{escaped}%", escape="\\")


def is_search_object(name: str | None, *_: Any) -> bool:
    """Whether a schema object belongs to a search index (for `compare_metadata`'s `include_name`)."""
    return bool(name) and str(name).startswith("search_")


def snippet(texts: Iterable[str | None], terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """A short piece of the first text holding a term, around it; else the start of the first text."""
    candidates = [t for t in texts if t]
    for text in candidates:
        lowered = text.lower()
        positions = [p for p in (lowered.find(t.lower()) for t in terms) if p >= 0]
        if positions:
            at = min(positions)
            start = max(0, at - width // 3)
            end = min(len(text), start + width)
            start = max(0, end - width)
            return ("…" if start else "") + " ".join(text[start:end].split()) + ("…" if end < len(text) else "")
    if not candidates:
        return ""
    first = " ".join(candidates[0].split())
    return first[:width] + ("…" if len(first) > width else "")


def score(in_title: bool) -> float:
    return 1.0 if in_title else 0.5


def instant(value: datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC (SQLite hands stored UTC instants back naive)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
