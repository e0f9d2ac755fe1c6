"""The register of organisations: who registers which body, where each lies, what accounts may act
for, and the events that replicate it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from linli_gateway.adapters.tables import messaging
from linli_gateway.domain.accounts import AccountError
from linli_gateway.domain.directory import ORGANISATION_KINDS
from linli_gateway.service_layer import accounts, directory
from linli_kit.auth import Principal, Role, TokenSigner
from linli_kit.errors import Conflict, Forbidden, Invalid
from linli_kit.events.catalogue import CATALOGUE
from linli_kit.events.contracts.directory import ORGANISATION_KINDS as CONTRACT_KINDS

ADMIN = Principal(user_id="admin", role=Role.CITY_ADMIN)


@dataclass
class City:
    east: str
    west: str
    yucai: str  # east
    lake: str  # east
    xihu: str  # west
    garden: str  # yucai
    tower: str  # yucai
    pier: str  # lake
    willow: str  # xihu

    def official(self, street: str) -> Principal:
        return Principal(user_id=f"official-{street}", role=Role.STREET_OFFICIAL, street_id=street)

    def staff(self, community: str) -> Principal:
        return Principal(user_id=f"staff-{community}", role=Role.COMMUNITY_STAFF, community_ids=(community,))


@pytest.fixture
def city(uow) -> City:
    east = directory.create_street(uow(), ADMIN, name="East", city="Lingwu").id
    west = directory.create_street(uow(), ADMIN, name="West", city="Lingwu").id
    yucai = directory.create_community(uow(), ADMIN, street_id=east, name="Yucai").id
    lake = directory.create_community(uow(), ADMIN, street_id=east, name="Lake").id
    xihu = directory.create_community(uow(), ADMIN, street_id=west, name="Xihu").id
    compound = lambda community, name: directory.create_compound(uow(), ADMIN, community_id=community, name=name).id  # noqa: E731
    return City(
        east,
        west,
        yucai,
        lake,
        xihu,
        compound(yucai, "Garden"),
        compound(yucai, "Tower"),
        compound(lake, "Pier"),
        compound(xihu, "Willow"),
    )


def organisation_events(database) -> list[dict]:
    with database.session() as session:
        rows = session.scalars(
            select(messaging.outbox.c.payload).where(messaging.outbox.c.event_type == "directory.organisation.upserted")
        )
        return [json.loads(row) for row in rows]


def test_the_register_knows_the_kinds_the_event_contract_names():
    assert ORGANISATION_KINDS == CONTRACT_KINDS


def test_each_role_registers_the_bodies_it_owns_and_no_others(uow, city, database):
    create = directory.create_organisation
    # A city admin: city-wide bureaus. A street official: their street's, not the city's, not another's.
    housing = create(uow(), ADMIN, kind="bureau", name="Housing Bureau")
    assert housing.city_wide
    east_office = create(uow(), city.official(city.east), kind="agency", name="Street Office", street_id=city.east)
    for attempt in (
        lambda: create(uow(), city.official(city.east), kind="bureau", name="Police"),
        lambda: create(uow(), city.official(city.east), kind="bureau", name="Police", street_id=city.west),
        lambda: create(uow(), city.staff(city.yucai), kind="bureau", name="Police", street_id=city.east),
        lambda: create(
            uow(), Principal(user_id="r", role=Role.RESIDENT, community_ids=(city.yucai,)), kind="owners_committee",
            name="Committee", compound_ids=[city.garden],
        ),
        # Community staff: their compounds only.
        lambda: create(uow(), city.staff(city.yucai), kind="property_company", name="Vanke", compound_ids=[city.pier]),
        lambda: create(
            uow(), city.staff(city.yucai), kind="party_organisation", name="Party", community_id=city.lake
        ),
    ):  # fmt: skip
        with pytest.raises(Forbidden):
            attempt()
    company = create(
        uow(), city.staff(city.yucai), kind="property_company", name="Shangpin", compound_ids=[city.tower, city.garden]
    )
    assert company.compound_ids == sorted([city.tower, city.garden]) and company.street_id is None
    committee = create(
        uow(), city.staff(city.yucai), kind="owners_committee", name="Garden OC", compound_ids=[city.garden]
    )
    assert committee.community_id == city.yucai
    party = create(uow(), city.official(city.east), kind="party_organisation", name="East Party", street_id=city.east)
    branch = create(uow(), city.staff(city.yucai), kind="party_branch", name="Yucai Branch", parent_id=party.id,
                    community_id=city.yucai)  # fmt: skip
    assert (branch.street_id, branch.community_id) == (None, city.yucai)
    registered = {o.id for o in (housing, east_office, company, committee, party, branch)}
    assert {o.id for o in directory.list_organisations(uow(), offset=0, limit=50)[0]} == registered
    # Each registration went out once, and nothing refused did.
    assert sorted(e["data"]["organisation_id"] for e in organisation_events(database)) == sorted(registered)


def test_placement_mistakes_name_the_field_and_store_nothing(uow, city, database):
    create = directory.create_organisation
    party = create(uow(), ADMIN, kind="party_organisation", name="Yucai Party", community_id=city.yucai)
    mistakes = [
        ({"kind": "bureau", "compound_ids": [city.garden]}, "compound_ids"),
        ({"kind": "bureau", "community_id": city.yucai}, "community_id"),
        ({"kind": "property_company"}, "compound_ids"),
        ({"kind": "property_company", "compound_ids": [city.garden], "street_id": city.east}, "street_id"),
        ({"kind": "owners_committee", "compound_ids": [city.garden, city.tower]}, "compound_ids"),
        ({"kind": "party_organisation", "street_id": city.east, "community_id": city.yucai}, "street_id"),
        ({"kind": "party_branch"}, "parent_id"),
        ({"kind": "party_branch", "parent_id": city.garden}, "parent_id"),
        ({"kind": "party_branch", "parent_id": party.id, "community_id": city.lake}, "community_id"),
        ({"kind": "bureau", "parent_id": party.id}, "parent_id"),
        ({"kind": "property_company", "compound_ids": ["00000000-0000-4000-8000-000000000000"]}, "compound_ids"),
        ({"kind": "bureau", "street_id": "00000000-0000-4000-8000-000000000000"}, "street_id"),
        ({"kind": "garage"}, "kind"),
    ]
    for body, field_name in mistakes:
        with pytest.raises(Invalid) as caught:
            create(uow(), ADMIN, name="Mistake", **body)
        assert field_name in caught.value.fields, (body, caught.value.fields)
    assert directory.list_organisations(uow(), offset=0, limit=50, name="Mistake") == ([], 0)
    assert len(organisation_events(database)) == 1


def test_one_committee_and_one_company_per_compound_and_a_company_name_is_the_citys(uow, city):
    create = directory.create_organisation
    vanke = create(uow(), city.staff(city.yucai), kind="property_company", name="Vanke", compound_ids=[city.garden])
    create(uow(), ADMIN, kind="owners_committee", name="Garden OC", compound_ids=[city.garden])
    with pytest.raises(Conflict) as caught:
        create(uow(), ADMIN, kind="owners_committee", name="Another OC", compound_ids=[city.garden])
    assert "compound_ids" in caught.value.fields
    with pytest.raises(Conflict) as caught:
        create(uow(), ADMIN, kind="property_company", name="Greentown", compound_ids=[city.tower, city.garden])
    assert "compound_ids" in caught.value.fields
    # Lake's staff cannot register Vanke again: they bind their compound to it.
    with pytest.raises(Conflict) as caught:
        create(uow(), city.staff(city.lake), kind="property_company", name="Vanke", compound_ids=[city.pier])
    assert vanke.id in caught.value.message
    both = directory.update_organisation(uow(), city.staff(city.lake), vanke.id, compound_ids=[city.garden, city.pier])
    assert both.compound_ids == sorted([city.garden, city.pier]) and both.revision == 2
    # ...but may neither rename it, nor unbind Yucai's compound, nor bind another's.
    for attempt in (
        lambda: directory.update_organisation(uow(), city.staff(city.lake), vanke.id, name="Vanke Lake"),
        lambda: directory.update_organisation(uow(), city.staff(city.lake), vanke.id, compound_ids=[city.pier]),
        lambda: directory.update_organisation(
            uow(), city.staff(city.lake), vanke.id, compound_ids=[city.garden, city.pier, city.willow]
        ),
        lambda: directory.update_organisation(uow(), city.official(city.west), vanke.id, active=False),
    ):
        with pytest.raises(Forbidden):
            attempt()
    assert directory.get_entry(uow(), directory.Organisation, vanke.id).revision == 2
    # The street official of both communities renames it.
    assert directory.update_organisation(uow(), city.official(city.east), vanke.id, name="Vanke Service").revision == 3


def test_the_register_lists_by_kind_place_and_name(uow, city):
    create = directory.create_organisation
    housing = create(uow(), ADMIN, kind="bureau", name="Housing Bureau")
    east_office = create(uow(), ADMIN, kind="agency", name="East Street Office", street_id=city.east)
    vanke = create(uow(), ADMIN, kind="property_company", name="Vanke", compound_ids=[city.garden, city.willow])
    oc = create(uow(), ADMIN, kind="owners_committee", name="Pier OC", compound_ids=[city.pier])
    party = create(uow(), ADMIN, kind="party_organisation", name="Xihu Party", community_id=city.xihu)

    def ids(**filters) -> set[str]:
        items, total = directory.list_organisations(uow(), offset=0, limit=50, **filters)
        assert total == len(items)
        return {o.id for o in items}

    assert ids() == {housing.id, east_office.id, vanke.id, oc.id, party.id}
    assert ids(community_id=city.yucai) == {vanke.id}
    assert ids(community_id=city.xihu) == {vanke.id, party.id}
    assert ids(street_id=city.east) == {east_office.id, vanke.id, oc.id}
    assert ids(street_id=city.west) == {vanke.id, party.id}
    assert ids(compound_id=city.pier) == {oc.id}
    assert ids(kind="bureau") == {housing.id}
    assert ids(name="VAN") == {vanke.id}
    assert ids(name="%") == set()
    directory.update_organisation(uow(), ADMIN, housing.id, active=False)
    assert ids(active=True) == {east_office.id, vanke.id, oc.id, party.id}


def test_every_change_is_an_event_the_contract_accepts_and_republishing_sends_them_again(uow, city, database):
    vanke = directory.create_organisation(
        uow(), city.staff(city.yucai), kind="property_company", name="Vanke", compound_ids=[city.garden]
    )
    directory.update_organisation(uow(), ADMIN, vanke.id, name="Vanke Service")
    events = organisation_events(database)
    assert [e["data"]["revision"] for e in events] == [1, 2]
    for event in events:
        CATALOGUE.validate(event["type"], event.get("version", 1), event["data"])
    last = events[-1]
    assert last["data"] | {} == {
        "organisation_id": vanke.id,
        "kind": "property_company",
        "name": "Vanke Service",
        "street_id": None,
        "community_id": None,
        "compound_ids": [city.garden],
        "parent_id": None,
        "active": True,
        "revision": 2,
    }
    assert (last["street_id"], last["community_id"]) == (city.east, city.yucai)
    directory.republish_directory(uow())
    assert len(organisation_events(database)) == 3


def test_accounts_of_a_company_or_bureau_act_for_a_registered_one_in_the_creators_scope(uow, city):
    identity = accounts.Identity(TokenSigner(_private_key(), issuer="linli-gateway"))
    vanke = directory.create_organisation(
        uow(), ADMIN, kind="property_company", name="Vanke", compound_ids=[city.garden]
    )
    housing = directory.create_organisation(uow(), ADMIN, kind="bureau", name="Housing Bureau")
    east_office = directory.create_organisation(uow(), ADMIN, kind="agency", name="East Office", street_id=city.east)
    official = city.official(city.east)

    def register(creator: Principal, role: str, organisation_id: str | None, communities=(), **kw):
        return accounts.register_user(
            uow(), creator, identity, display_name="Someone", role=role, community_ids=list(communities),
            organisation_id=organisation_id, **kw,
        )  # fmt: skip

    refused = [
        (official, "property_manager", "00000000-0000-4000-8000-000000000000", [city.yucai], "invalid"),
        (official, "property_manager", housing.id, [city.yucai], "invalid"),  # a bureau is not a company
        (official, "property_manager", vanke.id, [city.lake], "invalid"),  # Vanke serves nothing in Lake
        (official, "agency", vanke.id, [], "invalid"),
        (official, "agency", housing.id, [], "forbidden"),  # a city-wide bureau: the city admin's
        (city.official(city.west), "agency", east_office.id, [], "forbidden"),
        (official, "resident", vanke.id, [city.yucai], "invalid"),
    ]
    for creator, role, organisation_id, communities, kind in refused:
        with pytest.raises(AccountError) as caught:
            register(creator, role, organisation_id, communities)
        assert caught.value.kind == kind, (role, caught.value.message)
        assert caught.value.field_name in {"organisation_id", "community_ids"}, caught.value.message
    manager = register(official, "property_manager", vanke.id, [city.yucai], organisation_name="Made Up")
    assert manager.organisation_name == "Vanke"
    clerk = register(official, "agency", east_office.id)
    assert clerk.organisation_name == "East Office"
    assert register(ADMIN, "agency", housing.id).organisation_name == "Housing Bureau"
    # The register names them: a rename follows to the accounts.
    directory.update_organisation(uow(), ADMIN, vanke.id, name="Vanke Service")
    assert accounts.get_user(uow(), ADMIN, manager.id).organisation_name == "Vanke Service"
    # A deactivated organisation takes no new accounts.
    directory.update_organisation(uow(), ADMIN, east_office.id, active=False)
    with pytest.raises(AccountError) as caught:
        register(official, "agency", east_office.id)
    assert caught.value.field_name == "organisation_id"


def test_a_resident_may_sit_on_the_owners_committee_of_a_compound_of_their_community(uow, city):
    """A committee member is a resident acting for the committee: their token names it."""
    identity = accounts.Identity(TokenSigner(_private_key(), issuer="linli-gateway"))
    garden_oc = directory.create_organisation(
        uow(), city.staff(city.yucai), kind="owners_committee", name="Garden OC", compound_ids=[city.garden]
    )
    pier_oc = directory.create_organisation(
        uow(), city.staff(city.lake), kind="owners_committee", name="Pier OC", compound_ids=[city.pier]
    )
    vanke = directory.create_organisation(
        uow(), city.staff(city.yucai), kind="property_company", name="Vanke", compound_ids=[city.tower]
    )

    def register(creator: Principal, organisation_id: str, community: str):
        return accounts.register_user(
            uow(), creator, identity, display_name="Owner", role="resident", community_ids=[community],
            organisation_id=organisation_id,
        )  # fmt: skip

    refused = [
        # Scope before state: another community's staff learn nothing of the committee.
        (city.staff(city.lake), garden_oc.id, city.lake, "forbidden"),
        (city.staff(city.yucai), pier_oc.id, city.yucai, "forbidden"),
        (city.staff(city.yucai), vanke.id, city.yucai, "invalid"),  # a company is no committee
        (city.official(city.east), pier_oc.id, city.yucai, "invalid"),  # the Pier is in Lake, not Yucai
        (city.staff(city.yucai), "00000000-0000-4000-8000-000000000000", city.yucai, "invalid"),
    ]
    for creator, organisation_id, community, kind in refused:
        with pytest.raises(AccountError) as caught:
            register(creator, organisation_id, community)
        assert (caught.value.kind, caught.value.field_name) == (kind, "organisation_id"), caught.value.message
    member = register(city.staff(city.yucai), garden_oc.id, city.yucai)
    assert (member.role, member.organisation_id, member.organisation_name) == ("resident", garden_oc.id, "Garden OC")
    assert member.claims_scope()["organisation_id"] == garden_oc.id
    # A committee that stood down takes no new members.
    directory.update_organisation(uow(), city.staff(city.yucai), garden_oc.id, active=False)
    with pytest.raises(AccountError) as caught:
        register(city.staff(city.yucai), garden_oc.id, city.yucai)
    assert caught.value.field_name == "organisation_id"


def _private_key() -> str:
    from linli_kit.keys import generate_keypair

    return generate_keypair()[0]


def test_the_register_over_http(client, token_signer):
    def bearer(**claims) -> dict[str, str]:
        return {"Authorization": "Bearer " + token_signer.sign(**claims)}

    admin = bearer(user_id="admin", role="city_admin")
    street = client.post("/api/v1/directory/streets", json={"name": "East"}, headers=admin).get_json()["id"]
    community = client.post(
        "/api/v1/directory/communities", json={"street_id": street, "name": "Yucai"}, headers=admin
    ).get_json()["id"]
    compound = client.post(
        "/api/v1/directory/compounds", json={"community_id": community, "name": "Garden"}, headers=admin
    ).get_json()["id"]
    staff = bearer(user_id="staff", role="community_staff", community_ids=[community])
    url = "/api/v1/directory/organisations"

    made = client.post(
        url, json={"kind": "property_company", "name": "Vanke", "compound_ids": [compound]}, headers=staff
    )
    assert made.status_code == 201, made.get_json()
    company = made.get_json()
    assert company["compound_ids"] == [compound] and company["active"] is True and company["revision"] == 1
    refused = client.post(url, json={"kind": "bureau", "name": "Police"}, headers=staff)
    assert refused.status_code == 403
    bad = client.post(url, json={"kind": "bureau", "name": "Police", "compound_ids": [compound]}, headers=admin)
    assert bad.status_code == 422 and "compound_ids" in bad.get_json()["error"]["fields"]
    assert client.post(url, json={"kind": "bureau", "name": "Police"}).status_code == 401

    listed = client.get(f"{url}?community_id={community}&kind=property_company")
    assert listed.status_code == 200 and [o["id"] for o in listed.get_json()] == [company["id"]]
    assert listed.headers["X-Pagination"]
    assert client.get(f"{url}?kind=garage").status_code == 422
    assert client.get(f"{url}/{company['id']}").get_json()["name"] == "Vanke"
    assert client.get(f"{url}/00000000-0000-4000-8000-000000000000").status_code == 404
    renamed = client.patch(f"{url}/{company['id']}", json={"name": "Vanke Service"}, headers=staff)
    assert renamed.status_code == 200 and renamed.get_json()["revision"] == 2

    # A property manager's account names the registered company; a made-up one is refused.
    body = {"display_name": "Manager", "role": "property_manager", "community_ids": [community]}
    unknown = client.post(
        "/api/v1/auth/users", json=body | {"organisation_id": "00000000-0000-4000-8000-000000000000"}, headers=admin
    )
    assert unknown.status_code == 422 and "organisation_id" in unknown.get_json()["error"]["fields"]
    manager = client.post("/api/v1/auth/users", json=body | {"organisation_id": company["id"]}, headers=admin)
    assert manager.status_code == 201 and manager.get_json()["organisation_name"] == "Vanke Service"
