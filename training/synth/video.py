"""Synthetic traffic clips with exact ground truth, for the demo, integration tests and benchmarks.

``render_clip`` draws a parking-garage exit seen by a pole camera: cars come out of the gate at
the top (front view, growing as they approach, leaving through the bottom edge) or drive into it
(rear view, from the bottom edge up into the gate). Every car carries a plate from
``generate_plate``; the plate's corners are tracked through the same transform as the car, so the
truth is exact. Camera effects: motion blur from the real per-frame speed, sensor noise, short
bursts of heavy blur or glare (single-frame reads get noisy; voting should not), mp4v compression.

``make_replay_clip_from_photo`` turns one real photo with a labelled plate into a clip (slow
pan/zoom, varying blur, noise, JPEG, exposure) with the plate box transformed per frame.

Truth is written beside the clip as ``<clip>.truth.json`` (see ``ClipTruth``).
CLI: ``python -m training.synth.video OUT.mp4 [--width --height --fps --seconds --vehicles
--seed --backgrounds DIR --styles us_ca,eu_de --ttf-only]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import degrade as dg
from . import fonts
from .layouts import STYLE_SPECS, style_region
from .plates import generate_plate
from .vehicles import GROUND_Y, PAINTS, VehicleSprite, draw_vehicle

TRUTH_VERSION = 1
BoxT = tuple[float, float, float, float]

# One-line styles that read well at video sizes; the default mix for clips.
DEFAULT_STYLES: tuple[str, ...] = (
    "us_ca",
    "us_ny",
    "us_tx",
    "us_fl",
    "eu_de",
    "eu_fr",
    "eu_nl",
    "eu_es",
    "uk",  # uk_front on a car's front, uk_rear on its back (white / yellow)
    "br_mercosul",
    "br_old",
)


# ----------------------------------------------------------------------------------- truth


@dataclass
class FrameTruth:
    """One vehicle in one frame. Boxes are absolute pixels (x1, y1, x2, y2), clipped to what is
    visible; ``plate_quad`` is the unclipped plate corners (tl, tr, br, bl)."""

    vehicle_box: BoxT | None
    plate_box: BoxT | None  # None when no part of the plate is visible
    plate_quad: list[list[float]]
    plate_visibility: str  # "full" | "partial" | "hidden"
    degraded: str | None = None  # "blur" | "glare" | "motion" | None


@dataclass
class VehicleTruth:
    id: int
    text: str
    style: str | None
    region: str | None
    view: str  # "front" | "rear" | "photo"
    first_frame: int  # first/last frame with any part of the vehicle (or plate) on screen
    last_frame: int
    first_full: int | None  # first/last frame where the whole plate is visible
    last_full: int | None
    frames: dict[int, FrameTruth] = field(default_factory=dict)

    def full_frames(self) -> list[int]:
        return [f for f, t in sorted(self.frames.items()) if t.plate_visibility == "full"]


@dataclass
class ClipTruth:
    path: str  # clip file name (relative to the truth file)
    width: int
    height: int
    fps: float
    frame_count: int
    seed: int
    kind: str  # "synthetic" | "replay"
    vehicles: list[VehicleTruth]
    render_seconds: float = 0.0
    version: int = TRUTH_VERSION

    def to_json(self) -> dict:
        d = asdict(self)
        for v in d["vehicles"]:
            v["frames"] = {str(k): fv for k, fv in sorted(v["frames"].items())}
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ClipTruth:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
            vehicles = []
            for v in d.pop("vehicles"):
                frames = {
                    int(k): FrameTruth(
                        vehicle_box=tuple(f["vehicle_box"]) if f["vehicle_box"] else None,
                        plate_box=tuple(f["plate_box"]) if f["plate_box"] else None,
                        plate_quad=f["plate_quad"],
                        plate_visibility=f["plate_visibility"],
                        degraded=f.get("degraded"),
                    )
                    for k, f in v.pop("frames").items()
                }
                vehicles.append(VehicleTruth(**v, frames=frames))
            return cls(**d, vehicles=vehicles)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{p}: not a platewatch clip truth file ({e})") from e

    def plates_in_frame(self, frame: int) -> list[tuple[VehicleTruth, FrameTruth]]:
        return [(v, v.frames[frame]) for v in self.vehicles if frame in v.frames]


def truth_path(clip_path: str | Path) -> Path:
    """Where the truth of ``clip_path`` lives: ``<clip>.truth.json`` (suffix replaced)."""
    p = Path(clip_path)
    return p.with_name(p.stem + ".truth.json")


# ----------------------------------------------------------------------------- utilities


@contextlib.contextmanager
def ttf_only_glyphs() -> Iterator[None]:
    """Render plates with the TrueType fonts only (no ``plate-chars`` glyphs from the shared
    data): points the glyph loader at an empty data root for the duration and clears its cache
    before and after, so the committed demo clip contains nothing derived from ../shared/data."""
    old = os.environ.get("PLATEWATCH_DATA")
    with tempfile.TemporaryDirectory(prefix="platewatch_nodata_") as empty:
        os.environ["PLATEWATCH_DATA"] = empty
        fonts.get_bank.cache_clear()
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("PLATEWATCH_DATA", None)
            else:
                os.environ["PLATEWATCH_DATA"] = old
            fonts.get_bank.cache_clear()


def _open_writer(path: Path, fps: float, size: tuple[int, int], codec: str) -> cv2.VideoWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), size)
    if not w.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path} with codec {codec!r}")
    return w


def _noise_bank(
    rng: np.random.Generator, h: int, w: int, sigma: float, n: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A few precomputed sensor-noise fields as (positive, negative) uint8 parts, so adding
    noise to a 1080p frame is two saturating cv2 adds instead of a fresh random field."""
    bank = []
    for _ in range(n):
        z = rng.normal(0, sigma, (h, w, 1)).astype(np.float32)
        z = z + rng.normal(0, sigma * 0.4, (h, w, 3)).astype(np.float32)  # a little chroma
        bank.append((np.clip(z, 0, 255).astype(np.uint8), np.clip(-z, 0, 255).astype(np.uint8)))
    return bank


def _blend_sprite(
    frame: np.ndarray, bgra: np.ndarray, x0: int, y0: int, y_clip: int
) -> tuple[int, int, int, int] | None:
    """Alpha-blend ``bgra`` into ``frame`` with its top-left at (x0, y0); rows above ``y_clip``
    are hidden (behind the wall). Returns the drawn region or None."""
    H, W = frame.shape[:2]
    h, w = bgra.shape[:2]
    fx0, fy0 = max(x0, 0), max(y0, y_clip, 0)
    fx1, fy1 = min(x0 + w, W), min(y0 + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    src = bgra[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    a = src[..., 3:].astype(np.float32) * np.float32(1 / 255)
    roi = frame[fy0:fy1, fx0:fx1]
    r = roi.astype(np.float32)
    r += (src[..., :3].astype(np.float32) - r) * a
    roi[:] = r.astype(np.uint8)
    return fx0, fy0, fx1, fy1


def _clip_box(b: BoxT, x_max: float, y_min: float, y_max: float) -> BoxT | None:
    x1, y1 = max(b[0], 0.0), max(b[1], y_min)
    x2, y2 = min(b[2], x_max), min(b[3], y_max)
    if x2 - x1 < 1.0 or y2 - y1 < 1.0:
        return None
    return (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))


def _overlap(a: BoxT, b: BoxT) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# ------------------------------------------------------------------------------ background


def procedural_background(
    rng: np.random.Generator, width: int, height: int, geo: _Geometry
) -> np.ndarray:
    """A garage exit: concrete facade with a dark gate at the top, asphalt ramp with lane
    markings converging to the scene's vanishing point, kerbs and pavements at the sides."""
    W, H = width, height
    yw = geo.y_wall
    s = H / 1080.0
    ys = np.arange(H, dtype=np.float32)[:, None, None]
    # asphalt: darker and more contrasted close to the camera, warm-grey, with blotches + grain
    base = np.asarray(rng.choice([[78, 80, 84], [92, 92, 94], [66, 68, 72]]), np.float32)
    near = np.clip((ys - yw) / max(1, H - yw), 0, 1)
    img = np.empty((H, W, 3), np.float32)
    img[:] = base
    img *= 1.12 - 0.2 * near
    lo = rng.normal(0, 1, (max(2, H // 60), max(2, W // 60), 1)).astype(np.float32)
    img += cv2.resize(lo, (W, H), interpolation=cv2.INTER_CUBIC)[..., None] * 7
    mid = rng.normal(0, 1, (max(2, H // 8), max(2, W // 8), 1)).astype(np.float32)
    img += cv2.resize(mid, (W, H), interpolation=cv2.INTER_LINEAR)[..., None] * 4
    img += rng.normal(0, 6, (H, W, 1)).astype(np.float32)  # aggregate grain
    # oil stains along the lanes' centres
    for lane in geo.lanes:
        for _ in range(int(rng.integers(3, 7))):
            y = rng.uniform(yw + 20 * s, H)
            x = geo.x_at(lane + rng.normal(0, 0.08), y)
            r = geo.vw_at(y) * rng.uniform(0.05, 0.16)
            stain = np.zeros((H, W), np.uint8)
            for _ in range(3):  # irregular: a few overlapping blobs, soft edges
                cx_, cy_ = x + rng.normal(0, r * 0.4), y + rng.normal(0, r * 0.15)
                cv2.ellipse(
                    stain,
                    (int(cx_), int(cy_)),
                    (max(1, int(r * rng.uniform(0.5, 1))), max(1, int(r * 0.4))),
                    rng.uniform(-15, 15),
                    0,
                    360,
                    255,
                    -1,
                    cv2.LINE_AA,
                )
            kk = max(3, int(r * 0.5) | 1)
            sa = cv2.GaussianBlur(stain, (kk, kk), 0).astype(np.float32)[..., None] / 255.0
            img *= 1.0 - sa * rng.uniform(0.08, 0.2)

    def ground_line(
        lat: float, colour: tuple[float, ...], thick: float, dash: bool = False
    ) -> None:
        ys_ = np.linspace(yw, H + 40 * s, 60)
        pts = [(geo.x_at(lat, y), y) for y in ys_]
        for (xa, ya), (xb, yb) in zip(pts[:-1], pts[1:], strict=True):
            if dash and int(geo.depth_at(ya) * 6) % 2:
                continue
            t = max(1, round(thick * geo.vw_at((ya + yb) / 2)))
            cv2.line(
                img,
                (round(xa * 4), round(ya * 4)),
                (round(xb * 4), round(yb * 4)),
                colour,
                t,
                cv2.LINE_AA,
                shift=2,
            )

    paint = (200.0, 204.0, 208.0)
    ground_line(0.0, (40, 185, 215), 0.018, dash=False)  # yellow centre line
    ground_line(-1.35, paint, 0.015)
    ground_line(1.35, paint, 0.015)
    # kerbs and pavements beyond the lane edges (fill polygons between ground lines)
    for sgn in (-1, 1):
        kerb_in, kerb_out = 1.6 * sgn, 1.72 * sgn
        far_out = 6.0 * sgn
        ys_ = np.array([yw, H + 60 * s], np.float32)
        poly_k = [(geo.x_at(kerb_in, y), y) for y in ys_] + [
            (geo.x_at(kerb_out, y), y) for y in ys_[::-1]
        ]
        poly_p = [(geo.x_at(kerb_out, y), y) for y in ys_] + [
            (geo.x_at(far_out, y), y) for y in ys_[::-1]
        ]
        cv2.fillPoly(img, [np.asarray(poly_p, np.int32)], (118, 122, 126), cv2.LINE_AA)
        cv2.fillPoly(img, [np.asarray(poly_k, np.int32)], (165, 168, 170), cv2.LINE_AA)
        # pavement slabs
        for d in np.linspace(0.0, 1.0, 14):
            y = yw + (H - yw) * d**1.6
            xa, xb = geo.x_at(kerb_out, y), geo.x_at(far_out, y)
            cv2.line(
                img,
                (int(xa), int(y)),
                (int(xb), int(y)),
                (100, 104, 108),
                max(1, round(2 * s)),
                cv2.LINE_AA,
            )
    # a speed bump with yellow/black stripes across the lanes
    yb_ = yw + (H - yw) * rng.uniform(0.38, 0.5)
    vb = geo.vw_at(yb_)
    xa, xb = geo.x_at(-1.6, yb_), geo.x_at(1.6, yb_)
    n = 14
    for i in range(n):
        c = (30, 190, 225) if i % 2 == 0 else (35, 35, 38)
        x0 = xa + (xb - xa) * i / n
        cv2.rectangle(
            img,
            (int(x0), int(yb_ - 0.03 * vb)),
            (int(x0 + (xb - xa) / n), int(yb_ + 0.03 * vb)),
            c,
            -1,
        )
    # facade band above the wall line: concrete panels, a dark gate opening, a sign
    if yw > 0:
        fac = np.empty((yw, W, 3), np.float32)
        fac[:] = np.asarray(
            rng.choice([[150, 160, 168], [170, 172, 175], [120, 135, 150]]), np.float32
        )
        fac += (
            cv2.resize(
                rng.normal(0, 1, (max(2, yw // 10), max(2, W // 10), 1)).astype(np.float32), (W, yw)
            )[..., None]
            * 6
        )
        fac += rng.normal(0, 4, (yw, W, 1)).astype(np.float32)
        for x in np.arange(0, W, W / rng.integers(6, 10)):
            cv2.line(fac, (int(x), 0), (int(x), yw), (110, 115, 120), max(1, round(2 * s)))
        gx0, gx1 = geo.x_at(-1.75, yw), geo.x_at(1.75, yw)
        gy0 = int(yw * 0.22)
        cv2.rectangle(fac, (int(gx0), gy0), (int(gx1), yw), (22, 22, 24), -1)
        grad = np.linspace(0.6, 1.4, yw - gy0, dtype=np.float32)[:, None, None]
        fac[gy0:yw, int(gx0) : int(gx1)] *= grad
        # yellow/black height bar over the gate
        hb0, hb1 = gy0 - int(0.05 * yw), gy0
        for i, x in enumerate(np.arange(gx0, gx1, 0.03 * W)):
            c = (20, 190, 230) if i % 2 == 0 else (25, 25, 25)
            cv2.rectangle(fac, (int(x), hb0), (int(min(x + 0.03 * W, gx1)), hb1), c, -1)
        # "EXIT" sign box with text drawn by OpenCV (no external font)
        sx0, sy0 = int(gx1 + 0.02 * W), int(yw * 0.3)
        cv2.rectangle(
            fac, (sx0, sy0), (sx0 + int(0.09 * W), sy0 + int(0.2 * yw)), (40, 120, 30), -1
        )
        txt = np.zeros((yw, W), np.uint8)  # putText draws on 8-bit images only
        cv2.putText(
            txt,
            "EXIT",
            (sx0 + int(0.012 * W), sy0 + int(0.16 * yw)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.0011 * W,
            255,
            max(1, round(3 * s)),
            cv2.LINE_AA,
        )
        ta = txt.astype(np.float32)[..., None] / 255.0
        fac = fac * (1 - ta) + ta * 240.0
        # lamp in the ceiling of the gate
        fac[max(0, yw - 3) : yw] *= 0.6  # shadow line where the facade meets the ground
        img[:yw] = fac
    # vignette: lens fall-off towards the corners
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
    img *= (1.0 - 0.12 * r2)[..., None]
    # lens softness; also keeps the grain from eating the encoder's bits on every key frame
    img = cv2.GaussianBlur(img, (0, 0), 0.7 * s)
    return np.clip(img, 0, 255).astype(np.uint8)


def _photo_background(path: Path, width: int, height: int) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read background image {path}")
    h, w = img.shape[:2]
    sc = max(width / w, height / h)  # cover the frame, crop the overflow
    img = cv2.resize(
        img,
        (max(width, round(w * sc)), max(height, round(h * sc))),
        interpolation=cv2.INTER_CUBIC if sc > 1 else cv2.INTER_AREA,
    )
    y0, x0 = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return np.ascontiguousarray(img[y0 : y0 + height, x0 : x0 + width])


# -------------------------------------------------------------------------------- geometry


@dataclass
class _Geometry:
    """Ground-plane perspective of the scene. A car ``vw`` px wide stands with its tyres at
    ``y = y_h + g * vw`` (on-screen size grows linearly with screen height below the horizon
    ``y_h``, which lies above the frame: the camera looks steeply down). Lateral ground
    positions are in car widths from the road's centre line."""

    width: int
    height: int
    y_wall: int  # rows above this are the facade: cars there are hidden (inside the gate)
    y_h: float
    g: float
    x_c: float

    def vw_at(self, y: float) -> float:
        return max(1e-3, (y - self.y_h) / self.g)

    def y_at(self, vw: float) -> float:
        return self.y_h + self.g * vw

    def x_at(self, lateral: float, y: float) -> float:
        return self.x_c + lateral * self.vw_at(y)

    def depth_at(self, y: float) -> float:
        return 1000.0 / self.vw_at(y)

    @property
    def lanes(self) -> tuple[float, float]:
        return (-0.68, 0.68)


def _scene_geometry(width: int, height: int, y_wall: int) -> _Geometry:
    """Solve (y_h, g) so a reference car's plate (27 % of the car wide, centre at the front
    bumper) is fully visible from ~95 px wide (top just below the wall) until ~205 px wide
    (bottom at the frame's bottom edge), scaled to the frame height: 1080p sizes from the
    brief, 90-220 px."""
    s = height / 1080.0
    frac, k_top, k_bot = 0.27, 0.225, 0.165  # plate top/bottom above the tyre line, car widths
    v_in, v_out = 95 * s / frac, 205 * s / frac
    # y_h + (g - k_top) v_in = y_wall ; y_h + (g - k_bot) v_out = height
    g = (height - y_wall + k_bot * v_out - k_top * v_in) / (v_out - v_in)
    y_h = y_wall - (g - k_top) * v_in
    return _Geometry(width, height, y_wall, y_h, g, width / 2.0)


# -------------------------------------------------------------------------------- vehicles


@dataclass
class _Car:
    id: int
    sprite: VehicleSprite
    text: str
    style: str
    view: str
    lateral: float
    drift: float  # lateral change over the path, car widths
    t0: float  # seconds
    duration: float
    vw_near: float  # car width (px) at the near end of the path
    vw_far: float
    bursts: list[tuple[int, int, str]]  # (first, last frame, "blur" | "glare")

    def pose(self, t: float, geo: _Geometry) -> tuple[float, float, float] | None:
        """(car width px, centre x, tyre-line y) at time t, or None outside the path."""
        u = (t - self.t0) / self.duration
        if not 0.0 <= u <= 1.0:
            return None
        if self.view == "rear":  # drives away: same path backwards
            u = 1.0 - u
        # constant speed on the ground: depth (1 / width) changes linearly with time
        z = (1.0 / self.vw_far) + ((1.0 / self.vw_near) - (1.0 / self.vw_far)) * u
        vw = 1.0 / z
        y = geo.y_at(vw)
        lat = self.lateral + self.drift * (u - 0.5)
        return vw, geo.x_c + lat * vw, y


def _plate_frac(style: str, aspect: float) -> float:
    """Plate width as a fraction of the car width: real sizes (EU 520 mm, US 305 mm, BR 400 mm
    on a ~1.8 m car), nudged up for US plates so they stay readable at video sizes."""
    region = style_region(style)
    if region == "us":
        return 0.215
    if region == "br":
        return 0.24
    return 0.275 if aspect > 3.0 else 0.2


def _make_car(
    rng: np.random.Generator,
    idx: int,
    style: str,
    view: str,
    geo: _Geometry,
    t0: float,
    duration: float,
    fps: float,
    paint: tuple[int, int, int] | None = None,
) -> _Car:
    if style == "uk":
        style = "uk_front" if view == "front" else "uk_rear"
    if style not in STYLE_SPECS:
        raise ValueError(f"unknown plate style {style!r}")
    # the car's path: from hidden in the gate to past the bottom edge (its roof leaving last)
    H = geo.height
    vw_far = geo.vw_at(geo.y_wall) * 0.98  # tyres at the wall line: nothing visible yet
    roof_k = GROUND_Y - 0.02  # roof above the tyre line, car widths
    vw_near = (H - geo.y_h) / (geo.g - roof_k) * 1.02 if geo.g > roof_k + 0.05 else 3 * H
    vw_near = min(vw_near, 2.2 * geo.width)
    # draw the sprite at the size where the plate leaves the frame (crisp while it matters)
    sprite_w = int(np.clip(geo.vw_at(H + 0.1 * H) * 1.0, 60, 1400))
    plate_px_h = max(16, round(sprite_w * 0.12))
    p = generate_plate(rng, style, degrade=False, height=plate_px_h)
    c = p.corners
    aspect = float(np.ptp(c[:, 0]) / max(1e-3, np.ptp(c[:, 1]))) if c is not None else 4.0
    # plate wear / lighting of its own (dirt, glare, exposure), mild: it still has to be read
    img = dg.photometric(rng, p.image, 0.35) if rng.random() < 0.6 else p.image
    sprite = draw_vehicle(rng, sprite_w, view, img, c, _plate_frac(style, aspect), aspect, paint)
    side = 0 if view == "front" else 1
    lateral = geo.lanes[side] + rng.normal(0, 0.06)
    # bursts of heavy blur (focus hunting, shake) or glare (headlights, sun) on the plate
    bursts = []
    n0, n1 = int(t0 * fps), int((t0 + duration) * fps)
    span = n1 - n0
    for kind, prob in (("blur", 0.7), ("glare", 0.4)):
        if span > 20 and rng.random() < prob:
            a = n0 + int(span * rng.uniform(0.3, 0.65))
            bursts.append((a, a + int(rng.integers(2, 6)), kind))
    return _Car(
        idx,
        sprite,
        p.text,
        style,
        view,
        lateral,
        float(rng.normal(0, 0.1)),
        t0,
        duration,
        vw_near,
        vw_far,
        bursts,
    )


def _schedule(rng: np.random.Generator, n: int, seconds: float) -> list[tuple[float, float]]:
    """(start, duration) per vehicle: one after another, overlapping in time, all finished
    before the clip ends."""
    dur = float(np.clip(seconds * 0.4, min(seconds * 0.9, 1.2), 5.5))
    if n <= 1:
        return [(max(0.0, (seconds - dur) / 2), dur)]
    durs = [dur * rng.uniform(0.85, 1.0) for _ in range(n)]
    spacing = (seconds - max(durs) - 0.1) / (n - 1)
    out = []
    for i in range(n):
        jitter = rng.uniform(-0.15, 0.15) * spacing if 0 < i < n - 1 else 0.0
        t0 = max(0.0, i * spacing + jitter + 0.05)
        out.append((t0, min(durs[i], seconds - t0 - 0.05)))
    return out


# ---------------------------------------------------------------------------------- render


def render_clip(
    path: str | Path,
    *,
    width: int = 1920,
    height: int = 1080,
    fps: float = 25,
    seconds: float = 12,
    n_vehicles: int = 4,
    seed: int = 0,
    backgrounds: str | Path | Sequence[str | Path] | None = None,
    plate_styles: Sequence[str] | None = None,
    codec: str = "mp4v",
    ttf_only: bool = False,
    noise: float = 3.0,
) -> ClipTruth:
    """Render a synthetic traffic clip to ``path`` and its truth to ``<clip>.truth.json``.

    ``backgrounds``: a folder of plate-free photos (or a list of files): one is picked by seed
    and stretched to cover the frame; None draws a procedural garage exit. ``plate_styles``
    cycles through the given styles (``"uk"`` means uk_front/uk_rear by view); None uses
    ``DEFAULT_STYLES`` in a seeded order. ``ttf_only`` renders plates from TrueType fonts only
    (nothing derived from the shared data).
    """
    if width < 64 or height < 48:
        raise ValueError(f"clip size {width}x{height} too small (min 64x48)")
    if n_vehicles < 1:
        raise ValueError("n_vehicles must be >= 1")
    if ttf_only:
        with ttf_only_glyphs():
            return render_clip(
                path,
                width=width,
                height=height,
                fps=fps,
                seconds=seconds,
                n_vehicles=n_vehicles,
                seed=seed,
                backgrounds=backgrounds,
                plate_styles=plate_styles,
                codec=codec,
                ttf_only=False,
                noise=noise,
            )
    start = time.perf_counter()
    path = Path(path)
    rng = np.random.default_rng(seed)
    n_frames = max(1, round(seconds * fps))
    if backgrounds is not None:
        if isinstance(backgrounds, (str, Path)):
            from .composite import list_backgrounds

            files = list_backgrounds(Path(backgrounds))
        else:
            files = [Path(b) for b in backgrounds]
            if not files:
                raise ValueError("backgrounds: empty list")
        geo = _scene_geometry(width, height, 0)
        bg = _photo_background(files[int(rng.integers(len(files)))], width, height)
    else:
        geo = _scene_geometry(width, height, round(height * 0.2))
        bg = procedural_background(rng, width, height, geo)

    styles = list(plate_styles) if plate_styles else list(rng.permutation(DEFAULT_STYLES))
    first_view = "front" if rng.random() < 0.6 else "rear"
    cars = []
    paints = rng.permutation(len(PAINTS))  # consecutive cars never share a paint
    for i, (t0, dur) in enumerate(_schedule(rng, n_vehicles, n_frames / fps)):
        view = first_view if i % 2 == 0 else ("rear" if first_view == "front" else "front")
        cars.append(
            _make_car(
                rng,
                i,
                styles[i % len(styles)],
                view,
                geo,
                t0,
                dur,
                fps,
                PAINTS[int(paints[i % len(paints)])],
            )
        )
    noise_bank = _noise_bank(rng, height, width, noise) if noise > 0 else []
    gains = 1.0 + 0.015 * np.cumsum(rng.normal(0, 0.3, n_frames))  # slow auto-exposure drift
    gains = np.clip(gains, 0.9, 1.1)

    truths = {
        c.id: VehicleTruth(c.id, c.text, c.style, style_region(c.style), c.view, -1, -1, None, None)
        for c in cars
    }
    writer = _open_writer(path, fps, (width, height), codec)
    try:
        for fi in range(n_frames):
            frame = _render_frame(fi, fps, bg, cars, geo, truths)
            if abs(gains[fi] - 1.0) > 0.004:
                frame = cv2.convertScaleAbs(frame, alpha=float(gains[fi]))
            if noise_bank:
                pos, neg = noise_bank[fi % len(noise_bank)]
                cv2.add(frame, pos, dst=frame)
                cv2.subtract(frame, neg, dst=frame)
            writer.write(frame)
    finally:
        writer.release()
    for v in truths.values():
        full = v.full_frames()
        v.first_full, v.last_full = (full[0], full[-1]) if full else (None, None)
        seen = sorted(v.frames)
        v.first_frame, v.last_frame = (seen[0], seen[-1]) if seen else (-1, -1)
    truth = ClipTruth(
        path.name,
        width,
        height,
        float(fps),
        n_frames,
        seed,
        "synthetic",
        [truths[c.id] for c in cars],
        round(time.perf_counter() - start, 2),
    )
    truth.save(truth_path(path))
    return truth


def _render_frame(
    fi: int,
    fps: float,
    bg: np.ndarray,
    cars: list[_Car],
    geo: _Geometry,
    truths: dict[int, VehicleTruth],
) -> np.ndarray:
    frame = bg.copy()
    H, W = frame.shape[:2]
    t = fi / fps
    posed = []
    for c in cars:
        p = c.pose(t, geo)
        if p is not None:
            posed.append((c, p))
    posed.sort(key=lambda cp: cp[1][0])  # far (small) cars first, near cars drawn over them
    drawn: list[tuple[int, BoxT]] = []  # (car id, drawn body box) in depth order
    records = []
    for c, (vw, xc, yg) in posed:
        sp = c.sprite
        sw = sp.bgra.shape[1]
        sc = vw / sw
        nw, nh = max(2, round(sw * sc)), max(2, round(sp.bgra.shape[0] * sc))
        x0, y0 = round(xc - nw / 2), round(yg - GROUND_Y * vw)
        if x0 >= W or y0 >= H or x0 + nw <= 0 or y0 + nh <= geo.y_wall:
            continue
        # resize only the part that lands on screen (the near end of the path is huge)
        vx0, vy0 = max(0, -x0), max(0, geo.y_wall - y0, -y0)
        vx1, vy1 = min(nw, W - x0), min(nh, H - y0)
        sx, sy = sw / nw, sp.bgra.shape[0] / nh
        m = np.array([[1 / sx, 0, -vx0 + 0.5 / sx - 0.5], [0, 1 / sy, -vy0 + 0.5 / sy - 0.5]])
        interp = cv2.INTER_AREA if sc < 1 else cv2.INTER_LINEAR
        if sc < 1:
            small = cv2.resize(sp.bgra, (nw, nh), interpolation=cv2.INTER_AREA)
            part = small[vy0:vy1, vx0:vx1]
        else:
            part = cv2.warpAffine(
                sp.bgra,
                m,
                (vx1 - vx0, vy1 - vy0),
                flags=interp,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0, 0, 0, 0),
            )
        # motion blur from the real on-screen speed of the plate (exposure ~ half a frame)
        q = sp.plate_quad * np.float32([nw / sw, nh / sp.bgra.shape[0]]) + np.float32([x0, y0])
        nxt = c.pose(t + 0.5 / fps, geo)
        prv = c.pose(t - 0.5 / fps, geo)
        degraded = None
        if nxt is not None and prv is not None:
            dy = abs(nxt[2] - prv[2])
            blur_len = int(dy * 0.5)
            if blur_len >= 2:
                part = cv2.blur(part, (1, blur_len + 1))
                if blur_len >= max(4, 0.06 * (q[2, 1] - q[0, 1]) + 3):
                    degraded = "motion"
        for a, b, kind in c.bursts:
            if a <= fi <= b:
                degraded = kind
                ph = max(2.0, float(q[2, 1] - q[0, 1]))
                if kind == "blur":
                    part = cv2.GaussianBlur(part, (0, 0), ph * 0.2)
                else:  # glare: a bright washed-out blob over part of the plate
                    gx = float(q[:, 0].mean()) - x0 - vx0 + (fi - a - 2) * ph * 0.4
                    gy = float(q[:, 1].mean()) - y0 - vy0
                    blob = np.zeros(part.shape[:2], np.float32)
                    cv2.circle(blob, (int(gx), int(gy)), max(2, int(ph * 1.2)), 1.0, -1)
                    blob = cv2.GaussianBlur(blob, (0, 0), ph * 0.5)[..., None]
                    bgr = part[..., :3].astype(np.float32) + blob * 230
                    part = np.dstack([np.clip(bgr, 0, 255).astype(np.uint8), part[..., 3]])
        _blend_sprite(frame, part, x0 + vx0, y0 + vy0, geo.y_wall)
        kx, ky = nw / sw, nh / sp.bgra.shape[0]
        body = (
            x0 + sp.body_box[0] * kx,
            y0 + sp.body_box[1] * ky,
            x0 + sp.body_box[2] * kx,
            y0 + sp.body_box[3] * ky,
        )
        records.append((c, body, q, degraded))
        drawn.append((c.id, body))
    for k, (c, body, q, degraded) in enumerate(records):
        pb = (
            float(q[:, 0].min()),
            float(q[:, 1].min()),
            float(q[:, 0].max()),
            float(q[:, 1].max()),
        )
        vis_pb = _clip_box(pb, W, geo.y_wall, H)
        occluded = any(_overlap(pb, b) for _, b in drawn[k + 1 :])  # a nearer car covers it
        inside = pb[0] >= 0 and pb[1] >= geo.y_wall and pb[2] <= W and pb[3] <= H
        if vis_pb is None:
            vis = "hidden"
        elif inside and not occluded:
            vis = "full"
        else:
            vis = "partial"
        vbox = _clip_box(body, W, geo.y_wall, H)
        if vbox is None:
            continue
        truths[c.id].frames[fi] = FrameTruth(
            vehicle_box=vbox,
            plate_box=vis_pb,
            plate_quad=[[round(float(x), 1), round(float(y), 1)] for x, y in q],
            plate_visibility=vis,
            degraded=degraded if vis != "hidden" else None,
        )
    return frame


# -------------------------------------------------------------------------- replay clips


def read_openalpr_label(txt: str | Path) -> tuple[Path, BoxT, str]:
    """One openalpr benchmark label (``file x y w h PLATE``, TAB-separated) -> (image path,
    (x1, y1, x2, y2), text)."""
    p = Path(txt)
    line = p.read_text().strip().splitlines()[0]
    parts = line.split("\t") if "\t" in line else line.split()
    if len(parts) < 6:
        raise ValueError(f"{p}: expected 'file x y w h PLATE', got {line!r}")
    try:
        x, y, w, h = (float(v) for v in parts[1:5])
    except ValueError as e:
        raise ValueError(f"{p}: bad box in {line!r}") from e
    return p.with_name(parts[0]), (x, y, x + w, y + h), parts[5].strip().upper()


_NOISE_SD = 16.0  # sigma of the stored noise fields (uint8 around 128)


def _noise_u8(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Grey sensor noise with a little chroma, stored as uint8 around 128 (sigma 16)."""
    z = rng.normal(0, 1, (h, w, 1)).astype(np.float32) + rng.normal(0, 0.4, (h, w, 3)).astype(
        np.float32
    )
    return np.clip(128 + z * _NOISE_SD, 0, 255).astype(np.uint8)


def _smooth(rng: np.random.Generator, n: int, knots: int = 5) -> np.ndarray:
    """A smooth random curve over n frames in [0, 1] (cubic interpolation of random knots)."""
    k = rng.random(knots + 2)
    x = np.linspace(0, n - 1, knots + 2)
    curve = np.interp(np.arange(n), x, k)
    return cv2.GaussianBlur(
        curve.reshape(1, -1).astype(np.float32), (0, 0), max(1.0, n / (2 * knots))
    ).ravel()


def make_replay_clip_from_photo(
    image_path: str | Path,
    plate_box: BoxT,
    out_path: str | Path,
    frames: int = 60,
    *,
    text: str = "",
    region: str | None = None,
    fps: float = 25,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    max_zoom: float = 1.35,
    strength: float = 1.0,
    codec: str = "mp4v",
) -> ClipTruth:
    """A clip made from ONE photo: a slow pan/zoom (the plate moves and changes size) with
    per-frame blur, noise, JPEG artefacts and exposure changes. ``plate_box`` (x1, y1, x2, y2)
    in photo pixels; the truth holds its transform per frame (axis-aligned bounds).
    ``size`` (w, h) of the clip, default the photo's size (rounded to even)."""
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read photo {image_path}")
    ih, iw = img.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in plate_box)
    # labelled boxes a pixel or two past the edge (openalpr-dev br/PJT2905: x = -1) are the
    # plate at the edge: clamp them; anything further out is a wrong label
    if -2 <= x1 and -2 <= y1 and x2 <= iw + 2 and y2 <= ih + 2:
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(iw)), min(y2, float(ih))
    if not (0 <= x1 < x2 <= iw and 0 <= y1 < y2 <= ih):
        raise ValueError(f"plate_box {plate_box} outside the {iw}x{ih} photo {image_path}")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    start = time.perf_counter()
    W, H = size or (iw - iw % 2, ih - ih % 2)
    rng = np.random.default_rng(seed)
    out_path = Path(out_path)
    s = float(strength)
    zoom = 1.0 + (max_zoom - 1.0) * _smooth(rng, frames, 3)
    pan_x, pan_y = _smooth(rng, frames, 3), _smooth(rng, frames, 3)
    rot = (_smooth(rng, frames, 2) - 0.5) * 3.0 * s  # degrees
    sigma = np.clip((_smooth(rng, frames, 8) - 0.35) * 3.0 * s, 0, None)
    spikes = rng.random(frames) < 0.08 * s  # a few frames of heavy blur
    sigma[spikes] += rng.uniform(1.5, 3.5, int(spikes.sum())) * s
    gain = 1.0 + (_smooth(rng, frames, 4) - 0.5) * 0.7 * s
    noise_sd = 2.0 + 8.0 * s * _smooth(rng, frames, 5)
    quality = (85 - 60 * s * _smooth(rng, frames, 6)).clip(15, 95).astype(int)
    pcx, pcy = (x1 + x2) / 2, (y1 + y2) / 2
    cover = max(W / iw, H / ih)  # base scale so the photo covers the clip
    noise = [_noise_u8(rng, H, W) for _ in range(4)]
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x2, y2, 1], [x1, y2, 1]], np.float64).T
    vt = VehicleTruth(0, text, None, region, "photo", -1, -1, None, None)
    writer = _open_writer(out_path, fps, (W, H), codec)
    try:
        for f in range(frames):
            sc = cover * zoom[f]
            vw, vh = W / sc, H / sc  # visible window in photo pixels
            # window centre: between the photo centre and the plate, wandering slowly
            cx = iw / 2 + (pcx - iw / 2) * (0.3 + 0.6 * pan_x[f])
            cy = ih / 2 + (pcy - ih / 2) * (0.3 + 0.6 * pan_y[f])
            cx = float(np.clip(cx, vw / 2, iw - vw / 2)) if vw < iw else iw / 2
            cy = float(np.clip(cy, vh / 2, ih - vh / 2)) if vh < ih else ih / 2
            m = cv2.getRotationMatrix2D((cx, cy), float(rot[f]), sc)
            m[0, 2] += W / 2 - cx
            m[1, 2] += H / 2 - cy
            fr = cv2.warpAffine(
                img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            if sigma[f] > 0.3:
                fr = cv2.GaussianBlur(fr, (0, 0), float(sigma[f]))
            # exposure and sensor noise in one saturating pass: fr * gain + (N - 128) * k
            k = float(noise_sd[f]) / _NOISE_SD
            fr = cv2.addWeighted(fr, float(gain[f]), noise[f % len(noise)], k, -128.0 * k)
            fr = dg.jpeg(fr, int(quality[f]))
            writer.write(fr)
            q = (m @ corners).T
            pb = (
                float(q[:, 0].min()),
                float(q[:, 1].min()),
                float(q[:, 0].max()),
                float(q[:, 1].max()),
            )
            vis_pb = _clip_box(pb, W, 0, H)
            inside = pb[0] >= 0 and pb[1] >= 0 and pb[2] <= W and pb[3] <= H
            vt.frames[f] = FrameTruth(
                vehicle_box=None,
                plate_box=vis_pb,
                plate_quad=[[round(float(x), 1), round(float(y), 1)] for x, y in q],
                plate_visibility="hidden" if vis_pb is None else ("full" if inside else "partial"),
                degraded="blur" if sigma[f] > 1.5 else None,
            )
    finally:
        writer.release()
    full = vt.full_frames()
    vt.first_full, vt.last_full = (full[0], full[-1]) if full else (None, None)
    vt.first_frame, vt.last_frame = 0, frames - 1
    truth = ClipTruth(
        out_path.name,
        W,
        H,
        float(fps),
        frames,
        seed,
        "replay",
        [vt],
        round(time.perf_counter() - start, 2),
    )
    truth.save(truth_path(out_path))
    return truth


# ------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m training.synth.video",
        description="Render a synthetic traffic clip with ground truth (<clip>.truth.json).",
    )
    ap.add_argument("out", type=Path, help="output video (.mp4 for mp4v, .avi for MJPG)")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=float, default=25)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--vehicles", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--backgrounds",
        type=Path,
        default=None,
        help="folder of plate-free photos (default: procedural garage exit)",
    )
    ap.add_argument(
        "--styles",
        default=None,
        help="comma-separated plate styles, cycled per vehicle ('uk' = front/rear)",
    )
    ap.add_argument("--codec", default="mp4v")
    ap.add_argument("--noise", type=float, default=3.0, help="sensor noise sigma (0: none)")
    ap.add_argument(
        "--ttf-only",
        action="store_true",
        help="plates from TrueType fonts only (nothing from the shared data)",
    )
    a = ap.parse_args(argv)
    t = time.perf_counter()
    truth = render_clip(
        a.out,
        width=a.width,
        height=a.height,
        fps=a.fps,
        seconds=a.seconds,
        n_vehicles=a.vehicles,
        seed=a.seed,
        backgrounds=a.backgrounds,
        plate_styles=a.styles.split(",") if a.styles else None,
        codec=a.codec,
        ttf_only=a.ttf_only,
        noise=a.noise,
    )
    dt = time.perf_counter() - t
    print(
        f"wrote {a.out} ({truth.frame_count} frames, {a.width}x{a.height}) and "
        f"{truth_path(a.out)} in {dt:.1f} s ({truth.frame_count / dt:.1f} frames/s)"
    )
    for v in truth.vehicles:
        print(
            f"  vehicle {v.id}: {v.text:<9} {v.style:<12} {v.view:<5} frames "
            f"{v.first_frame}-{v.last_frame}, plate fully visible {v.first_full}-{v.last_full}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
