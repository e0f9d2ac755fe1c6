"""The batch's one write statement (adapters/preloaded.py), with every part it can have, stays within
what psycopg keeps of a statement's conversion (its placeholders to $n: 4,096 bytes, 50 parameters);
a longer one is split again at every execution."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from psycopg import _queries
from sqlalchemy.dialects import postgresql

from linli_issues.adapters import preloaded
from linli_issues.adapters.tables import issue_decisions, issue_meetings, issue_updates, issues


class _PostgresSession:
    """Enough of a session for `_Writes` to gather the parts of PostgreSQL's statement."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, dict[str, Any]]] = []

    def get_bind(self) -> Any:
        return SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))

    def execute(self, statement: Any, params: dict[str, Any]) -> None:
        self.sent.append((statement, params))


def _every_part() -> tuple[Any, dict[str, Any]]:
    session = _PostgresSession()
    writes = preloaded._Writes(session)  # type: ignore[arg-type]
    # As `PreloadedRepository.write` sends them: the issues changed in full and in their counts
    # only, a link and a decision new and one changed, timeline entries.
    writes.update(issues, ("id",), preloaded._WRITTEN, [{}])
    writes.update(issues, ("id",), preloaded._COUNTS, [{}])
    for table, keys in ((issue_meetings, ("issue_id", "meeting_id")), (issue_decisions, ("issue_id", "decision_id"))):
        preloaded._write(writes, table, keys, {("a", "b"): {}, ("c", "d"): {}}, {("a", "b")}, {("c", "d")})
    writes.insert(issue_updates, [{}])
    return writes, session


def test_the_statement_of_every_part_keeps_its_conversion_in_psycopgs_cache(monkeypatch) -> None:
    # The rows' JSON is not what is measured: rows of no columns.
    monkeypatch.setattr(preloaded, "_json_rows", lambda rows, names, instants=(): "[]")
    writes, session = _every_part()
    assert len(writes._parts) == 7
    writes.send()
    [(statement, params)] = session.sent
    compiled = statement.compile(dialect=postgresql.psycopg.dialect())
    sent = str(compiled).encode()
    assert len(sent) <= preloaded.CONVERSION_KEPT_BYTES
    assert len(params) <= 50
    assert preloaded.CONVERSION_KEPT_BYTES <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= 50
    # Every part is there: four UPDATEs and three INSERTs, each reading its rows' JSON.
    text = sent.decode()
    assert text.count("UPDATE ") == 4 and text.count("INSERT INTO ") == 3
    assert text.count("json_to_recordset(") == 7
