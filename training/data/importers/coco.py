"""COCO instances JSON: ``images`` (id, file_name, width, height), ``annotations`` (image_id,
category_id, bbox = [x, y, w, h] top-left in pixels) and ``categories`` (id, name). Classes are
matched by category *name*, so any COCO-style export (Roboflow, CVAT, FiftyOne) maps onto
plate/vehicle without knowing its ids. Images with no annotation are kept as negatives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from training.data.importers.common import (
    ImportProblem,
    LabelError,
    find_image,
    map_label,
    normalise_text,
    note,
    parse_float,
)
from training.data.records import Box, ImageRecord

FORMAT = "coco"


def is_coco(data: object) -> bool:
    return isinstance(data, dict) and "images" in data and "annotations" in data


def load_coco(
    json_path: Path | str,
    *,
    image_dir: Path | None = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
    data: object = None,
) -> list[ImageRecord]:
    """All images of one instances file. Image paths resolve against ``image_dir`` (default: the
    JSON's folder, then its ``images/`` subfolder)."""
    json_path = Path(json_path)
    if data is None:
        try:
            data = json.loads(json_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LabelError(json_path, f"not valid JSON ({exc})") from None
    if not is_coco(data):
        raise LabelError(json_path, "not a COCO instances file (needs 'images', 'annotations')")
    assert isinstance(data, dict)
    dirs = [Path(image_dir)] if image_dir else [json_path.parent, json_path.parent / "images"]
    cats: dict[int, str | None] = {}
    for c in data.get("categories") or []:
        try:
            cats[int(c["id"])] = map_label(str(c["name"]), label_map)
        except (KeyError, TypeError, ValueError):
            raise LabelError(json_path, f"bad category {c!r}") from None
    for cid, mapped in cats.items():
        if mapped is None:
            name = next(c["name"] for c in data["categories"] if int(c["id"]) == cid)
            note(problems, json_path, f"category {name!r} is neither plate nor vehicle; skipped")
    boxes: dict[int, list[Box]] = {}
    for k, ann in enumerate(data["annotations"]):
        try:
            iid, cid, bbox = int(ann["image_id"]), int(ann["category_id"]), ann["bbox"]
        except (KeyError, TypeError, ValueError):
            raise LabelError(
                json_path, f"annotation {k}: needs image_id, category_id, bbox"
            ) from None
        if cid not in cats:
            raise LabelError(json_path, f"annotation {k}: unknown category_id {cid}")
        label = cats[cid]
        if label is None:
            continue
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise LabelError(json_path, f"annotation {k}: bbox must be [x, y, w, h]")
        x, y, w, h = (parse_float(v, json_path, f"annotation {k} bbox") for v in bbox)
        text = normalise_text(ann.get("text") or (ann.get("attributes") or {}).get("text"))
        boxes.setdefault(iid, []).append(Box(label, x, y, x + w, y + h, text))
    records = []
    for k, im in enumerate(data["images"]):
        try:
            iid, name = int(im["id"]), str(im["file_name"])
            width, height = int(im["width"]), int(im["height"])
        except (KeyError, TypeError, ValueError):
            raise LabelError(json_path, f"image {k}: needs id, file_name, width, height") from None
        path = find_image(json_path, name, search_dirs=dirs)
        if path is None:
            note(problems, json_path, f"image {name!r} not found; skipped", "error")
            continue
        records.append(ImageRecord(path, width, height, boxes.get(iid, []), FORMAT))
    return records
