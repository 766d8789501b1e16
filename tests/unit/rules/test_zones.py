"""Zones (point in polygon, incl. concave), anchor points, segment crossing and direction."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.rules.zones import (
    CameraGeometry,
    CameraGeometryConfig,
    DirectionLine,
    anchor_point,
    classify_direction,
    point_in_polygon,
    segments_intersect,
)

SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10)]
# A "U": the notch x in (4, 6), y in (0, 6) is outside although inside the bounding box.
U_SHAPE = [(0, 0), (4, 0), (4, 6), (6, 6), (6, 0), (10, 0), (10, 10), (0, 10)]


@pytest.mark.parametrize(
    "point,inside",
    [((5, 5), True), ((0, 5), True), ((11, 5), False), ((-0.1, 5), False), ((10, 10), True)],
)
def test_point_in_convex_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE) is inside


@pytest.mark.parametrize(
    "point,inside",
    [((5, 3), False), ((5, 8), True), ((2, 3), True), ((8, 3), True), ((5, 5.9), False)],
)
def test_point_in_concave_polygon(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, U_SHAPE) is inside


def test_anchor_point() -> None:
    assert anchor_point([100, 200, 300, 600], [150, 500, 250, 540]) == (200.0, 600.0)
    assert anchor_point(None, [150, 500, 250, 540]) == (200.0, 520.0)
    with pytest.raises(ValueError):
        anchor_point(None, None)


def test_segments_intersect() -> None:
    assert segments_intersect((0, 0), (10, 10), (0, 10), (10, 0))
    assert not segments_intersect((0, 0), (1, 1), (0, 10), (10, 0))
    assert segments_intersect((0, 5), (5, 5), (5, 0), (5, 10))  # touching end counts
    assert not segments_intersect((0, 0), (10, 0), (0, 1), (10, 1))  # parallel


# Horizontal line y=50 from x=0..100; inside is below (larger y: towards the camera).
LINE = DirectionLine.from_points((0, 50), (100, 50), inside_point=(50, 90), min_consecutive=2)


def _track(ys: list[float], x: float = 50.0) -> list[tuple[float, float]]:
    return [(x, y) for y in ys]


def test_entry_and_exit() -> None:
    assert classify_direction(_track([10, 20, 30, 40, 60, 70, 80]), LINE) == "entry"
    assert classify_direction(_track([80, 70, 60, 40, 30, 20]), LINE) == "exit"


def test_no_crossing_is_unknown() -> None:
    assert classify_direction(_track([10, 20, 30, 40]), LINE) == "unknown"
    assert classify_direction([], LINE) == "unknown"


def test_jitter_on_the_line_is_not_a_crossing() -> None:
    # Wobbles across the line one frame at a time: never 2 consecutive on the other side.
    assert classify_direction(_track([40, 45, 55, 45, 56, 44, 54, 40, 30]), LINE) == "unknown"
    # A single outlier frame past the line is ignored, the later real crossing counts.
    ys = [10, 20, 60, 30, 35, 40, 60, 70, 80]
    assert classify_direction(_track(ys), LINE) == "entry"


def test_crossing_and_coming_back_is_unknown() -> None:
    assert classify_direction(_track([10, 20, 60, 70, 30, 20]), LINE) == "unknown"


def test_passing_beyond_the_segment_end_is_not_a_crossing() -> None:
    # Same y movement but at x=150, outside the 0..100 segment.
    assert classify_direction(_track([10, 20, 60, 70], x=150), LINE) == "unknown"


def test_points_in_the_dead_band_are_ignored() -> None:
    line = DirectionLine.from_points((0, 50), (100, 50), (50, 90), min_consecutive=2,
                                     deadband_px=5)  # fmt: skip
    assert line.side((50, 53)) == 0
    assert classify_direction(_track([10, 20, 48, 52, 49, 51, 70, 80]), line) == "entry"


def _geometry(**overrides: object) -> CameraGeometry:
    cfg = {
        "zones": [
            {"name": "lane", "points": [[0, 40], [100, 40], [100, 100], [0, 100]]},
            {"name": "kerb", "points": [[200, 0], [300, 0], [300, 100], [200, 100]]},
        ],
        "direction_line": {"points": [[0, 50], [100, 50]], "inside_point": [50, 90]},
    }
    cfg.update(overrides)
    return CameraGeometry(CameraGeometryConfig.model_validate(cfg), 640, 480)


def test_zone_tracker_accumulates_in_order_and_direction() -> None:
    g = _geometry(require_zones=["kerb"])
    for y in (10, 20, 30, 45, 60, 70):
        g.observe(1, [40, y - 30, 60, y])  # vehicle box; anchor = bottom centre (50, y)
    res = g.finish(1)
    assert res.zones == ["lane"] and res.direction == "entry"
    assert res.allowed is False  # required zone 'kerb' not passed
    g.observe(2, None, [240, 40, 260, 60])  # plate only: centre (250, 50) in kerb
    r2 = g.finish(2)
    assert r2.zones == ["kerb"] and r2.allowed and r2.direction == "unknown"
    assert g.active_tracks == 0
    assert g.finish(99).zones == []


def test_normalized_coordinates_scale_with_the_frame() -> None:
    cfg = CameraGeometryConfig.model_validate(
        {"normalized": True, "zones": [{"name": "left", "points": [[0, 0], [0.5, 0], [0.5, 1],
                                                                    [0, 1]]}]}
    )  # fmt: skip
    g = CameraGeometry(cfg, 1920, 1080)
    assert g.zones_at((900, 500)) == ["left"]
    assert g.zones_at((1000, 500)) == []
    assert g.finish(5).direction is None  # no line configured


def test_geometry_config_errors() -> None:
    with pytest.raises(ValidationError, match="unknown zone"):
        CameraGeometryConfig.model_validate({"require_zones": ["nope"]})
    with pytest.raises(ValidationError, match="outside 0-1"):
        CameraGeometryConfig.model_validate(
            {"normalized": True, "zones": [{"name": "z", "points": [[0, 0], [2, 0], [0, 1]]}]}
        )
    with pytest.raises(ValidationError, match="on the line"):
        CameraGeometryConfig.model_validate(
            {"direction_line": {"points": [[0, 0], [10, 0]], "inside_point": [5, 0]}}
        )
    with pytest.raises(ValidationError, match="duplicate zone"):
        CameraGeometryConfig.model_validate(
            {"zones": [{"name": "z", "points": SQUARE}, {"name": "z", "points": SQUARE}]}
        )
