"""Procedurally drawn car sprites (front or rear view) carrying a plate, for synthetic video.

A sprite is drawn once per vehicle at its largest on-screen size and only scaled per frame, so
a clip costs one resize + one alpha blend per vehicle per frame. Geometry is in units of the
sprite width ``W``: body from 0.04 W to 0.96 W (mirrors reach the edges), roof at ~0.02 W,
tyre contact at ``GROUND_Y`` W. The plate's exact corners in sprite pixels come back with the
sprite, so every frame's plate box is the same transform of known points, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GROUND_Y = 0.78  # tyre contact line, in sprite widths from the top
SPRITE_H = 0.86  # sprite height in sprite widths (room for the shadow under the car)

# Car paints (BGR) with rough real-world frequencies: white, black, grey, silver dominate.
PAINTS: tuple[tuple[int, int, int], ...] = (
    (232, 234, 236),
    (226, 228, 230),
    (32, 32, 34),
    (28, 30, 36),
    (112, 112, 116),
    (96, 100, 104),
    (184, 186, 190),
    (170, 174, 178),
    (40, 36, 150),  # red
    (30, 28, 120),  # dark red
    (120, 60, 25),  # blue
    (80, 40, 20),  # navy
    (60, 80, 40),  # dark green
    (150, 170, 190),  # beige
)


@dataclass
class VehicleSprite:
    bgra: np.ndarray  # uint8 (h, w, 4); alpha 0 outside the car and its shadow
    plate_quad: np.ndarray  # float32 (4, 2) plate corners tl, tr, br, bl in sprite pixels
    body_box: tuple[float, float, float, float]  # car extent (no shadow), sprite pixels
    view: str  # "front" | "rear"


def _poly(pts: list[tuple[float, float]], w: int) -> np.ndarray:
    return (np.asarray(pts, np.float64) * w * 16).round().astype(np.int32)  # 4 bits subpixel


def _fill(
    img: np.ndarray,
    alpha: np.ndarray | None,
    pts: list[tuple[float, float]],
    colour: np.ndarray | tuple[float, ...],
    w: int,
    shade: np.ndarray | None = None,
) -> np.ndarray:
    """Fill polygon ``pts`` (sprite-width units) with ``colour`` (times ``shade`` if given);
    returns the float mask so callers can reuse it."""
    m = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(m, [_poly(pts, w)], 255, cv2.LINE_AA, shift=4)
    mf = m.astype(np.float32)[..., None] / 255.0
    col = np.asarray(colour, np.float32).reshape(1, 1, 3)
    paint = col * shade if shade is not None else col
    img *= 1.0 - mf
    img += mf * paint
    if alpha is not None:
        np.maximum(alpha, m, out=alpha)
    return mf


def _rounded_rect(
    x0: float, y0: float, x1: float, y1: float, r: float
) -> list[tuple[float, float]]:
    """Polygon of a rounded rectangle (units as given), 6 points per corner."""
    pts: list[tuple[float, float]] = []
    for cx, cy, a0 in (
        (x1 - r, y0 + r, -90),
        (x1 - r, y1 - r, 0),
        (x0 + r, y1 - r, 90),
        (x0 + r, y0 + r, 180),
    ):
        for k in range(6):
            a = np.deg2rad(a0 + 90 * k / 5)
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
    return pts


def _plate_rgba(plate_bgr: np.ndarray, corners: np.ndarray | None, w: int, h: int) -> np.ndarray:
    """The plate alone (cut at its corners), resized to w x h, with rounded corners as alpha."""
    if corners is not None:
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        H, W = plate_bgr.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            plate_bgr = plate_bgr[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if plate_bgr.shape[1] > w else cv2.INTER_CUBIC
    p = cv2.resize(plate_bgr, (w, h), interpolation=interp)
    m = np.zeros((h * 4, w * 4), np.uint8)
    pts = np.asarray(_rounded_rect(0, 0, w * 4 - 1, h * 4 - 1, min(w, h) * 4 * 0.08), np.int32)
    cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA)
    return np.dstack([p, m])


def draw_vehicle(
    rng: np.random.Generator,
    width: int,
    view: str,
    plate_bgr: np.ndarray,
    plate_corners: np.ndarray | None,
    plate_width_frac: float,
    plate_aspect: float,
    paint: tuple[int, int, int] | None = None,
) -> VehicleSprite:
    """Draw one car ``width`` px wide seen from ``view`` ("front"/"rear") carrying the plate
    ``plate_bgr`` (cut at ``plate_corners`` when given) ``plate_width_frac`` of the car wide."""
    if view not in ("front", "rear"):
        raise ValueError(f"view must be 'front' or 'rear', got {view!r}")
    W = int(width)
    if W < 40:
        raise ValueError(f"vehicle sprite width must be >= 40 px, got {W}")
    H = round(W * SPRITE_H)
    img = np.zeros((H, W, 3), np.float32)
    alpha = np.zeros((H, W), np.uint8)

    # --- shadow on the ground: soft dark ellipse, drawn into alpha only (colour stays black)
    sh = np.zeros((H, W), np.uint8)
    cv2.ellipse(
        sh, (W // 2, round(GROUND_Y * W)), (round(0.5 * W), round(0.045 * W)), 0, 0, 360, 255, -1
    )
    k = max(3, (W // 25) | 1)
    sh = cv2.GaussianBlur(sh, (k, k), 0)
    alpha = (sh.astype(np.float32) * rng.uniform(0.55, 0.75)).astype(np.uint8)

    base = paint if paint is not None else PAINTS[int(rng.integers(len(PAINTS)))]
    paint = np.clip(
        np.asarray(base, np.float32) * rng.uniform(0.9, 1.08) + rng.normal(0, 5, 3), 0, 255
    )
    dark_paint = paint < 60
    # shading fields: sky reflection on top surfaces, darker towards the sides and the bottom
    ys = np.linspace(0, SPRITE_H, H, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, W, dtype=np.float32)[None, :]
    side = 1.0 - 0.22 * xs**4
    vert = 1.08 - 0.35 * np.clip((ys - 0.30) / 0.45, 0, 1)
    shade = (side * vert)[..., None]
    if dark_paint.all():  # black cars show the sky as a grey sheen instead
        shade = shade * 1.0 + 0.0
    tyre = (22.0, 22.0, 24.0)
    lx = float(rng.uniform(-0.01, 0.01))  # small asymmetry so cars are not all identical

    # --- tyres (bottoms visible under the body)
    for x0 in (0.07, 0.79):
        _fill(img, alpha, _rounded_rect(x0, 0.62, x0 + 0.14, GROUND_Y + 0.004, 0.02), tyre, W)

    # --- cabin (greenhouse) and roof
    roof_w = rng.uniform(0.26, 0.31)
    cab = [(0.5 - roof_w, 0.02), (0.5 + roof_w, 0.02), (0.93, 0.37), (0.07, 0.37)]
    _fill(img, alpha, cab, paint, W, shade * 1.05)
    # --- glass: windscreen (front) is big, rear window smaller and higher
    gi = 0.035  # pillar thickness
    if view == "front":
        glass = [
            (0.5 - roof_w + gi, 0.055),
            (0.5 + roof_w - gi, 0.055),
            (0.93 - gi * 1.6, 0.345),
            (0.07 + gi * 1.6, 0.345),
        ]
    else:
        glass = [
            (0.5 - roof_w + gi * 1.3, 0.07),
            (0.5 + roof_w - gi * 1.3, 0.07),
            (0.9 - gi * 2, 0.30),
            (0.1 + gi * 2, 0.30),
        ]
    gshade = np.clip(0.55 + 0.9 * (ys - 0.05), 0.5, 1.3)[..., None] * np.ones((1, W, 1), np.float32)
    gmask = _fill(img, None, glass, (58, 50, 44), W, gshade)
    # sky reflection: a diagonal light streak across the glass
    streak = np.zeros((H, W), np.uint8)
    x_s = rng.uniform(0.25, 0.65)
    cv2.fillPoly(
        streak,
        [_poly([(x_s, 0.0), (x_s + 0.12, 0.0), (x_s - 0.05, 0.4), (x_s - 0.17, 0.4)], W)],
        255,
        cv2.LINE_AA,
        shift=4,
    )
    sf = cv2.GaussianBlur(streak, (k, k), 0).astype(np.float32)[..., None] / 255.0
    img += sf * gmask * rng.uniform(25, 60)
    # interior hints behind the glass: head rests / occupants, faint through tinted glass
    heads = np.zeros((H, W), np.uint8)
    for cx in (0.36, 0.64):
        cv2.ellipse(
            heads,
            (round((cx + lx) * W), round(0.25 * W)),
            (round(0.045 * W), round(0.055 * W)),
            0,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
        )
        cv2.rectangle(
            heads,
            (round((cx + lx - 0.07) * W), round(0.29 * W)),
            (round((cx + lx + 0.07) * W), round(0.36 * W)),
            255,
            -1,
        )
    hf = cv2.GaussianBlur(heads, (k, k), 0).astype(np.float32)[..., None] / 255.0
    img *= 1.0 - 0.35 * hf * gmask
    img[:] = img * (1 - gmask) + np.minimum(img, 90) * gmask  # keep interior dark behind glass

    # --- mirrors
    for sgn in (-1, 1):
        x_in, x_out = (0.09, 0.005) if sgn < 0 else (0.91, 0.995)
        mir = [(x_in, 0.30), (x_out, 0.28), (x_out, 0.34), (x_in, 0.355)]
        _fill(img, alpha, mir, paint * 0.85, W)

    # --- main body (hood / trunk face down to the bumper)
    body = _rounded_rect(0.035, 0.355, 0.965, 0.70, 0.05)
    _fill(img, alpha, body, paint, W, shade)
    # shoulder highlight: the top edge of the hood catches the sky
    hl = np.zeros((H, W), np.uint8)
    cv2.line(
        hl,
        (round(0.08 * W), round(0.37 * W)),
        (round(0.92 * W), round(0.37 * W)),
        255,
        max(1, W // 120),
        cv2.LINE_AA,
    )
    hl = cv2.GaussianBlur(hl, (k, k), 0).astype(np.float32)[..., None] / 255.0
    img += hl * (70 if not dark_paint.all() else 110)

    # --- lights
    if view == "front":
        for sgn in (-1, 1):
            xa, xb = (0.07, 0.30) if sgn < 0 else (0.70, 0.93)
            inner, outer = (xb, xa) if sgn < 0 else (xa, xb)
            lamp = [(outer, 0.40), (inner, 0.415), (inner, 0.465), (outer, 0.48)]
            _fill(img, None, lamp, (40, 40, 40), W)
            shrink = [
                (outer + (0.012 if sgn < 0 else -0.012), 0.405),
                (inner, 0.42),
                (inner, 0.458),
                (outer + (0.012 if sgn < 0 else -0.012), 0.47),
            ]
            _fill(img, None, shrink, (205, 210, 214), W)
            cv2.circle(
                img,
                (round((outer + inner) / 2 * W), round(0.44 * W)),
                max(1, round(0.018 * W)),
                (250, 252, 255),
                -1,
                cv2.LINE_AA,
            )
        # grille: dark with horizontal slats, a badge in the middle
        gr = _rounded_rect(0.33, 0.425, 0.67, 0.525, 0.02)
        _fill(img, None, gr, (28, 28, 30), W)
        for yy in np.linspace(0.44, 0.51, 4):
            cv2.line(
                img,
                (round(0.35 * W), round(yy * W)),
                (round(0.65 * W), round(yy * W)),
                (70, 70, 72),
                max(1, W // 250),
                cv2.LINE_AA,
            )
        cv2.circle(
            img,
            (W // 2, round(0.475 * W)),
            max(2, round(0.017 * W)),
            (180, 180, 185),
            -1,
            cv2.LINE_AA,
        )
        plate_cy = rng.uniform(0.585, 0.605)
    else:
        for sgn in (-1, 1):
            xa, xb = (0.045, 0.27) if sgn < 0 else (0.73, 0.955)
            lamp = _rounded_rect(xa, 0.39, xb, 0.46, 0.015)
            _fill(img, None, lamp, (30, 25, 150), W)
            inner = _rounded_rect(xa + 0.02, 0.40, xb - 0.02, 0.425, 0.008)
            _fill(img, None, inner, (60, 60, 225), W)
        # trunk lid edge and a badge
        cv2.line(
            img,
            (round(0.27 * W), round(0.395 * W)),
            (round(0.73 * W), round(0.395 * W)),
            tuple(float(v) for v in paint * 0.7),
            max(1, W // 200),
            cv2.LINE_AA,
        )
        cv2.ellipse(
            img,
            (W // 2, round(0.43 * W)),
            (round(0.03 * W), round(0.012 * W)),
            0,
            0,
            360,
            (185, 185, 190),
            -1,
            cv2.LINE_AA,
        )
        plate_cy = rng.uniform(0.505, 0.525)

    # --- bumper: a slightly darker band, black lower intake / diffuser
    bump = _rounded_rect(0.04, 0.545, 0.96, 0.70, 0.04)
    bshade = shade * 0.9
    _fill(img, None, bump, paint, W, bshade)
    cv2.line(
        img,
        (round(0.06 * W), round(0.548 * W)),
        (round(0.94 * W), round(0.548 * W)),
        tuple(float(v) for v in paint * 0.55),
        max(1, W // 220),
        cv2.LINE_AA,
    )
    _fill(img, None, _rounded_rect(0.22, 0.655, 0.78, 0.69, 0.012), (30, 30, 32), W)
    if view == "front":
        for x0 in (0.08, 0.84):  # fog lights
            _fill(img, None, _rounded_rect(x0, 0.60, x0 + 0.08, 0.635, 0.01), (60, 60, 62), W)

    # --- plate in a dark holder
    pw = plate_width_frac * W
    ph = pw / plate_aspect
    px0, py0 = W / 2 - pw / 2 + lx * W, plate_cy * W - ph / 2
    pad = 0.06 * ph
    _fill(
        img,
        None,
        _rounded_rect(
            (px0 - pad) / W,
            (py0 - pad) / W,
            (px0 + pw + pad) / W,
            (py0 + ph + pad) / W,
            0.1 * ph / W,
        ),
        (26, 26, 28),
        W,
    )
    ipw, iph = max(4, round(pw)), max(3, round(ph))
    prgba = _plate_rgba(plate_bgr, plate_corners, ipw, iph)
    ix0, iy0 = round(px0), round(py0)
    roi = img[iy0 : iy0 + iph, ix0 : ix0 + ipw]
    a = prgba[..., 3:].astype(np.float32) / 255.0
    # plates are retro-reflective: keep their own exposure, only a touch of the car's shading
    roi[:] = roi * (1 - a) + prgba[..., :3].astype(np.float32) * a * rng.uniform(0.9, 1.02)
    quad = np.array(
        [[ix0, iy0], [ix0 + ipw, iy0], [ix0 + ipw, iy0 + iph], [ix0, iy0 + iph]], np.float32
    )

    # --- paint texture: faint low-frequency blotches (dust, reflections) and grain
    small = rng.normal(0, 1, (max(2, H // 40), max(2, W // 40), 1)).astype(np.float32)
    blot = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)[..., None]
    body_mask = (alpha > 200)[..., None]
    img += blot * 5 * body_mask
    img += rng.normal(0, 2.0, (H, W, 1)).astype(np.float32)
    # shadow pixels outside the car are pure dark
    bgr = np.clip(img * rng.uniform(0.88, 1.06), 0, 255).astype(np.uint8)
    return VehicleSprite(
        bgra=np.dstack([bgr, alpha]),
        plate_quad=quad,
        body_box=(0.0, 0.02 * W, float(W), GROUND_Y * W),
        view=view,
    )
