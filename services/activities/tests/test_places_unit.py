"""Walking distances against figures computed by hand (no database)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from linli_activities.domain.places import (
    CompoundPoint,
    ServicePost,
    WalkingModel,
    coverage,
    haversine_m,
    posts_within,
)
from linli_kit.errors import Invalid

# One degree of arc on the mean Earth sphere: 6,371,008.8 m x pi / 180.
DEGREE_M = 111_195.08
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def post(name, lat, lon, **kw):
    return ServicePost(community_id="c", name=name, latitude=lat, longitude=lon, created_at=NOW, **kw)


def test_haversine_against_hand_computed_distances():
    assert haversine_m(0, 0, 0, 1) == pytest.approx(DEGREE_M, abs=0.5)
    assert haversine_m(30, 120, 30.01, 120) == pytest.approx(1_111.95, abs=0.05)
    # Along a parallel at 30 degrees a degree of longitude shrinks by cos(30) = 0.866025.
    assert haversine_m(30, 120, 30, 120.01) == pytest.approx(962.97, abs=0.05)
    assert haversine_m(38.1, 106.3, 38.1, 106.3) == 0


def test_walking_time_uses_detour_factor_and_speed():
    model = WalkingModel(speed_m_per_min=80, detour_factor=1.3)
    walk = model.walk(30, 120, 30.01, 120)
    # 1,111.95 m as the crow flies x 1.3 = 1,445.54 m on foot; / 80 m/min = 18.07 minutes.
    assert walk.walking_m == pytest.approx(1_445.54, abs=0.1)
    assert walk.minutes == pytest.approx(18.07, abs=0.01)
    slower = WalkingModel(speed_m_per_min=60, detour_factor=1.3).walk(30, 120, 30.01, 120)
    assert slower.minutes == pytest.approx(24.09, abs=0.01)
    # 15 minutes at 80 m/min = 1,200 m on foot = 923.08 m in a straight line.
    assert model.straight_line_reach_m(15) == pytest.approx(923.08, abs=0.01)


def test_posts_within_fifteen_minutes_nearest_first_and_the_edge():
    model = WalkingModel(speed_m_per_min=80)
    near = post("near", 30.005, 120)  # 555.98 m -> 722.77 m on foot -> 9.03 min
    edge_in = post("edge in", 30.008, 120)  # 889.56 m -> 1,156.43 m -> 14.46 min
    edge_out = post("edge out", 30.0085, 120)  # 945.16 m -> 1,228.71 m -> 15.36 min
    closed = post("closed", 30.001, 120, active=False)
    found = posts_within(model, 30, 120, [edge_out, edge_in, closed, near])
    assert [d.post.name for d in found] == ["near", "edge in"]
    assert found[0].walk.minutes == pytest.approx(9.03, abs=0.01)
    assert found[1].walk.minutes == pytest.approx(14.46, abs=0.01)


def test_bounding_box_contains_the_whole_circle():
    model = WalkingModel()
    min_lat, max_lat, min_lon, max_lon = model.bounding_box(38.1, 106.3, 15)
    reach = model.straight_line_reach_m(15)
    for bearing in range(0, 360, 15):
        # A point at exactly the reach in every direction is inside the box.
        dlat = reach * math.cos(math.radians(bearing)) / DEGREE_M
        dlon = reach * math.sin(math.radians(bearing)) / (DEGREE_M * math.cos(math.radians(38.1)))
        assert min_lat <= 38.1 + dlat <= max_lat and min_lon <= 106.3 + dlon <= max_lon


def test_coverage_finds_gaps_and_compounds_without_coordinates():
    model = WalkingModel()
    compounds = [
        CompoundPoint("a", "Garden", 30.0, 120.0),
        CompoundPoint("b", "Far away", 30.05, 120.0),
        CompoundPoint("c", "Unknown", None, None),
    ]
    result = coverage(model, compounds, [post("inn", 30.004, 120.0)])
    assert result[0].nearest is not None and result[0].nearest.post.name == "inn"
    assert result[1].nearest is None and result[1].located
    assert result[2].nearest is None and not result[2].located


def test_a_post_with_bad_coordinates_is_refused():
    with pytest.raises(Invalid) as caught:
        post("x", 91, 200, facilities=["jacuzzi"])
    assert set(caught.value.fields) == {"latitude", "longitude", "facilities"}
