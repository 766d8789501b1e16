"""The two openalpr/benchmarks label styles.

* End-to-end set: one ``NAME.txt`` per image holding ``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>TEXT``
  (top-left + size in pixels); the region is the folder name (us / eu / br).
* US plate crops: ``groundtruth.csv`` rows ``file,state,text`` (no header), images beside the
  CSV or in its ``images/`` folder; each record is the whole crop as one plate box.
"""

from __future__ import annotations

import csv
from pathlib import Path

from edge.eval.labels import is_openalpr_line, parse_openalpr_line
from training.data.importers.common import (
    ImportProblem,
    LabelError,
    MissingImage,
    find_image,
    image_size,
    is_image,
    load_each,
    normalise_text,
    note,
)
from training.data.records import PLATE, Box, ImageRecord

FORMAT = "openalpr"
CROPS_FORMAT = "openalpr-csv"
REGIONS = frozenset({"us", "eu", "br"})


def region_of(path: Path) -> str | None:
    for part in reversed(path.parent.parts):
        if part.lower() in REGIONS:
            return part.lower()
    return None


def is_openalpr_tsv(first_line: str) -> bool:
    return is_openalpr_line(first_line)


def parse_openalpr_tsv(txt_path: Path, *, region: str | None = None) -> ImageRecord:
    txt_path = Path(txt_path)
    try:
        lines = [ln for ln in txt_path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(txt_path, f"cannot read ({exc})") from None
    if not lines:
        raise LabelError(txt_path, "empty openalpr label")
    image: Path | None = None
    boxes = []
    for n, line in enumerate(lines, 1):
        try:
            label = parse_openalpr_line(line)
        except ValueError as exc:
            raise LabelError(txt_path, f"line {n}: {exc}") from None
        if image is None:
            image = find_image(txt_path, label.file)
            if image is None:
                raise MissingImage(txt_path, f"image {label.file!r} not found")
        boxes.append(Box(PLATE, *label.box, label.text))
    assert image is not None
    width, height = image_size(image)
    return ImageRecord(image, width, height, boxes, FORMAT, region or region_of(txt_path))


def load_openalpr(
    paths: Path | str | list[Path],
    *,
    region: str | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """Every ``*.txt`` label under a benchmark folder such as openalpr-dev/ or openalpr-dev/us."""
    return load_each(paths, "*.txt", lambda p: parse_openalpr_tsv(p, region=region), problems)


def is_crops_csv(first_line: str) -> bool:
    f = first_line.strip().split(",")
    return len(f) == 3 and is_image(Path(f[0].strip()))


def load_openalpr_crops_csv(
    csv_path: Path | str,
    *,
    image_dir: Path | None = None,
    region: str = "us",
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """``groundtruth.csv`` -> one whole-image plate record per row. Rows whose image is absent
    or whose fields are wrong are reported and skipped."""
    csv_path = Path(csv_path)
    dirs = [Path(image_dir)] if image_dir else [csv_path.parent / "images", csv_path.parent]
    records = []
    try:
        rows = list(csv.reader(csv_path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(csv_path, f"cannot read ({exc})") from None
    for n, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            note(problems, csv_path, f"row {n}: expected 'file,state,text', got {row!r}", "error")
            continue
        name, _state, text = (c.strip() for c in row)
        if n == 1 and not is_image(Path(name)):  # tolerate a header row
            continue
        image = find_image(csv_path, name, search_dirs=dirs)
        if image is None:
            note(problems, csv_path, f"row {n}: image {name!r} not found; skipped", "error")
            continue
        try:
            w, h = image_size(image)
        except LabelError as exc:
            note(problems, exc.path, exc.reason, "error")
            continue
        box = Box(PLATE, 0.0, 0.0, float(w), float(h), normalise_text(text))
        records.append(ImageRecord(image, w, h, [box], CROPS_FORMAT, region))
    return records
