"""The search helpers every service shares: terms, the query's rules, snippets, and the FTS5 index
with its triggers on a bare SQLite table (trigram tokenizer, Chinese without word breaks)."""

from __future__ import annotations

import sqlite3

import pytest
from marshmallow import ValidationError
from sqlalchemy import Column, MetaData, String, Table, create_engine, select

from linli_kit.search import TextIndex, check_query, search_query_schema, snippet, terms_of

NOTES = Table("notes", MetaData(), Column("id", String, primary_key=True), Column("title", String),
              Column("body", String))  # fmt: skip
NOTE_TEXT = TextIndex("notes", "id", ("title", "body"))


def test_terms_and_the_rules_of_a_query():
    assert terms_of(" 文化墙　漏水 文化墙 Roof roof ") == ["文化墙", "漏水", "Roof"]  # full-width space too
    for bad, words in (("", "empty"), ("  ", "empty"), ("墙" * 101, "too long"), ("a b c d e f g h i", "too many")):
        with pytest.raises(ValidationError, match=words):
            check_query(bad)
    check_query("墙" * 100)
    schema = search_query_schema(["issue", "meeting"], name="Q")()
    assert schema.load({"q": "文化墙"}) == {"q": "文化墙", "kinds": ("issue", "meeting"), "limit": 20}
    with pytest.raises(ValidationError) as refused:
        schema.load({"q": "墙", "kinds": "issue,notes", "limit": "51"})
    assert set(refused.value.messages) == {"kinds", "limit"}


def test_a_snippet_is_the_piece_around_the_first_word_found():
    text = "一" * 50 + "文化墙松动" + "二" * 50
    piece = snippet([text], ["文化墙"], width=20)
    assert piece.startswith("…") and piece.endswith("…") and "文化墙松动" in piece and len(piece) == 22
    assert snippet(["没有", None], ["墙"]) == "没有"
    assert snippet([None, ""], ["墙"]) == ""


def test_the_sqlite_index_follows_inserts_edits_and_deletes_and_finds_chinese(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    NOTES.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(NOTES.insert(), [{"id": "a", "title": "文化墙倒塌", "body": None}])
        for statement in NOTE_TEXT.create_statements("sqlite"):  # the backfill takes "a"
            conn.exec_driver_sql(statement)
        conn.execute(
            NOTES.insert(),
            [{"id": "b", "title": "楼顶", "body": "7号楼漏水"}, {"id": "c", "title": "x", "body": "100%_ok"}],
        )

    def found(*terms: str) -> list[str]:
        with engine.connect() as conn:
            query = select(NOTES.c.id).where(NOTE_TEXT.matches(NOTES, list(terms), "sqlite")).order_by(NOTES.c.id)
            return list(conn.scalars(query))

    assert found("文化墙") == ["a"] and found("漏水") == ["b"] and found("号楼漏水") == ["b"]
    assert found("楼顶", "漏水") == ["b"] and found("文化墙", "漏水") == []
    assert found("0%_") == ["c"] and found("%") == ["c"] and found("a") == []  # wildcards are text; ids are not
    with engine.begin() as conn:
        conn.execute(NOTES.update().where(NOTES.c.id == "a").values(title="文化墙已修好"))
        conn.execute(NOTES.delete().where(NOTES.c.id == "b"))
    assert found("已修好") == ["a"] and found("倒塌") == [] and found("漏水") == [] and found("号楼漏") == []
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM search_notes").scalar() == 2
        for statement in NOTE_TEXT.drop_statements("sqlite"):
            conn.exec_driver_sql(statement)
        assert "search_notes" not in {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert sqlite3.sqlite_version_info >= (3, 34)  # the trigram tokenizer
