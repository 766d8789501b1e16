"""Cut plate crops out of labelled scenes for reader training.

Crops get a margin (edge.detect.plate_input.expand_box, the same one the runtime applies to detector
boxes) so the reader trains on what it will see. Output names follow ``NNNNN_TEXT.jpg``, which
training/data/importers/filename.py reads back; with ``labels_csv`` the text goes to a CSV instead
(``file,text,source,x1,y1,x2,y2``), for texts a file name cannot hold or to keep provenance.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.detect.plate_input import expand_box
from training.data.records import ImageRecord

_UNSAFE = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True)
class Crop:
    path: Path
    text: str | None
    source: Path
    box: tuple[int, int, int, int]


def crop_name(index: int, text: str | None, with_text: bool) -> str:
    if with_text and text:
        return f"{index:05d}_{_UNSAFE.sub('', text.upper())}.jpg"
    return f"{index:05d}.jpg"


def crop_plates(
    records: Iterable[ImageRecord],
    out_dir: Path | str,
    *,
    margin: float = 0.08,
    include_unread: bool = False,
    labels_csv: bool = False,
    start: int = 1,
    min_size: int = 4,
    jpeg_quality: int = 95,
) -> list[Crop]:
    """Write one JPEG per plate box; return what was written.

    Plates without text are skipped unless ``include_unread`` (then named ``NNNNN.jpg``).
    Boxes smaller than ``min_size`` px after clipping are skipped: they hold no readable text.
    Unreadable images raise OSError naming the file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops: list[Crop] = []
    index = start
    for rec in records:
        plates = [p for p in rec.plates if p.text or include_unread]
        if not plates:
            continue
        img = cv2.imread(str(rec.image), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read image {rec.image}")
        h, w = img.shape[:2]
        for p in plates:
            x1, y1, x2, y2 = expand_box((p.x1, p.y1, p.x2, p.y2), w, h, margin)
            if x2 - x1 < min_size or y2 - y1 < min_size:
                continue
            path = out / crop_name(index, p.text, with_text=not labels_csv)
            if not cv2.imwrite(
                str(path), img[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
            ):
                raise OSError(f"cannot write {path}")
            crops.append(Crop(path, p.text, rec.image, (x1, y1, x2, y2)))
            index += 1
    if labels_csv:
        with open(out / "labels.csv", "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["file", "text", "source", "x1", "y1", "x2", "y2"])
            for c in crops:
                wr.writerow([c.path.name, c.text or "", str(c.source), *c.box])
    return crops
