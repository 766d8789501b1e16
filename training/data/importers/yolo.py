"""YOLO / Ultralytics txt labels: one ``class cx cy w h`` line per box, normalised to the
image size (which the format does not carry, so the image header is read).

Class ids mean nothing without the set's name list. ``class_map`` gives it; without one a
``classes.txt`` beside the labels is used, and with neither every id is a plate (single-class
plate sets). A ``classes.txt`` with a single name also maps *every* id to that name, because
single-class sets are often exported with a stale id (car-plates-mixed writes id 15 while its
classes.txt lists one class).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from edge.eval.labels import parse_yolo_line
from training.data.importers.common import (
    ImportProblem,
    LabelError,
    MissingImage,
    find_image,
    image_size,
    load_each,
    map_label,
    note,
)
from training.data.records import PLATE, Box, ImageRecord

FORMAT = "yolo"

ClassMap = Mapping[int, str | None] | str | None
Resolver = Callable[[int], str | None]


def read_class_names(path: Path) -> list[str]:
    """classes.txt (one name a line) or a data.yaml ``names`` list/dict."""
    if path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(path.read_text()) or {}
        names = data.get("names")
        if isinstance(names, dict):
            return [str(names[k]) for k in sorted(names, key=int)]
        if isinstance(names, list):
            return [str(n) for n in names]
        raise LabelError(path, "no 'names' list or dict")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def find_classes_file(label_path: Path, levels: int = 2) -> Path | None:
    d = label_path.parent
    for _ in range(levels + 1):
        cand = d / "classes.txt"
        if cand.is_file():
            return cand
        d = d.parent
    return None


def resolver_from_names(
    names: list[str], label_map: Mapping[str, str | None] | None = None
) -> Resolver:
    mapped = [map_label(n, label_map) for n in names]
    if len(mapped) == 1:
        only = mapped[0]
        return lambda _cid: only
    return lambda cid: mapped[cid] if 0 <= cid < len(mapped) else None


def make_resolver(
    class_map: ClassMap,
    label_path: Path | None = None,
    label_map: Mapping[str, str | None] | None = None,
) -> Resolver:
    if isinstance(class_map, str):
        return lambda _cid: class_map
    if class_map is not None:
        fixed = dict(class_map)
        return lambda cid: fixed.get(cid)
    classes = find_classes_file(label_path) if label_path is not None else None
    if classes is not None:
        return resolver_from_names(read_class_names(classes), label_map)
    return lambda _cid: PLATE


def parse_yolo(
    txt_path: Path,
    *,
    image: Path | None = None,
    class_map: ClassMap = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
    resolver: Resolver | None = None,
) -> ImageRecord:
    """One label file -> record. An empty file is a valid negative (no boxes)."""
    txt_path = Path(txt_path)
    if image is None:
        image = find_image(txt_path)
        if image is None:
            raise MissingImage(txt_path, "no image with this stem")
    if resolver is None:
        resolver = make_resolver(class_map, txt_path, label_map)
    try:
        lines = txt_path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(txt_path, f"cannot read ({exc})") from None
    width, height = image_size(image)
    boxes: list[Box] = []
    for n, line in enumerate(lines, 1):
        try:
            parsed = parse_yolo_line(line)
        except ValueError as exc:
            raise LabelError(txt_path, f"line {n}: {exc}") from None
        if parsed is None:
            continue
        label = resolver(parsed.class_id)
        if label is None:
            note(problems, txt_path, f"line {n}: class id {parsed.class_id} is not mapped; skipped")
            continue
        boxes.append(Box(label, *parsed.in_pixels(width, height)))
    return ImageRecord(image, width, height, boxes, FORMAT)


def load_yolo(
    labels: Path | str | list[Path],
    *,
    images_dir: Path | None = None,
    class_map: ClassMap = None,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """Every label file under ``labels`` (a folder, or files). Images are looked up beside each
    label, in the matching ``images/`` folder of an Ultralytics tree, or in ``images_dir``."""

    def parse(p: Path) -> ImageRecord | None:
        if p.name == "classes.txt":
            return None
        image = None
        if images_dir is not None:
            image = find_image(p, search_dirs=[Path(images_dir)])
            if image is None:
                raise MissingImage(p, f"no image with this stem in {images_dir}")
        return parse_yolo(
            p, image=image, class_map=class_map, label_map=label_map, problems=problems
        )

    return load_each(labels, "*.txt", parse, problems)


def load_ultralytics(
    data_yaml: Path | str,
    splits: tuple[str, ...] = ("train", "val"),
    *,
    label_map: Mapping[str, str | None] | None = None,
    problems: list[ImportProblem] | None = None,
) -> list[ImageRecord]:
    """An Ultralytics dataset (data.yaml with ``path``/``train``/``val`` folders and ``names``)."""
    data_yaml = Path(data_yaml)
    data = yaml.safe_load(data_yaml.read_text()) or {}
    root = Path(data.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = data_yaml.parent / root
    names = read_class_names(data_yaml)
    resolver = resolver_from_names(names, label_map)
    records = []
    for split in splits:
        rel = data.get(split)
        if rel is None:
            continue
        img_dir = root / rel
        parts = list(img_dir.parts)
        if "images" not in parts:
            raise LabelError(data_yaml, f"{split}: {img_dir} is not an images/ folder")
        i = len(parts) - 1 - parts[::-1].index("images")
        lbl_dir = Path(*parts[:i], "labels", *parts[i + 1 :])
        for lbl in sorted(lbl_dir.glob("*.txt")):
            try:
                image = find_image(lbl, search_dirs=[img_dir])
                if image is None:
                    raise MissingImage(lbl, f"no image with this stem in {img_dir}")
                records.append(parse_yolo(lbl, image=image, resolver=resolver, problems=problems))
            except LabelError as exc:
                note(problems, exc.path, exc.reason, "error")
    return records
