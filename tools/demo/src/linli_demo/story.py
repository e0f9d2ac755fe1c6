"""The story of the source article, told through the gateway's public API only, as the apps would.

1. A city admin sets up Lingwu: streets, communities, compounds; staff and residents are registered.
2. Yang Jing reports that the cultural wall of Shangpinyuan is a safety hazard; neighbours support it.
3. Staff accept it and call a round-table with the property company, the owners' committee, a party
   member and resident representatives, the wall on the agenda; the invited are told.
4. The round-table meets, attendance is taken, the motion to dismantle the wall is adopted
   unanimously; the issue follows the decision; the action item is done; the issue is resolved; the
   reporter rates it, and was told at each step.
   The noticeboard (公示) shows residents the decision, its votes and the action item done.
5. The roof of Building 7 needs six consultations and an on-site inspection before it is resolved;
   an issue nobody handles escalates to the street office by its deadline.
6. An activity fills up; a waiting-listed resident is promoted and told; people check in. The
   neighbourhood inn runs a daily programme; a vetted talent is matched to a need; a resident living
   alone is visited as planned; a "woodpecker patrol" finds a hazard and raises it as an issue.
7. The street official's overview shows what happened.

Every step returns what it saw, so a test can check it and the CLI can tell it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from linli_demo.client import ApiError, Session

T = TypeVar("T")
Narrate = Callable[[str], None]
PASSWORD = "linli-demo-2026"


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, what: str = "") -> T:
    """Events travel between services: poll until the effect is visible (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ApiError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.2)


@dataclass
class City:
    base_url: str
    admin: Session
    streets: dict[str, str] = field(default_factory=dict)
    communities: dict[str, str] = field(default_factory=dict)
    compounds: dict[str, str] = field(default_factory=dict)
    people: dict[str, Session] = field(default_factory=dict)
    organisations: dict[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (who, role, phone)
    next_phone: int = 13900000000

    def person(self, key: str) -> Session:
        return self.people[key]


def _register(city: City, creator: Session, key: str, name: str, role: str, **scope: Any) -> Session:
    city.next_phone += 1
    phone = str(city.next_phone)
    creator.post(
        "/api/v1/auth/users", {"display_name": name, "role": role, "phone": phone, "password": PASSWORD, **scope}
    )
    session = Session(city.base_url).login(phone, PASSWORD)
    city.people[key] = session
    city.logins.append((name, role, phone))
    return session


def _organisation(creator: Session, kind: str, name: str, **place: Any) -> str:
    """Register an organisation in the directory; its id."""
    return creator.post("/api/v1/directory/organisations", {"kind": kind, "name": name, **place})["id"]


# Categories whose issues the demo city publishes (Open311, anyone): places, never persons. The
# others stay as the platform has them (community; private for disputes and vulnerable residents).
PUBLIC_CATEGORIES = ("safety_hazard", "repairs_facilities", "environment_sanitation", "parking")


def _publish_categories(admin: Session, keys: tuple[str, ...]) -> None:
    for category in admin.get("/api/v1/issues/categories"):
        if category["key"] in keys and category.get("publication") != "public":
            fields = ("name", "default_tier", "responsible_body", "deadline_hours", "active", "position")
            body = {k: category[k] for k in fields if k in category}
            admin.put(f"/api/v1/issues/categories/{category['key']}", {**body, "publication": "public"})


def set_up_city(
    base_url: str,
    admin_phone: str,
    admin_password: str,
    narrate: Narrate = print,
    phone_base: int = 13900000000,
    label: str = "",
) -> City:
    """Step 1: Lingwu city, two streets, four communities, their people. `label` sets this telling's
    streets and communities apart from a city that is already there."""
    admin = Session(base_url).login(admin_phone, admin_password)
    city = City(base_url, admin, next_phone=phone_base)
    narrate("1. The city admin sets up Lingwu: streets, communities and compounds.")
    for key, name in (("chengqu", "Chengqu Street 城区街道"), ("guojiaqiao", "Guojiaqiao Street 郭家桥街道")):
        city.streets[key] = admin.post("/api/v1/directory/streets", {"name": name + label, "city": "Lingwu"})["id"]
    for key, street, name in (
        ("shangpinyuan", "chengqu", "Shangpinyuan Community 尚品苑社区"),
        ("yucai", "chengqu", "Yucai Street Community 育才街社区"),
        ("xihu", "chengqu", "Xihu Community 西湖社区"),
        ("nanmen", "guojiaqiao", "Nanmen Community 南门社区"),
    ):
        city.communities[key] = admin.post(
            "/api/v1/directory/communities", {"street_id": city.streets[street], "name": name + label}
        )["id"]
    for key, community, name, lat, lon in (
        ("shangpinyuan", "shangpinyuan", "Shangpinyuan Garden", 38.1021, 106.3395),
        ("building7", "yucai", "Yucai Garden (Building 7)", 38.0968, 106.3412),
        ("xihu", "xihu", "Xihu Residences", 38.0990, 106.3470),
    ):
        city.compounds[key] = admin.post(
            "/api/v1/directory/compounds",
            {"community_id": city.communities[community], "name": name, "latitude": lat, "longitude": lon},
        )["id"]

    narrate("   The city publishes what is about places, not people: repairs, sanitation, parking, hazards.")
    _publish_categories(admin, PUBLIC_CATEGORIES)

    narrate("   Staff and residents are registered: officials by the admin, staff by the official, residents by staff.")
    official = _register(
        city, admin, "official", "Ma Jun (Chengqu street office)", "street_official", street_id=city.streets["chengqu"]
    )
    _register(
        city,
        official,
        "staff_shangpinyuan",
        "Li Hua (Shangpinyuan staff)",
        "community_staff",
        community_ids=[city.communities["shangpinyuan"]],
    )
    _register(
        city,
        official,
        "staff_yucai",
        "Tang Kun (Yucai party secretary)",
        "community_staff",
        community_ids=[city.communities["yucai"]],
    )
    _register(
        city,
        official,
        "staff_xihu",
        "Zhou Min (Xihu staff)",
        "community_staff",
        community_ids=[city.communities["xihu"]],
    )
    narrate("   Organisations are registered by those who own them; their accounts act for them.")
    city.organisations["property"] = _organisation(
        official,
        "property_company",
        "Shangpin Property Services 尚品物业" + label,
        compound_ids=[city.compounds["shangpinyuan"], city.compounds["building7"]],
    )
    city.organisations["xihu_property"] = _organisation(
        city.person("staff_xihu"),
        "property_company",
        "Xihu Property Management 西湖物业" + label,
        compound_ids=[city.compounds["xihu"]],
    )
    city.organisations["owners_committee"] = _organisation(
        city.person("staff_shangpinyuan"),
        "owners_committee",
        "Shangpinyuan Owners' Committee 尚品苑业委会",
        compound_ids=[city.compounds["shangpinyuan"]],
    )
    city.organisations["housing_bureau"] = _organisation(
        admin, "bureau", "Housing and Construction Bureau 住建局" + label
    )
    city.organisations["street_office"] = _organisation(
        official, "agency", "Chengqu Street Office 城区街道办", street_id=city.streets["chengqu"]
    )
    _register(
        city,
        official,
        "property",
        "Zhao Lei (Shangpin Property Services)",
        "property_manager",
        community_ids=[city.communities["shangpinyuan"], city.communities["yucai"]],
        organisation_id=city.organisations["property"],
    )
    _register(
        city,
        admin,
        "bureau",
        "Housing and Construction Bureau",
        "agency",
        organisation_id=city.organisations["housing_bureau"],
    )
    staff = city.person("staff_shangpinyuan")
    for key, name in (
        ("yang_jing", "Yang Jing 杨静"),
        ("zhang_wei", "Zhang Wei"),
        ("wang_fang", "Wang Fang"),
        ("owners_committee", "Sun Li (owners' committee)"),
        ("party_member", "Chen Jun (party member)"),
        ("representative", "Liu Min (resident representative)"),
    ):
        _register(city, staff, key, name, "resident", community_ids=[city.communities["shangpinyuan"]])
    for key, name in (("roof_reporter", "Gao Ping"), ("roof_neighbour", "He Yun")):
        _register(city, city.person("staff_yucai"), key, name, "resident", community_ids=[city.communities["yucai"]])
    for key, name in (
        ("li_yumei", "Li Yumei 李玉梅"),
        ("xihu_1", "Qian Hong"),
        ("xihu_2", "Feng Lan"),
        ("xihu_3", "Wu Gang"),
    ):
        _register(city, city.person("staff_xihu"), key, name, "resident", community_ids=[city.communities["xihu"]])
    return city


def _issue(session: Session, issue_id: str) -> dict:
    return session.get(f"/api/v1/issues/{issue_id}")


def _report(city: City, who: str, community: str, **fields: Any) -> dict:
    body = {"community_id": city.communities[community], **fields}
    # The community reaches the issues service by event; the first report may have to wait for it.
    return wait_for(lambda: city.person(who).post("/api/v1/issues/", body), what="the issues service's directory")


def _round_table(
    city: City,
    staff: Session,
    community: str,
    title: str,
    agenda: list[dict],
    invite: list[tuple[str, str]],
    starts_in: timedelta,
) -> dict:
    start = (datetime.now(UTC) + starts_in).replace(microsecond=0)
    participants = []
    for key, role in invite:
        person = city.person(key)
        entry = {"role": role, "user_id": person.id}
        if role in {"property_company", "bureau"}:
            entry["organisation_id"] = person.user.get("organisation_id")
        participants.append(entry)
    return staff.post(
        "/api/v1/meetings/",
        {
            "community_id": city.communities[community],
            "meeting_type": "round_table",
            "title": title,
            "place": "Community hall",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "agenda": agenda,
            "participants": participants,
        },
    )


def _hold(staff: Session, meeting: dict, motion: dict, voters: list[Session]) -> dict:
    """Start, take attendance, put the motion, vote, record the decision, conclude."""
    mid = meeting["id"]
    staff.post(f"/api/v1/meetings/{mid}/start")
    for participant in staff.get(f"/api/v1/meetings/{mid}/participants"):
        staff.post(f"/api/v1/meetings/{mid}/participants/{participant['id']}/check-in")
    put = staff.post(f"/api/v1/meetings/{mid}/motions", motion)
    for voter in voters:
        voter.post(f"/api/v1/meetings/{mid}/motions/{put['id']}/votes", {"choice": "for"})
    decision = staff.post(f"/api/v1/meetings/{mid}/motions/{put['id']}/record")
    staff.post(f"/api/v1/meetings/{mid}/conclude", {"minutes": f"Motion: {motion['motion']} — {decision['outcome']}."})
    return decision


def inbox(session: Session) -> list[dict]:
    return session.get("/api/v1/notifications/")


def cultural_wall(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Steps 2-4: the cultural wall of Shangpinyuan."""
    seen: dict[str, Any] = {}
    reporter, staff = city.person("yang_jing"), city.person("staff_shangpinyuan")
    narrate("2. Yang Jing reports: the cultural wall is a safety hazard, a child was nearly hit.")
    wall = _report(
        city,
        "yang_jing",
        "shangpinyuan",
        compound_id=city.compounds["shangpinyuan"],
        title="Cultural wall is unsafe",
        category="safety_hazard",
        urgency="urgent",
        description="Tiles are falling off the cultural wall; a child was nearly hit the other day.",
    )
    seen["wall"] = wall["id"]
    for neighbour in ("zhang_wei", "wang_fang"):
        city.person(neighbour).post(f"/api/v1/issues/{wall['id']}/supporters")
    seen["supporters"] = _issue(staff, wall["id"])["supporter_count"]
    narrate(f"   {seen['supporters']} neighbours support it (me too).")

    narrate("3. Staff accept it and call a round-table, the wall on the agenda.")
    staff.post(f"/api/v1/issues/{wall['id']}/status", {"status": "accepted"})
    invited = [
        ("property", "property_company"),
        ("owners_committee", "owners_committee"),
        ("party_member", "party_member"),
        ("representative", "resident_representative"),
        ("yang_jing", "resident_representative"),
    ]
    meeting = _round_table(
        city,
        staff,
        "shangpinyuan",
        "Neighbourhood consultation round-table: the cultural wall",
        [{"title": "The cultural wall", "issue_id": wall["id"], "duration_minutes": 30}],
        invited,
        timedelta(minutes=30),
    )
    seen["meeting"] = meeting["id"]
    wait_for(lambda: _issue(staff, wall["id"])["status"] == "deliberating", what="the wall in deliberation")
    seen["told_of_meeting"] = {
        key: wait_for(
            lambda k=key: [n for n in inbox(city.person(k)) if meeting["id"] in str(n)],
            what=f"{key} told of the round-table",
        )
        for key, _ in invited
    }
    seen["sms_to_invited"] = {
        key: wait_for(
            lambda k=key: staff.get(
                "/api/v1/notifications/deliveries", params={"user_id": city.person(k).id, "channel": "sms"}
            ),
            what=f"an SMS to {key}",
        )
        for key, _ in invited
    }
    narrate(f"   The issue is in deliberation; {len(invited)} invited people have the notice in their app and by SMS.")

    narrate("4. The round-table meets: attendance, the motion to dismantle the wall, a unanimous vote.")
    voters = [city.person(k) for k, _ in invited]
    decision = _hold(
        staff,
        meeting,
        {
            "motion": "Dismantle the two cultural walls; the property company does the work within two weeks",
            # The round-table's rules of procedure let a motion ask for unanimity; this one does.
            "threshold": "unanimous",
            "agenda_item_id": meeting["agenda"][0]["id"],
            # Resolved once its action item is done: the issue follows the work, nobody has to say so.
            "issue_effect": "resolve",
            "resolution_plan": "The property company dismantles both walls",
            "action_items": [
                {
                    "title": "Dismantle the cultural walls",
                    "owner_body": "property_company",
                    "owner_organisation_id": city.organisations["property"],
                    "due_date": (datetime.now(UTC) + timedelta(days=14)).date().isoformat(),
                }
            ],
        },
        voters,
    )
    seen["decision"] = decision
    narrate(f"   Outcome: {decision['outcome']} ({decision.get('rule', '')}).")
    wait_for(lambda: _issue(staff, wall["id"])["status"] == "resolving", what="the wall being resolved")
    property_manager = city.person("property")
    [action] = property_manager.get("/api/v1/meetings/action-items", params={"meeting_id": meeting["id"]})
    seen["wall_in_progress"] = _issue(staff, wall["id"])["follow_up"]
    property_manager.patch(
        f"/api/v1/meetings/action-items/{action['id']}", {"status": "done", "note": "Both walls taken down"}
    )
    # The action item done closes the loop: the issue is resolved as the round-table decided.
    seen["wall_resolved"] = wait_for(
        lambda: (i := _issue(staff, wall["id"]))["status"] == "resolved" and i,
        what="the wall resolved by its action item",
    )
    narrate("   The property company reports the walls down: the action item is done, and the issue resolved.")
    seen["noticeboard"] = reporter.get(
        "/api/v1/meetings/noticeboard", params={"community_id": city.communities["shangpinyuan"]}
    )
    narrate("   The noticeboard (公示) shows the decision, its votes and the action item done.")
    reporter.post(f"/api/v1/issues/{wall['id']}/rating", {"rating": 5, "comment": "Safe for the children now"})
    seen["wall_final"] = _issue(staff, wall["id"])
    seen["reporter_told"] = wait_for(
        lambda: (
            [n for n in inbox(reporter) if wall["id"] in str(n)]
            if len([n for n in inbox(reporter) if wall["id"] in str(n)]) >= 3
            else None
        ),
        what="the reporter told at each step",
    )
    narrate(
        f"   The wall is {seen['wall_final']['status']}; Yang Jing rated it 5 and had "
        f"{len(seen['reporter_told'])} notices about it."
    )
    return seen


def leaking_roof(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 5: the roof of Building 7 needs six consultations and an on-site inspection."""
    staff = city.person("staff_yucai")
    narrate("5. The roof of Building 7 leaks: six consultations and an on-site inspection.")
    roof = _report(
        city,
        "roof_reporter",
        "yucai",
        compound_id=city.compounds["building7"],
        building="Building 7",
        title="Roof of Building 7 leaks",
        category="repairs_facilities",
        urgency="high",
        description="The old roof lets the rain in on the top floor.",
    )
    city.person("roof_neighbour").post(f"/api/v1/issues/{roof['id']}/supporters")
    staff.post(f"/api/v1/issues/{roof['id']}/status", {"status": "accepted"})
    invited = [("property", "property_company"), ("bureau", "bureau"), ("roof_reporter", "resident_representative")]
    for round_number in range(1, 7):
        last = round_number == 6
        meeting = _round_table(
            city,
            staff,
            "yucai",
            f"Roof of Building 7 — consultation {round_number}",
            [{"title": "Roof of Building 7", "issue_id": roof["id"]}],
            invited,
            timedelta(minutes=40 + 10 * round_number),
        )
        if round_number == 3:
            staff.post(
                f"/api/v1/issues/{roof['id']}/updates",
                {
                    "kind": "inspection",
                    "body": "On-site inspection of the roof",
                    "attendees": [
                        "Community",
                        "Street property office",
                        "Housing and Construction Bureau",
                        "Owners' committee",
                        "Shangpin Property Services",
                    ],
                    "findings": "Waterproofing layer aged through; the whole roof must be redone",
                },
            )
        _hold(
            staff,
            meeting,
            {
                "motion": "Re-roof Building 7, shared by the maintenance fund" if last else "Consult again with quotes",
                "agenda_item_id": meeting["agenda"][0]["id"],
                "issue_effect": "resolve" if last else "reconsult",
                "resolution_plan": "Roof redone with the maintenance fund" if last else None,
            },
            # A bureau advises at a round-table; under the default rules of procedure it does not vote.
            [city.person(k) for k, role in invited if role != "bureau"],
        )
        narrate(f"   Consultation {round_number} held.")
    final = wait_for(lambda: (i := _issue(staff, roof["id"]))["status"] == "resolved" and i, what="the roof resolved")
    meetings = staff.get(f"/api/v1/issues/{roof['id']}/meetings")
    timeline = staff.get(f"/api/v1/issues/{roof['id']}/updates")
    narrate(f"   Resolved after {final['consultation_count']} consultations.")
    return {"roof": roof["id"], "roof_final": final, "roof_meetings": meetings, "roof_timeline": timeline}


def unattended_issue(city: City, narrate: Narrate = print) -> str:
    """Step 5, second half: an issue nobody handles (its deadline escalates it; see the worker's timer)."""
    narrate("   A broken street lamp nobody handles will escalate when its deadline passes.")
    lamp = _report(
        city,
        "roof_neighbour",
        "yucai",
        title="Street lamp at the north gate is out",
        category="safety_hazard",
        urgency="urgent",
        description="Dark at night at the north gate; elderly residents have fallen.",
    )
    return lamp["id"]


def escalated_to_street(city: City, lamp_id: str, narrate: Narrate = print) -> dict[str, Any]:
    """Once the lamp's deadline has passed, the street office has it, and is told."""
    official = city.person("official")
    lamp = wait_for(lambda: (i := _issue(official, lamp_id))["tier"] == "street" and i, what="the lamp escalated")
    told = wait_for(lambda: [n for n in inbox(official) if lamp_id in str(n)], what="the street office told")
    narrate(f"   The lamp's deadline passed: it is now at the {lamp['tier']} tier, and the street office was told.")
    return {"lamp": lamp, "official_told": told}


def popular_activity(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6: a parent-child sports day at the Xihu neighbourhood inn fills up."""
    staff = city.person("staff_xihu")
    narrate("6. A parent-child sports day at the Xihu neighbourhood inn, starting within the hour, fills up.")
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    activity = staff.post(
        "/api/v1/activities/",
        {
            "community_ids": [city.communities["xihu"]],
            "kind": "sports",
            "title": "Parent-child sports day",
            "place": "Xihu neighbourhood inn",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=3)).isoformat(),
            "capacity": 4,
            "max_party_size": 2,
            "publish": True,
        },
    )
    aid = activity["id"]
    registrations = {}
    for key, party in (("li_yumei", 2), ("xihu_1", 2), ("xihu_2", 1)):
        registrations[key] = city.person(key).post(f"/api/v1/activities/{aid}/registrations", {"party_size": party})
    narrate(
        f"   Li Yumei and Qian Hong take the four places; Feng Lan is number "
        f"{registrations['xihu_2'].get('waitlist_position')} on the waiting list."
    )
    city.person("xihu_1").post(f"/api/v1/activities/{aid}/registrations/{registrations['xihu_1']['id']}/cancel")
    promoted = wait_for(
        lambda: [n for n in inbox(city.person("xihu_2")) if "promot" in str(n).lower() or aid in str(n)],
        what="Feng Lan told she has a place",
    )
    narrate("   Qian Hong cancels; Feng Lan is promoted and told.")
    staff.post(f"/api/v1/activities/{aid}/checkins", {"registration_id": registrations["li_yumei"]["id"]})
    staff.post(f"/api/v1/activities/{aid}/checkins", {"registration_id": registrations["xihu_2"]["id"]})
    mine = city.person("xihu_2").get(f"/api/v1/activities/{aid}/registrations")
    narrate("   Li Yumei's family and Feng Lan check in.")
    return {"activity": aid, "registrations": registrations, "promoted_notices": promoted, "feng_lan": mine}


def neighbours_helping(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6, too: a mutual-aid group logs its help, and a haircut is given at home to someone who
    cannot get out."""
    staff = city.person("staff_xihu")
    xihu = city.communities["xihu"]
    narrate("   The 'caring grandmas' group of Xihu logs its help; a haircut is given at home.")
    group = staff.post(
        "/api/v1/activities/groups",
        {
            "community_id": xihu,
            "name": "Caring grandmas 爱心奶奶",
            "purpose": "Visit neighbours who live alone",
            "coordinator_id": city.person("li_yumei").id,
        },
    )
    for key in ("li_yumei", "xihu_3"):
        staff.post(
            f"/api/v1/activities/groups/{group['id']}/members",
            {"user_id": city.person(key).id, "display_name": city.person(key).name},
        )
    staff.post(
        f"/api/v1/activities/groups/{group['id']}/help",
        {
            "helper_id": city.person("li_yumei").id,
            "helped_description": "Grandpa Wang, lives alone",
            "helped_on": datetime.now(UTC).date().isoformat(),
            "hours": 2.5,
            "note": "Shopping and a chat",
        },
    )
    haircut = staff.post(
        "/api/v1/activities/offerings",
        {
            "community_id": xihu,
            "name": "Haircut at home",
            "kind": "haircut",
            "provider_type": "business",
            "provider_name": "Xihu barber",
            "at_post": False,
            "door_to_door": True,
        },
    )
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    booking = staff.post(
        "/api/v1/activities/bookings",
        {
            "offering_id": haircut["id"],
            "resident_id": city.person("xihu_3").id,
            "door_to_door": True,
            "address": "Xihu Residences, Building 3, 501",
            "slot_start": start.isoformat(),
            "slot_end": (start + timedelta(minutes=40)).isoformat(),
        },
    )
    staff.post(f"/api/v1/activities/bookings/{booking['id']}/confirm", {})
    done = staff.post(f"/api/v1/activities/bookings/{booking['id']}/complete", {"person_times": 1})
    return {"group": group["id"], "booking": done}


def inn_programme(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6, the inn's daily programme: a recurring series, one day skipped."""
    staff = city.person("staff_xihu")
    tomorrow = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    narrate("   The Xihu neighbourhood inn runs a morning programme every day for a week, from tomorrow.")
    series = staff.post(
        "/api/v1/activities/series",
        {
            "community_ids": [city.communities["xihu"]],
            "kind": "culture",
            "title": "Morning calligraphy at the inn 邻里驿站晨练书法",
            "place": "Xihu neighbourhood inn",
            "frequency": "daily",
            "first_date": tomorrow.isoformat(),
            "start_time": "09:00",
            "duration_minutes": 90,
            "count": 7,
            "capacity": 20,
            "publish": True,
        },
    )
    skipped = staff.post(
        f"/api/v1/activities/series/{series['id']}/exceptions",
        {"occurrence_date": (tomorrow + timedelta(days=2)).isoformat(), "action": "skip",
         "reason": "The inn hosts the health check that morning"},
    )  # fmt: skip
    narrate("   One morning is skipped for the health check; residents are told.")
    return {"series": staff.get(f"/api/v1/activities/series/{series['id']}"), "skipped": skipped}


def talent_matched(city: City, issue_id: str, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6, a talent: a retired electrician offers his skill, staff vet him, match him to a need,
    and he accepts."""
    staff, talent_user = city.person("staff_xihu"), city.person("xihu_1")
    narrate("   Qian Hong, a retired electrician, joins the talent pool; staff vet him and match him to a need.")
    talent = talent_user.post(
        "/api/v1/activities/talents",
        {"community_id": city.communities["xihu"], "display_name": talent_user.name, "skills": ["repair"],
         "availability": "weekday mornings", "description": "Retired electrician"},
    )  # fmt: skip
    vetted = staff.post(
        f"/api/v1/activities/talents/{talent['id']}/vetting",
        {"decision": "approve", "note": "Capable, well regarded, selfless: known to the community for years"},
    )
    match = staff.post(
        f"/api/v1/activities/talents/{talent['id']}/matches",
        {"issue_id": issue_id, "note": "The stairwell lamps of Building 3"},
    )
    accepted = talent_user.post(f"/api/v1/activities/talents/matches/{match['id']}/accept")
    narrate("   He accepts the match.")
    return {"talent": vetted, "match": accepted}


def welfare_visit_kept(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6, a welfare visit: Wu Gang lives alone; a caring grandma visits him every week."""
    staff, visitor = city.person("staff_xihu"), city.person("li_yumei")
    narrate("   Wu Gang lives alone: Li Yumei is to visit him every week, and does.")
    flag = staff.post(
        "/api/v1/activities/support",
        {"community_id": city.communities["xihu"], "resident_id": city.person("xihu_3").id,
         "display_name": city.person("xihu_3").name, "needs": ["living_alone"],
         "address": "Xihu Residences, Building 3, 501"},
    )  # fmt: skip
    today = datetime.now(UTC).date()
    plan = staff.put(
        f"/api/v1/activities/support/{flag['id']}/visit-plan",
        {"every_days": 7, "visitor_id": visitor.id, "visitor_name": visitor.name, "starts_on": today.isoformat()},
    )
    visit = visitor.post(
        f"/api/v1/activities/support/{flag['id']}/visits",
        {"visited_on": today.isoformat(), "condition": "well", "note": "Tea and a chat; the fridge is full"},
    )
    plan = staff.get(f"/api/v1/activities/support/{flag['id']}/visit-plan")
    queue = staff.get("/api/v1/activities/visits/queue")
    narrate(f"   Visited today; the next visit is due on {plan['next_due_on']}.")
    return {"visit": visit, "plan": plan, "queue": queue}


def woodpecker_patrol(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 6, the woodpecker patrol: a mutual-aid group walks its round, finds a hazard and raises
    it as an issue in one step; the issue is credited to the group."""
    staff = city.person("staff_xihu")
    coordinator, member = city.person("xihu_2"), city.person("li_yumei")
    narrate("   Xihu's 'woodpecker patrol' walks its evening round.")
    group = staff.post(
        "/api/v1/activities/groups",
        {"community_id": city.communities["xihu"], "name": "Woodpecker patrol 啄木鸟巡逻队",
         "purpose": "Walk the compound and find what is broken", "coordinator_id": coordinator.id},
    )  # fmt: skip
    for person in (coordinator, member):
        staff.post(f"/api/v1/activities/groups/{group['id']}/members",
                   {"user_id": person.id, "display_name": person.name})  # fmt: skip
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    patrol = coordinator.post(
        f"/api/v1/activities/groups/{group['id']}/patrols",
        {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
         "member_ids": [coordinator.id, member.id], "route": "Buildings 1-6 and the bicycle shed"},
    )  # fmt: skip
    finding = member.post(
        f"/api/v1/activities/patrols/{patrol['id']}/findings",
        {"title": "Stairwell lamps out in Building 3", "description": "Dark from the 2nd to the 5th floor at night",
         "location": "Xihu Residences, Building 3 stairwell", "urgency": "high", "raise_issue": True},
    )  # fmt: skip
    issue = wait_for(lambda: _issue(staff, finding["issue_id"]), what="the patrol's finding reported as an issue")
    narrate(f"   {member.name} finds the stairwell dark: it is an issue at once, credited to the patrol.")
    figures = staff.get(f"/api/v1/activities/groups/{group['id']}/patrols/figures")
    return {"group": group, "round": patrol, "finding": finding, "issue": issue, "figures": figures}


def street_overview(city: City, narrate: Narrate = print) -> dict[str, Any]:
    """Step 7: what the Chengqu street office sees."""
    # The last year up to the day after tomorrow: today's meetings count whatever the hour.
    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=365)).isoformat(), "to": (today + timedelta(days=2)).isoformat()}
    overview = city.person("official").get("/api/v1/stats/overview", params=period)
    totals = overview["totals"]
    narrate("7. The Chengqu street office's overview:")
    for service in sorted(totals):
        figures = ", ".join(f"{k}={v}" for k, v in totals[service].items() if not isinstance(v, dict | list))
        narrate(f"   {service}: {figures}")
    if overview["missing"]:
        narrate(f"   (missing: {overview['missing']})")
    return overview
