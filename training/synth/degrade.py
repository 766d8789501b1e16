"""Camera and weather effects for synthetic plates and scenes.

Pure functions of (rng, image, strength): ``strength`` 0 leaves an image untouched, 1 is the
default training mix, up to ~1.5 is harsh. Each effect fires with a probability that grows with
strength, so a batch mixes clean and ugly samples the way real traffic footage does.
"""

from __future__ import annotations

import cv2
import numpy as np

_PAINTS = (  # car paint colours (BGR) for the area around a plate
    (30, 30, 30),
    (200, 200, 200),
    (150, 150, 150),
    (230, 230, 230),
    (40, 40, 160),
    (120, 60, 20),
    (60, 60, 70),
    (90, 100, 110),
    (20, 20, 20),
    (160, 170, 175),
)


def surround(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Car-body-like texture for the margin around a plate crop: paint, a bumper edge or a
    plate holder, shading and grain."""
    base = np.asarray(_PAINTS[int(rng.integers(len(_PAINTS)))], np.float32)
    base = np.clip(base + rng.normal(0, 12, 3), 0, 255)
    t = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.2), h, dtype=np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    img *= t[:, None, None]
    if rng.random() < 0.5:  # a dark plate holder or bumper line
        y = int(rng.integers(0, max(1, h)))
        img[y : y + max(1, h // 8)] *= rng.uniform(0.2, 0.6)
    img += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def plate_quad(rng: np.random.Generator, w: float, h: float, strength: float) -> np.ndarray:
    """Where the corners (tl, tr, br, bl) of a w x h plate land after a random view: yaw and
    pitch foreshortening, shear and in-plane rotation. Float32 (4, 2), origin at the centre."""
    s = strength
    hw, hh = w / 2, h / 2
    yaw = rng.uniform(-0.15, 0.15) * s  # relative height change between left and right edges
    pitch = rng.uniform(-0.08, 0.08) * s  # relative width change between top and bottom
    shear = rng.normal(0, 0.06) * s
    q = np.array(
        [
            [-hw * (1 - pitch), -hh * (1 - yaw)],
            [hw * (1 - pitch), -hh * (1 + yaw)],
            [hw * (1 + pitch), hh * (1 + yaw)],
            [-hw * (1 + pitch), hh * (1 - yaw)],
        ],
        np.float32,
    )
    q[:, 0] += shear * q[:, 1]
    q[:, 0] *= 1 - abs(yaw) * 1.5  # turning away also narrows the plate
    q += rng.normal(0, 0.015 * s, (4, 2)).astype(np.float32) * np.float32(h)
    a = np.deg2rad(float(np.clip(rng.normal(0, 3.5 * s), -12, 12)))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    return q @ rot.T


def motion_blur(img: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    m = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle_deg, 1.0)
    k = cv2.warpAffine(k, m, (length, length))
    return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6))


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


def _glare(rng: np.random.Generator, f: np.ndarray) -> None:
    h, w = f.shape[:2]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.08, 0.35) * w, rng.uniform(0.15, 0.6) * h
    gx = np.exp(-(((np.arange(w, dtype=np.float32) - cx) / sx) ** 2))
    gy = np.exp(-(((np.arange(h, dtype=np.float32) - cy) / sy) ** 2))
    f += (gy[:, None] * gx[None, :])[..., None] * np.float32(rng.uniform(40, 150))


def _shadow(rng: np.random.Generator, f: np.ndarray) -> None:
    """A hard-edged shadow (bumper, tree, the car itself) over part of the image."""
    h, w = f.shape[:2]
    m = np.zeros((h, w), np.uint8)
    pts = np.array([[rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h] for _ in range(4)])
    pts[0:2, 1] = [-1, -1] if rng.random() < 0.5 else pts[0:2, 1]
    cv2.fillPoly(m, [pts.astype(np.int32)], 255)
    k = int(rng.integers(0, 3)) * 2 + 1
    mf = cv2.GaussianBlur(m, (k, k), 0).astype(np.float32)[..., None] / 255.0
    f *= 1.0 - mf * np.float32(rng.uniform(0.3, 0.7))


def _dirt(rng: np.random.Generator, f: np.ndarray) -> None:
    h, w = f.shape[:2]
    small = rng.random((max(2, h // 6), max(2, w // 6))).astype(np.float32)
    blot = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    amount = rng.uniform(0.1, 0.4)
    dirt_col = np.asarray(
        [rng.uniform(40, 90), rng.uniform(60, 110), rng.uniform(70, 120)], np.float32
    )
    a = (np.clip(blot - (1 - amount), 0, 1) / max(amount, 1e-3))[..., None] * 0.6
    f *= 1 - a
    f += a * dirt_col
    for _ in range(int(rng.integers(0, 8))):  # specks
        cv2.circle(
            f,
            (int(rng.integers(w)), int(rng.integers(h))),
            int(rng.integers(1, max(2, h // 15))),
            tuple(float(v) for v in dirt_col),
            -1,
        )


def _night_ir(rng: np.random.Generator, f: np.ndarray) -> np.ndarray:
    """Infrared camera at night: grey, the retro-reflective plate glows, the rest is dark."""
    g = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    g = (g - g.mean()) * rng.uniform(1.3, 2.2) + rng.uniform(110, 170)
    g = np.clip(g, 0, 255)
    bright = np.where(g > 200, g, 0).astype(np.float32)
    k = max(3, (min(g.shape) // 6) | 1)
    g = g + cv2.GaussianBlur(bright, (k, k), 0) * np.float32(rng.uniform(0.2, 0.6))
    return np.repeat(g[..., None], 3, axis=2)


def photometric(
    rng: np.random.Generator, img: np.ndarray, strength: float = 1.0, dirt: bool = True
) -> np.ndarray:
    """The full random chain on a BGR uint8 image (any size); returns BGR uint8. ``dirt``
    False for whole scenes (dirt belongs on plates, not on the sky)."""
    s = float(strength)
    if s <= 0:
        return img
    h, w = img.shape[:2]

    def p(x: float) -> bool:
        return bool(rng.random() < min(1.0, x * s))

    out = img
    resampled = False
    if p(0.25) and h >= 24:  # resolution loss: seen from further away, then upscaled
        # never below ~14 px high: past that the label is noise, not a hard example
        f = min(rng.uniform(1.2, 1.2 + 1.0 * s), h / 14)
        if f > 1.1:
            small = cv2.resize(
                out, (max(4, round(w / f)), max(4, round(h / f))), interpolation=cv2.INTER_AREA
            )
            out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            resampled = True
    f = out.astype(np.float32)
    if p(0.15):
        _shadow(rng, f)
    if p(0.12):
        _glare(rng, f)
    if dirt and p(0.15):
        _dirt(rng, f)
    # colour cast, brightness, contrast, gamma
    if p(0.12):  # murky: dusk, dirty lens, underexposed (typical of Brazilian dashcam crops)
        f = (f - 128) * np.float32(rng.uniform(0.3, 0.6)) + np.float32(rng.uniform(60, 130))
        f *= rng.uniform(0.8, 1.15, 3).astype(np.float32)
    f *= rng.uniform(1 - 0.06 * s, 1 + 0.06 * s, 3).astype(np.float32)
    f = (f - 128) * np.float32(rng.uniform(1 - 0.3 * min(s, 1.5), 1 + 0.2 * s)) + 128
    f += np.float32(rng.uniform(-40, 30) * s)
    if p(0.1):
        f = _night_ir(rng, f)
    f = np.clip(f, 0, 255)
    if p(0.3):
        gamma = rng.uniform(1 - 0.4 * min(s, 1), 1 + 0.8 * s)
        f = 255.0 * (f / 255.0) ** np.float32(gamma)
    # blur budget scales with size: a 20 px plate cannot take the blur an 80 px one can
    if p(0.15 if resampled else 0.35):
        sigma = min(rng.uniform(0.3, 0.3 + 0.7 * s), max(0.4, h / 45))
        f = cv2.GaussianBlur(f, (0, 0), sigma)
    elif p(0.2) and h >= 30:
        n = int(rng.integers(3, 3 + max(1, round(min(h / 20, 3 * s)))))
        f = motion_blur(f, n, rng.uniform(-30, 30))
    if p(0.5):
        f = f + rng.normal(0, rng.uniform(1, 8 * s), f.shape[:2] + (1,)).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if p(0.45):
        out = jpeg(out, int(rng.integers(max(15, round(90 - 55 * s)), 96)))
    return out
