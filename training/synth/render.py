"""Draw one flat, clean plate of a given style: background, border, bands, header/footer text
and the characters. Geometry and camera effects are ``degrade.py``'s job.

Everything is drawn directly at the requested pixel size (glyph masks are resized with area
interpolation), which keeps rendering well under a millisecond for typical plate sizes.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import fonts
from .layouts import STYLE_SPECS, Colour, StyleSpec

_EU_CODES = (
    "A",
    "BG",
    "S",
    "LV",
    "LT",
    "CZ",
    "SK",
    "P",
    "RO",
    "HR",
    "SLO",
    "DK",
    "IRL",
    "L",
    "EST",
    "H",
    "GR",
    "CY",
    "M",
)
_STICKERS = (
    (40, 200, 250),
    (60, 60, 220),
    (200, 120, 40),
    (60, 180, 60),
    (220, 220, 220),
    (180, 60, 180),
)
_SEP_WIDTH = {" ": 0.42, "-": 0.5, "*": 0.85, ".": 0.32}  # separator widths in units of char height


def _rounded_mask(w: int, h: int, r: int, inset: int = 0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = inset, inset, w - 1 - inset, h - 1 - inset
    r = max(0, min(r, (x1 - x0) // 2, (y1 - y0) // 2))
    if x1 <= x0 or y1 <= y0:
        return m
    cv2.rectangle(m, (x0 + r, y0), (x1 - r, y1), 255, -1)
    cv2.rectangle(m, (x0, y0 + r), (x1, y1 - r), 255, -1)
    if r > 0:
        for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
            cv2.circle(m, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return m


def _blend(
    img: np.ndarray, mask: np.ndarray, x: int, y: int, colour: Colour, opacity: float = 1.0
) -> None:
    """Alpha-blend a 0..255 ink mask in ``colour`` into float image ``img`` at (x, y)."""
    h, w = mask.shape
    H, W = img.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    a = mask[y0 - y : y1 - y, x0 - x : x1 - x].astype(np.float32)[..., None] * (opacity / 255.0)
    region = img[y0:y1, x0:x1]
    region *= 1.0 - a
    region += a * np.asarray(colour, np.float32)


def _text_mask(text: str, font_file: str, h: int, max_w: int) -> np.ndarray | None:
    m = fonts.render_ttf_text(text, font_file)
    if m is None or h < 3:
        return None
    w = max(1, min(max_w, round(m.shape[1] * h / m.shape[0])))
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA)


def _draw_centered_text(
    img: np.ndarray,
    text: str,
    font_file: str,
    cx: float,
    cy: float,
    h: int,
    max_w: int,
    colour: Colour,
) -> None:
    m = _text_mask(text, font_file, h, max_w)
    if m is not None:
        _blend(img, m, round(cx - m.shape[1] / 2), round(cy - m.shape[0] / 2), colour)


def _eu_band(img: np.ndarray, code: str, rng: np.random.Generator, right: bool = False) -> int:
    H, W = img.shape[:2]
    bw = max(3, round(H * rng.uniform(0.36, 0.42)))
    x0 = W - bw if right else 0
    img[:, x0 : x0 + bw] = fonts_colour((153, 51, 0), rng)
    if right:
        return bw
    # twelve yellow stars in a ring (dots: at plate resolutions stars are a few pixels)
    cx, cy, r = bw / 2, H * 0.3, bw * 0.28
    sr = max(1, round(bw * 0.045))
    for k in range(12):
        t = 2 * np.pi * k / 12
        cv2.circle(
            img,
            (round(cx + r * np.cos(t)), round(cy + r * np.sin(t))),
            sr,
            (0, 204, 255),
            -1,
            cv2.LINE_AA,
        )
    _draw_centered_text(
        img,
        code,
        "DejaVuSans-Bold.ttf",
        cx,
        H * 0.74,
        max(3, round(H * 0.24)),
        round(bw * 0.85),
        (245, 245, 245),
    )
    return bw


def fonts_colour(c: Colour, rng: np.random.Generator, jitter: int = 10) -> tuple[float, ...]:
    """A colour with a little per-plate variation (paint batches, ageing)."""
    return tuple(float(np.clip(v + rng.integers(-jitter, jitter + 1), 0, 255)) for v in c)


def _decorate(
    img: np.ndarray,
    spec: StyleSpec,
    name: str,
    rng: np.random.Generator,
    text_colour: tuple[float, ...],
) -> None:
    H, W = img.shape[:2]
    if name.startswith("eu_band:"):
        code = name.split(":", 1)[1]
        if code == "*":
            code = _EU_CODES[int(rng.integers(len(_EU_CODES)))]
        _eu_band(img, code, rng)
    elif name == "us_picture":
        if rng.random() < 0.45:  # pictorial plates: soft scenery behind the characters
            for _ in range(int(rng.integers(1, 4))):
                col = np.asarray(rng.uniform(60, 255, 3), np.float32)
                cx, cy = rng.uniform(0, W), rng.uniform(0.3, 1.2) * H
                ax, ay = rng.uniform(0.15, 0.6) * W, rng.uniform(0.2, 0.6) * H
                m = np.zeros((H, W), np.uint8)
                cv2.ellipse(m, (round(cx), round(cy)), (round(ax), round(ay)), 0, 0, 360, 255, -1)
                k = max(3, (H // 4) | 1)
                a = cv2.GaussianBlur(m, (k, k), 0).astype(np.float32)[..., None] / 255.0
                a *= np.float32(rng.uniform(0.25, 0.6))
                img *= 1.0 - a
                img += a * col
    elif name == "us_stickers":
        for corner in range(2):
            if rng.random() < 0.45:
                sw, sh = max(2, round(H * rng.uniform(0.18, 0.3))), max(2, round(H * 0.14))
                x = round(W * 0.03) if corner == 0 else W - round(W * 0.03) - sw
                y = round(H * rng.uniform(0.03, 0.08))
                col = _STICKERS[int(rng.integers(len(_STICKERS)))]
                cv2.rectangle(img, (x, y), (x + sw, y + sh), col, -1)
                _draw_centered_text(
                    img,
                    f"{int(rng.integers(0, 100)):02d}",
                    "DejaVuSans-Bold.ttf",
                    x + sw / 2,
                    y + sh / 2,
                    max(2, round(sh * 0.7)),
                    sw,
                    (30, 30, 30),
                )
    elif name == "right_band":
        _eu_band(img, "", rng, right=True)
        bw = round(H * 0.39)
        _draw_centered_text(
            img,
            f"{int(rng.integers(1, 96)):02d}",
            "DejaVuSans-Bold.ttf",
            W - bw / 2,
            H * 0.72,
            max(3, round(H * 0.22)),
            round(bw * 0.8),
            (245, 245, 245),
        )
    elif name == "uk_band":
        if rng.random() < 0.5:
            bw = max(3, round(H * 0.36))
            img[:, :bw] = (
                fonts_colour((140, 60, 10), rng)
                if rng.random() < 0.7
                else (fonts_colour((40, 120, 20), rng))
            )
            code = "UK" if rng.random() < 0.6 else "GB"
            _draw_centered_text(
                img,
                code,
                "DejaVuSans-Bold.ttf",
                bw / 2,
                H * 0.72,
                max(3, round(H * 0.25)),
                round(bw * 0.85),
                (0, 210, 250),
            )
    elif name == "mercosul_band":
        bh = max(3, round(H * (0.22 if W / H > 2 else 0.18)))
        img[:bh] = fonts_colour((160, 60, 0), rng)
        _draw_centered_text(
            img,
            "BRASIL",
            "DejaVuSans-Bold.ttf",
            W / 2,
            bh / 2,
            max(3, round(bh * 0.62)),
            W // 2,
            (250, 250, 250),
        )
        # flag at the right, Mercosul mark at the left
        fw, fh = round(bh * 1.0), round(bh * 0.7)
        fx, fy = W - fw - round(bh * 0.3), (bh - fh) // 2
        cv2.rectangle(img, (fx, fy), (fx + fw, fy + fh), (60, 150, 0), -1)
        pts = np.array(
            [
                [fx + fw // 2, fy + 1],
                [fx + fw - 1, fy + fh // 2],
                [fx + fw // 2, fy + fh - 1],
                [fx + 1, fy + fh // 2],
            ],
            np.int32,
        )
        cv2.fillConvexPoly(img, pts, (0, 215, 250))
        cv2.circle(
            img,
            (round(bh * 0.8), bh // 2),
            max(1, round(bh * 0.3)),
            (250, 250, 250),
            max(1, round(bh * 0.08)),
            cv2.LINE_AA,
        )
    elif name == "ind_band":
        bw = max(3, round(H * 0.3))
        cv2.ellipse(
            img,
            (round(bw * 0.55), round(H * 0.28)),
            (max(1, round(bw * 0.3)),) * 2,
            0,
            0,
            360,
            (190, 190, 190),
            -1,
            cv2.LINE_AA,
        )
        _draw_centered_text(
            img,
            "IND",
            "DejaVuSans-Bold.ttf",
            bw * 0.55,
            H * 0.72,
            max(3, round(H * 0.15)),
            bw,
            (160, 70, 20),
        )
    elif name == "ec_band":
        bh = max(3, round(H * 0.24))
        band = [(30, 130, 245), (200, 200, 200), (40, 170, 230), (60, 140, 40), (170, 110, 30)]
        img[:bh] = fonts_colour(band[int(rng.integers(len(band)))], rng)
        _draw_centered_text(
            img,
            "ECUADOR",
            "DejaVuSans-Bold.ttf",
            W / 2,
            bh / 2 + 1,
            max(3, round(bh * 0.62)),
            W // 2,
            (25, 25, 25),
        )
    elif name == "us_top_band":
        bh = max(2, round(H * 0.06))
        c = fonts_colour((20, 150, 240) if rng.random() < 0.5 else (120, 40, 10), rng)
        img[:bh] = c
        img[-bh:] = c
    elif name in ("us_gradient", "us_skyline"):
        if rng.random() < 0.6:
            tint = np.array([rng.uniform(0.75, 1.0) for _ in range(3)], np.float32)
            t = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
            if rng.random() < 0.5:
                t = t[::-1]
            img *= 1.0 - t * (1.0 - tint)
        if name == "us_skyline":
            # a faint silhouette band behind the characters
            base = round(H * 0.82)
            x = 0
            while x < W:
                bw = int(rng.integers(max(2, W // 40), max(3, W // 12)))
                bh = int(rng.integers(max(1, H // 20), max(2, H // 4)))
                img[base - bh : base, x : x + bw] *= 0.9
                x += bw


def _layout_row(
    row: str, bank: str, ch: int, rng: np.random.Generator, condense: float
) -> tuple[list[tuple[str, np.ndarray | None, float]], float]:
    """Per slot: (char, glyph mask or None for separators, width in px); total width."""
    gap = ch * 0.1
    items: list[tuple[str, np.ndarray | None, float]] = []
    for c in row:
        if c in _SEP_WIDTH:
            items.append((c, None, _SEP_WIDTH[c] * ch))
        else:
            g = fonts.glyph(bank, c, rng)
            items.append((c, g, g.shape[1] / g.shape[0] * ch * condense))
    widths = [w for c, g, w in items if g is not None]
    cell = float(np.median(widths)) * 0.95 if widths else ch * 0.5
    out = [(c, g, max(w, cell) if g is not None else w) for c, g, w in items]
    total = sum(w for _, _, w in out) + gap * (len(out) - 1)
    return out, total


def _draw_row(
    img: np.ndarray,
    row: str,
    bank: str,
    box: tuple[int, int, int, int],
    char_h: float,
    condense: float,
    colour: tuple[float, ...],
    spec: StyleSpec,
    rng: np.random.Generator,
    emboss: bool,
) -> None:
    x0, y0, x1, y1 = box
    ch = max(4, round((y1 - y0) * char_h))
    items, total = _layout_row(row, bank, ch, rng, condense)
    avail = x1 - x0
    sx = min(1.0, avail / total) if total > 0 else 1.0
    gap = ch * 0.1 * sx
    x = x0 + (avail - total * sx) / 2
    yc = (y0 + y1) / 2 + rng.uniform(-0.03, 0.03) * ch
    ytop = round(yc - ch / 2)
    shadow = tuple(v * 0.45 for v in colour)
    seals = bool(spec.extra.get("seals")) and rng.random() < 0.7
    for c, g, w in items:
        w *= sx
        if g is not None:
            gw = max(1, round(min(w, g.shape[1] / g.shape[0] * ch * condense * sx)))
            m = cv2.resize(g, (gw, ch), interpolation=cv2.INTER_AREA)
            gx = round(x + (w - gw) / 2)
            if emboss:
                _blend(img, m, gx + 1, ytop + 1, shadow, 0.5)
            _blend(img, m, gx, ytop, colour)
        elif c == "-" and seals:
            # German plates: the "dash" is really two round stickers (inspection + state seal)
            cx, r = round(x + w / 2), max(1, round(min(w * 0.45, ch * 0.19)))
            sc = [(40, 140, 230), (60, 160, 60), (160, 80, 30), (200, 200, 200)]
            cv2.circle(
                img, (cx, round(yc - ch * 0.22)), r, sc[int(rng.integers(4))], -1, cv2.LINE_AA
            )
            cv2.circle(img, (cx, round(yc + ch * 0.22)), r, (150, 150, 150), -1, cv2.LINE_AA)
        elif c == "-":
            t = max(1, round(ch * 0.09))
            cv2.rectangle(
                img,
                (round(x + w * 0.22), round(yc - t / 2)),
                (round(x + w * 0.78), round(yc + t / 2)),
                colour,
                -1,
            )
        elif c == ".":
            t = max(1, round(ch * 0.1))
            cx = round(x + w / 2)
            cv2.rectangle(
                img,
                (cx - t // 2, round(yc - t / 2)),
                (cx + (t - 1) // 2 + t % 2, round(yc + t / 2)),
                colour,
                -1,
            )
        elif c == "*":
            r = max(1, round(min(w, ch) * 0.32))
            emblem = spec.extra.get("emblem")
            cc = (20, 120, 245) if emblem == "orange" else colour
            cv2.circle(img, (round(x + w / 2), round(yc)), r, cc, -1, cv2.LINE_AA)
            if emblem == "orange":
                cv2.circle(
                    img,
                    (round(x + w / 2), round(yc - r)),
                    max(1, r // 3),
                    (40, 120, 30),
                    -1,
                    cv2.LINE_AA,
                )
        x += w + gap


def render_flat(
    rng: np.random.Generator, style: str, rows: list[str], height: int, aspect: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Clean plate ``height`` px high: (BGR uint8 image, uint8 plate-shape mask)."""
    if style not in STYLE_SPECS:
        raise ValueError(f"unknown plate style {style!r}")
    spec = STYLE_SPECS[style]
    if aspect is None:
        aspect = float(rng.uniform(*spec.aspect))
    H = max(8, int(height))
    W = max(8, round(H * aspect))
    bg = fonts_colour(spec.backgrounds[int(rng.integers(len(spec.backgrounds)))], rng, 8)
    img = np.empty((H, W, 3), np.float32)
    img[:] = bg
    tc = fonts_colour(spec.text_colours[int(rng.integers(len(spec.text_colours)))], rng, 12)
    for d in spec.decorations:
        _decorate(img, spec, d, rng, tc)
    bx0, by0, bx1, by1 = spec.text_box
    if spec.header:
        htxt = spec.header[int(rng.integers(len(spec.header)))]
        hc = spec.header_colours[int(rng.integers(len(spec.header_colours)))]
        font = (
            "DejaVuSerif-BoldItalic.ttf"
            if spec.extra.get("header_script")
            else ("DejaVuSans-Bold.ttf" if rng.random() < 0.6 else "DejaVuSerif-Bold.ttf")
        )
        hh = max(3, round(H * by0 * 0.62))
        _draw_centered_text(img, htxt, font, W / 2, H * by0 * 0.52, hh, round(W * 0.7), hc)
    if spec.footer:
        ftxt = spec.footer[int(rng.integers(len(spec.footer)))]
        if ftxt:
            fh = max(3, round(H * (1 - by1) * 0.55))
            _draw_centered_text(
                img, ftxt, "DejaVuSans-Bold.ttf", W / 2, H * (1 + by1) / 2, fh, round(W * 0.6), tc
            )
    bank = spec.fonts[int(rng.integers(len(spec.fonts)))]
    bank = fonts.available_banks((bank,) + spec.fonts)[0]
    condense = float(rng.uniform(*spec.condense))
    emboss = spec.region in ("us", "br", "in") and rng.random() < 0.5
    x0, y0, x1, y1 = bx0 * W, by0 * H, bx1 * W, by1 * H
    n = len(rows)
    for i, row in enumerate(rows):
        ry0, ry1 = y0 + (y1 - y0) * i / n, y0 + (y1 - y0) * (i + 1) / n
        _draw_row(
            img,
            row,
            bank,
            (round(x0), round(ry0), round(x1), round(ry1)),
            spec.char_height,
            condense,
            tc,
            spec,
            rng,
            emboss,
        )
    r = round(H * spec.corner_radius) if n == 1 else round(W * spec.corner_radius)
    mask = _rounded_mask(W, H, r)
    if spec.border > 0:
        t = max(1, round(H * spec.border * (0.5 if n > 1 else 1.0)))
        inner = _rounded_mask(W, H, max(0, r - t), inset=t)
        edge = (mask > 0) & (inner == 0)
        img[edge] = spec.border_colour or tc
    # gentle lighting gradient across the plate: real plates are never evenly lit
    g = np.linspace(1.0 - rng.uniform(0, 0.12), 1.0, W, dtype=np.float32)
    if rng.random() < 0.5:
        g = g[::-1]
    img *= g[None, :, None]
    return np.clip(img, 0, 255).astype(np.uint8), mask
