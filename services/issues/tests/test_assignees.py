"""An issue is assigned to a registered organisation that serves its place, known from the
replicated register of organisations (`directory.organisation.upserted`)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from linli_issues.adapters.tables import replica
from linli_kit.events import new_event
from linli_kit.replica import replica_handlers

pytestmark = pytest.mark.integration


def organisation_event(organisation_id: str, revision: int, **data) -> object:
    body = {"organisation_id": organisation_id, "kind": "bureau", "name": "Water Bureau", "revision": revision}
    return new_event("directory.organisation.upserted", body | data, producer="gateway")


def test_the_replica_keeps_the_newest_revision_of_each_organisation(database):
    handle = replica_handlers(replica)["directory.organisation.upserted"]
    water = str(uuid.uuid4())
    with database.transaction() as session:
        handle(session, organisation_event(water, 2, name="Water Bureau"))
        handle(session, organisation_event(water, 1, name="Old Name"))  # late: ignored
        handle(session, organisation_event(water, 3, name="Water Affairs Bureau", active=False))
    with database.session() as session:
        row = session.execute(select(replica.organisations).where(replica.organisations.c.organisation_id == water))
        stored = dict(row.one()._mapping)
    assert stored["name"] == "Water Affairs Bureau" and stored["active"] is False and stored["revision"] == 3
    assert stored["compound_ids"] == [] and stored["street_id"] is None


def test_an_issue_goes_only_to_a_registered_organisation_that_serves_its_community(
    client, tokens, report, outbox, database
):
    issue, _ = report()
    staff = tokens.staff()
    url = f"/{issue['id']}/assignment"
    handle = replica_handlers(replica)["directory.organisation.upserted"]
    other_street_bureau, lake_company, retired = (str(uuid.uuid4()) for _ in range(3))
    with database.transaction() as session:
        handle(session, organisation_event(other_street_bureau, 1, street_id=tokens.d.street_b))
        handle(
            session,
            organisation_event(
                lake_company, 1, kind="property_company", name="Lake Property", compound_ids=[tokens.d.compound_b1]
            ),
        )
        handle(session, organisation_event(retired, 1, active=False))

    refused = [
        ("bureau", str(uuid.uuid4())),  # nobody registered it
        ("bureau", retired),
        ("property_company", tokens.bureau),  # a bureau is not a property company
        ("bureau", other_street_bureau),  # another street's bureau
        ("property_company", lake_company),  # serves no compound of this community
    ]
    for assignee_type, assignee_id in refused:
        response = client.put(url, json={"assignee_type": assignee_type, "assignee_id": assignee_id}, headers=staff)
        assert response.status_code == 422, (assignee_type, response.get_json())
        assert "assignee_id" in response.get_json()["error"]["fields"]
    assert [t for t, _ in outbox()] == ["issues.issue.reported"]

    to_company = client.put(
        url, json={"assignee_type": "property_company", "assignee_id": tokens.property_company}, headers=staff
    )
    assert to_company.status_code == 200 and to_company.get_json()["assignee_id"] == tokens.property_company
    to_bureau = client.put(url, json={"assignee_type": "bureau", "assignee_id": tokens.bureau}, headers=staff)
    assert to_bureau.status_code == 200
    # Naming only the kind of body, with no organisation, stays possible.
    assert client.put(url, json={"assignee_type": "community"}, headers=staff).status_code == 200
