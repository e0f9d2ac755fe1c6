"""Administration: the directory (streets › communities › compounds), the register of organisations,
the issue categories with their deadlines, people's accounts and API keys.

Who sees which section follows the gateway and the issues service (DESIGN §4): a city admin
everything; a street official their street's directory, organisations, people and API keys; community
staff their community's organisations and residents. These rules only choose which pages and forms are
offered: the API decides again on every call. Each `take_*` checks a form field by field and returns
the form (its errors by field) and the body for the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext
from linli_web.viewmodels.forms import Form

CITY_ADMIN = "city_admin"
STREET_OFFICIAL = "street_official"
COMMUNITY_STAFF = "community_staff"

# Which roles may open each section (the API's rules, see the module's docstring).
SECTIONS: dict[str, tuple[str, ...]] = {
    "directory": (CITY_ADMIN, STREET_OFFICIAL),
    "organisations": (CITY_ADMIN, STREET_OFFICIAL, COMMUNITY_STAFF),
    "categories": (CITY_ADMIN,),
    "users": (CITY_ADMIN, STREET_OFFICIAL, COMMUNITY_STAFF),
    "api_keys": (CITY_ADMIN, STREET_OFFICIAL),
}
SECTION_NAMES = {
    "directory": lazy_gettext("Streets, communities and compounds"),
    "organisations": lazy_gettext("Organisations"),
    "categories": lazy_gettext("Issue categories and deadlines"),
    "users": lazy_gettext("People and accounts"),
    "api_keys": lazy_gettext("API keys"),
}
SECTION_HINTS = {
    "directory": lazy_gettext("Add and rename streets, communities and compounds; place compounds on the map."),
    "organisations": lazy_gettext(
        "Property companies, owners' committees, bureaus and party bodies that issues are given to."
    ),
    "categories": lazy_gettext("What residents can report, where it is handled and how long each urgency may take."),
    "users": lazy_gettext("Register staff and residents without a smartphone, disable accounts, lift lockouts."),
    "api_keys": lazy_gettext("Keys for the city hotline and other Open311 clients."),
}

ROLE = {
    "resident": lazy_gettext("Resident"),
    "community_staff": lazy_gettext("Community staff"),
    "property_manager": lazy_gettext("Property company manager"),
    "agency": lazy_gettext("Bureau or agency"),
    "street_official": lazy_gettext("Street official"),
    "city_admin": lazy_gettext("City administrator"),
}
# Who may register whom (the gateway's check_may_create).
CREATABLE_ROLES: dict[str, tuple[str, ...]] = {
    CITY_ADMIN: ("resident", "community_staff", "property_manager", "agency", "street_official", "city_admin"),
    STREET_OFFICIAL: ("resident", "community_staff", "property_manager", "agency"),
    COMMUNITY_STAFF: ("resident",),
}
ACCOUNT_STATUS = {
    "active": lazy_gettext("Active"),
    "pending": lazy_gettext("Waiting for approval"),
    "disabled": lazy_gettext("Disabled"),
}
ORG_KIND = {
    "property_company": lazy_gettext("Property company"),
    "owners_committee": lazy_gettext("Owners' committee"),
    "bureau": lazy_gettext("Government bureau"),
    "agency": lazy_gettext("Agency"),
    "party_organisation": lazy_gettext("Party organisation"),
    "party_branch": lazy_gettext("Party branch"),
}
ORG_KIND_HINT = {
    "property_company": lazy_gettext("Serves one or more compounds"),
    "owners_committee": lazy_gettext("Belongs to one compound"),
    "bureau": lazy_gettext("City-wide, or one street's"),
    "agency": lazy_gettext("City-wide, or one street's"),
    "party_organisation": lazy_gettext("One street's or one community's"),
    "party_branch": lazy_gettext("Within a party organisation"),
}
# Community staff register the bodies of their own community only.
ORG_KINDS_OF_ROLE: dict[str, tuple[str, ...]] = {
    CITY_ADMIN: tuple(ORG_KIND),
    STREET_OFFICIAL: tuple(ORG_KIND),
    COMMUNITY_STAFF: ("property_company", "owners_committee", "party_organisation", "party_branch"),
}
# Which organisations an account of a role acts for (the gateway's ORGANISATION_KINDS_OF_ROLE).
ORG_KINDS_OF_ACCOUNT = {"property_manager": ("property_company",), "agency": ("bureau", "agency")}
BODY = {
    "property_company": lazy_gettext("Property company"),
    "owners_committee": lazy_gettext("Owners' committee"),
    "community": lazy_gettext("The community itself"),
    "bureau": lazy_gettext("A city bureau"),
}
TIERS = ("compound", "community", "street", "city")
URGENCIES = ("low", "normal", "high", "urgent")
PUBLICATION = {
    "public": lazy_gettext("Everyone (published, and to the city hotline)"),
    "community": lazy_gettext("The residents of the issue's community"),
    "private": lazy_gettext("Only the reporter, supporters, staff and the body it is given to"),
}
MAX_DEADLINE_HOURS = 24 * 366
NAME_MAX = 200


def may(user: Mapping[str, Any] | None, section: str) -> bool:
    return bool(user) and user.get("role") in SECTIONS[section]  # type: ignore[union-attr]


def sections_for(user: Mapping[str, Any] | None) -> list[str]:
    return [s for s in SECTIONS if may(user, s)]


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _name(form: Form, name: str, label: str) -> str:
    value = form.required(name, _("Enter the %(label)s", label=label))
    if value:
        form.length(name, maximum=NAME_MAX, label=label)
    return value


def _coordinate(form: Form, name: str, low: float, high: float, label: str) -> float | None:
    raw = form.values.get(name, "").replace(",", ".")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        form.error(name, _("%(label)s must be a number, like 38.1", label=label))
        return None
    if not low <= value <= high:
        form.error(name, _("%(label)s must be between %(low)s and %(high)s", label=label, low=low, high=high))
        return None
    return value


# --- the directory -------------------------------------------------------------------------------------


def take_street(data: Mapping[str, Any], *, prefix: str = "") -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, [f"{prefix}name", f"{prefix}city"])
    name = _name(form, f"{prefix}name", _("street's name"))
    city = form.values[f"{prefix}city"]
    if city:
        form.length(f"{prefix}city", maximum=NAME_MAX, label=_("City"))
    body: dict[str, Any] = {"name": name}
    if city:
        body["city"] = city
    return form, body


def take_community(data: Mapping[str, Any], street_id: str, *, prefix: str = "") -> tuple[Form, dict[str, Any]]:
    form = Form.of(data, [f"{prefix}name"])
    name = _name(form, f"{prefix}name", _("community's name"))
    body = {"name": name} if prefix else {"name": name, "street_id": street_id}
    return form, body


def take_compound(data: Mapping[str, Any], community_id: str, *, prefix: str = "") -> tuple[Form, dict[str, Any]]:
    """A compound's name and, optionally, where its gate is (for the 15-minute circle)."""
    names = [f"{prefix}name", f"{prefix}latitude", f"{prefix}longitude"]
    form = Form.of(data, names)
    name = _name(form, f"{prefix}name", _("compound's name"))
    latitude = _coordinate(form, f"{prefix}latitude", -90, 90, _("Latitude"))
    longitude = _coordinate(form, f"{prefix}longitude", -180, 180, _("Longitude"))
    if (latitude is None) != (longitude is None) and form.ok:
        missing = f"{prefix}latitude" if latitude is None else f"{prefix}longitude"
        form.error(missing, _("Give both latitude and longitude, or neither"))
    body: dict[str, Any] = {"name": name}
    if not prefix:
        body["community_id"] = community_id
    if latitude is not None and longitude is not None:
        body.update(latitude=latitude, longitude=longitude)
    return form, body


# --- organisations ---------------------------------------------------------------------------------------


def take_organisation(
    data: Mapping[str, Any],
    kind: str,
    *,
    streets: list[str],
    communities: list[str],
    compounds: list[str],
    parents: list[str],
) -> tuple[Form, dict[str, Any]]:
    """The fields a kind of organisation needs: a company its compounds, a committee its one compound,
    a bureau or agency its street (none: city-wide), a party organisation a street or a community, a
    branch its party organisation. `streets`, `communities`, `compounds` and `parents` are the choices
    the page offered."""
    form = Form.of(data, ["name", "street_id", "community_id", "compound_ids", "parent_id"])
    form.values["compound_ids"] = ",".join(v for v in _many(data, "compound_ids") if v)
    name = _name(form, "name", _("organisation's name"))
    body: dict[str, Any] = {"kind": kind, "name": name}
    chosen = [c for c in form.values["compound_ids"].split(",") if c]
    if kind in ("property_company", "owners_committee"):
        if not chosen:
            form.error("compound_ids", _("Choose the compounds it serves"))
        elif any(c not in compounds for c in chosen):
            form.error("compound_ids", _("Choose compounds from the list"))
        elif kind == "owners_committee" and len(chosen) != 1:
            form.error("compound_ids", _("An owners' committee belongs to exactly one compound"))
        body["compound_ids"] = chosen
    elif kind in ("bureau", "agency", "party_organisation"):
        street = form.values["street_id"]
        community = form.values["community_id"] if kind == "party_organisation" else ""
        if street and street not in streets:
            form.error("street_id", _("Choose a street from the list"))
        if community and community not in communities:
            form.error("community_id", _("Choose a community from the list"))
        if kind == "party_organisation" and bool(street) == bool(community):
            form.error("street_id", _("Choose either a street or a community"))
        if street:
            body["street_id"] = street
        if community:
            body["community_id"] = community
    elif kind == "party_branch":
        parent = form.choice("parent_id", parents, _("Choose the party organisation it belongs to"))
        body["parent_id"] = parent
    return form, body


def _many(data: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(data, "getlist", None)
    if getlist is not None:
        return [str(v).strip() for v in getlist(name)]
    value = data.get(name)
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value or "").split(",")]


# --- categories -------------------------------------------------------------------------------------------


def category_form(category: Mapping[str, Any] | None) -> Form:
    """The edit form filled from the category the API has (empty for a new one)."""
    category = category or {}
    hours = category.get("deadline_hours") or {}
    values = {
        "key": str(category.get("key") or ""),
        "name": str(category.get("name") or ""),
        "default_tier": str(category.get("default_tier") or ""),
        "responsible_body": str(category.get("responsible_body") or ""),
        "publication": str(category.get("publication") or ""),
        "position": str(category.get("position") if category.get("position") is not None else "0"),
        "active": "yes" if category.get("active", True) else "",
    }
    for urgency in URGENCIES:
        values[f"hours_{urgency}"] = str(hours.get(urgency) or "")
    return Form(values)


def take_category(data: Mapping[str, Any], *, new: bool) -> tuple[Form, str, dict[str, Any]]:
    names = ["key", "name", "default_tier", "responsible_body", "publication", "position", "active"]
    names += [f"hours_{u}" for u in URGENCIES]
    form = Form.of(data, names)
    key = form.values["key"].lower()
    form.values["key"] = key
    if new:
        if not key:
            form.error("key", _("Enter a short code for the category, like noise"))
        elif len(key) > 80 or not key.replace("_", "").isalnum() or not key.isascii():
            form.error("key", _("Use only letters, digits and underscores, at most 80"))
    name = _name(form, "name", _("category's name"))
    tier = form.choice("default_tier", list(TIERS), _("Choose where its issues are handled first"))
    body_kind = form.choice("responsible_body", list(BODY), _("Choose who usually deals with it"))
    hours: dict[str, int] = {}
    for urgency in URGENCIES:
        raw = form.values[f"hours_{urgency}"]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_DEADLINE_HOURS:
            form.error(
                f"hours_{urgency}",
                _("Enter a whole number of hours from 1 to %(n)d", n=MAX_DEADLINE_HOURS),
            )
        else:
            hours[urgency] = int(raw)
    position_raw = form.values["position"] or "0"
    if not position_raw.isdigit() or int(position_raw) > 100_000:
        form.error("position", _("Enter a whole number from 0 to 100000"))
    publication = form.values["publication"]
    if publication and publication not in PUBLICATION:
        form.error("publication", _("Choose who reads its issues"))
    body: dict[str, Any] = {
        "name": name,
        "default_tier": tier,
        "responsible_body": body_kind,
        "deadline_hours": hours,
        "active": form.values["active"] == "yes",
        "position": int(position_raw) if position_raw.isdigit() else 0,
    }
    if publication:
        body["publication"] = publication
    return form, key, body


# --- people -------------------------------------------------------------------------------------------------


def take_user(
    data: Mapping[str, Any],
    creator_role: str,
    *,
    streets: list[str],
    communities: list[str],
    organisations: Mapping[str, str],
) -> tuple[Form, dict[str, Any]]:
    """An account staff register: the person's name and role, where they belong, a phone (left out for
    someone reached only in person), a first password (left out: they set one later by SMS code).
    `organisations`: the registered organisation's id -> its kind, of those offered."""
    names = ["display_name", "role", "phone", "street_id", "community_id", "organisation_id", "password", "locale"]
    form = Form.of(data, names)
    display_name = _name(form, "display_name", _("person's name"))
    role = form.choice("role", list(CREATABLE_ROLES.get(creator_role, ())), _("Choose what the person does"))
    phone = form.phone("phone") if form.values["phone"] else ""
    body: dict[str, Any] = {"display_name": display_name, "role": role}
    if phone:
        body["phone"] = phone
    street = form.values["street_id"]
    community = form.values["community_id"]
    organisation = form.values["organisation_id"]
    if role in ("resident", "community_staff", "property_manager"):
        if community not in communities:
            form.error("community_id", _("Choose the community"))
        else:
            body["community_ids"] = [community]
    if role == "street_official":
        if street not in streets:
            form.error("street_id", _("Choose the street"))
        else:
            body["street_id"] = street
    elif role == "agency" and street:
        if street not in streets:
            form.error("street_id", _("Choose a street from the list"))
        else:
            body["street_id"] = street
    if role in ORG_KINDS_OF_ACCOUNT:
        if organisations.get(organisation) not in ORG_KINDS_OF_ACCOUNT[role]:
            form.error("organisation_id", _("Choose the organisation the person acts for"))
        else:
            body["organisation_id"] = organisation
    password = form.values["password"]
    if password:
        form.password("password", new=True)
        body["password"] = password
    locale = form.values["locale"] or "zh-CN"
    body["locale"] = form.choice("locale", ["zh-CN", "en"], _("Choose a language")) if form.values["locale"] else locale
    return form, body


# --- API keys -------------------------------------------------------------------------------------------------


def take_api_key(
    data: Mapping[str, Any], *, streets: list[str], communities: list[str], street_required: str | None = None
) -> tuple[Form, dict[str, Any]]:
    """A key's name (who uses it) and what it may report into: a street, or some communities, or (city
    admins only) the whole city. `street_required`: a street official's own street, always set."""
    form = Form.of(data, ["name", "street_id", "community_ids"])
    form.values["community_ids"] = ",".join(v for v in _many(data, "community_ids") if v)
    name = _name(form, "name", _("key's name"))
    body: dict[str, Any] = {"name": name}
    street = street_required or form.values["street_id"]
    if street and street not in streets:
        form.error("street_id", _("Choose a street from the list"))
    elif street:
        body["street_id"] = street
    chosen = [c for c in form.values["community_ids"].split(",") if c]
    if any(c not in communities for c in chosen):
        form.error("community_ids", _("Choose communities from the list"))
    body["community_ids"] = chosen
    return form, body
