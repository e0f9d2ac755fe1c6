"""On PostgreSQL a list page's statement is run by the driver itself (`_driver_page`): its rows,
order, total and instants are those SQLAlchemy's execution of the same statement gives, lists of
values included, and in a session whose time zone is not UTC."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from linli_issues.adapters import repository

pytestmark = pytest.mark.integration


def _sqlalchemys(connection, _shape, statement, parameters):  # noqa: ANN001, ANN202
    return connection.execute(statement, parameters).all()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_a_page_run_by_the_driver_answers_as_sqlalchemys_run_of_it(
    app, client, report, tokens, database, clock, monkeypatch, zone: str
) -> None:
    with database.engine.connect() as conn:
        conn.execute(text(f"ALTER DATABASE \"{database.engine.url.database}\" SET timezone = '{zone}'"))
        conn.commit()
    app.extensions["linli.database"].dispose()  # new connections, in that zone
    first, _ = report(title="Roof leaks again", urgency="low")
    clock.advance(hours=1)
    report(title="Parking blocked by a van", category="parking", urgency="urgent", compound_id=None)
    clock.advance(hours=1)
    report(title="Noise at night", category="neighbour_dispute", community_id=tokens.d.community_a2, compound_id=None)
    staff = tokens.staff()
    assert client.post(f"/{first['id']}/status", json={"status": "accepted"}, headers=staff).status_code == 200
    official = tokens.street_official()
    queries = [
        "",
        "sort=created_at",
        "status=reported,accepted",
        "status=reported,accepted&category=parking,repairs_facilities",
        "q=ROOF",
        f"community_id={tokens.d.community_a2}",
        "sort=-due_at&page_size=2",
        "page=2&page_size=2",
    ]

    def answers() -> list[tuple]:
        found = []
        for headers in (official, staff):
            for query in queries:
                response = client.get(f"/?{query}", headers=headers)
                assert response.status_code == 200, response.get_json()
                found.append((query, response.get_json(), json.loads(response.headers["X-Pagination"])))
        return found

    run_by_the_driver = repository._driver_page
    read: list[tuple] = []

    def recorded(*arguments):  # noqa: ANN002, ANN202
        rows = run_by_the_driver(*arguments)
        read.extend(rows)
        return rows

    monkeypatch.setattr(repository, "_driver_page", recorded)
    driven = answers()
    assert any(rows for _query, rows, _pages in driven)
    # The summaries' instants in UTC, as SQLAlchemy's type reads them, whatever the session's zone.
    instants = [row[i] for row in read for i in repository._SUMMARY_INSTANTS if row[i] is not None]
    assert instants and all(instant.utcoffset() == timedelta(0) for instant in instants)
    assert all(row["created_at"].endswith("Z") or row["created_at"].endswith("+00:00") for row in driven[0][1])
    monkeypatch.setattr(repository, "_driver_page", _sqlalchemys)
    assert answers() == driven
