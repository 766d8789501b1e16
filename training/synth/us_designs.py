"""Synthetic US plates on real state artwork: the serial of each official sample design is
painted out and a new one is drawn in that state's formats, in the ink and size of the one it
replaces.

``../shared/data/us-plate-designs`` holds the DMV sample artwork of every state (10 designs
each) with placeholder serials (``000000``, ``SAMPLE``, ``ABC123``). The artwork (slogans,
stickers, state names, graphics, frames) is what a US reader has to ignore. Rendering new
serials on it gives the reader that clutter with labels that are right by construction. The
artwork has no stated licence: it is used to train, and neither the designs nor the images
rendered on them are committed. A trained model is fine.

How the serial is found (`find_serial`): in a two-way binarisation (dark ink on light, and
light ink on dark), the serial is the largest row of 3 or more tall glyph-like components of
one height in the middle band. Stacked prefixes, vertical side text and small print are too
small to join that row and stay as distractors. Designs where no row is found (pure art, a
serial in an unusual place) are skipped and counted.

How a serial is drawn (`UsDesigns.generate`): the row's pixels are inpainted away. A text in one
of the state's formats (`STATE_FORMATS`), or a vanity text one time in eight, is drawn with the
project's glyph banks, in the row's median ink colour, at its glyph height, centred in its box
(condensed when longer than the original). Then the same degradations as every synthetic plate
are applied (`training.synth.degrade`).

    python -m training.synth.us_designs --sheet runs/us_designs.png [--n 48] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import degrade as dg
from . import fonts
from .plates import SynthPlate

# Current general-issue serial formats (L letter, 9 digit); a state not listed draws from
# GENERIC. Sources: the states' DMV pages as summarised on Wikipedia's per-state plate articles.
STATE_FORMATS: dict[str, tuple[str, ...]] = {
    "AL": ("99L999L", "9L99L99"), "AK": ("LLL999",), "AZ": ("LLL9LL", "LLL9999"),
    "AR": ("999LLL", "LLL99L"), "CA": ("9LLL999",), "CO": ("LLL999", "LLL9999", "LL9999"),
    "CT": ("LL99999", "9LLLL9"), "DE": ("999999", "99999"), "DC": ("LL9999",),
    "FL": ("LLLL99", "999LLL", "LLL999", "LLLL999"), "GA": ("LLL9999",), "HI": ("LLL999",),
    "ID": ("9L99999", "9LL9999"), "IL": ("LL99999", "LL9999"), "IN": ("999L", "999LLL"),
    "IA": ("LLL999",), "KS": ("999LLL",), "KY": ("999LLL", "L99LLL"), "LA": ("999LLL",),
    "ME": ("9999LL",), "MD": ("9LL9999",), "MA": ("9LLL99", "9LL999"), "MI": ("LLL9999",),
    "MN": ("999LLL", "LLL999"), "MS": ("LLL9999",), "MO": ("LL9L9L",), "MT": ("9999999L",),
    "NE": ("LLL999",), "NV": ("999L99", "99L999"), "NH": ("9999999", "999999"),
    "NJ": ("L99LLL",), "NM": ("LLL999",), "NY": ("LLL9999",), "NC": ("LLL9999",),
    "ND": ("999LLL",), "OH": ("LLL9999",), "OK": ("LLL999",), "OR": ("999LLL", "LLL999"),
    "PA": ("LLL9999",), "RI": ("LL999", "999999"), "SC": ("LLL999",), "SD": ("9L9999",),
    "TN": ("L99999", "99LL99"), "TX": ("LLL9999",), "UT": ("L999LL", "999L9"),
    "VT": ("LLL999",), "VA": ("LLL9999",), "WA": ("LLL9999",), "WV": ("9LL999",),
    "WI": ("LLL9999", "999LLL"), "WY": ("99999", "9L9999"),
}  # fmt: skip
GENERIC = ("LLL9999", "999LLL", "LL99999", "9LLL999", "LLL999")
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # most states skip I, O and Q in serials
DIGITS = "0123456789"
BANKS = ("dejavu_cond", "dejavu_bold", "dejavu_sans", "de", "uk")


def make_serial(rng: np.random.Generator, state: str) -> str:
    """A serial in one of ``state``'s formats, or a vanity text (2-7 letters and digits)."""
    if rng.random() < 0.125:
        n = int(rng.integers(2, 8))
        pool = LETTERS + LETTERS + DIGITS
        return "".join(pool[int(rng.integers(len(pool)))] for _ in range(n))
    fmts = STATE_FORMATS.get(state, GENERIC)
    fmt = fmts[int(rng.integers(len(fmts)))]
    return "".join(
        LETTERS[int(rng.integers(len(LETTERS)))] if c == "L" else DIGITS[int(rng.integers(10))]
        for c in fmt
    )


@dataclass(frozen=True)
class Serial:
    """Where a design's serial is: its box, glyph height, ink colour and pixels."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    glyph_h: int
    ink: tuple[int, int, int]  # BGR
    mask: np.ndarray  # uint8 255 on the serial's pixels (to inpaint)
    n_glyphs: int


def find_serial(bgr: np.ndarray) -> Serial | None:
    """The design's serial row (module docstring), or None."""
    H, W = bgr.shape[:2]
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    best: tuple[float, Serial] | None = None
    _, otsu = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    for ink in (255 - otsu, otsu):  # dark glyphs on light, then light glyphs on dark
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        cand = []
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if not (0.28 * H <= h <= 0.8 * H and 0.025 * W <= w <= 0.2 * W):
                continue
            if not (0.2 * H <= y + h / 2 <= 0.8 * H) or area < 0.2 * w * h:
                continue
            cand.append(i)
        if len(cand) < 3:
            continue
        # the biggest group of one height on one line
        heights = np.array([stats[i][3] for i in cand], float)
        centres = np.array([stats[i][1] + stats[i][3] / 2 for i in cand], float)
        groups = []
        for i, _ in enumerate(cand):
            same = (np.abs(heights - heights[i]) <= 0.15 * heights[i]) & (
                np.abs(centres - centres[i]) <= 0.12 * heights[i]
            )
            groups.append(np.flatnonzero(same))
        g = max(groups, key=len)
        if len(g) < 3:
            continue
        members = [cand[j] for j in g]
        xs = [stats[i][0] for i in members] + [stats[i][0] + stats[i][2] for i in members]
        ys = [stats[i][1] for i in members] + [stats[i][1] + stats[i][3] for i in members]
        # paint out every sizeable piece of ink along the row, in both polarities, not only the
        # row's members: a glyph touching the artwork, one of another colour or height (a
        # stacked prefix) would otherwise stay as a ghost beside the new serial and make the
        # label wrong
        gh = float(np.median(heights[g]))
        rect = (
            max(0, int(min(xs) - 0.6 * gh)), max(0, int(min(ys) - 0.1 * gh)),
            min(W, int(max(xs) + 0.6 * gh)), min(H, int(max(ys) + 0.1 * gh)),
        )  # fmt: skip
        mask = _row_ink(255 - otsu, rect, gh, W) | _row_ink(otsu, rect, gh, W)
        colour = np.median(bgr[np.isin(labels, members)], axis=0)
        s = Serial(
            (min(xs), min(ys), max(xs), max(ys)),
            int(gh),
            (int(colour[0]), int(colour[1]), int(colour[2])),
            mask,
            len(g),
        )
        score = len(g) * float(np.median(heights[g]))
        if best is None or score > best[0]:
            best = (score, s)
    return best[1] if best else None


def _row_ink(ink: np.ndarray, rect: tuple[int, int, int, int], gh: float, W: int) -> np.ndarray:
    """255 on the components of ``ink`` that overlap ``rect`` and are glyph-sized for a row of
    glyphs ``gh`` high."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    rx0, ry0, rx1, ry1 = rect
    keep = [
        i for i in range(1, n)
        if 0.35 * gh <= stats[i][3] <= 1.3 * gh and stats[i][2] <= 0.3 * W
        and stats[i][0] < rx1 and stats[i][0] + stats[i][2] > rx0
        and stats[i][1] < ry1 and stats[i][1] + stats[i][3] > ry0
    ]  # fmt: skip
    return np.isin(labels, keep).astype(np.uint8) * 255


@dataclass(frozen=True)
class Design:
    state: str
    name: str
    blank: np.ndarray  # the artwork with the serial painted out
    serial: Serial


def blank_design(bgr: np.ndarray, serial: Serial) -> np.ndarray:
    """The artwork with the serial's pixels inpainted (dilated first: JPEG halo and anti-aliasing
    around the glyphs go too)."""
    k = max(3, serial.glyph_h // 12) | 1
    mask = cv2.dilate(serial.mask, np.ones((k, k), np.uint8))
    return cv2.inpaint(bgr, mask, 3, cv2.INPAINT_TELEA)


def clean_row(blank: np.ndarray, serial: Serial, min_contrast: float = 60.0) -> bool:
    """Keep a design only if its painted-out row holds no glyph of the row's height any more
    (a ghost of the placeholder would make every label wrong) and the ink stands out from
    what is left there (a new serial must be readable)."""
    gh = serial.glyph_h
    x0, y0, x1, y1 = serial.box
    x0, x1 = max(0, int(x0 - 0.6 * gh)), min(blank.shape[1], int(x1 + 0.6 * gh))  # as blanked
    roi = blank[y0:y1, x0:x1]
    if roi.size == 0:
        return False
    grey = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    ink_grey = float(np.dot(serial.ink[::-1], (0.299, 0.587, 0.114)))
    p5, p95 = np.percentile(grey, (5, 95))
    if p95 - p5 < 40:  # nothing but smooth background left: clean
        return abs(float(np.median(grey)) - ink_grey) >= min_contrast
    _, otsu = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    for ink in (255 - otsu, otsu):
        n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        tall = [i for i in range(1, n) if stats[i][3] >= 0.6 * gh and stats[i][2] >= 0.15 * gh]
        if len(tall) >= 1 and any(stats[i][2] < 0.9 * (x1 - x0) for i in tall):
            return False
    return abs(float(np.median(grey)) - ink_grey) >= min_contrast


class UsDesigns:
    """Every usable design of a ``us-plate-designs`` folder; ``generate`` draws a plate."""

    def __init__(self, designs: list[Design], skipped: list[str]) -> None:
        if not designs:
            raise ValueError("no US design with a findable serial")
        self.designs = designs
        self.skipped = skipped

    @classmethod
    def load(cls, folder: Path) -> UsDesigns:
        folder = Path(folder)
        index = folder / "designs.csv"
        if not index.exists():
            raise FileNotFoundError(f"{index}: not a us-plate-designs folder")
        designs, skipped = [], []
        with index.open(newline="") as f:
            for row in csv.DictReader(f):
                bgr = cv2.imread(str(folder / "images" / row["file"]), cv2.IMREAD_COLOR)
                serial = find_serial(bgr) if bgr is not None else None
                blank = blank_design(bgr, serial) if serial is not None else None
                if serial is None or blank is None or not clean_row(blank, serial):
                    skipped.append(row["file"])
                    continue
                designs.append(Design(row["state"], row["file"], blank, serial))
        return cls(designs, skipped)

    def generate(
        self, rng: np.random.Generator, style: str | None = None, degrade: bool = True
    ) -> SynthPlate:
        """A plate on a random design (``style``: a state code to draw from that state only)."""
        pool = [d for d in self.designs if style is None or d.state == style] or self.designs
        d = pool[int(rng.integers(len(pool)))]
        text = make_serial(rng, d.state)
        img = draw_serial(d.blank, d.serial, text, BANKS[int(rng.integers(len(BANKS)))], rng)
        if degrade:
            img = finish(img, rng)
        return SynthPlate(img, text, f"us_design_{d.state.lower()}", False)


def draw_serial(
    blank: np.ndarray, serial: Serial, text: str, bank: str, rng: np.random.Generator
) -> np.ndarray:
    """``text`` in the serial's box: glyph height and ink of the original, centred, condensed
    to fit the box."""
    out = blank.copy()
    x0, y0, x1, y1 = serial.box
    h = serial.glyph_h
    glyphs = [fonts.glyph(bank, c, rng) for c in text]
    widths = [max(1, round(g.shape[1] * h / g.shape[0])) for g in glyphs]
    gap = max(1, round(0.12 * h))
    total = sum(widths) + gap * (len(text) - 1)
    # a longer serial than the placeholder is condensed: at most the old row's width plus a
    # glyph, and never past 92 % of the plate (plates keep their width, serials get narrower)
    W = out.shape[1]
    room = min(0.92 * W, (x1 - x0) + 0.6 * h)
    sx = min(1.0, room / total)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = min(max(cx - total * sx / 2, 0.04 * W), 0.96 * W - total * sx)
    ink = np.zeros(out.shape[:2], np.float32)
    for g, w in zip(glyphs, widths, strict=True):
        gw = max(1, round(w * sx))
        m = cv2.resize(g, (gw, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        gx, gy = round(x), round(cy - h / 2)
        ax0, ay0 = max(gx, 0), max(gy, 0)
        ax1, ay1 = min(gx + gw, out.shape[1]), min(gy + h, out.shape[0])
        if ax1 > ax0 and ay1 > ay0:
            ink[ay0:ay1, ax0:ax1] = np.maximum(
                ink[ay0:ay1, ax0:ax1], m[ay0 - gy : ay1 - gy, ax0 - gx : ax1 - gx]
            )
        x += (w + gap) * sx
    colour = np.array(serial.ink, np.float32).reshape(1, 1, 3)
    a = ink[..., None]
    return (out.astype(np.float32) * (1 - a) + colour * a).clip(0, 255).astype(np.uint8)


def finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The degradations every synthetic reader crop gets: size, perspective, blur, noise,
    lighting, JPEG (training.synth.degrade)."""
    H, W = img.shape[:2]
    target_h = int(rng.integers(20, 81))
    quad = dg.plate_quad(rng, W, H, 1.0)
    quad = quad - quad.min(axis=0)
    src = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    size = quad.max(axis=0)
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(
        img, m, (int(size[0]) + 1, int(size[1]) + 1), borderMode=cv2.BORDER_REPLICATE
    )
    s = target_h / warped.shape[0]
    small = cv2.resize(
        warped, (max(8, round(warped.shape[1] * s)), target_h), interpolation=cv2.INTER_AREA
    )
    small = dg.photometric(rng, small, 1.0)
    return dg.jpeg(small, int(rng.integers(40, 95)))


def contact_sheet(designs: UsDesigns, n: int, seed: int, clean: bool = False) -> np.ndarray:
    """``n`` generated plates in a grid, each labelled with its text (check them by eye)."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        p = designs.generate(rng, degrade=not clean)
        im = cv2.resize(p.image, (240, 120), interpolation=cv2.INTER_AREA)
        band = np.full((22, 240, 3), 255, np.uint8)
        cv2.putText(band, f"{p.text}  {p.style[-2:].upper()}", (4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
        cells.append(np.vstack([im, band]))
    cols = 6
    while len(cells) % cols:
        cells.append(np.full_like(cells[0], 255))
    rows = [np.hstack(cells[i : i + cols]) for i in range(0, len(cells), cols)]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=fonts.data_root() / "us-plate-designs")
    ap.add_argument("--sheet", type=Path, required=True, help="write the contact sheet here")
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clean", action="store_true", help="no degradations (check the serials)")
    args = ap.parse_args(argv)
    try:
        designs = UsDesigns.load(args.data)
    except (FileNotFoundError, ValueError) as e:
        print(f"us_designs: {e}")
        return 2
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.sheet), contact_sheet(designs, args.n, args.seed, args.clean)):
        print(f"us_designs: cannot write {args.sheet}")
        return 1
    n = len(designs.designs) + len(designs.skipped)
    states = len({d.state for d in designs.designs})
    print(f"{len(designs.designs)} of {n} designs usable ({states} states), "
          f"{len(designs.skipped)} without a findable serial; wrote {args.sheet}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
