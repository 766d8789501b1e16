"""Glyph banks for synthetic plates, all found offline.

Two sources:
- real plate glyphs from ``plate-chars`` (OpenALPR train-ocr): Tesseract box pages
  ``*/input/*.tif`` + ``.box`` (one bank per country font), and the ``gb/chars`` / ``br/chars``
  character crops used when a page is missing;
- TrueType fonts (DejaVu Bold / Condensed Bold / Mono Bold) from matplotlib's bundled fonts or
  ``/usr/share/fonts``, rendered with Pillow. These cover every character and every machine.

Every glyph is stored as a tight ``uint8`` ink mask (255 = ink) normalised to ``GLYPH_H`` pixels
high, so rendering is one small resize + blend per character. Banks load lazily and are cached
per process; a bank that lacks a character falls back to ``dejavu_cond``.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import cv2
import numpy as np

GLYPH_H = 48
MAX_VARIANTS = 16  # per character per bank: enough variety, bounded memory and load time
_REPO_ROOT = Path(__file__).resolve().parents[2]

# bank name -> (sub-folder of plate-chars, box-page stem) for the real-glyph banks
PAGE_BANKS: dict[str, tuple[str, str]] = {
    "de": ("eu", "leu.germany.exp0"),
    "nl": ("eu", "leu.netherlands.exp0"),
    "be": ("eu", "leu.belgium.exp0"),
    "rs": ("eu", "leu.serbia.exp0"),
    "fr": ("fr", "leu.france.exp0"),
    "uk": ("gb", "luk.uk.exp0"),
    "br": ("br", "lbr.brazil.exp0"),
}
CHAR_DIR_BANKS: dict[str, str] = {"uk": "gb", "br": "br"}
TTF_BANKS: dict[str, str] = {
    "dejavu_bold": "DejaVuSans-Bold.ttf",
    "dejavu_cond": "DejaVuSansCondensed-Bold.ttf",
    "dejavu_mono": "DejaVuSansMono-Bold.ttf",
    "dejavu_sans": "DejaVuSans.ttf",  # lighter strokes, as on many US plates
    "dejavu_cond_book": "DejaVuSansCondensed.ttf",  # system fonts only; skipped if absent
}
FALLBACK_BANK = "dejavu_cond"

Glyphs = dict[str, list[np.ndarray]]


def data_root() -> Path:
    """Shared data folder: env PLATEWATCH_DATA, else ../shared/data next to the repo."""
    return Path(os.environ.get("PLATEWATCH_DATA", str(_REPO_ROOT.parent / "shared" / "data")))


def _font_dirs() -> list[Path]:
    dirs: list[Path] = []
    try:
        import matplotlib

        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:  # matplotlib is optional; system fonts may still be there
        pass
    dirs += [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts")]
    return dirs


@cache
def find_ttf(file_name: str) -> Path | None:
    """Path of a TrueType font by file name, searched offline; None if absent."""
    for d in _font_dirs():
        p = d / file_name
        if p.is_file():
            return p
    for d in _font_dirs():
        if d.is_dir():
            hits = sorted(d.rglob(file_name))
            if hits:
                return hits[0]
    return None


def _tight(mask: np.ndarray) -> np.ndarray | None:
    """Crop a 0..255 ink mask to its ink and scale it to GLYPH_H high; None if empty."""
    ys, xs = np.nonzero(mask > 64)
    if len(ys) == 0:
        return None
    m = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = m.shape
    if h < 6:
        return None
    new_w = max(1, round(w * GLYPH_H / h))
    return cv2.resize(m, (new_w, GLYPH_H), interpolation=cv2.INTER_AREA)


def _keep(glyphs: Glyphs, ch: str, g: np.ndarray | None) -> None:
    if g is not None and ch in _ALNUM:
        lst = glyphs.setdefault(ch, [])
        if len(lst) < MAX_VARIANTS:
            lst.append(g)


_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def load_box_page(tif: Path, box: Path) -> Glyphs:
    """Cut glyphs out of a Tesseract box page (``char left bottom right top page``, origin at
    the bottom-left). Pages are black ink on white."""
    page = cv2.imread(str(tif), cv2.IMREAD_GRAYSCALE)
    if page is None:
        raise ValueError(f"cannot read box page image {tif}")
    ink = 255 - page
    H = page.shape[0]
    glyphs: Glyphs = {}
    for n, line in enumerate(box.read_text().splitlines(), 1):
        parts = line.split()
        if len(parts) < 5:
            continue
        try:
            left, bottom, right, top = (int(v) for v in parts[1:5])
        except ValueError as e:
            raise ValueError(f"{box}:{n}: bad box line {line!r}") from e
        ch = parts[0].upper()
        crop = ink[max(0, H - top) : H - bottom, max(0, left) : right]
        if crop.size:
            _keep(glyphs, ch, _tight(crop))
    return glyphs


def load_char_dir(folder: Path) -> Glyphs:
    """Character photos (class = first character of the file name), Otsu-binarised; the
    characters are dark on a light plate."""
    glyphs: Glyphs = {}
    for p in sorted(folder.glob("*.jpg")):
        ch = p.name[0].upper()
        if ch not in _ALNUM or len(glyphs.get(ch, [])) >= MAX_VARIANTS:
            continue
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        _, ink = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
        _keep(glyphs, ch, _tight(ink))
    return glyphs


def render_ttf_glyphs(font_path: Path, chars: str = "".join(sorted(_ALNUM))) -> Glyphs:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), GLYPH_H * 2)
    glyphs: Glyphs = {}
    for ch in chars:
        im = Image.new("L", (GLYPH_H * 3, GLYPH_H * 3), 0)
        ImageDraw.Draw(im).text((GLYPH_H // 2, GLYPH_H // 4), ch, fill=255, font=font)
        _keep(glyphs, ch, _tight(np.asarray(im)))
    return glyphs


@cache
def render_ttf_text(text: str, font_file: str, height: int = 40) -> np.ndarray | None:
    """A whole string (headers, footers, country codes) as a tight ink mask ``height`` high."""
    from PIL import Image, ImageDraw, ImageFont

    path = find_ttf(font_file) or find_ttf(TTF_BANKS[FALLBACK_BANK])
    if path is None or not text.strip():
        return None
    font = ImageFont.truetype(str(path), height * 2)
    left, top, right, bottom = font.getbbox(text)
    im = Image.new("L", (right - left + height, bottom - top + height), 0)
    ImageDraw.Draw(im).text((height // 2 - left, height // 2 - top), text, fill=255, font=font)
    m = np.asarray(im)
    ys, xs = np.nonzero(m > 32)
    if len(ys) == 0:
        return None
    m = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    w = max(1, round(m.shape[1] * height / m.shape[0]))
    return cv2.resize(m, (w, height), interpolation=cv2.INTER_AREA)


@cache
def get_bank(name: str) -> Glyphs:
    """Glyph bank by name; empty dict when its source is not on this machine."""
    if name in TTF_BANKS:
        path = find_ttf(TTF_BANKS[name])
        return render_ttf_glyphs(path) if path else {}
    if name in PAGE_BANKS:
        sub, stem = PAGE_BANKS[name]
        folder = data_root() / "plate-chars" / sub / "input"
        tif, box = folder / f"{stem}.tif", folder / f"{stem}.box"
        if tif.is_file() and box.is_file():
            return load_box_page(tif, box)
        if name in CHAR_DIR_BANKS:
            d = data_root() / "plate-chars" / CHAR_DIR_BANKS[name] / "chars"
            if d.is_dir():
                return load_char_dir(d)
        return {}
    raise ValueError(f"unknown glyph bank {name!r}")


def available_banks(names: tuple[str, ...]) -> tuple[str, ...]:
    """The banks among ``names`` that have glyphs here, else the fallback."""
    ok = tuple(n for n in names if get_bank(n))
    if ok:
        return ok
    if get_bank(FALLBACK_BANK):
        return (FALLBACK_BANK,)
    raise RuntimeError(
        "no glyph source found: neither plate-chars under "
        f"{data_root()} nor DejaVu TTFs (matplotlib or /usr/share/fonts)"
    )


def glyph(bank: str, ch: str, rng: np.random.Generator) -> np.ndarray:
    """One random variant of character ``ch`` from ``bank`` (fallback bank if missing)."""
    variants = get_bank(bank).get(ch) or get_bank(FALLBACK_BANK).get(ch)
    if not variants:
        raise KeyError(f"no glyph for {ch!r} in bank {bank!r} or the fallback")
    return variants[int(rng.integers(len(variants)))]
