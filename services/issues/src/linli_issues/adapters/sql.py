"""Small pieces of SQL the adapters share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, any_, bindparam, cast
from sqlalchemy.dialects.postgresql import ARRAY

from linli_kit.events.consumer import text_array_literal


def among(column: Any, values: Iterable[str], dialect_name: str) -> Any:
    """`column IN values`; on PostgreSQL `column = ANY(one array)`: one statement text whatever the
    number of values (an IN list is rendered, sent and parsed anew for each count of values, a
    tenth of a batch's time when a batch names hundreds of issues or meetings). The array goes as
    one text literal cast to the column's array type (psycopg's array dumper would take a Python
    step per value)."""
    if dialect_name != "postgresql":
        return column.in_(list(values))
    literal = bindparam(None, text_array_literal(values), type_=String, unique=True)
    return column == any_(cast(literal, ARRAY(column.type)))
