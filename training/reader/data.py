"""Reader data: loading the real crop sets, the fixed validation split, augmentation, batches.

Owns:
- ``load_br`` / ``load_us``: labelled real crops (``br-plate-crops``: text in the file name,
  corrected by ``br_label_fixes.tsv`` unless ``fixes=False``; ``openalpr-us-crops``:
  ``groundtruth.csv``; labels that are not ``[0-9A-Z]{2,10}`` are dropped, e.g. the noisy
  ``0``).
- ``load_ar``: ``ar-plate-crops`` (``labels.csv``), split one in 3 (``VAL_EVERY``): the set
  is small.
- ``load_crop_folder``: any folder of ``NAME_TEXT.jpg`` crops (``platewatch crop-plates``
  output, ``training.reader.clip_crops``), for ``train --extra-crops``.
- ``split_of``: the deterministic held-out split (sha1 of the file name mod 10 == 0 -> "val").
  Training never sees "val"; evaluation and export read only "val".
- ``augment_crop``: what makes ~2000 real crops enough: the detector's imprecise boxes (margin
  jitter), small perspective, blur, noise, brightness/contrast, JPEG.
- ``make_batch``: crops -> (B, 3, 32, 128) tensor through ``edge.detect.plate_input.prepare_plate``
  (the very function the runtime uses) plus CTC targets.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.detect.plate_input import ReaderInput, prepare_plate

from .model import encode_text

VALID_TEXT = re.compile(r"[0-9A-Z]{2,10}")
BR_DIR = "br-plate-crops"
US_DIR = "openalpr-us-crops"
AR_DIR = "ar-plate-crops"
SPEC = ReaderInput()
BR_FIXES = Path(__file__).with_name("br_label_fixes.tsv")
DROP = "-"


@dataclass(frozen=True)
class Crop:
    path: Path
    text: str
    dataset: str  # "br" | "us" | "ar" | "extra"


def default_data_root() -> Path:
    """``$PLATEWATCH_DATA`` or ``../shared/data`` relative to the repository root."""
    env = os.environ.get("PLATEWATCH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def split_of(file_name: str, val_every: int = 10) -> str:
    """Fixed, content-independent split: same file name -> same split on every machine.
    One crop in ``val_every`` is held out."""
    digest = hashlib.sha1(file_name.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") % val_every == 0 else "train"


def valid_text(text: str) -> bool:
    return VALID_TEXT.fullmatch(text) is not None


def load_label_fixes(path: Path = BR_FIXES) -> dict[str, str]:
    """``file -> corrected text`` (``"-"``: drop the crop) from a ``file<TAB>text`` table."""
    fixes: dict[str, str] = {}
    for line_no, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not (parts[1] == DROP or valid_text(parts[1])):
            raise ValueError(f"{path}:{line_no}: expected 'file<TAB>TEXT' or 'file<TAB>-'")
        if parts[0] in fixes:
            raise ValueError(f"{path}:{line_no}: {parts[0]} listed twice")
        fixes[parts[0]] = parts[1]
    return fixes


def load_crop_folder(folder: Path, dataset: str, fixes: dict[str, str] | None = None) -> list[Crop]:
    """Crops named ``ANYTHING_TEXT.jpg`` (text after the first underscore), fixes applied."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"crops folder not found: {folder}")
    fixes = fixes or {}
    crops = []
    for path in sorted(folder.glob("*.jpg")):
        stem = path.stem
        if "_" not in stem:
            raise ValueError(f"{path}: expected NAME_TEXT.jpg")
        text = fixes.get(path.name, stem.split("_", 1)[1].upper())
        if text != DROP and valid_text(text):
            crops.append(Crop(path, text, dataset))
    return crops


def load_br(data_root: Path, fixes: bool = True) -> list[Crop]:
    """``br-plate-crops`` with the audited label corrections (``fixes=False``: as published)."""
    table = load_label_fixes() if fixes else {}
    folder = Path(data_root) / BR_DIR
    if fixes and folder.is_dir():
        missing = sorted(set(table) - {p.name for p in folder.glob("*.jpg")})
        if missing:
            raise ValueError(f"{BR_FIXES.name} names files not in {folder}: {missing[:5]}")
    return load_crop_folder(folder, "br", table)


def _table_crops(
    folder: Path,
    table_name: str,
    region: str,
    columns: Callable[[Path, int, list[str]], tuple[str, str] | None],
    header: bool = False,
) -> list[Crop]:
    """Crops listed in the CSV ``folder/table_name``, images in ``folder/images``.
    ``columns(table, row_no, row)`` gives (file, upper-case text) or None to skip the row, and
    raises ValueError naming the line for a malformed one. Rows whose text is unusable or whose
    image is missing are skipped."""
    table = folder / table_name
    if not table.is_file():
        raise FileNotFoundError(f"{region.upper()} crops label file not found: {table}")
    crops = []
    with table.open(newline="") as fh:
        rows = csv.reader(fh)
        if header:
            next(rows, None)
        for row_no, row in enumerate(rows, start=2 if header else 1):
            parsed = columns(table, row_no, row)
            if parsed is None:
                continue
            path = folder / "images" / parsed[0]
            if valid_text(parsed[1]) and path.is_file():
                crops.append(Crop(path, parsed[1], region))
    return crops


def _us_columns(table: Path, row_no: int, row: list[str]) -> tuple[str, str] | None:
    if not row:
        return None
    if len(row) < 3:
        raise ValueError(f"{table}:{row_no}: expected file,state,text, got {row!r}")
    # noisy labels ("0", vanity words with symbols) fail valid_text and are skipped
    return row[0].strip(), row[2].strip().upper()


def _ar_columns(table: Path, row_no: int, row: list[str]) -> tuple[str, str] | None:
    if not row:
        return None
    name = row[0].strip()
    if not name:
        raise ValueError(f"{table}:{row_no}: expected file,text, got {row!r}")
    return name, (row[1] if len(row) > 1 else "").strip().upper()


def load_us(data_root: Path) -> list[Crop]:
    """``openalpr-us-crops`` (``groundtruth.csv``: ``file,state,text``, no header)."""
    return _table_crops(Path(data_root) / US_DIR, "groundtruth.csv", "us", _us_columns)


def load_ar(data_root: Path) -> list[Crop]:
    """``ar-plate-crops`` (``labels.csv``: ``file,text``); two-line motorcycle plates included."""
    return _table_crops(Path(data_root) / AR_DIR, "labels.csv", "ar", _ar_columns, header=True)


# AR has 147 crops: one in 10 held out would be ~15, too few to measure, so one in 3 is.
VAL_EVERY = {"ar": 3}


def split(crops: Sequence[Crop], which: str) -> list[Crop]:
    return [c for c in crops if split_of(c.path.name, VAL_EVERY.get(c.dataset, 10)) == which]


def read_bgr(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return image


# ---------------------------------------------------------------- augmentation


def jitter_crop(
    image: np.ndarray, rng: np.random.Generator, margin: float = 0.08, perspective: float = 0.04
) -> np.ndarray:
    """Re-crop as an imprecise detector would: each side moves by up to ``margin`` of the plate
    size (in or out, out pads by replication), corners move a little more for perspective.
    The output keeps the input size, so the aspect ratio (and the two-line rule) is preserved.
    """
    h, w = image.shape[:2]
    side = rng.uniform(-margin, margin, size=4)  # left, top, right, bottom; + = grow
    corner = rng.uniform(-perspective, perspective, size=(4, 2))
    src = np.array(
        [
            [-side[0] * w, -side[1] * h],
            [w + side[2] * w, -side[1] * h],
            [w + side[2] * w, h + side[3] * h],
            [-side[0] * w, h + side[3] * h],
        ],
        dtype=np.float32,
    )
    src += (corner * [w, h]).astype(np.float32)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting, focus, sensor noise and compression, each applied at random."""
    out = image.astype(np.float32)
    if rng.random() < 0.8:  # brightness / contrast
        out = out * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)
    if rng.random() < 0.2:  # colour cast / partial desaturation
        gray = out.mean(axis=2, keepdims=True)
        out = gray + (out - gray) * rng.uniform(0.0, 1.2)
    if rng.random() < 0.15:
        out = 255.0 - out if rng.random() < 0.1 else out
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:  # defocus / motion blur
        if rng.random() < 0.5:
            k = int(rng.choice([3, 5]))
            out = cv2.GaussianBlur(out, (k, k), 0)
        else:
            k = int(rng.integers(3, 8))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            out = cv2.filter2D(out, -1, kernel)
    if rng.random() < 0.3:  # low resolution: the plate far away
        h, w = out.shape[:2]
        f = rng.uniform(0.3, 0.7)
        small = cv2.resize(
            out, (max(8, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        noise = rng.normal(0, rng.uniform(3, 15), out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 80))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def augment_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.9:
        image = jitter_crop(image, rng)
    return photometric(image, rng)


# ---------------------------------------------------------------- batches


def make_batch(images: Sequence[np.ndarray], texts: Sequence[str]):
    """BGR crops + texts -> (images (B,3,H,W) float32, targets (sum L,), lengths (B,)) as
    numpy arrays, preprocessed exactly as at run time."""
    batch = np.stack([prepare_plate(im, SPEC) for im in images]).astype(np.float32)
    encoded = [encode_text(t) for t in texts]
    targets = np.array([c for e in encoded for c in e], dtype=np.int64)
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    return batch, targets, lengths
