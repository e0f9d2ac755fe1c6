"""The SQL statements a report and a list page cost, pinned: each statement is a round trip to the
database, and these two routes are the hottest (bench/issues_http.py). A change that adds one fails
here; one that removes one updates the numbers."""

from __future__ import annotations

from sqlalchemy import func, select

from linli_issues.adapters.tables import issue_month_counts

# The pool's liveness check comes on top of these (and BEGIN and COMMIT or ROLLBACK where there is a
# transaction: neither is one, each statement runs in autocommit).
REPORT_STATEMENTS = 1  # from the context held: the issue, its entry, its counts and its event in one
LIST_STATEMENTS = 1  # the page with its total


def test_a_report_and_a_list_page_cost_a_fixed_number_of_statements(
    statements, app, client, directory, tokens, database
):
    body = {
        "community_id": directory.community_a1,
        "title": "Roof of Building 7 leaks",
        "description": "Rain comes through the roof into the top-floor flats.",
        "category": "repairs_facilities",
        "urgency": "high",
    }
    resident = tokens.resident()
    assert client.post("/", json=body, headers=resident).status_code == 201  # categories cached, pool warm
    with statements(app) as seen:
        response = client.post("/", json=body, headers=resident)
    assert response.status_code == 201, response.get_json()
    assert len(seen) == REPORT_STATEMENTS, seen
    # The counts were kept (written at the commit): both reports raised in the community's month.
    with database.session() as s:
        raised = s.scalar(
            select(func.sum(issue_month_counts.c.raised)).where(
                issue_month_counts.c.community_id == directory.community_a1
            )
        )
    assert raised == 2

    path = f"/?community_id={directory.community_a1}&status=reported&sort=-created_at&page_size=20"
    with statements(app) as seen:
        response = client.get(path, headers=tokens.staff())
    assert response.status_code == 200
    assert len(response.get_json()) == 2
    assert len(seen) == LIST_STATEMENTS, seen
    # Past the last page the total still comes (one more statement).
    with statements(app) as seen:
        response = client.get(path + "&page=2", headers=tokens.staff())
    assert response.status_code == 200 and response.get_json() == []
    assert len(seen) == LIST_STATEMENTS + 1, seen
