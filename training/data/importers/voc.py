"""Pascal VOC XML (labelImg, CVAT export): one ``<annotation>`` per image, absolute pixel
corners in ``<bndbox>``. VOC coordinates are written 1-based by some tools and 0-based by
others; the difference (one pixel) is below labelling noise, so they are taken as they are."""

from __future__ import annotations

import xml.etree.ElementTree as ET
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

FORMAT = "voc"


def parse_voc(
    xml_path: Path,
    *,
    image: Path | None = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> ImageRecord:
    """One VOC file -> record. Raises LabelError (MissingImage when the picture is absent)."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise LabelError(xml_path, f"not valid XML ({exc})") from None
    if root.tag != "annotation":
        raise LabelError(xml_path, f"root element is <{root.tag}>, VOC needs <annotation>")
    if image is None:
        image = find_image(xml_path, root.findtext("filename"))
        if image is None:
            raise MissingImage(xml_path, f"image {root.findtext('filename')!r} not found")
    # The real file decides the size: <size> is often 0 or stale after a resize.
    width, height = image_size(image)
    declared = (root.findtext("size/width"), root.findtext("size/height"))
    if all(declared) and declared != ("0", "0"):
        dw, dh = (int(parse_float(v, xml_path, "size")) for v in declared)
        if (dw, dh) != (width, height):
            note(
                problems,
                xml_path,
                f"<size> says {dw}x{dh} but {image.name} is {width}x{height}; boxes kept as is",
            )
    boxes: list[Box] = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        label = map_label(name, label_map)
        if label is None:
            note(
                problems,
                xml_path,
                f"object {i}: class {name!r} is neither plate nor vehicle; skipped",
            )
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise LabelError(xml_path, f"object {i} ({name!r}) has no <bndbox>")
        x1, y1, x2, y2 = (
            parse_float(bb.findtext(k), xml_path, f"object {i} {k}")
            for k in ("xmin", "ymin", "xmax", "ymax")
        )
        if x2 < x1 or y2 < y1:
            raise LabelError(xml_path, f"object {i}: xmax/ymax below xmin/ymin")
        # Some VOC tools put plate text in an attribute or a <text> child.
        text = normalise_text(obj.findtext("text") or obj.findtext("attributes/text"))
        boxes.append(Box(label, x1, y1, x2, y2, text))
    return ImageRecord(image, width, height, boxes, FORMAT)


def load_voc(
    paths: Path | str | list[Path],
    *,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """Every VOC file under a folder (or the given files); bad files are reported and skipped."""
    records = []
    for p in as_path_list(paths, "*.xml"):
        try:
            records.append(parse_voc(p, label_map=label_map, problems=problems))
        except LabelError as exc:
            note(problems, exc.path, exc.reason, "error")
    return records
