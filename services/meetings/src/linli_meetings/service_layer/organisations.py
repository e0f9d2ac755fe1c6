"""Bodies named in a meeting - a participant of the role party_organisation or an owners' committee
invited as a body (its members vote for it), an action item
owned by the body party_organisation - are organisations of the register (the gateway's, kept in
the replica from `directory.organisation.upserted`): registered, active, a party_organisation or
party_branch, of the meeting's community or of its street. The name is the register's unless the
staff give one. Anything else is refused with a 422 naming the field."""

from __future__ import annotations

from typing import Any

from linli_kit.errors import Invalid, Text
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

PARTY_KINDS = ("party_organisation", "party_branch")


def party_body(uow: MeetingsUnitOfWork, community_id: str, organisation_id: str, field: str) -> dict[str, Any]:
    """The registered party body `organisation_id`, if it may take part in the community's
    meetings; otherwise Invalid naming `field`."""
    organisation = uow.meetings.organisation(str(organisation_id))
    if organisation is None or not organisation["active"]:
        raise Invalid("unknown party organisation", fields={field: ["no such registered, active organisation"]})
    if organisation["kind"] not in PARTY_KINDS:
        raise Invalid(
            "not a party organisation",
            fields={field: [Text("a {kind}, not a party organisation or branch", kind=organisation["kind"])]},
        )
    if organisation["compound_ids"]:
        serves = community_id in {uow.meetings.community_of_compound(c) for c in organisation["compound_ids"]}
    elif organisation["community_id"] is not None:
        serves = organisation["community_id"] == community_id
    else:
        street = uow.meetings.street_of(community_id)
        serves = organisation["street_id"] is not None and organisation["street_id"] == street
    if not serves:
        raise Invalid(
            "the party organisation is not of this community",
            fields={field: ["not a party organisation of the meeting's community or street"]},
        )
    return organisation


def named_participants(
    uow: MeetingsUnitOfWork, community_id: str, people: list[dict[str, Any]], prefix: str = "participants."
) -> list[dict[str, Any]]:
    """The invitation list with each party organisation checked against the register and named."""
    named = []
    for n, person in enumerate(people):
        named.append(named_participant(uow, community_id, person, f"{prefix}{n}."))
    return named


def committee_body(uow: MeetingsUnitOfWork, community_id: str, organisation_id: str, field: str) -> dict[str, Any]:
    """The registered owners' committee `organisation_id`, if it is of a compound of the
    community; otherwise Invalid naming `field`."""
    organisation = uow.meetings.organisation(str(organisation_id))
    if organisation is None or not organisation["active"]:
        raise Invalid("unknown owners' committee", fields={field: ["no such registered, active organisation"]})
    if organisation["kind"] != "owners_committee":
        raise Invalid(
            "not an owners' committee",
            fields={field: [Text("a {kind}, not an owners' committee", kind=organisation["kind"])]},
        )
    if community_id not in {uow.meetings.community_of_compound(c) for c in organisation["compound_ids"]}:
        raise Invalid(
            "the owners' committee is not of this community",
            fields={field: ["not the committee of a compound of the meeting's community"]},
        )
    return organisation


def named_participant(
    uow: MeetingsUnitOfWork, community_id: str, person: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
    if person.get("role") == "owners_committee" and person.get("organisation_id") and not person.get("user_id"):
        # The committee invited as a body: a registered one of this community, named by the register.
        body = committee_body(uow, community_id, person["organisation_id"], prefix + "organisation_id")
        return person | {
            "organisation_id": str(person["organisation_id"]),
            "organisation_name": person.get("organisation_name") or body["name"],
        }
    if person.get("role") != "party_organisation" or not person.get("organisation_id"):
        return person  # the domain says what is missing
    body = party_body(uow, community_id, person["organisation_id"], prefix + "organisation_id")
    return person | {
        "organisation_id": str(person["organisation_id"]),
        "organisation_name": person.get("organisation_name") or body["name"],
    }


def named_owners(uow: MeetingsUnitOfWork, community_id: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proposed action items with each party organisation owner checked and named."""
    return [named_owner(uow, community_id, a, f"action_items.{n}.") for n, a in enumerate(actions)]


def named_owner(uow: MeetingsUnitOfWork, community_id: str, action: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    if action.get("owner_body") != "party_organisation" or not action.get("owner_organisation_id"):
        return action
    body = party_body(uow, community_id, action["owner_organisation_id"], prefix + "owner_organisation_id")
    return action | {
        "owner_organisation_id": str(action["owner_organisation_id"]),
        "owner_organisation_name": action.get("owner_organisation_name") or body["name"],
    }
