"""Zones and direction of travel per camera: polygons, an entry/exit line, per-track state.

Geometry is pure (numpy + ``cv2.pointPolygonTest``). A track is located by its *anchor*: the
bottom-centre of the vehicle box (where the wheels touch the ground, so a zone drawn on the road
means what it looks like), or the plate centre when the plate has no vehicle.

Config (per camera)::

    geometry:
      normalized: false            # true: all coordinates are fractions of width/height (0-1)
      zones:
        - {name: gate_lane, points: [[100, 700], [900, 700], [900, 1080], [100, 1080]]}
      require_zones: [gate_lane]   # only report vehicles that passed one of these (empty: all)
      direction_line:
        points: [[0, 800], [1920, 800]]
        inside_point: [960, 1000]  # any point on the "inside" side of the line
        min_consecutive: 2         # observations needed on the new side (jitter guard)

Direction: each observation's side of the line is debounced (a side counts only after
``min_consecutive`` consecutive observations on it; points within ``deadband_px`` of the line are
ignored). A change of settled side counts only if the step that made it crosses the *segment*
(a car passing beyond the line's end does not cross). The result compares the first and the last
settled side: outside->inside ``entry``, inside->outside ``exit``, else ``unknown`` (never crossed,
or crossed and came back).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from edge.settings import Settings

Point = tuple[float, float]
Direction = Literal["entry", "exit", "unknown"]
BoxLike = Sequence[float] | np.ndarray


class ZoneConfig(Settings):
    name: str = Field(min_length=1, max_length=64, description="zone name (in events)")
    points: list[tuple[float, float]] = Field(min_length=3, description="polygon vertices [x, y]")


class DirectionLineConfig(Settings):
    points: tuple[tuple[float, float], tuple[float, float]] = Field(
        description="two points [x, y] of the entry/exit line segment"
    )
    inside_point: tuple[float, float] = Field(description="any point on the 'inside' side")
    min_consecutive: int = Field(2, ge=1, le=100, description="debounce: observations per side")
    deadband_px: float = Field(2.0, ge=0.0, description="ignore anchors this close to the line")

    @model_validator(mode="after")
    def _valid(self) -> DirectionLineConfig:
        (x1, y1), (x2, y2) = self.points
        if (x1, y1) == (x2, y2):
            raise ValueError("direction_line.points: the two points are identical")
        if _side_value(self.points[0], self.points[1], self.inside_point) == 0:
            raise ValueError("direction_line.inside_point lies on the line")
        return self


class CameraGeometryConfig(Settings):
    normalized: bool = Field(False, description="coordinates are 0-1 fractions of the frame")
    zones: list[ZoneConfig] = Field(default_factory=list, description="named polygons")
    require_zones: list[str] = Field(
        default_factory=list, description="report only tracks that passed one of these zones"
    )
    direction_line: DirectionLineConfig | None = Field(
        None, description="a line whose crossing makes a track's direction entry or exit"
    )

    @field_validator("zones")
    @classmethod
    def _unique(cls, zones: list[ZoneConfig]) -> list[ZoneConfig]:
        names = [z.name for z in zones]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate zone name(s): {sorted(dup)}")
        return zones

    @model_validator(mode="after")
    def _check(self) -> CameraGeometryConfig:
        names = {z.name for z in self.zones}
        missing = [n for n in self.require_zones if n not in names]
        if missing:
            raise ValueError(
                f"require_zones names unknown zone(s) {missing}; zones: {sorted(names)}"
            )
        if self.normalized:
            pts: list[tuple[float, float]] = [p for z in self.zones for p in z.points]
            if self.direction_line is not None:
                pts += [*self.direction_line.points, self.direction_line.inside_point]
            bad = [p for p in pts if not (0.0 <= p[0] <= 1.0 and 0.0 <= p[1] <= 1.0)]
            if bad:
                raise ValueError(f"normalized: true but point(s) {bad[:3]} are outside 0-1")
        return self


# --------------------------------------------------------------------------------- pure geometry


def anchor_point(vehicle_box: BoxLike | None, plate_box: BoxLike | None) -> Point:
    """Bottom-centre of the vehicle box, else the plate box centre."""
    if vehicle_box is not None:
        x1, _y1, x2, y2 = (float(v) for v in vehicle_box)
        return ((x1 + x2) / 2.0, y2)
    if plate_box is not None:
        x1, y1, x2, y2 = (float(v) for v in plate_box)
        return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)
    raise ValueError("anchor_point: need a vehicle box or a plate box")


def point_in_polygon(point: Point, polygon: np.ndarray | Sequence[Point]) -> bool:
    """True if ``point`` is inside or on the edge of the (possibly concave) polygon."""
    poly = np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2)
    if poly.shape[0] < 3:
        raise ValueError("point_in_polygon: polygon needs at least 3 vertices")
    return cv2.pointPolygonTest(poly, (float(point[0]), float(point[1])), False) >= 0


def _side_value(a: Point, b: Point, p: Point) -> float:
    """Cross product (b - a) x (p - a): > 0 on one side, < 0 on the other, 0 on the line."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True if segment p1-p2 and segment q1-q2 share a point (touching counts)."""
    d1 = _side_value(q1, q2, p1)
    d2 = _side_value(q1, q2, p2)
    d3 = _side_value(p1, p2, q1)
    d4 = _side_value(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_seg(a: Point, b: Point, c: Point) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    return (
        (d1 == 0 and on_seg(q1, q2, p1))
        or (d2 == 0 and on_seg(q1, q2, p2))
        or (d3 == 0 and on_seg(p1, p2, q1))
        or (d4 == 0 and on_seg(p1, p2, q2))
    )


@dataclass(frozen=True)
class DirectionLine:
    """An entry/exit line in pixel coordinates; ``inside_sign`` is the side value's sign inside."""

    a: Point
    b: Point
    inside_sign: int
    min_consecutive: int = 2
    deadband_px: float = 2.0

    @classmethod
    def from_points(
        cls,
        a: Point,
        b: Point,
        inside_point: Point,
        min_consecutive: int = 2,
        deadband_px: float = 2.0,
    ) -> DirectionLine:
        s = _side_value(a, b, inside_point)
        if s == 0:
            raise ValueError("inside_point lies on the direction line")
        return cls(a, b, 1 if s > 0 else -1, min_consecutive, deadband_px)

    def side(self, p: Point) -> int:
        """+1 inside, -1 outside, 0 within the dead band of the (infinite) line."""
        v = _side_value(self.a, self.b, p)
        length = float(np.hypot(self.b[0] - self.a[0], self.b[1] - self.a[1]))
        if abs(v) / length <= self.deadband_px:
            return 0
        return 1 if (v > 0) == (self.inside_sign > 0) else -1


@dataclass
class DirectionState:
    """Streaming crossing detector for one track (see module docstring for the rules)."""

    line: DirectionLine
    first_side: int = 0
    settled: int = 0
    candidate: int = 0
    run: int = 0
    last_point_settled: Point | None = None  # last anchor seen on the settled side
    run_start_prev: Point | None = None  # anchor just before the current candidate run
    run_first: Point | None = None  # first anchor of the current candidate run
    crossings: int = 0
    _prev: Point | None = None

    def update(self, p: Point) -> None:
        s = self.line.side(p)
        prev, self._prev = self._prev, p
        if s == 0:
            return
        if self.settled == 0:
            # Settling the first side needs the same debounce as a change.
            if s == self.candidate:
                self.run += 1
            else:
                self.candidate, self.run = s, 1
            if self.run >= self.line.min_consecutive:
                self.settled = self.first_side = s
                self.last_point_settled = p
            return
        if s == self.settled:
            self.candidate, self.run = 0, 0
            self.last_point_settled = p
            return
        if s != self.candidate:
            self.candidate, self.run = s, 1
            self.run_start_prev, self.run_first = self.last_point_settled or prev, p
        else:
            self.run += 1
        if self.run >= self.line.min_consecutive:
            start = self.run_start_prev or p
            end = self.run_first or p
            if segments_intersect(start, end, self.line.a, self.line.b):
                self.crossings += 1
            else:
                # Moved round the end of the line: the side changed without a crossing, so the
                # reference side is reset (a later crossing back would otherwise count).
                self.first_side = s if self.crossings == 0 else self.first_side
            self.settled = s
            self.candidate, self.run = 0, 0
            self.last_point_settled = p

    def result(self) -> Direction:
        if self.crossings == 0 or self.first_side == 0 or self.settled == self.first_side:
            return "unknown"
        return "entry" if self.settled > 0 else "exit"


def classify_direction(points: Iterable[Point], line: DirectionLine) -> Direction:
    """Direction of a whole track of anchor points (pure: runs the streaming detector)."""
    state = DirectionState(line)
    for p in points:
        state.update((float(p[0]), float(p[1])))
    return state.result()


# --------------------------------------------------------------------------------- per camera


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: np.ndarray  # (N, 2) float32 pixels


@dataclass
class TrackGeometry:
    zones: list[str] = field(default_factory=list)
    direction: DirectionState | None = None


@dataclass(frozen=True)
class TrackResult:
    """What a finished track passed: zones in order of first visit and its direction."""

    zones: list[str]
    direction: Direction | None  # None when the camera has no direction line
    allowed: bool  # False when require_zones is set and the track passed none of them


class CameraGeometry:
    """Zones + direction line of one camera in pixels, and per-track state (``ZoneTracker``).

    ``observe(track_id, vehicle_box, plate_box)`` on every frame a track is seen;
    ``finish(track_id)`` when it ends (returns and forgets its TrackResult); ``peek`` for a
    provisional event. Thread-safe.
    """

    def __init__(self, config: CameraGeometryConfig, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"CameraGeometry: bad frame size {width}x{height}")
        sx, sy = (float(width), float(height)) if config.normalized else (1.0, 1.0)

        def px(p: tuple[float, float]) -> Point:
            return (p[0] * sx, p[1] * sy)

        self.config = config
        self.zones = [
            Zone(z.name, np.array([px(p) for p in z.points], dtype=np.float32))
            for z in config.zones
        ]
        self.require_zones = set(config.require_zones)
        dl = config.direction_line
        self.line = (
            DirectionLine.from_points(
                px(dl.points[0]),
                px(dl.points[1]),
                px(dl.inside_point),
                dl.min_consecutive,
                dl.deadband_px,
            )
            if dl is not None
            else None
        )
        self._tracks: dict[int, TrackGeometry] = {}
        self._lock = threading.Lock()

    def zones_at(self, point: Point) -> list[str]:
        return [z.name for z in self.zones if point_in_polygon(point, z.polygon)]

    def observe(
        self, track_id: int, vehicle_box: BoxLike | None, plate_box: BoxLike | None = None
    ) -> None:
        p = anchor_point(vehicle_box, plate_box)
        here = self.zones_at(p)
        with self._lock:
            tg = self._tracks.get(track_id)
            if tg is None:
                tg = self._tracks[track_id] = TrackGeometry(
                    direction=DirectionState(self.line) if self.line is not None else None
                )
            for name in here:
                if name not in tg.zones:
                    tg.zones.append(name)
            if tg.direction is not None:
                tg.direction.update(p)

    def allowed(self, zones: Iterable[str]) -> bool:
        return not self.require_zones or bool(self.require_zones.intersection(zones))

    def _result(self, tg: TrackGeometry | None) -> TrackResult:
        if tg is None:
            return TrackResult([], "unknown" if self.line else None, self.allowed([]))
        direction = tg.direction.result() if tg.direction is not None else None
        return TrackResult(list(tg.zones), direction, self.allowed(tg.zones))

    def peek(self, track_id: int) -> TrackResult:
        with self._lock:
            return self._result(self._tracks.get(track_id))

    def finish(self, track_id: int) -> TrackResult:
        with self._lock:
            return self._result(self._tracks.pop(track_id, None))

    def forget(self, track_id: int) -> None:
        with self._lock:
            self._tracks.pop(track_id, None)

    @property
    def active_tracks(self) -> int:
        return len(self._tracks)


# The vocabulary: a ZoneTracker accumulates the zones a track passed.
ZoneTracker = CameraGeometry
