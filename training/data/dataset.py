"""Write an Ultralytics YOLO dataset from ImageRecords.

Layout: ``images/{train,val}``, ``labels/{train,val}``, ``data.yaml`` (names [vehicle, plate]).
The split is a pure function of the image file name (SHA-1), so re-running the conversion,
or converting a grown dataset, never moves an image between train and val. Images are
symlinked (or copied) byte for byte, never re-encoded: JPEG re-compression would shift the
pixel statistics the detector learns from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from training.data.records import DETECTOR_CLASSES, Box, ImageRecord

SPLITS = ("train", "val")


def split_of(name: str, val_fraction: float) -> str:
    """'val' for a stable ``val_fraction`` share of file names, else 'train'."""
    h = int(hashlib.sha1(name.encode("utf-8")).hexdigest()[:8], 16) / 0x1_0000_0000
    return "val" if h < val_fraction else "train"


def yolo_line(box: Box, cls: int, width: int, height: int) -> str:
    cx = (box.x1 + box.x2) / 2 / width
    cy = (box.y1 + box.y2) / 2 / height
    return f"{cls} {cx:.6f} {cy:.6f} {box.width / width:.6f} {box.height / height:.6f}"


def clean_boxes(record: ImageRecord, min_size: float = 1.0) -> tuple[list[Box], int]:
    """Boxes clipped to the image, minus those thinner than ``min_size`` px after clipping
    (labelImg writes zero-height boxes when a drag ends on the border). Returns (kept, dropped)."""
    kept = []
    for b in record.boxes:
        c = b.clipped(record.width, record.height)
        if c.width >= min_size and c.height >= min_size:
            kept.append(c)
    return kept, len(record.boxes) - len(kept)


@dataclass
class DatasetSummary:
    root: Path
    data_yaml: Path
    images: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    boxes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    dropped_boxes: int = 0  # degenerate after clipping
    skipped_labels: int = 0  # classes outside ``classes``
    renamed: int = 0  # file names that collided and got a path-hash suffix


def _unique_name(rec: ImageRecord, taken: set[str]) -> str:
    name = rec.image.name
    if name in taken:
        tag = hashlib.sha1(str(rec.image.resolve()).encode()).hexdigest()[:8]
        name = f"{rec.image.stem}_{tag}{rec.image.suffix}"
    return name


def write_yolo_dataset(
    records: Iterable[ImageRecord],
    out_dir: Path | str,
    *,
    val_fraction: float = 0.2,
    copy: bool = False,
    classes: Sequence[str] = DETECTOR_CLASSES,
    min_size: float = 1.0,
    overwrite: bool = False,
) -> DatasetSummary:
    """Write the dataset and return what went where.

    Existing files in ``out_dir``'s images/labels folders are an error unless ``overwrite``, so
    an old conversion is never silently mixed into a new one.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    out = Path(out_dir).resolve()
    for sub in ("images", "labels"):
        d = out / sub
        if d.exists() and any(d.rglob("*")):
            if not overwrite:
                raise FileExistsError(
                    f"{d} is not empty: choose another output folder, or --overwrite to replace it"
                )
            shutil.rmtree(d)
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    class_ids = {name: i for i, name in enumerate(classes)}
    summary = DatasetSummary(out, out / "data.yaml")
    taken: set[str] = set()
    for rec in records:
        if rec.width <= 0 or rec.height <= 0:
            raise ValueError(f"{rec.image}: record has no image size")
        name = _unique_name(rec, taken)
        summary.renamed += name != rec.image.name
        taken.add(name)
        split = split_of(name, val_fraction)
        boxes, dropped = clean_boxes(rec, min_size)
        summary.dropped_boxes += dropped
        lines = []
        for b in boxes:
            if b.label not in class_ids:
                summary.skipped_labels += 1
                continue
            lines.append(yolo_line(b, class_ids[b.label], rec.width, rec.height))
        dst = out / "images" / split / name
        src = rec.image.resolve()
        if copy:
            shutil.copyfile(src, dst)
        else:
            os.symlink(src, dst)
        # An empty label file marks a deliberate negative for Ultralytics.
        (out / "labels" / split / f"{Path(name).stem}.txt").write_text(
            "".join(line + "\n" for line in lines)
        )
        summary.images[split] += 1
        summary.boxes[split] += len(lines)
    data = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "nc": len(classes),
        "names": list(classes),
    }
    summary.data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return summary
