"""The whole story of the source article, end to end: every process of the platform running
separately (gateway and each service's web and worker) on PostgreSQL and RabbitMQ, driven only
through the gateway's public API by the same client the `linli-demo story` command uses."""

from __future__ import annotations

import pytest

from linli_demo import story

pytestmark = pytest.mark.integration
ADMIN_PHONE, ADMIN_PASSWORD = "13500135000", "admin-pass-2026"


@pytest.fixture
def whole_platform(platform):
    gateway = platform.start_web("gateway")
    for service in ("gateway", "issues", "meetings", "activities", "notifications"):
        platform.start_worker(service)
    for service in ("issues", "meetings", "activities", "notifications"):
        platform.start_web(service)
    platform.command("gateway", "create-admin", "--phone", ADMIN_PHONE, "--password", ADMIN_PASSWORD)
    return gateway


def test_the_story_of_the_source_article(whole_platform, platform):
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
    assert wall["decision"]["outcome"] == "adopted"
    assert wall["decision"]["votes_for"] == 5 and wall["decision"]["votes_against"] == 0
    final = wall["wall_final"]
    assert final["status"] in {"resolved", "closed"} and final["rating"] == 5
    assert final["consultation_count"] == 1
    assert len(wall["reporter_told"]) >= 3

    roof = story.leaking_roof(city, lines.append)
    assert roof["roof_final"]["consultation_count"] == 6
    assert len(roof["roof_meetings"]) == 6
    assert any(entry["kind"] == "inspection" for entry in roof["roof_timeline"])

    activity = story.popular_activity(city, lines.append)
    assert activity["registrations"]["xihu_2"]["status"] == "waitlisted"
    assert activity["promoted_notices"]

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
    assert issues["raised"] == 2 and issues["resolved"] == 2
    meetings = overview["totals"]["meetings"]
    assert meetings["meetings_held"] == 7
