"""A category routes to a real organisation (the compound's property company or owners' committee
from the register), and every change of who may read an issue goes out at once as
`issues.issue.visibility_changed`; on PostgreSQL and on SQLite."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert

from linli_issues.adapters.tables import replica
from linli_issues.service_layer import issues as use_cases
from linli_kit.events.catalogue import CATALOGUE

from .conftest import set_publication

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)]


@pytest.fixture(autouse=True)
def fresh_categories():
    """Categories are cached per process; a test that changes one must not leak it to the next
    test's database."""
    use_cases._category_cache.clear()
    yield
    use_cases._category_cache.clear()


def register(database, kind: str, compound_ids: list[str], *, active: bool = True) -> str:
    organisation_id = str(uuid.uuid4())
    assert replica.organisations is not None
    with database.transaction() as s:
        s.execute(
            insert(replica.organisations).values(
                organisation_id=organisation_id,
                kind=kind,
                name=f"{kind} {organisation_id[:4]}",
                street_id=None,
                community_id=None,
                compound_ids=compound_ids,
                parent_id=None,
                active=active,
                revision=1,
            )
        )
    return organisation_id


def test_a_compound_category_goes_to_the_compounds_company_when_reported(client, report, directory, outbox):
    issue, reporter = report()  # repairs: compound tier, the property company's
    assert (issue["assignee_type"], issue["assignee_id"]) == ("property_company", directory.property_company)
    assert outbox("issues.issue.reported")[-1][1]["assignee_id"] == directory.property_company
    [entry] = [
        e for e in client.get(f"/{issue['id']}/updates", headers=reporter).get_json() if e["kind"] == "assignment"
    ]
    assert entry["data"]["automatic"] is True and entry["body"] == "Shangpin Property"
    # Another compound's company is never chosen: East has its own.
    east, _ = report(compound_id=directory.compound_a1_east)
    assert east["assignee_id"] == directory.other_company


def test_the_owners_committee_and_none_or_several_leave_it_to_staff(client, report, tokens, directory, database):
    # No owners' committee registered yet: property management stays unassigned, even once accepted.
    issue, _ = report(category="property_management")
    assert (issue["assignee_type"], issue["assignee_id"]) == ("owners_committee", None)
    committee = register(database, "owners_committee", [directory.compound_a1])
    register(database, "owners_committee", [directory.compound_a1_east])
    register(database, "owners_committee", [directory.compound_a1], active=False)  # a retired one counts not
    later, _ = report(category="property_management")
    assert later["assignee_id"] == committee
    # Two property companies for one compound: staff choose (the issue keeps no assignee).
    register(database, "property_company", [directory.compound_a1])
    ambiguous, _ = report()
    assert ambiguous["assignee_id"] is None
    # A report with no compound cannot be routed.
    nowhere, _ = report(compound_id=None, category="parking")
    assert nowhere["assignee_id"] is None


def test_an_issue_is_routed_when_accepted_if_its_category_starts_above_the_compound(
    client, report, tokens, directory, database, outbox
):
    admin = tokens.admin()
    category = {c["key"]: c for c in client.get("/categories").get_json()}["safety_hazard"]
    body = {k: v for k, v in category.items() if k not in ("key", "label")} | {"responsible_body": "property_company"}
    assert client.put("/categories/safety_hazard", json=body, headers=admin).status_code == 200
    issue, _ = report(category="safety_hazard", title="Loose balcony railing")
    assert (issue["tier"], issue["assignee_id"]) == ("community", None)  # reported: not yet
    accepted = client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=tokens.staff())
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["assignee_id"] == directory.property_company
    assert outbox("issues.issue.accepted")[-1][1]["assignee_id"] == directory.property_company


def test_marking_private_and_narrowing_a_category_publish_visibility_changed(client, report, tokens, outbox, directory):
    staff = tokens.staff()
    issue, _ = report()
    assert issue["visibility"] == "community"
    # Nothing changes, nothing is told: a bad body is a 422 naming the field.
    bad = client.put(f"/{issue['id']}/privacy", json={"private": "perhaps"}, headers=staff)
    assert bad.status_code == 422 and "private" in bad.get_json()["error"]["fields"]
    assert client.put(f"/{issue['id']}/privacy", json={"private": True}, headers=tokens.resident()).status_code in (
        403,
        404,
    )
    assert outbox("issues.issue.visibility_changed") == []

    assert (
        client.put(
            f"/{issue['id']}/privacy", json={"private": True, "reason": "names a tenant"}, headers=staff
        ).status_code
        == 200
    )
    assert (
        client.put(f"/{issue['id']}/privacy", json={"private": True}, headers=staff).status_code == 200
    )  # again: no news
    assert client.put(f"/{issue['id']}/privacy", json={"private": False}, headers=staff).status_code == 200
    told = [d for _, d in outbox("issues.issue.visibility_changed")]
    assert [(d["from_visibility"], d["visibility"], d["cause"]) for d in told] == [
        ("community", "private", "marked_private"),
        ("private", "community", "unmarked_private"),
    ]
    assert told[0]["reason"] == "names a tenant" and told[0]["revision"] < told[1]["revision"]
    for data in told:
        CATALOGUE.validate("issues.issue.visibility_changed", 1, data)

    # The city narrows repairs to private: each issue whose readers change is told; an anonymous one
    # (private already) is not.
    anonymous, _ = report(anonymous=True)
    set_publication(client, tokens.admin(), "private", ["repairs_facilities"])
    narrowed = [d for _, d in outbox("issues.issue.visibility_changed")][2:]
    assert [(d["issue_id"], d["from_visibility"], d["visibility"], d["cause"]) for d in narrowed] == [
        (issue["id"], "community", "private", "category_narrowed")
    ]
    assert anonymous["id"] not in {d["issue_id"] for d in narrowed}
    assert client.get(f"/{issue['id']}", headers=staff).get_json()["visibility"] == "private"
