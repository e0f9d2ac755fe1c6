"""The whole story of the source article, end to end: every process of the platform running
separately (gateway and each service's web and worker) on RabbitMQ and on each database — the
SQLite files `make run` uses, and PostgreSQL — driven only through the gateway's public API by the
same client the `linli-demo story` command uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linli_demo import story

# Every process of the platform starts and stops around the story: minutes on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ADMIN_PHONE, ADMIN_PASSWORD = "13500135000", "admin-pass-2026"


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
    assert wall["decision"]["outcome"] == "adopted" and "unanimity" in wall["decision"]["rule"]
    assert wall["decision"]["votes_for"] == 5 and wall["decision"]["votes_against"] == 0
    final = wall["wall_final"]
    assert final["status"] in {"resolved", "closed"} and final["rating"] == 5
    assert final["consultation_count"] == 1
    assert len(wall["reporter_told"]) >= 3

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
    assert (issues["raised"], issues["resolved"], issues["overdue"]) == (3, 2, 1)
    assert issues["average_satisfaction"] == 5
    meetings = overview["totals"]["meetings"]
    assert meetings["meetings_held"] == 7 and meetings["meetings_by_type"] == {"round_table": 7}
    assert meetings["decisions_adopted"] == 7 and meetings["action_items_done"] == 1
    activities = overview["totals"]["activities"]
    # The sports day starts within the hour: not "held" yet, but its check-ins already count.
    assert activities["participant_times"] == 3 and activities["distinct_participants"] == 2
    assert (activities["mutual_aid_groups"], activities["group_members"], activities["help_hours"]) == (1, 2, 2.5)
    assert activities["service_person_times"] == 1 and activities["door_to_door_person_times"] == 1
    by_name = {entry["community_name"]: entry for entry in overview["by_community"]}
    assert by_name["Yucai Street Community 育才街社区"]["issues"]["raised"] == 2
    assert by_name["Xihu Community 西湖社区"]["activities"]["participant_times"] == 3

    official = city.person("official")
    ranking = official.get("/api/v1/stats/rankings", params={"metric": "resolution_rate"})["ranking"]
    assert ranking[0]["community_name"] == "Shangpinyuan Community 尚品苑社区" and ranking[0]["value"] == 1
    csv_text = official.get("/api/v1/stats/export", params={"format": "csv"}).decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("社区编号,社区,")  # the header in Chinese, the default
    assert len(csv_text.splitlines()) == 4  # a header and the street's three communities
    narration = "\n".join(lines)
    assert "Yang Jing" in narration and "7. The Chengqu street office" in narration
