"""The whole story of the source article, end to end: every process of the platform running
separately (gateway and each service's web and worker) on RabbitMQ and on each database — the
SQLite files `make run` uses, and PostgreSQL — driven only through the gateway's public API by the
same client the `linli-demo story` command uses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, create_engine, func, select

from linli_demo import story
from linli_issues.adapters.tables import issues as issues_table
from linli_kit.tables import add_messaging_tables
from linli_kit.testing.probe import publish_raw
from linli_kit.testing.waiting import eventually

# Every process of the platform starts and stops around the story: minutes on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ADMIN_PHONE, ADMIN_PASSWORD = "13500135000", "admin-pass-2026"


def delivered_again(platform, issue_id: str) -> None:
    """The patrol's event published again on RabbitMQ, as the relay does after a crash between
    publishing and marking it sent (the same event) and as a replay does (a copy with a new id):
    the issues service handles both, and there is still one issue."""
    messaging = add_messaging_tables(MetaData())
    outbox, inbox = messaging.outbox, messaging.inbox
    activities = create_engine(platform.database_url("activities"))
    with activities.connect() as connection:
        payload = connection.scalar(
            select(outbox.c.payload).where(
                outbox.c.event_type == "activities.patrol.finding_raised", outbox.c.payload.contains(issue_id)
            )
        )
    activities.dispose()
    copy = {**json.loads(payload), "id": str(uuid.uuid4())}
    for body in (payload.encode(), json.dumps(copy).encode()):
        publish_raw(platform.amqp_url, platform.bus, body, routing_key="activities.patrol.finding_raised")
    issues = create_engine(platform.database_url("issues"))

    def copy_handled() -> bool:
        with issues.connect() as connection:
            return bool(connection.scalar(select(func.count()).where(inbox.c.event_id == copy["id"])))

    try:
        eventually(copy_handled, timeout=60, what="the copy handled by the issues service")
        with issues.connect() as connection:
            assert (
                connection.scalar(select(func.count()).select_from(issues_table).where(issues_table.c.id == issue_id))
                == 1
            )
    finally:
        issues.dispose()


@pytest.fixture
def whole_platform(any_platform):
    platform = any_platform
    gateway = platform.start_web("gateway")
    for service in ("gateway", "issues", "meetings", "activities", "notifications"):
        platform.start_worker(service)
    for service in ("issues", "meetings", "activities", "notifications"):
        platform.start_web(service)
    platform.command("gateway", "create-admin", "--phone", ADMIN_PHONE, "--password", ADMIN_PASSWORD)
    return gateway


def test_the_story_of_the_source_article(whole_platform, any_platform):
    platform = any_platform
    lines: list[str] = []
    city = story.set_up_city(whole_platform.url, ADMIN_PHONE, ADMIN_PASSWORD, lines.append)
    assert len(city.communities) == 4 and len(city.people) >= 15

    wall = story.cultural_wall(city, lines.append)
    assert wall["supporters"] == 2
    assert set(wall["told_of_meeting"]) == {
        "property",
        "owners_committee",
        "party_member",
        "representative",
        "yang_jing",
    }
    assert all(wall["sms_to_invited"].values())
    assert (
        wall["decision"]["outcome"] == "adopted" and "全体一致" in wall["decision"]["rule"]
    )  # read in Chinese, the default
    assert wall["decision"]["votes_for"] == 5 and wall["decision"]["votes_against"] == 0
    final = wall["wall_final"]
    assert final["status"] in {"resolved", "closed"} and final["rating"] == 5
    assert final["consultation_count"] == 1
    assert len(wall["reporter_told"]) >= 3
    # The action item moved the issue: resolving with 0 of 1 done, then resolved by itself once done.
    assert wall["wall_in_progress"] == {"action_items": 1, "done": 0}
    resolved = wall["wall_resolved"]
    assert resolved["follow_up"] == {"action_items": 1, "done": 1}
    assert resolved["resolution_summary"] == "The property company dismantles both walls"
    # The noticeboard (公示), as a resident reads it: the decision, its votes, its action item done.
    board = wall["noticeboard"]
    [posted] = [d for d in board["decisions"] if d["id"] == wall["decision"]["id"]]
    assert (posted["outcome"], posted["votes_for"], posted["votes_against"], posted["abstentions"]) == (
        "adopted",
        5,
        0,
        0,
    )
    assert posted["issue_id"] == wall["wall"] and posted["meeting_type"] == "round_table"
    assert posted["follow_up"] == {"action_items": 1, "done": 1, "complete": True}
    [item] = posted["action_items"]
    assert (item["title"], item["status"], item["owner_body"]) == (
        "Dismantle the cultural walls",
        "done",
        "property_company",
    )
    assert board["open_action_items"] == [] and board["public_only"] is True

    roof = story.leaking_roof(city, lines.append)
    assert roof["roof_final"]["consultation_count"] == 6
    assert len(roof["roof_meetings"]) == 6
    assert any(entry["kind"] == "inspection" for entry in roof["roof_timeline"])

    lamp_id = story.unattended_issue(city, lines.append)
    two_days_on = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    platform.command("issues", "run-deadlines", "--as-of", two_days_on)  # nobody handled it in time
    escalated = story.escalated_to_street(city, lamp_id, lines.append)
    assert escalated["lamp"]["tier"] == "street" and escalated["official_told"]

    activity = story.popular_activity(city, lines.append)
    assert activity["registrations"]["xihu_2"]["status"] == "waitlisted"
    assert activity["promoted_notices"]

    helping = story.neighbours_helping(city, lines.append)
    assert helping["booking"]["status"] == "completed"

    inn = story.inn_programme(city, lines.append)
    assert (inn["series"]["frequency"], inn["series"]["occurrences"], inn["series"]["status"]) == (
        "daily",
        7,
        "active",
    )
    assert (inn["skipped"]["series_exception"], inn["skipped"]["status"]) == ("skipped", "cancelled")

    patrol = story.woodpecker_patrol(city, lines.append)
    found = patrol["issue"]
    assert (found["credited_group_id"], found["credited_group_name"]) == (
        patrol["group"]["id"],
        "Woodpecker patrol 啄木鸟巡逻队",
    )
    assert (found["title"], found["channel"], found["category"], found["urgency"]) == (
        "Stairwell lamps out in Building 3",
        "doorstep",
        "safety_hazard",
        "high",
    )
    assert found["reporter_id"] == city.person("li_yumei").id
    assert patrol["figures"] == {
        "group_id": patrol["group"]["id"],
        "rounds": 1,
        "rounds_walked": 1,
        "findings": 1,
        "issues_raised": 1,
    }
    delivered_again(platform, found["id"])  # the broker delivers the event twice: still one issue

    talent = story.talent_matched(city, found["id"], lines.append)
    assert talent["talent"]["vetting_status"] == "approved" and talent["talent"]["vetted_by"]
    assert (talent["match"]["status"], talent["match"]["issue_id"]) == ("accepted", found["id"])

    visit = story.welfare_visit_kept(city, lines.append)
    assert (visit["visit"]["condition"], visit["plan"]["last_visited_on"]) == ("well", visit["visit"]["visited_on"])
    assert visit["queue"] == []  # kept: nothing overdue

    overview = story.street_overview(city, lines.append)
    assert overview["complete"], overview["missing"]
    assert overview["scope"] == {"level": "street", "community_id": None, "street_id": city.streets["chengqu"]}
    names = {entry["community_name"] for entry in overview["by_community"]}
    assert names == {
        "Shangpinyuan Community 尚品苑社区",
        "Yucai Street Community 育才街社区",
        "Xihu Community 西湖社区",
    }
    issues = overview["totals"]["issues"]
    assert (issues["raised"], issues["resolved"], issues["overdue"]) == (4, 2, 1)  # the patrol's issue is one
    assert issues["average_satisfaction"] == 5
    meetings = overview["totals"]["meetings"]
    assert meetings["meetings_held"] == 7 and meetings["meetings_by_type"] == {"round_table": 7}
    assert meetings["decisions_adopted"] == 7 and meetings["action_items_done"] == 1
    activities = overview["totals"]["activities"]
    # The sports day starts within the hour: not "held" yet, but its check-ins already count.
    assert activities["participant_times"] == 3 and activities["distinct_participants"] == 2
    # The caring grandmas and the woodpecker patrol; Li Yumei is in both (counted once).
    assert (activities["mutual_aid_groups"], activities["group_members"], activities["help_hours"]) == (2, 3, 2.5)
    assert activities["service_person_times"] == 1 and activities["door_to_door_person_times"] == 1
    assert (activities["talents"], activities["welfare_visits"], activities["visit_plans"]) == (1, 1, 1)
    assert activities["visits_overdue"] == 0
    assert (activities["patrol_rounds"], activities["patrol_findings"], activities["patrol_issues_raised"]) == (1, 1, 1)
    assert activities["activities_held"] == 0  # the sports day and the inn's programme are still to come
    by_name = {entry["community_name"]: entry for entry in overview["by_community"]}
    assert by_name["Yucai Street Community 育才街社区"]["issues"]["raised"] == 2
    assert by_name["Xihu Community 西湖社区"]["activities"]["participant_times"] == 3
    assert by_name["Xihu Community 西湖社区"]["issues"]["raised"] == 1
    assert by_name["Xihu Community 西湖社区"]["activities"]["patrol_issues_raised"] == 1

    official = city.person("official")
    ranking = official.get("/api/v1/stats/rankings", params={"metric": "resolution_rate"})["ranking"]
    assert ranking[0]["community_name"] == "Shangpinyuan Community 尚品苑社区" and ranking[0]["value"] == 1
    csv_text = official.get("/api/v1/stats/export", params={"format": "csv"}).decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("社区编号,社区,")  # the header in Chinese, the default
    assert len(csv_text.splitlines()) == 4  # a header and the street's three communities
    narration = "\n".join(lines)
    assert "Yang Jing" in narration and "7. The Chengqu street office" in narration
