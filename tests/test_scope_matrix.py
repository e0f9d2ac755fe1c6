"""Every role × own and foreign scope × every operation of the gateway's merged OpenAPI document.

The operations are read from `/api/openapi.json` as the running gateway serves it, so an endpoint
added to any service is in the matrix the day it is added: the test fails until it is either
exercised (it is, as long as its path parameters are known below) or listed in EXEMPT with the
reason. Nobody has to remember to add it.

The city is the demo city of `demo_platform` (conftest.py; Chengqu street, the story's people, the
cultural wall, its round-table, the sports day). The foreign scope is a second street seeded here
through the public API: Guojiaqiao's Nanmen community with its compound, property company, owners'
committee, street office, people of every role, two issues (one routed to the committee, one
assigned to the company) with a reply, an inspection and a photo, a round-table with an agenda
item, a participant and a motion, a resident's proposal, an activity with a registration, a
mutual-aid group, a door-to-door offering and a booking, a follow, an Open311 request under a
street key.

For each role (one person of Chengqu each) the matrix sends:
- every read with own-scope ids: never a server error, never anything of Nanmen in the body;
- every read with Nanmen's ids (path and query): 403 or 404 when a Nanmen id is in the path, and
  never a Nanmen id, title or phone number in the body, whatever the status;
- every write aimed at Nanmen (its ids in the path or the body): refused (400/403/404/405/422;
  never 2xx, and never 409, which would tell state before scope), with no Nanmen data in the answer;
  writes that name nothing of Nanmen act on the caller's own things and are only searched.
Then Nanmen, read by its own staff and people, must be exactly as before the writes.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from linli_demo import story
from linli_demo.client import Session

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

METHODS = ("get", "post", "put", "patch", "delete")

# Operations the matrix does not send, each with the reason. Everything else in the document is sent.
EXEMPT: dict[tuple[str, str], str] = {
    # Signing in, up and out: no scope to cross (they take a phone number and a secret, not ids),
    # and logging out would end the session the matrix runs with. Tested in tests/test_gateway.py
    # and gateway/tests (limits, lockouts, revocation).
    ("POST", "/api/v1/auth/codes"): "sign-in: phone number only",
    ("POST", "/api/v1/auth/login"): "sign-in: phone number and password",
    ("POST", "/api/v1/auth/logout"): "ends the matrix's session",
    ("POST", "/api/v1/auth/password-reset"): "sign-in: phone number and code",
    ("POST", "/api/v1/auth/refresh"): "sign-in: a refresh token",
    ("POST", "/api/v1/auth/signup"): "sign-in: phone number and code",
    # Providers' callbacks: no user token, each provider authenticates as it documents; tested in
    # services/notifications/tests (receipts).
    ("POST", "/api/v1/notifications/receipts/aliyun/reply"): "provider callback, no user",
    ("POST", "/api/v1/notifications/receipts/aliyun/report"): "provider callback, no user",
    ("POST", "/api/v1/notifications/receipts/twilio/inbound"): "provider callback, no user",
    ("POST", "/api/v1/notifications/receipts/twilio/status"): "provider callback, no user",
}

# Reads whose answers are public by design (the directory, the categories, the platform's own
# settings): Nanmen's streets, communities, compounds and organisations are in them for everyone.
# They are still sent by every role and must not fail; Nanmen's issues, people and meetings must
# not be in them, which the search checks.
# Calendars are public too: a published activity's and a public meeting's .ics (and a community's
# feed of them) are made to be subscribed to without an account, and so is a community's public
# noticeboard (公示): what its public meetings decided, read without signing in.
PUBLIC_READS = re.compile(
    r"^/api/v1/directory/|^/api/v1/issues/categories$|^/api/v1/meetings/types$|\.ics$|^/api/v1/meetings/noticeboard$"
)

# Path parameters: which seeded thing fills each, by name; a few names mean different things on
# different paths (an agenda item or an action item), told apart by the path.
PARAMETER_THINGS = {
    "issue_id": "issue",
    "meeting_id": "meeting",
    "decision_id": "motion",
    "activity_id": "activity",
    "registration_id": "registration",
    "booking_id": "booking",
    "group_id": "group",
    "community_id": "community",
    "street_id": "street",
    "compound_id": "compound",
    "organisation_id": "company",
    "user_id": "resident",
    "proposal_id": "proposal",
    "photo_id": "photo",
    "participant_id": "participant",
    "notification_id": "notification",
    "key_id": "api_key",
    "target_id": "issue",
    "request_id": "issue",
    # Families with nothing seeded in either scope: an unknown id (the matrix still checks the
    # answer is a refusal for foreign callers, not an error, and carries nothing of Nanmen).
    "festival_id": "none",
    "series_id": "none",
    "post_id": "none",
    "flag_id": "none",
    "talent_id": "none",
    "round_id": "none",
    "finding_id": "none",
    "match_id": "none",
    "broadcast_id": "none",
    "delivery_id": "none",
    "device_id": "none",
    "token": "none",
}
PATH_PARAMETER_OVERRIDES = {
    ("/api/v1/meetings/{meeting_id}/agenda/{item_id}", "item_id"): "agenda_item",
    ("/api/v1/meetings/action-items/{item_id}", "item_id"): "none",
}
FIXED_PARAMETERS = {"fmt": "json", "target_type": "issue", "key": "other", "code": "other"}
# Query and body fields holding ids: the same things, so a list filtered by Nanmen's community, a
# motion about Nanmen's issue or a booking for Nanmen's resident is what is sent.
FIELD_THINGS = {
    **PARAMETER_THINGS,
    "community_ids": "community",
    "compound_ids": "compound",
    "issue_ids": "issue",
    "assignee_id": "company",
    "owner_organisation_id": "company",
    "resident_id": "resident",
    "owner_user_id": "resident",
    "coordinator_id": "resident",
    "helper_id": "resident",
    "offering_id": "offering",
    "agenda_item_id": "agenda_item",
    "duplicate_of": "issue",
    # Searches (and the issue list's `q`) look for the words of the scope's own things.
    "q": "words",
}
# Bodies the schema alone does not make acceptable (a pattern, a choice that decides the target):
# merged over the generated one, so the write reaches the scope check it is meant to meet.
BODY_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/notifications/follows"): {"target_type": "issue"},
    ("POST", "/api/v1/meetings/"): {"meeting_type": "round_table"},
    ("POST", "/api/v1/meetings/series"): {"meeting_type": "bench", "start_time": "19:00", "count": 2},
    ("POST", "/api/v1/activities/series"): {"start_time": "09:00", "count": 2},
    ("POST", "/api/v1/meetings/{meeting_id}/participants"): {"role": "resident_representative", "name": "Guest"},
    ("POST", "/api/v1/meetings/{meeting_id}/check-in"): {"code": "123456"},
}
ROLES = (
    "city_admin",
    "street_official",
    "community_staff",
    "resident",
    "owners_committee",
    "property_manager",
    "agency",
    "api_client",
    "anonymous",
)
# A city admin's scope is the whole city: nothing is foreign to them.
FOREIGN_ROLES = tuple(r for r in ROLES if r != "city_admin")
REFUSED = {400, 401, 403, 404, 405, 422}
# One pixel, so the photo families have a real photo in both scopes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclass
class Scope:
    """One side of the matrix: the ids of its things, and what would betray them in a body."""

    ids: dict[str, str] = field(default_factory=dict)
    markers: set[str] = field(default_factory=set)
    # What its public meetings and published activities show in public calendars: searched for in
    # every answer but those.
    published: set[str] = field(default_factory=set)

    def value(self, thing: str) -> str:
        return self.ids.get(thing) or str(uuid.uuid4())


@dataclass
class Caller:
    role: str
    headers: dict[str, str]


@dataclass
class World:
    base_url: str
    document: dict[str, Any]
    callers: dict[str, Caller]
    own: Scope
    foreign: Scope
    foreign_readers: dict[str, Session]


# --- the foreign street, seeded through the public API ------------------------------------------------------
def _seed_nanmen(city: story.City) -> tuple[Scope, dict[str, Session]]:
    admin = city.admin
    label = uuid.uuid4().hex[:6]
    nanmen, guojiaqiao = city.communities["nanmen"], city.streets["guojiaqiao"]
    # "Nanmen" is in the titles and names of its issues, group, activity and offering: a search for it
    # from Chengqu must find none of them.
    scope = Scope(ids={"community": nanmen, "street": guojiaqiao, "words": "Nanmen"})
    people: dict[str, Session] = {}
    phone_of: dict[str, str] = {}
    phones = iter(range(13600000000 + int(label, 16) % 10_000_000 * 10, 13700000000))

    def person(key: str, creator: Session, role: str, **place: Any) -> Session:
        phone = str(next(phones))
        made = creator.post(
            "/api/v1/auth/users",
            {"display_name": f"Nanmen {key}", "role": role, "phone": phone, "password": story.PASSWORD, **place},
        )
        people[key] = Session(city.base_url).login(phone, story.PASSWORD)
        phone_of[key] = phone
        scope.markers |= {phone, phone[-8:], made["id"]}
        return people[key]

    compound = admin.post("/api/v1/directory/compounds", {"community_id": nanmen, "name": f"Nanmen Court {label}"})
    scope.ids["compound"] = compound["id"]
    official = person("official", admin, "street_official", street_id=guojiaqiao)
    staff = person("staff", official, "community_staff", community_ids=[nanmen])
    organisation = lambda who, kind, name, **place: who.post(  # noqa: E731
        "/api/v1/directory/organisations", {"kind": kind, "name": f"{name} {label}", **place}
    )["id"]
    company = organisation(staff, "property_company", "Nanmen Property", compound_ids=[compound["id"]])
    committee = organisation(staff, "owners_committee", "Nanmen Owners", compound_ids=[compound["id"]])
    office = organisation(official, "agency", "Guojiaqiao Street Office", street_id=guojiaqiao)
    scope.ids |= {"company": company, "committee": committee}
    person("manager", official, "property_manager", community_ids=[nanmen], organisation_id=company)
    person("agency", official, "agency", organisation_id=office)
    resident = person("resident", staff, "resident", community_ids=[nanmen])
    person("member", staff, "resident", community_ids=[nanmen], organisation_id=committee)
    scope.ids["resident"] = resident.id

    def report(title: str, **fields: Any) -> dict:
        body = {"community_id": nanmen, "compound_id": compound["id"], "title": title, "urgency": "normal"}
        # The compound and the committee reach the issues service by events.
        return story.wait_for(
            lambda: resident.post("/api/v1/issues/", body | fields), what="Nanmen in the issues replica"
        )

    dues = report(
        f"Nanmen owners' dues unclear {label}",
        category="property_management",
        description=f"Call me on {phone_of['resident']} about the dues",
    )
    story.wait_for(
        lambda: resident.get(f"/api/v1/issues/{dues['id']}")["assignee_id"] == committee or None,
        what="the dues routed to Nanmen's committee",
    )
    drain = report(f"Nanmen drain blocked {label}", category="other", description="Water stands in the lane")
    staff.post(f"/api/v1/issues/{drain['id']}/status", {"status": "accepted"})
    story.wait_for(
        lambda: staff.put(
            f"/api/v1/issues/{drain['id']}/assignment", {"assignee_type": "property_company", "assignee_id": company}
        ),
        what="Nanmen's company in the issues replica",
    )
    staff.post(f"/api/v1/issues/{drain['id']}/updates", {"kind": "reply", "body": f"On our list {label}"})
    staff.post(
        f"/api/v1/issues/{drain['id']}/updates",
        {"kind": "inspection", "body": f"Drain inspected {label}", "attendees": ["Nanmen Property"]},
    )
    photo = resident.call(
        "POST", f"/api/v1/issues/{drain['id']}/photos", files={"photo": ("drain.png", PNG, "image/png")}
    )
    resident.post("/api/v1/notifications/follows", {"target_type": "issue", "target_id": drain["id"]})
    scope.ids |= {"issue": drain["id"], "dues": dues["id"], "photo": photo["id"]}
    scope.markers |= {drain["id"], dues["id"], photo["id"], drain["title"], dues["title"], f"On our list {label}"}

    start = (datetime.now(UTC) + timedelta(minutes=20)).replace(microsecond=0)
    meeting = story.wait_for(
        lambda: staff.post(
            "/api/v1/meetings/",
            {
                "community_id": nanmen,
                "meeting_type": "round_table",
                "title": f"Nanmen round-table {label}",
                "place": "Nanmen hall",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
                "agenda": [{"title": f"The drain {label}", "issue_id": drain["id"], "duration_minutes": 30}],
                "participants": [
                    {"role": "resident_representative", "user_id": resident.id},
                    {"role": "owners_committee", "user_id": people["member"].id},
                ],
            },
        ),
        what="Nanmen in the meetings replica",
    )
    staff.post(f"/api/v1/meetings/{meeting['id']}/start")  # motions are put at a meeting in progress
    motion = staff.post(f"/api/v1/meetings/{meeting['id']}/motions", {"motion": f"Clear the drain {label}"})
    participants = staff.get(f"/api/v1/meetings/{meeting['id']}/participants")
    proposal = story.wait_for(
        lambda: resident.post(
            "/api/v1/meetings/proposals",
            {"community_id": nanmen, "issue_id": dues["id"], "reason": f"Talk about the dues {label}"},
        ),
        what="the dues in the meetings replica",
    )
    scope.ids |= {
        "meeting": meeting["id"],
        "agenda_item": meeting["agenda"][0]["id"],
        "motion": motion["id"],
        "participant": participants[0]["id"],
        "proposal": proposal["id"],
    }
    scope.markers |= {motion["id"], proposal["id"]}
    scope.published |= {meeting["id"], meeting["title"]}

    activity = story.wait_for(
        lambda: staff.post(
            "/api/v1/activities/",
            {
                "community_ids": [nanmen],
                "kind": "culture",
                "title": f"Nanmen calligraphy {label}",
                "place": "Nanmen hall",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
                "capacity": 10,
                "publish": True,
            },
        ),
        what="Nanmen in the activities replica",
    )
    registration = resident.post(f"/api/v1/activities/{activity['id']}/registrations", {"party_size": 1})
    group = staff.post(
        "/api/v1/activities/groups",
        {"community_id": nanmen, "name": f"Nanmen helpers {label}", "purpose": "Visits", "coordinator_id": resident.id},
    )
    offering = staff.post(
        "/api/v1/activities/offerings",
        {
            "community_id": nanmen,
            "name": f"Nanmen haircut {label}",
            "kind": "haircut",
            "provider_type": "business",
            "provider_name": "Nanmen barber",
            "at_post": False,
            "door_to_door": True,
        },
    )
    booking = staff.post(
        "/api/v1/activities/bookings",
        {
            "offering_id": offering["id"],
            "resident_id": resident.id,
            "door_to_door": True,
            "address": f"Nanmen Court {label}, Building 2, 301",
            "slot_start": start.isoformat(),
            "slot_end": (start + timedelta(minutes=40)).isoformat(),
        },
    )
    scope.ids |= {
        "activity": activity["id"],
        "registration": registration["id"],
        "group": group["id"],
        "offering": offering["id"],
        "booking": booking["id"],
    }
    scope.markers |= {registration["id"], group["id"], booking["id"], booking["address"]}
    scope.published |= {activity["id"], activity["title"]}

    key = official.post("/api/v1/auth/api-keys", {"name": f"Nanmen hotline {label}"})
    scope.ids["api_key"] = key["id"]
    inbox = story.wait_for(lambda: resident.get("/api/v1/notifications/"), what="a notice for Nanmen's resident")
    scope.ids["notification"] = inbox[0]["id"]
    scope.markers.add(inbox[0]["id"])
    return scope, people | {"api_key": key["key"]}  # type: ignore[dict-item]


def _own_scope(city: story.City) -> tuple[Scope, dict[str, Caller]]:
    """Chengqu's people (one of each role) and the ids of their own things."""
    staff = city.person("staff_shangpinyuan")
    shangpinyuan = city.communities["shangpinyuan"]
    member_phone = str(13500000000 + uuid.uuid4().int % 10_000_000)
    staff.post(
        "/api/v1/auth/users",
        {
            "display_name": "Sun Li (committee member)",
            "role": "resident",
            "phone": member_phone,
            "password": story.PASSWORD,
            "community_ids": [shangpinyuan],
            "organisation_id": city.organisations["owners_committee"],
        },
    )
    member = Session(city.base_url).login(member_phone, story.PASSWORD)
    key = city.person("official").post("/api/v1/auth/api-keys", {"name": "Chengqu hotline"})
    wall = city.ids["issue"]  # type: ignore[attr-defined]
    meeting = staff.get(f"/api/v1/meetings/{city.ids['meeting']}")  # type: ignore[attr-defined]
    photo = city.person("yang_jing").call(
        "POST", f"/api/v1/issues/{wall}/photos", files={"photo": ("wall.png", PNG, "image/png")}
    )
    inbox = city.person("yang_jing").get("/api/v1/notifications/")
    scope = Scope(
        ids={
            "community": shangpinyuan,
            "street": city.streets["chengqu"],
            "compound": city.compounds["shangpinyuan"],
            "company": city.organisations["property"],
            "committee": city.organisations["owners_committee"],
            "resident": city.person("yang_jing").id,
            "issue": wall,
            "photo": photo["id"],
            "meeting": meeting["id"],
            "agenda_item": meeting["agenda"][0]["id"],
            "motion": city.ids["decision"],  # type: ignore[attr-defined]
            "participant": staff.get(f"/api/v1/meetings/{meeting['id']}/participants")[0]["id"],
            "activity": city.ids["activity"],  # type: ignore[attr-defined]
            "api_key": key["id"],
            "notification": inbox[0]["id"] if inbox else "",
        }
    )

    def bearer(session: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {session.token}"}

    callers = {
        "city_admin": Caller("city_admin", bearer(city.admin)),
        "street_official": Caller("street_official", bearer(city.person("official"))),
        "community_staff": Caller("community_staff", bearer(staff)),
        "resident": Caller("resident", bearer(city.person("yang_jing"))),
        "owners_committee": Caller("owners_committee", bearer(member)),
        "property_manager": Caller("property_manager", bearer(city.person("property"))),
        "agency": Caller("agency", bearer(city.person("bureau"))),
        "api_client": Caller("api_client", {"X-API-Key": key["key"]}),
        "anonymous": Caller("anonymous", {}),
    }
    return scope, callers


@pytest.fixture(scope="module")
def world(demo_platform) -> World:
    platform, city = demo_platform
    base_url = f"http://127.0.0.1:{platform.web_ports['gateway']}"
    foreign, foreign_readers = _seed_nanmen(city)
    own, callers = _own_scope(city)
    document = requests.get(f"{base_url}/api/openapi.json", timeout=30).json()
    return World(base_url, document, callers, own, foreign, foreign_readers)


# --- the operations, and how each is filled ------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def writes(self) -> bool:
        return self.method != "GET"


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in sorted(document["paths"].items()):
        for method in METHODS:
            if method in item:
                # Path parameters are declared on the path, query parameters on the operation.
                spec = item[method] | {"parameters": [*item.get("parameters", []), *item[method].get("parameters", [])]}
                found.append(Operation(method.upper(), path, spec))
    return found


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(document, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return schema


def _example(document: dict[str, Any], schema: dict[str, Any], name: str, scope: Scope, depth: int = 0) -> Any:
    """A value the schema accepts, ids taken from `scope` by the field's name."""
    schema = _resolve(document, schema)
    for alternative in ("anyOf", "oneOf"):
        if alternative in schema:
            return _example(document, schema[alternative][0], name, scope, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if name in FIELD_THINGS and kind == "array":
        return [scope.value(FIELD_THINGS[name])]
    if name in FIELD_THINGS and kind in (None, "string"):
        return scope.value(FIELD_THINGS[name])
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        required = schema.get("required", [])
        return {
            key: _example(document, sub, key, scope, depth + 1)
            for key, sub in schema.get("properties", {}).items()
            if key in required and not sub.get("readOnly")
        }
    if kind == "array":
        count = max(schema.get("minItems", 1), 1)
        return [_example(document, schema.get("items", {}), name, scope, depth + 1) for _ in range(count)]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "uuid":
        return scope.value(FIELD_THINGS.get(name, "none"))
    if fmt == "date-time":
        return (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    if fmt == "date":
        return (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    text = "Matrix probe 13612345678"
    return text[: schema.get("maxLength", len(text))].ljust(schema.get("minLength", 0), "x")


def _request(document: dict[str, Any], operation: Operation, scope: Scope) -> tuple[str, dict, Any, bool]:
    """(url path, query, json body, whether a `scope` id was put in the path or body)."""
    path, query, named = operation.path, {}, False
    for parameter in operation.spec.get("parameters", []):
        parameter = _resolve(document, parameter)
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            thing = PATH_PARAMETER_OVERRIDES.get((operation.path, name)) or PARAMETER_THINGS.get(name)
            if name in FIXED_PARAMETERS:
                value = FIXED_PARAMETERS[name]
            elif name == "file_name":  # Open311's photos: the photo's file
                value, named = f"{scope.value('photo')}.png", True
            else:
                assert thing is not None, f"{operation.key}: say in PARAMETER_THINGS what fills {{{name}}}"
                value, named = scope.value(thing), named or thing in scope.ids
            path = path.replace("{" + name + "}", value)
        elif where == "query" and (name in FIELD_THINGS or parameter.get("required")):
            query[name] = _example(document, parameter.get("schema", {}), name, scope)
    assert "{" not in path, f"{operation.key}: a path parameter the document does not declare"
    body = None
    content = operation.spec.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _example(document, content["application/json"].get("schema", {}), "", scope)
        body |= BODY_OVERRIDES.get(operation.key, {})
        named = named or any(v in json.dumps(body) for v in scope.ids.values())
    return path, query, body, named


def _send(world: World, caller: Caller, operation: Operation, scope: Scope) -> tuple[requests.Response, bool]:
    path, query, body, named = _request(world.document, operation, scope)
    sent = path + json.dumps(query) + json.dumps(body)
    response = requests.request(
        operation.method,
        world.base_url + path,
        params=query,
        json=body,
        headers=caller.headers,
        timeout=30,
        allow_redirects=False,
    )
    # What the caller sent is theirs already: an error naming the id it was given tells nothing.
    response.sent = sent  # type: ignore[attr-defined]
    return response, named


def _leaks(response: requests.Response, foreign: Scope, operation: Operation) -> set[str]:
    text = response.text
    markers = foreign.markers if PUBLIC_READS.search(operation.path) else foreign.markers | foreign.published
    sent = getattr(response, "sent", "")
    return {marker for marker in markers if marker and marker in text and marker not in sent}


def _snapshot(world: World) -> str:
    """Nanmen as its own people read it: what a refused write must leave untouched."""
    staff, resident = world.foreign_readers["staff"], world.foreign_readers["resident"]
    ids = world.foreign.ids
    reads = [
        (staff, f"/api/v1/issues/{ids['issue']}"),
        (staff, f"/api/v1/issues/{ids['dues']}"),
        (staff, f"/api/v1/issues/{ids['issue']}/updates"),
        (staff, f"/api/v1/issues/{ids['issue']}/photos"),
        (staff, f"/api/v1/meetings/{ids['meeting']}"),
        (staff, f"/api/v1/meetings/{ids['meeting']}/participants"),
        (staff, f"/api/v1/meetings/{ids['meeting']}/motions"),
        (staff, f"/api/v1/meetings/proposals/{ids['proposal']}"),
        (staff, f"/api/v1/activities/{ids['activity']}"),
        (staff, f"/api/v1/activities/{ids['activity']}/registrations"),
        (staff, f"/api/v1/activities/groups/{ids['group']}"),
        (staff, f"/api/v1/activities/bookings/{ids['booking']}"),
        (staff, f"/api/v1/auth/users/{ids['resident']}"),
        (resident, "/api/v1/notifications/follows"),
        (world.foreign_readers["official"], "/api/v1/auth/api-keys"),
    ]
    return json.dumps([session.get(path) for session, path in reads], sort_keys=True, default=str)


# --- the matrix -------------------------------------------------------------------------------------------------
def test_every_operation_of_the_merged_document_is_in_the_matrix(world):
    """An endpoint nobody thought of fails here: it needs a way to fill its path, or an exemption."""
    listed = {op.key for op in operations(world.document)}
    assert len(listed) > 150, "the merged document lacks a service: " + str(world.document["info"])
    stale = set(EXEMPT) - listed
    assert not stale, f"exemptions for operations that no longer exist: {sorted(stale)}"
    for operation in operations(world.document):
        if operation.key not in EXEMPT:
            _request(world.document, operation, world.foreign)  # fails naming an unknown parameter


@pytest.mark.parametrize("role", ROLES)
def test_reads_show_nothing_of_another_scope(world, role):
    caller = world.callers[role]
    problems = []
    for operation in operations(world.document):
        if operation.writes or operation.key in EXEMPT:
            continue
        own, _ = _send(world, caller, operation, world.own)
        if own.status_code >= 500:
            problems.append(f"{operation.key} own scope: {own.status_code} {own.text[:200]}")
        if role not in FOREIGN_ROLES:
            continue  # the whole city is the city admin's own
        if leaked := _leaks(own, world.foreign, operation):
            problems.append(f"{operation.key} own scope shows Nanmen's {sorted(leaked)[:3]}")
        foreign, named = _send(world, caller, operation, world.foreign)
        if foreign.status_code >= 500:
            problems.append(f"{operation.key} foreign: {foreign.status_code} {foreign.text[:200]}")
        elif named and foreign.status_code not in (401, 403, 404) and not PUBLIC_READS.search(operation.path):
            problems.append(f"{operation.key} with Nanmen's ids: {foreign.status_code}, not 403/404")
        if leaked := _leaks(foreign, world.foreign, operation):
            problems.append(f"{operation.key} with Nanmen's ids shows {sorted(leaked)[:3]}: {foreign.text[:200]}")
    assert not problems, f"{role}:\n" + "\n".join(problems)


@pytest.mark.parametrize("role", FOREIGN_ROLES)
def test_writes_to_another_scope_are_refused_and_change_nothing(world, role):
    caller = world.callers[role]
    before = _snapshot(world)
    problems = []
    for operation in operations(world.document):
        if not operation.writes or operation.key in EXEMPT:
            continue
        response, named = _send(world, caller, operation, world.foreign)
        if response.status_code >= 500:
            problems.append(f"{operation.key}: {response.status_code} {response.text[:200]}")
        elif named and response.status_code not in REFUSED:
            problems.append(f"{operation.key} aimed at Nanmen: {response.status_code} {response.text[:200]}")
        if leaked := _leaks(response, world.foreign, operation):
            problems.append(f"{operation.key} answers with Nanmen's {sorted(leaked)[:3]}: {response.text[:200]}")
    assert not problems, f"{role}:\n" + "\n".join(problems)
    assert _snapshot(world) == before, f"{role}'s refused writes changed Nanmen"
