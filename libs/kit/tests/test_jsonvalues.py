"""JSON parsed by msgspec where it parses alike, else by json.loads (linli_kit.jsonvalues), and the
services' JSON columns read that way."""

from __future__ import annotations

import json
import math
import re

import pytest
from sqlalchemy import text

from linli_kit import jsonvalues

DOCUMENTS = [
    '{"n": 123456789012345678901234567890, "m": -9223372036854775809}',  # ints beyond 64 bits
    '{"a": 1, "a": 2}',  # the last of a repeated key
    '["社区文化墙", 1.0000000000000002, true, null, {"x": []}]',
    "[1e400]",  # msgspec refuses a number out of a float's range: json.loads reads inf
    "[NaN]",  # not JSON, but json.loads reads it
    '"\\ud800"',  # a lone surrogate: msgspec refuses it
    "\ufeff[1]",  # a byte-order mark
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_document_reads_as_json_loads_reads_it(document: str) -> None:
    for given in (document, document.encode("utf-8", "surrogatepass")):
        try:
            expected = json.loads(given)
        except ValueError as error:
            with pytest.raises(type(error), match=re.escape(str(error))):
                jsonvalues.loads(given)
            continue
        assert repr(jsonvalues.loads(given)) == repr(expected)


def test_broken_json_is_refused_in_the_standard_librarys_words() -> None:
    with pytest.raises(json.JSONDecodeError) as error:
        jsonvalues.loads('{"a": ')
    assert str(error.value) == "Expecting value: line 1 column 7 (char 6)"


@pytest.mark.integration
def test_json_columns_read_as_json_loads_reads_them(database) -> None:
    assert database.engine.dialect._json_deserializer is jsonvalues.loads
    with database.engine.connect() as conn:
        for document in ('{"n": 123456789012345678901234567890, "s": "é"}', "[1e400]"):
            read = conn.execute(text("SELECT CAST(:document AS json)"), {"document": document}).scalar()
            assert repr(read) == repr(json.loads(document))
        assert math.isinf(conn.execute(text("SELECT CAST('[1e400]' AS json)")).scalar()[0])
