"""Import a folder whose label files are in MIXED formats (car-plates-mixed: VOC .xml, YOLO
.txt and CreateML .json side by side), sniffing each file, pairing labels with images, and
saying what did not pair: images nobody labelled, and label files whose image is missing.

Pairing prefers the image a label names (VOC <filename>, CreateML "image", COCO file_name)
over a same-stem guess, because one stem can belong to two different pictures
(``plat-indonesia (1).jpg`` vs ``plat-indonesia (1).jpeg``).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from training.data.importers import coco, createml, filename, imglab, openalpr, voc, yolo
from training.data.importers.common import (
    ImportProblem,
    LabelError,
    MissingImage,
    is_image,
)
from training.data.records import ImageRecord

FORMATS: tuple[str, ...] = (
    "voc",
    "yolo",
    "createml",
    "coco",
    "imglab",
    "openalpr",
    "openalpr-csv",
    "filename",
)
LABEL_EXTS = frozenset({".xml", ".json", ".txt", ".csv"})
# Files that live in label folders but label nothing.
_NOT_LABELS = frozenset(
    {"classes.txt", "readme.txt", "license.txt", "licence.txt", "requirements.txt", "notes.txt"}
)


@dataclass
class FolderImport:
    root: Path
    records: list[ImageRecord] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    unlabelled_images: list[Path] = field(default_factory=list)
    orphan_labels: list[Path] = field(default_factory=list)  # label files without an image
    label_files: Counter[str] = field(default_factory=Counter)  # parsed files per format

    def by_format(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.records:
            d = out.setdefault(r.source_format, {"images": 0, "boxes": 0})
            d["images"] += 1
            d["boxes"] += len(r.boxes)
        return out

    def summary(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "images": len(self.records) + len(self.unlabelled_images),
            "labelled_images": len(self.records),
            "boxes": sum(len(r.boxes) for r in self.records),
            "plates": sum(len(r.plates) for r in self.records),
            "vehicles": sum(len(r.vehicles) for r in self.records),
            "by_format": self.by_format(),
            "unlabelled_images": len(self.unlabelled_images),
            "degenerate_boxes": sum(
                1
                for r in self.records
                for b in r.boxes
                if (c := b.clipped(r.width, r.height)).width < 1 or c.height < 1
            ),
            "orphan_labels": len(self.orphan_labels),
            "errors": sum(p.severity == "error" for p in self.problems),
            "warnings": sum(p.severity == "warning" for p in self.problems),
        }


def _wanted(formats: str | Iterable[str]) -> frozenset[str]:
    if isinstance(formats, str):
        formats = FORMATS if formats == "auto" else [f.strip() for f in formats.split(",")]
    chosen = frozenset(formats)
    unknown = chosen - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown format(s) {sorted(unknown)}; known: {', '.join(FORMATS)}")
    return chosen


def sniff(path: Path) -> tuple[str | None, object]:
    """(format, parsed payload) of a label file; format None for files that are not labels.
    Raises LabelError for files that claim a label extension but cannot be parsed."""
    ext = path.suffix.lower()
    if ext == ".xml":
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise LabelError(path, f"not valid XML ({exc})") from None
        if root.tag == "annotation":
            return "voc", root
        if imglab.is_imglab(root):
            return "imglab", root
        raise LabelError(path, f"XML root <{root.tag}> is neither VOC nor imglab")
    if ext == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LabelError(path, f"not valid JSON ({exc})") from None
        if createml.is_createml(data):
            return "createml", data
        if coco.is_coco(data):
            return "coco", data
        raise LabelError(path, "JSON is neither CreateML (list) nor COCO (images+annotations)")
    if ext in (".txt", ".csv"):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise LabelError(path, f"cannot read ({exc})") from None
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        if ext == ".csv":
            return ("openalpr-csv", None) if openalpr.is_crops_csv(first) else (None, None)
        return ("openalpr", None) if openalpr.is_openalpr_tsv(first) else ("yolo", None)
    return None, None


def scan_folder(
    root: Path | str,
    formats: str | Iterable[str] = "auto",
    *,
    class_map: yolo.ClassMap = None,
    label_map: Mapping[str, str | None] | None = None,
) -> FolderImport:
    """Walk ``root`` recursively and import every label file of the wanted formats."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    wanted = _wanted(formats)
    result = FolderImport(root)
    images: list[Path] = []
    labels: list[Path] = []
    for d, dirnames, files in os.walk(root):
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        for name in sorted(files):
            p = Path(d) / name
            if is_image(p):
                images.append(p)
            elif p.suffix.lower() in LABEL_EXTS and name.lower() not in _NOT_LABELS:
                labels.append(p)

    claimed: dict[Path, Path] = {}  # image -> label file that claimed it
    label_dirs: set[Path] = set()
    resolvers: dict[Path, yolo.Resolver] = {}
    for lbl in labels:
        if _import_label(lbl, wanted, result, claimed, resolvers, class_map, label_map):
            label_dirs.add(lbl.parent)

    unlabelled = [p for p in images if p.resolve() not in claimed]
    if "filename" in wanted:
        unlabelled = _filename_crops(
            unlabelled, label_dirs, explicit=formats != "auto", result=result
        )
    result.unlabelled_images = unlabelled
    return result


def _import_label(
    lbl: Path,
    wanted: frozenset[str],
    result: FolderImport,
    claimed: dict[Path, Path],
    resolvers: dict[Path, yolo.Resolver],
    class_map: yolo.ClassMap,
    label_map: Mapping[str, str | None] | None,
) -> bool:
    """Sniff and parse one label file into ``result``; True when it was a wanted label file
    (parsed, orphaned or malformed), False when it is not a label of a wanted format."""
    probs = result.problems
    try:
        fmt, payload = sniff(lbl)
        if fmt is None or fmt not in wanted:
            return False
        if fmt == "voc":
            recs = [voc.parse_voc(lbl, label_map=label_map, problems=probs)]
        elif fmt == "yolo":
            if lbl.parent not in resolvers:
                resolvers[lbl.parent] = yolo.make_resolver(class_map, lbl, label_map)
            recs = [yolo.parse_yolo(lbl, resolver=resolvers[lbl.parent], problems=probs)]
        elif fmt == "createml":
            recs = createml.parse_createml(lbl, data=payload, label_map=label_map, problems=probs)
        elif fmt == "coco":
            recs = coco.load_coco(lbl, data=payload, label_map=label_map, problems=probs)
        elif fmt == "imglab":
            assert isinstance(payload, ET.Element)
            recs = imglab.load_imglab(lbl, root=payload, label_map=label_map, problems=probs)
        elif fmt == "openalpr":
            recs = [openalpr.parse_openalpr_tsv(lbl)]
        else:  # openalpr-csv
            recs = openalpr.load_openalpr_crops_csv(lbl, problems=probs)
    except MissingImage:
        result.orphan_labels.append(lbl)
        return True
    except LabelError as exc:
        probs.append(ImportProblem(exc.path, exc.reason, "error"))
        return True
    result.label_files[fmt] += 1
    for rec in recs:
        key = rec.image.resolve()
        if key in claimed:
            probs.append(
                ImportProblem(
                    lbl,
                    f"{rec.image.name} is already labelled by {claimed[key].name}; "
                    "this label is ignored",
                    "warning",
                )
            )
            continue
        claimed[key] = lbl
        result.records.append(rec)
    return True


def scan_path(
    path: Path | str,
    formats: str | Iterable[str] = "auto",
    *,
    class_map: yolo.ClassMap = None,
    label_map: Mapping[str, str | None] | None = None,
) -> FolderImport:
    """A folder (see :func:`scan_folder`) or one label file (COCO/imglab/CreateML/CSV/...)."""
    path = Path(path)
    if path.is_dir():
        return scan_folder(path, formats, class_map=class_map, label_map=label_map)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    result = FolderImport(path)
    if is_image(path) and "filename" in _wanted(formats):
        try:
            result.records.append(filename.parse_filename_crop(path))
            result.label_files["filename"] += 1
        except LabelError as exc:
            result.problems.append(ImportProblem(exc.path, exc.reason, "error"))
        return result
    if not _import_label(path, _wanted(formats), result, {}, {}, class_map, label_map):
        raise ValueError(f"{path} is not a label file of format(s) {formats}")
    return result


def _filename_crops(
    unlabelled: list[Path], label_dirs: set[Path], *, explicit: bool, result: FolderImport
) -> list[Path]:
    """Turn unlabelled ``NNNNN_TEXT`` crops into records. In auto mode only folders with no
    label files whose every image follows the pattern qualify, so a stray ``0001_2.jpg`` in a
    detection set is not mistaken for a plate crop."""
    by_dir: dict[Path, list[Path]] = {}
    for p in unlabelled:
        by_dir.setdefault(p.parent, []).append(p)
    left: list[Path] = []
    for d, paths in by_dir.items():
        named = [filename.text_from_name(p) is not None for p in paths]
        if explicit or (d not in label_dirs and all(named)):
            for p, ok in zip(paths, named, strict=True):
                if not ok:
                    left.append(p)
                    continue
                try:
                    result.records.append(filename.parse_filename_crop(p))
                    result.label_files["filename"] += 1
                except LabelError as exc:
                    result.problems.append(ImportProblem(exc.path, exc.reason, "error"))
        else:
            left.extend(paths)
    return sorted(left)


def load_folder(
    path: Path | str,
    formats: str | Iterable[str] = "auto",
    *,
    class_map: yolo.ClassMap = None,
    label_map: Mapping[str, str | None] | None = None,
) -> list[ImageRecord]:
    """Records of every labelled image under ``path``; problems, unlabelled images and orphan
    labels are logged (use :func:`scan_folder` to get them as data)."""
    result = scan_folder(path, formats, class_map=class_map, label_map=label_map)
    from training.data.importers.common import log

    for p in result.problems:
        (log.error if p.severity == "error" else log.warning)("%s", p)
    if result.unlabelled_images:
        log.warning(
            "%d image(s) without labels under %s, e.g. %s",
            len(result.unlabelled_images),
            path,
            result.unlabelled_images[0].name,
        )
    if result.orphan_labels:
        log.warning(
            "%d label file(s) without an image under %s, e.g. %s",
            len(result.orphan_labels),
            path,
            result.orphan_labels[0].name,
        )
    return result.records
