"""``generate_plate``: one synthetic plate crop, as the reader sees a detector's crop.

Pipeline: random text for the style -> flat plate drawn at about its final pixel size ->
random view (perspective, rotation) warped onto a car-body surround -> crop around the plate with
a few px of random margin (sometimes cutting into it, like a loose detector box) -> camera
effects. The crop's aspect obeys the reader's two-line rule: two-line plates < 1.4, one-line
plates >= 1.9 (margins are widened rather than the plate distorted when needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import degrade as dg
from .layouts import STYLE_SPECS, STYLES, make_text
from .render import render_flat

ONE_LINE_MIN_ASPECT = 1.9
TWO_LINE_MAX_ASPECT = 1.4


@dataclass
class SynthPlate:
    image: np.ndarray  # BGR uint8 crop: the plate plus a few px of margin
    text: str  # label: upper-case 0-9A-Z, no separators, top row then bottom row
    style: str
    two_line: bool
    # Plate corners (tl, tr, br, bl) in ``image`` pixels, float32 (4, 2): lets composites cut
    # the plate out exactly and warp it into a scene.
    corners: np.ndarray | None = None


def _fit_aspect(
    x0: float, y0: float, x1: float, y1: float, two_line: bool
) -> tuple[float, float, float, float]:
    """Grow the crop (never shrink it) until its aspect obeys the reader's rule."""
    w, h = x1 - x0, y1 - y0
    if two_line and w / h >= TWO_LINE_MAX_ASPECT - 0.02:
        nh = w / (TWO_LINE_MAX_ASPECT - 0.05)
        y0, y1 = y0 - (nh - h) / 2, y1 + (nh - h) / 2
    elif not two_line and w / h < ONE_LINE_MIN_ASPECT + 0.02:
        nw = h * (ONE_LINE_MIN_ASPECT + 0.05)
        x0, x1 = x0 - (nw - w) / 2, x1 + (nw - w) / 2
    return x0, y0, x1, y1


def generate_plate(
    rng: np.random.Generator,
    style: str | None = None,
    degrade: bool = True,
    *,
    strength: float = 1.0,
    height: int | None = None,
) -> SynthPlate:
    """One synthetic plate crop.

    ``style`` None picks one uniformly from ``STYLES``. ``degrade`` False gives a clean,
    frontal plate (still a random size); ``strength`` scales every degradation. ``height``
    fixes the crop's approximate height instead of drawing it from 20..80 px.
    """
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLE_SPECS:
        raise ValueError(f"unknown plate style {style!r}; known: {', '.join(STYLES)}")
    spec = STYLE_SPECS[style]
    two_line = spec.two_line
    text, rows = make_text(rng, style)

    crop_h = (
        float(height)
        if height
        else float(rng.integers(36, 91) if two_line else rng.integers(20, 81))
    )
    s = strength if degrade else 0.0
    my = rng.uniform(0.03, 0.15, 2)  # top, bottom margin as fractions of plate height
    mx = rng.uniform(0.02, 0.12, 2)  # left, right
    if degrade and rng.random() < 0.25 * s:  # a loose detector box cuts into the plate
        side = int(rng.integers(4))
        (my if side < 2 else mx)[side % 2] = -rng.uniform(0.0, 0.04)
    grow = 1.0 + (0.12 * s if degrade else 0.0)  # rotation/perspective make the bbox taller
    plate_h = max(8, round(crop_h / (1.0 + my.sum()) / grow))
    flat, mask = render_flat(rng, style, rows, plate_h)
    H, W = flat.shape[:2]

    quad = (
        dg.plate_quad(rng, W, H, s)
        if degrade
        else np.array(
            [[-W / 2, -H / 2], [W / 2, -H / 2], [W / 2, H / 2], [-W / 2, H / 2]], np.float32
        )
    )
    qx0, qy0 = quad.min(axis=0)
    qx1, qy1 = quad.max(axis=0)
    x0, y0, x1, y1 = _fit_aspect(
        qx0 - mx[0] * H, qy0 - my[0] * H, qx1 + mx[1] * H, qy1 + my[1] * H, two_line
    )
    cw, ch = max(4, round(x1 - x0)), max(4, round(y1 - y0))
    # integer pixels can undo _fit_aspect's slack on tiny crops: fix up on the right/bottom
    if not two_line and cw < ONE_LINE_MIN_ASPECT * ch:
        cw = int(np.ceil(ONE_LINE_MIN_ASPECT * ch)) + 1
    elif two_line and cw >= TWO_LINE_MAX_ASPECT * ch:
        ch = int(np.floor(cw / TWO_LINE_MAX_ASPECT)) + 1
    dst = (quad - np.array([x0, y0], np.float32)).astype(np.float32)
    src = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    bgra = np.dstack([flat, mask])
    warped = cv2.warpPerspective(
        bgra,
        m,
        (cw, ch),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    canvas = dg.surround(rng, ch, cw)
    if rng.random() < 0.25:  # a dark plate holder / dealer frame just around the plate
        c = dst.mean(axis=0)
        frame = (dst - c) * np.array([rng.uniform(1.03, 1.1), rng.uniform(1.1, 1.4)]) + c
        shade = float(rng.uniform(10, 60))
        cv2.fillConvexPoly(
            canvas, np.round(frame).astype(np.int32), (shade, shade, shade), cv2.LINE_AA
        )
    a = warped[..., 3:].astype(np.float32) / 255.0
    img = (warped[..., :3] * a + canvas * (1.0 - a)).astype(np.uint8)
    if degrade:
        img = dg.photometric(rng, img, s)
    return SynthPlate(img, text, style, two_line, dst)
