"""dlib imglab XML: ``<dataset><images><image file="..."><box top left width height>
<label>plate</label></box>...``. imglab lets boxes go unlabelled (single-class sets), so
``default_label`` says what such a box is; ``ignore="1"`` boxes are dropped as imglab does."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from training.data.importers.common import (
    ImportProblem,
    LabelError,
    find_image,
    image_size,
    map_label,
    normalise_text,
    note,
    parse_float,
)
from training.data.records import Box, ImageRecord

FORMAT = "imglab"


def is_imglab(root: ET.Element) -> bool:
    return root.tag == "dataset" or (root.find("images") is not None and root.tag != "annotation")


def load_imglab(
    xml_path: Path | str,
    *,
    image_dir: Path | None = None,
    default_label: str | None = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
    root: ET.Element | None = None,
) -> list[ImageRecord]:
    xml_path = Path(xml_path)
    if root is None:
        try:
            root = ET.parse(xml_path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise LabelError(xml_path, f"not valid XML ({exc})") from None
    if not is_imglab(root):
        raise LabelError(xml_path, f"root <{root.tag}> is not an imglab <dataset>")
    dirs = [Path(image_dir)] if image_dir else [xml_path.parent]
    records = []
    for k, im in enumerate(root.iter("image")):
        name = im.get("file")
        if not name:
            raise LabelError(xml_path, f"image {k} has no file attribute")
        path = find_image(xml_path, name, search_dirs=dirs)
        if path is None:
            note(problems, xml_path, f"image {name!r} not found; skipped", "error")
            continue
        width, height = image_size(path)
        boxes = []
        for j, b in enumerate(im.iter("box")):
            if b.get("ignore") == "1":
                continue
            raw = b.findtext("label")
            label = map_label(raw, label_map) if raw else default_label
            if label is None:
                note(problems, xml_path, f"{name} box {j}: label {raw!r} not mapped; skipped")
                continue
            top, left, w, h = (
                parse_float(b.get(a), xml_path, f"{name} box {j} {a}")
                for a in ("top", "left", "width", "height")
            )
            # imglab sizes are inclusive pixel counts; the corner arithmetic is the same.
            boxes.append(
                Box(label, left, top, left + w, top + h, normalise_text(b.findtext("text")))
            )
        records.append(ImageRecord(path, width, height, boxes, FORMAT))
    return records
