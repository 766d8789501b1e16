"""Plate crops whose text is the file name: ``NNNNN_TEXT.jpg`` (br-plate-crops, and what
training/data/crops.py writes). Each crop becomes a record whose single plate box is the whole
image, so reader-training code treats crops and full scenes alike."""

from __future__ import annotations

import re
from pathlib import Path

from training.data.importers.common import (
    ImportProblem,
    LabelError,
    image_size,
    is_image,
    normalise_text,
    note,
)
from training.data.records import PLATE, Box, ImageRecord

FORMAT = "filename"
_NAME = re.compile(r"^\d+_([A-Za-z0-9]+)$")


def text_from_name(path: Path) -> str | None:
    """``00012_ABC1234.jpg`` -> ``ABC1234``; None when the name does not follow the pattern."""
    m = _NAME.match(Path(path).stem)
    return normalise_text(m.group(1)) if m else None


def parse_filename_crop(path: Path, *, region: str | None = None) -> ImageRecord:
    path = Path(path)
    text = text_from_name(path)
    if text is None:
        raise LabelError(path, "file name is not NNNNN_TEXT")
    w, h = image_size(path)
    return ImageRecord(path, w, h, [Box(PLATE, 0.0, 0.0, float(w), float(h), text)], FORMAT, region)


def load_filename_crops(
    folder: Path | str, *, region: str | None = None, problems: list[ImportProblem] | None = None
) -> list[ImageRecord]:
    """All images directly in ``folder``; names that do not carry text are reported."""
    records = []
    for p in sorted(Path(folder).iterdir()):
        if not (p.is_file() and is_image(p)):
            continue
        try:
            records.append(parse_filename_crop(p, region=region))
        except LabelError as exc:
            note(problems, exc.path, exc.reason, "error")
    return records
