"""Apple CreateML JSON: a list of ``{"image": name, "annotations": [{"label": ...,
"coordinates": {"x", "y", "width", "height"}}]}`` where x, y are the box CENTRE in pixels.
One file may describe several images (a whole-set export) or one (per-image export)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from training.data.importers.common import (
    ImportProblem,
    LabelError,
    MissingImage,
    as_path_list,
    find_image,
    image_size,
    map_label,
    normalise_text,
    note,
    parse_float,
)
from training.data.records import Box, ImageRecord

FORMAT = "createml"


def is_createml(data: object) -> bool:
    return isinstance(data, list) and all(isinstance(e, dict) and "annotations" in e for e in data)


def parse_createml(
    json_path: Path,
    *,
    data: object = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """One CreateML file -> records. Entries whose image is missing raise MissingImage when the
    file has one entry; in multi-entry files they are reported and skipped."""
    json_path = Path(json_path)
    if data is None:
        try:
            data = json.loads(json_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LabelError(json_path, f"not valid JSON ({exc})") from None
    if not is_createml(data):
        raise LabelError(json_path, "not a CreateML list of {image, annotations}")
    assert isinstance(data, list)
    records = []
    for i, entry in enumerate(data):
        where = f"entry {i}"
        name = entry.get("image")
        # Per-image exports may name a file that was renamed later: fall back to the stem.
        image = find_image(json_path, name) or (find_image(json_path) if len(data) == 1 else None)
        if image is None:
            if len(data) == 1:
                raise MissingImage(json_path, f"image {name!r} not found")
            note(problems, json_path, f"{where}: image {name!r} not found; skipped", "error")
            continue
        width, height = image_size(image)
        boxes = []
        for j, ann in enumerate(entry.get("annotations") or []):
            label = map_label(str(ann.get("label", "")), label_map)
            if label is None:
                note(
                    problems,
                    json_path,
                    f"{where} annotation {j}: class {ann.get('label')!r} not mapped; skipped",
                )
                continue
            c = ann.get("coordinates")
            if not isinstance(c, dict):
                raise LabelError(json_path, f"{where} annotation {j}: no 'coordinates'")
            cx, cy, w, h = (
                parse_float(c.get(k), json_path, f"{where} annotation {j} {k}")
                for k in ("x", "y", "width", "height")
            )
            if w < 0 or h < 0:
                raise LabelError(json_path, f"{where} annotation {j}: negative width/height")
            boxes.append(
                Box(
                    label,
                    cx - w / 2,
                    cy - h / 2,
                    cx + w / 2,
                    cy + h / 2,
                    normalise_text(ann.get("text")),
                )
            )
        records.append(ImageRecord(image, width, height, boxes, FORMAT))
    return records


def load_createml(
    paths: Path | str | list[Path],
    *,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    records = []
    for p in as_path_list(paths, "*.json"):
        try:
            records.extend(parse_createml(p, label_map=label_map, problems=problems))
        except LabelError as exc:
            note(problems, exc.path, exc.reason, "error")
    return records
