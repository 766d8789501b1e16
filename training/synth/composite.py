"""Synthetic plates pasted into real images, for detector training.

``composite_scene`` puts perspective-warped clean plates (the generator's renderer, then
scene-level camera effects) into a plate-free background; ``composite_on_vehicle`` puts one
plate where a plate sits on a known vehicle box. Both return PLATE boxes: the axis-aligned
bounds of the warped plate quad, clipped to the image, labelled with the plate text.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data.records import PLATE, Box

from . import degrade as dg
from .layouts import STYLE_SPECS, STYLES, make_text
from .render import render_flat

ONE_LINE_STYLES = tuple(s for s in STYLES if not STYLE_SPECS[s].two_line)
MIN_RENDER_H = 24  # tiny plates are drawn bigger and shrunk with area averaging


def list_backgrounds(folder: Path) -> list[Path]:
    files = sorted(
        p for p in Path(folder).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not files:
        raise FileNotFoundError(f"no background images (.jpg/.png) in {folder}")
    return files


def _clean_plate(
    rng: np.random.Generator, style: str, width: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Flat plate ``width`` px wide: (BGR, shape mask, label), with plate-level wear."""
    spec = STYLE_SPECS[style]
    aspect = float(rng.uniform(*spec.aspect))
    h = max(2.0, width / aspect)
    text, rows = make_text(rng, style)
    img, mask = render_flat(rng, style, rows, max(MIN_RENDER_H, round(h)), aspect)
    tw, th = max(2, round(width)), max(2, round(h))
    if img.shape[0] != th:
        img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_AREA)
    # plate-only effects: dirt, glare, its own exposure (retro-reflective plates pop out)
    img = dg.photometric(rng, img, 0.5) if rng.random() < 0.7 else img
    return img, mask, text


def _paste(
    rng: np.random.Generator,
    scene: np.ndarray,
    plate: np.ndarray,
    mask: np.ndarray,
    quad: np.ndarray,
) -> tuple[float, float, float, float] | None:
    """Warp ``plate`` onto ``scene`` (in place) so its corners land on ``quad``; returns the
    clipped axis-aligned bounds of the quad, or None if it falls outside."""
    H, W = scene.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return None
    h, w = plate.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, (quad - [cx0, cy0]).astype(np.float32))
    size = (cx1 - cx0, cy1 - cy0)
    bgra = np.dstack([plate, mask])
    warped = cv2.warpPerspective(
        bgra,
        m,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    a = warped[..., 3:].astype(np.float32) / 255.0
    roi = scene[cy0:cy1, cx0:cx1]
    roi[:] = (warped[..., :3] * a + roi * (1.0 - a)).astype(np.uint8)
    return (
        float(max(quad[:, 0].min(), 0)),
        float(max(quad[:, 1].min(), 0)),
        float(min(quad[:, 0].max(), W)),
        float(min(quad[:, 1].max(), H)),
    )


def _holder(rng: np.random.Generator, scene: np.ndarray, quad: np.ndarray) -> None:
    """A patch of car body / bumper behind the plate, so plates do not float on walls."""
    c = quad.mean(axis=0)
    grow = np.array([rng.uniform(1.15, 1.8), rng.uniform(1.3, 2.5)], np.float32)
    big = (quad - c) * grow + c
    h = max(4, round(np.ptp(big[:, 1])))
    w = max(4, round(np.ptp(big[:, 0])))
    patch = dg.surround(rng, h, w)
    patch = _match_scene(rng, patch, scene, _bounds(big))
    mask = np.zeros((h, w), np.uint8)
    r = max(1, min(h, w) // 10)
    cv2.rectangle(mask, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (w - 1, h - 1 - r), 255, -1)
    k = max(3, (min(h, w) // 8) | 1)
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    _paste(rng, scene, patch, mask, big)


def _match_scene(
    rng: np.random.Generator,
    plate: np.ndarray,
    scene: np.ndarray,
    bounds: tuple[float, float, float, float],
) -> np.ndarray:
    """Make a crisp rendered plate sit in the photo: grey in grey photos, lit like its
    surroundings, about as sharp. Otherwise a detector learns "the odd sharp colourful patch"
    instead of "a plate"."""
    H, W = scene.shape[:2]
    x0, y0 = max(0, int(bounds[0])), max(0, int(bounds[1]))
    x1, y1 = min(W, int(np.ceil(bounds[2]))), min(H, int(np.ceil(bounds[3])))
    out = plate
    sample = scene[::8, ::8].astype(np.int16)
    if np.abs(sample[..., 0] - sample[..., 2]).mean() < 3:  # greyscale photo
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if x1 > x0 and y1 > y0:
        local = float(scene[y0:y1, x0:x1].mean()) + 1.0
        own = float(out.mean()) + 1.0
        gain = float(np.clip((local / own) ** 0.4 * rng.uniform(0.9, 1.15), 0.45, 1.3))
        out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    if out.shape[1] > 30 and rng.random() < 0.6:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 0.9))
    return out


def _bounds(q: np.ndarray) -> tuple[float, float, float, float]:
    return (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max()))


def _overlaps(b: tuple[float, float, float, float], boxes: list[Box], pad: float) -> bool:
    return any(
        b[0] - pad < o.x2 and o.x1 < b[2] + pad and b[1] - pad < o.y2 and o.y1 < b[3] + pad
        for o in boxes
    )


def composite_scene(
    rng: np.random.Generator, background_bgr: np.ndarray, n_plates: int, *, strength: float = 1.0
) -> tuple[np.ndarray, list[Box]]:
    """Paste ``n_plates`` synthetic plates (width 3-25 % of the image width, random style and
    view) into a copy of ``background_bgr``; returns (image, PLATE boxes). Plates never
    overlap; fewer are placed when the image has no room left."""
    if background_bgr is None or background_bgr.ndim != 3 or background_bgr.shape[2] != 3:
        raise ValueError("background_bgr must be an HxWx3 BGR uint8 image")
    if n_plates < 0:
        raise ValueError(f"n_plates must be >= 0, got {n_plates}")
    scene = background_bgr.copy()
    H, W = scene.shape[:2]
    boxes: list[Box] = []
    for _ in range(n_plates):
        for _attempt in range(20):
            style = STYLES[int(rng.integers(len(STYLES)))]
            # log-uniform width: small distant plates are the common, hard case
            pw = W * float(np.exp(rng.uniform(np.log(0.03), np.log(0.25))))
            plate, mask, text = _clean_plate(rng, style, pw)
            ph, pw = plate.shape[:2]
            quad = dg.plate_quad(rng, pw, ph, 0.8 * strength)
            span = quad.max(axis=0) - quad.min(axis=0)
            if span[0] >= W - 2 or span[1] >= H - 2:
                continue
            cx = rng.uniform(span[0] / 2 + 1, W - span[0] / 2 - 1)
            cy = rng.uniform(max(span[1] / 2 + 1, H * 0.25), H - span[1] / 2 - 1)
            q = quad + np.array([cx, cy], np.float32)
            bounds = (
                float(q[:, 0].min()),
                float(q[:, 1].min()),
                float(q[:, 0].max()),
                float(q[:, 1].max()),
            )
            if _overlaps(bounds, boxes, pad=max(span) * 0.8):
                continue
            if rng.random() < 0.5:
                _holder(rng, scene, q)
            plate = _match_scene(rng, plate, scene, bounds)
            b = _paste(rng, scene, plate, mask, q)
            if b is not None:
                boxes.append(Box(PLATE, *b, text=text))
            break
    scene = dg.photometric(rng, scene, 0.5 * strength, dirt=False)
    return scene, boxes


def composite_on_vehicle(
    rng: np.random.Generator,
    image_bgr: np.ndarray,
    vehicle_box: Box | tuple[float, float, float, float],
    *,
    style: str | None = None,
) -> tuple[np.ndarray, Box]:
    """Put one plate on a vehicle: lower middle of its box, 18-30 % of its width, a mild
    view. Returns (a copy of the image with the plate, the PLATE box)."""
    if isinstance(vehicle_box, Box):
        vx1, vy1, vx2, vy2 = vehicle_box.x1, vehicle_box.y1, vehicle_box.x2, vehicle_box.y2
    else:
        vx1, vy1, vx2, vy2 = (float(v) for v in vehicle_box)
    if vx2 - vx1 < 8 or vy2 - vy1 < 8:
        raise ValueError(f"vehicle box too small for a plate: {(vx1, vy1, vx2, vy2)}")
    if style is None:  # square plates exist on cars but are rare
        pool = STYLES if rng.random() < 0.1 else ONE_LINE_STYLES
        style = pool[int(rng.integers(len(pool)))]
    scene = image_bgr.copy()
    vw, vh = vx2 - vx1, vy2 - vy1
    plate, mask, text = _clean_plate(rng, style, vw * rng.uniform(0.18, 0.30))
    ph, pw = plate.shape[:2]
    quad = dg.plate_quad(rng, pw, ph, 0.5)
    cx = (vx1 + vx2) / 2 + rng.normal(0, 0.04) * vw
    cy = vy1 + rng.uniform(0.68, 0.86) * vh
    q = quad + np.array([cx, cy], np.float32)
    plate = _match_scene(
        rng,
        plate,
        scene,
        (float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())),
    )
    b = _paste(rng, scene, plate, mask, q)
    if b is None:
        raise ValueError("vehicle box lies outside the image")
    return scene, Box(PLATE, *b, text=text)
