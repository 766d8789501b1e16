"""Reading the two label formats the runtime evaluates on: one implementation, also used by
the training importers (training.data.importers), so a label means the same thing everywhere.

* openalpr/benchmarks end-to-end TSV: one ``NAME.txt`` per image, lines ``file x y w h TEXT``
  (tab-separated; top-left + size in pixels).
* YOLO / Ultralytics txt: lines ``class cx cy w h`` normalised to the image size (an optional
  confidence after the box; a segmentation polygon is read as its bounds), in a ``NAME.txt``
  beside the image or in the ``labels/`` twin of an ``images/`` folder.

The parsers are pure: a line in, a typed record out, ``ValueError`` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# In lookup order: an image is searched for with these suffixes, first match wins.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Values a hair above 1 appear from float rounding in exporters; more means pixel coordinates.
NORM_TOLERANCE = 0.01
_TEXT_DROP = re.compile(r"[\s\-_.·•]+")


def plate_text(text: str | None) -> str | None:
    """Plate text as platewatch stores it: upper-case, no spaces/dashes/dots; '' -> None."""
    if text is None:
        return None
    cleaned = _TEXT_DROP.sub("", text.strip()).upper()
    return cleaned or None


@dataclass(frozen=True)
class OpenalprLine:
    file: str
    box: tuple[float, float, float, float]  # xyxy pixels
    text: str | None


def is_openalpr_line(line: str) -> bool:
    """The six-field TSV shape whose first field names an image."""
    fields = line.rstrip("\r\n").split("\t")
    return len(fields) >= 5 and Path(fields[0].strip()).suffix.lower() in IMAGE_SUFFIXES


def parse_openalpr_line(line: str) -> OpenalprLine:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) < 5:
        raise ValueError(f"expected 'file x y w h TEXT' (tab-separated), got {line.strip()!r}")
    vals = []
    for value, name in zip(fields[1:5], "xywh", strict=True):
        try:
            vals.append(float(value))
        except ValueError:
            raise ValueError(f"field {name!r} is not a number: {value!r}") from None
    x, y, w, h = vals
    if w <= 0 or h <= 0:
        raise ValueError("width/height must be positive")
    text = plate_text(fields[5]) if len(fields) > 5 else None
    return OpenalprLine(fields[0].strip(), (x, y, x + w, y + h), text)


@dataclass(frozen=True)
class YoloLine:
    class_id: int
    box: tuple[float, float, float, float]  # xyxy, normalised to the image size

    def in_pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 * width, y1 * height, x2 * width, y2 * height)


def parse_yolo_line(line: str) -> YoloLine | None:
    """One label line; None for a blank line."""
    fields = line.split()
    if not fields:
        return None
    try:
        cid = int(fields[0])
        vals = [float(v) for v in fields[1:]]
    except ValueError:
        raise ValueError(f"not 'class cx cy w h': {line.strip()!r}") from None
    if len(vals) in (4, 5):  # box, optionally with a confidence
        cx, cy, w, h = vals[:4]
        if w < 0 or h < 0:
            raise ValueError("negative width/height")
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        coords = [cx, cy, w, h]
    elif len(vals) >= 6 and len(vals) % 2 == 0:  # segmentation polygon -> its bounds
        xs, ys = vals[0::2], vals[1::2]
        box = (min(xs), min(ys), max(xs), max(ys))
        coords = vals
    else:
        raise ValueError(f"expected 5 fields, got {len(fields)}")
    if any(v < -NORM_TOLERANCE or v > 1 + NORM_TOLERANCE for v in coords):
        raise ValueError("coordinates are not normalised to [0, 1]")
    return YoloLine(cid, box)


def yolo_label_for(image: Path) -> Path | None:
    """The label file of an image: ``NAME.txt`` beside it, else in the ``labels/`` folder that
    mirrors the nearest ``images/`` folder above it (the Ultralytics layout)."""
    beside = image.with_suffix(".txt")
    if beside.is_file():
        return beside
    parts = list(image.parts)
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[-2::-1].index("images")
        twin = Path(*parts[:i], "labels", *parts[i + 1 : -1], image.stem + ".txt")
        if twin.is_file():
            return twin
    return None
