"""Traffic clips with exact truth from labelled real photos: vehicles cut out of photos move
through a real background in the motion patterns an ALPR camera sees every day.

Unlike ``training.synth.video.render_clip`` (drawn cars, rendered plates), the plates here are
real: each vehicle is a feathered cut-out around a labelled plate of a real photo (e.g.
``openalpr-dev``), so the reader meets real fonts, dirt, frames and lighting. The background is
a real street frame whose labelled plates are painted out (``load_background``), so the only
readable plates are the moving ones.

Patterns (``PATTERNS``; each a function ``(rng, vehicles, fps) -> list[Visit]``):

- ``drive_through``: enter left, leave right, about 3 s in view, sometimes two in view;
- ``gate_queue``: drive in, stop at ONE spot 1-2 s, drive off; the next car's first frame comes
  0.2-1 s after the last one left, and it stops where the last one stood (a barrier, a kiosk);
- ``pop_in``: brisk drive-through (1.8-2.6 s in view), analysed every 3rd-5th frame, so each
  vehicle jumps far between analysed frames and pops in already mid-frame;
- ``side_by_side``: two vehicles in two lanes (left, right) coming towards the camera together;
- ``occlusion``: a near, faster vehicle passes in front of a far one, hiding its plate ~1 s;
- ``parked``: a car drives in and stands 62 s, while another drives past;
- ``reverse``: drive in, stop, back up, stop, drive off forwards.

A `Visit` is one vehicle's key frames (frame, centre x, centre y, plate width in px); positions
are interpolated between key frames with ease-in/out, so stops and starts look like driving.
Camera effects per frame: motion blur from the real speed, sensor noise, mp4 compression.

Truth is `training.synth.video.ClipTruth` (one `VehicleTruth` per visit, the plate box in every
frame, ``plate_visibility`` full/partial/hidden: partial when cut by the frame edge, hidden when
covered by a nearer vehicle).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.eval.identity import TruthVehicle

from . import degrade as dg
from .video import BoxT, ClipTruth, FrameTruth, VehicleTruth, _open_writer

# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class PhotoVehicle:
    """A vehicle cut out of a labelled photo: BGR pixels, a feathered alpha, the plate box in
    the cut-out's pixels, the plate text and where it came from."""

    bgr: np.ndarray
    alpha: np.ndarray  # float32 0..1, same height/width
    plate: BoxT
    text: str
    source: str

    @property
    def plate_width(self) -> float:
        return self.plate[2] - self.plate[0]


def cut_vehicle(image: np.ndarray, plate: BoxT, text: str, source: str = "") -> PhotoVehicle:
    """The region around the plate that is the car's front or back (about 6.5 plate widths wide,
    the plate in its lower third), with a soft edge so it blends into the background."""
    H, W = image.shape[:2]
    x1, y1, x2, y2 = plate
    pw, ph = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w = min(W, max(6.5 * pw, 10.0 * ph))
    h = min(H, 0.72 * w)
    left = int(round(min(max(cx - w / 2, 0), W - w)))
    top = int(round(min(max(cy - 0.64 * h, 0), H - h)))
    w, h = int(w), int(h)
    bgr = np.ascontiguousarray(image[top : top + h, left : left + w])
    # a rectangle with rounded, blurred edges: no hard seam for the detector to lock on to
    m = np.zeros((h, w), np.float32)
    inset = max(2, int(0.04 * min(w, h)))
    cv2.rectangle(m, (inset, inset), (w - 1 - inset, h - 1 - inset), 1.0, -1)
    alpha = cv2.GaussianBlur(m, (0, 0), inset * 0.8)
    return PhotoVehicle(bgr, alpha, (x1 - left, y1 - top, x2 - left, y2 - top), text, source)


def load_background(image_path: Path, boxes: Sequence[BoxT], width: int, height: int) -> np.ndarray:
    """A real scene scaled to cover ``width``x``height``, its labelled plates painted out
    (inpainted, then blurred) so only the moving vehicles carry readable plates."""
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read background image {image_path}")
    mask = np.zeros(img.shape[:2], np.uint8)
    for b in boxes:
        bw, bh = b[2] - b[0], b[3] - b[1]
        p0 = (int(b[0] - 0.3 * bw), int(b[1] - 0.5 * bh))
        p1 = (int(b[2] + 0.3 * bw), int(b[3] + 0.5 * bh))
        cv2.rectangle(mask, p0, p1, 255, -1)
    if mask.any():
        img = cv2.inpaint(img, mask, 5, cv2.INPAINT_TELEA)
        blur = cv2.GaussianBlur(img, (0, 0), 6)
        img = np.where(mask[..., None] > 0, blur, img)
    h, w = img.shape[:2]
    sc = max(width / w, height / h)
    img = cv2.resize(img, (max(width, round(w * sc)), max(height, round(h * sc))))
    y0, x0 = (img.shape[0] - height) // 2, (img.shape[1] - width) // 2
    return np.ascontiguousarray(img[y0 : y0 + height, x0 : x0 + width])


def split_of(name: str, held_out_share: float = 0.5) -> str:
    """``"dev"`` or ``"held-out"`` from a stable hash of the source name (never by chance, so
    the split is the same on every machine and in every run)."""
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "held-out" if h < held_out_share else "dev"


# ----------------------------------------------------------------------------- motion


@dataclass
class Visit:
    """One vehicle's path: key frames ``(frame, cx, cy, plate_px)``, where (cx, cy) is the
    centre of the cut-out and ``plate_px`` the plate's width in pixels; ``depth`` orders drawing
    (larger = nearer = drawn later, hides what is behind)."""

    vehicle: PhotoVehicle
    keys: list[tuple[float, float, float, float]]
    depth: float = 0.0

    def at(self, frame: int) -> tuple[float, float, float] | None:
        """(cx, cy, plate_px) at ``frame``, eased between key frames; None outside the path."""
        k = self.keys
        if frame < k[0][0] or frame > k[-1][0]:
            return None
        for a, b in zip(k, k[1:], strict=False):
            if a[0] <= frame <= b[0]:
                span = b[0] - a[0]
                t = 0.0 if span <= 0 else (frame - a[0]) / span
                t = t * t * (3 - 2 * t)  # smoothstep: speeds up and slows down like a car
                return tuple(a[i] + (b[i] - a[i]) * t for i in (1, 2, 3))  # type: ignore[return-value]
        return k[-1][1], k[-1][2], k[-1][3]


@dataclass(frozen=True)
class Stage:
    """What a pattern needs to know about the frame: size and fps."""

    width: int
    height: int
    fps: float

    def s(self, seconds: float) -> float:
        return seconds * self.fps


def _sprite_w(v: PhotoVehicle, plate_px: float) -> float:
    return v.bgr.shape[1] * plate_px / v.plate_width


def _plate_px(rng: np.random.Generator, v: PhotoVehicle) -> float:
    # the photo's own plate size, a little larger (a 1080p camera close to the lane), kept in
    # the 90-190 px band where plates are readable but not trivially so
    return float(np.clip(v.plate_width * rng.uniform(1.0, 1.6), 90, 190))


def _lane_y(stage: Stage, lane: int) -> float:
    return stage.height * (0.55 + 0.2 * lane)


def _crossing(
    rng: np.random.Generator, v: PhotoVehicle, st: Stage, t: float, seconds: tuple[float, float]
) -> Visit:
    """``v`` crossing the frame left to right in the first lane, starting at frame ``t``."""
    px = _plate_px(rng, v)
    half = _sprite_w(v, px) / 2
    dur = st.s(rng.uniform(*seconds))
    y = _lane_y(st, 0) + rng.uniform(-40, 40)
    return Visit(v, [(t, -half, y, px), (t + dur, st.width + half, y, px)])


def drive_through(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    out, t = [], st.s(0.3)
    for v in vs:
        out.append(_crossing(rng, v, st, t, (2.6, 3.4)))
        t += st.s(rng.uniform(1.6, 3.0))
    return out


def pop_in(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    out, t = [], st.s(0.3)
    for v in vs:
        visit = _crossing(rng, v, st, t, (1.8, 2.6))
        out.append(visit)
        t += (visit.keys[-1][0] - t) * rng.uniform(0.6, 1.0)
    return out


def gate_queue(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    """Every car stops at the same spot; the next one's first frame comes 0.2-1 s after the
    previous one's last. Half the clips drive in from the side, half head-on (from far and
    small, growing, leaving through the bottom edge)."""
    out, t = [], st.s(0.3)
    head_on = bool(rng.random() < 0.5)
    stop_x, stop_y = st.width * 0.5, st.height * 0.58
    for v in vs:
        px = _plate_px(rng, v)
        half = _sprite_w(v, px) / 2
        hh = half * v.bgr.shape[0] / v.bgr.shape[1]
        # a camera framed tightly on the barrier: a car is in view a moment before it stops
        # and after it pulls away, so the next one stands where the last stood well within a
        # lost track's max_age
        t_in, t_stop, t_out = st.s(rng.uniform(0.4, 0.7)), st.s(rng.uniform(1.0, 2.0)), 0.0
        if head_on:
            t_out = st.s(rng.uniform(0.3, 0.6))
            keys = [
                (t, stop_x, st.height * 0.3, px * 0.55),
                (t + t_in, stop_x, stop_y, px),
                (t + t_in + t_stop, stop_x, stop_y, px),
                (t + t_in + t_stop + t_out, stop_x + 60, st.height + hh * 1.5, px * 1.5),
            ]
        else:
            t_out = st.s(rng.uniform(0.4, 0.7))
            keys = [
                (t, -half, stop_y, px),
                (t + t_in, stop_x, stop_y, px),
                (t + t_in + t_stop, stop_x, stop_y, px),
                (t + t_in + t_stop + t_out, st.width + half, stop_y, px),
            ]
        out.append(Visit(v, keys))
        t = keys[-1][0] + st.s(rng.uniform(0.2, 1.0))
    return out


def side_by_side(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    """Pairs in two lanes, left and right, coming towards the camera together (from far and
    small to near, leaving through the bottom edge), one slightly behind the other."""
    out, t = [], st.s(0.3)
    for i in range(0, len(vs) - 1, 2):
        dur = st.s(rng.uniform(2.6, 3.4))
        for lane, v in enumerate(vs[i : i + 2]):
            px = _plate_px(rng, v)
            hh = _sprite_w(v, px) * v.bgr.shape[0] / v.bgr.shape[1] / 2
            x = st.width * (0.3 if lane == 0 else 0.72)
            lag = st.s(rng.uniform(0, 0.5))
            keys = [
                (t + lag, x, st.height * 0.25, px * 0.6),
                (t + lag + dur, x, st.height + hh, px),
            ]
            out.append(Visit(v, keys, lane))
        t += dur + st.s(rng.uniform(0.3, 0.8))
    return out


def occlusion(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    """Pairs: a far car crosses slowly (about 4 s); a near one overtakes it in about 2 s,
    covering the far plate for roughly a second on the way."""
    out, t = [], st.s(0.3)
    for i in range(0, len(vs) - 1, 2):
        far, near = vs[i], vs[i + 1]
        pf, pn = _plate_px(rng, far) * 0.8, _plate_px(rng, near) * 1.1
        hf, hn = _sprite_w(far, pf) / 2, _sprite_w(near, pn) / 2
        yf, yn = st.height * 0.45, st.height * 0.62
        df, dn = st.s(rng.uniform(3.6, 4.4)), st.s(rng.uniform(1.8, 2.2))
        out.append(Visit(far, [(t, -hf, yf, pf), (t + df, st.width + hf, yf, pf)], 0))
        start = t + df * 0.5 - dn * 0.5  # both centres meet mid-frame
        out.append(Visit(near, [(start, -hn, yn, pn), (start + dn, st.width + hn, yn, pn)], 1))
        t += df + st.s(0.5)
    return out


def parked(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    """The first car drives in and stands 62 s, then leaves; the others drive past meanwhile."""
    v = vs[0]
    px = _plate_px(rng, v)
    half = _sprite_w(v, px) / 2
    x, y = st.width * 0.3, st.height * 0.45
    t = st.s(0.3)
    t1 = t + st.s(1.0)
    t2 = t1 + st.s(62.0)
    out = [
        Visit(
            v,
            [(t, -half, y, px), (t1, x, y, px), (t2, x, y, px), (t2 + st.s(1.0), -half, y, px)],
            0,
        )
    ]
    passing = [p for p in drive_through(rng, vs[1:], st)]
    for p, start in zip(passing, np.linspace(st.s(8), st.s(50), len(passing)), strict=True):
        shift = start - p.keys[0][0]
        p.keys = [(f + shift, x2, st.height * 0.78, w) for f, x2, _, w in p.keys]
        p.depth = 1
        out.append(p)
    return out


def reverse(rng: np.random.Generator, vs: Sequence[PhotoVehicle], st: Stage) -> list[Visit]:
    out, t = [], st.s(0.3)
    for v in vs:
        px = _plate_px(rng, v)
        half = _sprite_w(v, px) / 2
        y = _lane_y(st, 0)
        stop, back = st.width * rng.uniform(0.5, 0.65), st.width * rng.uniform(0.25, 0.35)
        keys = [(t, -half, y, px)]
        for dx, dt in ((stop, 1.2), (stop, 0.8), (back, 1.2), (back, 0.8), (st.width + half, 1.6)):
            keys.append((keys[-1][0] + st.s(dt), dx, y, px))
        out.append(Visit(v, keys))
        t = keys[-1][0] + st.s(rng.uniform(0.3, 0.8))
    return out


PatternFn = Callable[[np.random.Generator, Sequence[PhotoVehicle], Stage], list[Visit]]
PATTERNS: dict[str, tuple[PatternFn, int]] = {  # name -> (motion, vehicles per clip)
    "drive_through": (drive_through, 5),
    "gate_queue": (gate_queue, 5),
    "pop_in": (pop_in, 6),
    "side_by_side": (side_by_side, 6),
    "occlusion": (occlusion, 4),
    "parked": (parked, 4),
    "reverse": (reverse, 2),
}


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Placed:
    """One visit in one frame: which visit, the sprite's scale and top-left, its visible region
    (clipped to the frame) and the plate box (unclipped)."""

    visit: int
    scale: float
    x0: int
    y0: int
    w: int
    h: int
    region: tuple[int, int, int, int]
    plate: BoxT


def layout(visits: Sequence[Visit], frame: int, width: int, height: int) -> list[Placed]:
    """Where every visit is in ``frame``, in drawing order (far first)."""
    out = []
    for i in sorted(range(len(visits)), key=lambda i: visits[i].depth):
        pos = visits[i].at(frame)
        if pos is None:
            continue
        cx, cy, px = pos
        v = visits[i].vehicle
        s = px / v.plate_width
        w, h = max(2, round(v.bgr.shape[1] * s)), max(2, round(v.bgr.shape[0] * s))
        x0, y0 = round(cx - w / 2), round(cy - h / 2)
        region = (max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height))
        if region[2] <= region[0] or region[3] <= region[1]:
            continue
        p = v.plate
        plate = (x0 + p[0] * s, y0 + p[1] * s, x0 + p[2] * s, y0 + p[3] * s)
        out.append(Placed(i, s, x0, y0, w, h, region, plate))
    return out


def clip_frames(visits: Sequence[Visit], fps: float, tail_s: float = 1.0) -> int:
    return int(max(k[0] for v in visits for k in v.keys) + tail_s * fps) + 1


def motion_truth(
    visits: Sequence[Visit], width: int, height: int, fps: float = 25.0, seed: int = 0,
    tail_s: float = 1.0, path: str = "",
) -> ClipTruth:  # fmt: skip
    """The truth of a clip of ``visits`` without rendering it (the clip's frames are
    ``render_motion_clip``'s; tests use the truth alone with an oracle engine)."""
    n = clip_frames(visits, fps, tail_s)
    truths = [
        VehicleTruth(i + 1, v.vehicle.text, None, None, "photo", -1, -1, None, None)
        for i, v in enumerate(visits)
    ]
    for f in range(n):
        placed = layout(visits, f, width, height)
        for rank, p in enumerate(placed):
            pb = p.plate
            vis = _visibility(pb, [q.region for q in placed[rank + 1 :]], width, height)
            vt = truths[p.visit]
            if vt.first_frame < 0:
                vt.first_frame = f
            vt.last_frame = f
            x1, y1 = max(pb[0], 0.0), max(pb[1], 0.0)
            x2, y2 = min(pb[2], float(width)), min(pb[3], float(height))
            box: BoxT | None = None
            if vis != "hidden" and x2 - x1 >= 1 and y2 - y1 >= 1:
                box = (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
            vt.frames[f] = FrameTruth(
                tuple(float(x) for x in p.region),  # type: ignore[arg-type]
                box,
                [[pb[0], pb[1]], [pb[2], pb[1]], [pb[2], pb[3]], [pb[0], pb[3]]],
                vis,
            )
            if vis == "full":
                vt.first_full = f if vt.first_full is None else vt.first_full
                vt.last_full = f
    return ClipTruth(path, width, height, fps, n, seed, "photo-motion", truths)


def render_motion_clip(
    out_path: str | Path,
    visits: Sequence[Visit],
    background: np.ndarray,
    *,
    fps: float = 25.0,
    seed: int = 0,
    tail_s: float = 1.0,
    codec: str = "mp4v",
    shutter: float = 0.12,
) -> ClipTruth:
    """Render ``visits`` over ``background`` to ``out_path``; returns its truth. ``shutter``:
    the exposed share of a frame's time (0.12 at 25 fps: about 1/200 s, a traffic camera in
    daylight), which sets the motion blur from each vehicle's real movement."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    H, W = background.shape[:2]
    truth = motion_truth(visits, W, H, fps, seed, tail_s, Path(out_path).name)
    noise = [_noise(rng, H, W) for _ in range(3)]
    writer = _open_writer(Path(out_path), fps, (W, H), codec)
    prev: dict[int, tuple[float, float]] = {}
    try:
        for f in range(truth.frame_count):
            img = background.copy()
            for p in layout(visits, f, W, H):
                v = visits[p.visit].vehicle
                interp = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR
                spr = cv2.resize(v.bgr, (p.w, p.h), interpolation=interp)
                a = cv2.resize(v.alpha, (p.w, p.h), interpolation=cv2.INTER_LINEAR)
                c = ((p.plate[0] + p.plate[2]) / 2, (p.plate[1] + p.plate[3]) / 2)
                if p.visit in prev:  # motion blur along this frame's movement
                    dx, dy = c[0] - prev[p.visit][0], c[1] - prev[p.visit][1]
                    length = int(round(np.hypot(dx, dy) * shutter))
                    if length >= 2:
                        spr = dg.motion_blur(spr, length, float(np.degrees(np.arctan2(dy, dx))))
                prev[p.visit] = c
                fx0, fy0, fx1, fy1 = p.region
                src = spr[fy0 - p.y0 : fy1 - p.y0, fx0 - p.x0 : fx1 - p.x0].astype(np.float32)
                al = a[fy0 - p.y0 : fy1 - p.y0, fx0 - p.x0 : fx1 - p.x0, None]
                roi = img[fy0:fy1, fx0:fx1].astype(np.float32)
                img[fy0:fy1, fx0:fx1] = (roi + (src - roi) * al).astype(np.uint8)
            pos_noise, neg_noise = noise[f % len(noise)]
            cv2.add(img, pos_noise, dst=img)
            cv2.subtract(img, neg_noise, dst=img)
            writer.write(img)
    finally:
        writer.release()
    truth.render_seconds = time.perf_counter() - t0
    return truth


def _noise(
    rng: np.random.Generator, h: int, w: int, sigma: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Grey sensor noise as (positive, negative) uint8 parts: two saturating adds per frame."""
    z = np.repeat(rng.normal(0, sigma, (h, w, 1)).astype(np.float32), 3, axis=2)
    return np.clip(z, 0, 255).astype(np.uint8), np.clip(-z, 0, 255).astype(np.uint8)


def _visibility(plate: BoxT, covers: Sequence[tuple[int, int, int, int]], W: int, H: int) -> str:
    """full / partial (cut by the frame edge or up to 40 % covered) / hidden (more covered)."""
    area = (plate[2] - plate[0]) * (plate[3] - plate[1])
    inside = plate[0] >= 0 and plate[1] >= 0 and plate[2] <= W and plate[3] <= H
    covered = 0.0
    for r in covers:
        ix = max(0.0, min(plate[2], r[2]) - max(plate[0], r[0]))
        iy = max(0.0, min(plate[3], r[3]) - max(plate[1], r[1]))
        covered = max(covered, ix * iy / area if area > 0 else 1.0)
    if covered > 0.4:
        return "hidden"
    if covered > 0 or not inside:
        return "partial"
    return "full"


def drawn_vehicle(rng: np.random.Generator, style: str = "us_ca", width: int = 520) -> PhotoVehicle:
    """A drawn car carrying a rendered plate (training.synth.vehicles / plates), as a
    `PhotoVehicle`: the same motion patterns without any photo, for tests that must run with
    no data set beside the repository."""
    from .plates import generate_plate
    from .vehicles import draw_vehicle

    p = generate_plate(rng, style, degrade=False, height=max(16, round(width * 0.12)))
    c = p.corners
    aspect = float(np.ptp(c[:, 0]) / max(1e-3, np.ptp(c[:, 1]))) if c is not None else 4.0
    sprite = draw_vehicle(rng, width, "front", p.image, c, 0.24, aspect)
    q = sprite.plate_quad
    box = (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max()))
    alpha = sprite.bgra[..., 3].astype(np.float32) / 255.0
    return PhotoVehicle(np.ascontiguousarray(sprite.bgra[..., :3]), alpha, box, p.text, style)


def truth_vehicles(truth: ClipTruth) -> list[TruthVehicle]:
    """A clip's truth as edge.eval.identity scores it (plate boxes unclipped, hidden frames
    left out)."""
    out = []
    for v in truth.vehicles:
        plates = {}
        for f, t in v.frames.items():
            if t.plate_visibility != "hidden":
                xs, ys = [q[0] for q in t.plate_quad], [q[1] for q in t.plate_quad]
                plates[f] = (min(xs), min(ys), max(xs), max(ys))
        out.append(TruthVehicle(v.id, v.text, plates, frozenset(v.full_frames()), v.last_frame))
    return out
