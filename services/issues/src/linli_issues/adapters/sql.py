"""Small pieces of SQL the adapters share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: Any, values: Iterable[Any], dialect_name: str) -> Any:
    """`column IN values`; on PostgreSQL `column = ANY(one array)`: one statement text whatever the
    number of values (an IN list is rendered, sent and parsed anew for each count of values, a
    tenth of a batch's time when a batch names hundreds of issues or meetings). The array goes
    through psycopg's array dumper: sent as one text literal cast to the column's array type, the
    batch of meetings' events measured a third slower on PostgreSQL's side (its plans), though
    lighter here."""
    values = list(values)
    if dialect_name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, values, type_=ARRAY(column.type), unique=True))
