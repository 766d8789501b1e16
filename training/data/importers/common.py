"""Shared pieces of the annotation importers: label-name mapping, plate-text normalisation,
image lookup and size reading, and the error/problem types every importer reports with.

Importers never guess silently: a malformed label file raises :class:`LabelError` naming the
file, and loaders that walk many files turn that into an :class:`ImportProblem` and go on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edge.eval.labels import IMAGE_SUFFIXES, plate_text
from training.data.records import PLATE, VEHICLE

T = TypeVar("T")

log = logging.getLogger("training.data.importers")

IMAGE_EXTS = IMAGE_SUFFIXES  # one list of image types for labels everywhere

# Foreign class names seen in public plate/vehicle sets, normalised by _norm_label.
PLATE_NAMES = frozenset(
    {
        "plate",
        "plates",
        "lp",
        "plat",
        "plat nomor",
        "license plate",
        "licence plate",
        "license plates",
        "licence plates",
        "licenseplate",
        "licenceplate",
        "number plate",
        "numberplate",
        "car plate",
        "registration plate",
        "placa",
        "plaque",
    }
)
VEHICLE_NAMES = frozenset(
    {"vehicle", "vehicles", "car", "cars", "truck", "bus", "motorcycle", "motorbike", "van"}
)


class LabelError(ValueError):
    """A label file (or one entry of it) cannot be read; the message names the file."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.reason = message
        super().__init__(f"{path}: {message}")


class MissingImage(LabelError):
    """The label file is fine but the image it describes is not there."""


@dataclass(frozen=True)
class ImportProblem:
    path: Path
    message: str
    severity: str = "error"  # "error": the file was skipped; "warning": imported, part dropped

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def note(
    problems: list[ImportProblem] | None, path: Path, message: str, severity: str = "warning"
) -> None:
    """Record a problem in ``problems`` when the caller collects them, else log it."""
    if problems is not None:
        problems.append(ImportProblem(Path(path), message, severity))
    else:
        (log.error if severity == "error" else log.warning)("%s: %s", path, message)


def _norm_label(name: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", name).lower().split())


def map_label(name: str, label_map: Mapping[str, str | None] | None = None) -> str | None:
    """Foreign class name -> PLATE / VEHICLE, or None when it is neither.

    ``label_map`` (keys compared case/underscore-insensitively) overrides the built-in names;
    a value of None there drops that class explicitly.
    """
    key = _norm_label(name)
    if label_map:
        for k, v in label_map.items():
            if _norm_label(k) == key:
                return v
    if key in PLATE_NAMES:
        return PLATE
    if key in VEHICLE_NAMES:
        return VEHICLE
    return None


def normalise_text(text: str | None) -> str | None:
    """Plate text as platewatch stores it (edge.eval.labels.plate_text)."""
    return plate_text(text)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header; the pixels are not decoded when PIL is present."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except ImportError:
        pass
    except Exception as exc:  # PIL cannot parse it: say which file
        raise LabelError(path, f"cannot read image header ({exc})") from exc
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise LabelError(path, "cannot read image")
    return int(img.shape[1]), int(img.shape[0])


def _image_dirs(label_path: Path) -> list[Path]:
    """Folders an image for ``label_path`` may live in: beside it, and for Ultralytics-style
    trees (.../labels/<split>/x.txt) the matching .../images/<split>/ folder."""
    dirs = [label_path.parent]
    parts = list(label_path.parent.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "labels":
            dirs.append(Path(*parts[:i], "images", *parts[i + 1 :]))
            break
    return dirs


def find_image(
    label_path: Path, named: str | None = None, search_dirs: list[Path] | None = None
) -> Path | None:
    """The image a label file describes.

    ``named`` is the file name the label itself gives (VOC <filename>, CreateML "image"); it
    wins when it exists, because a stem can be shared by several images (``x.jpg`` and
    ``x.jpeg`` in car-plates-mixed are different pictures). Otherwise the first image with the
    label's stem, in IMAGE_EXTS order, is used.
    """
    dirs = search_dirs if search_dirs is not None else _image_dirs(label_path)
    if named:
        # Windows-made labels carry backslash paths; only the base name is meaningful here.
        base = named.replace("\\", "/").rsplit("/", 1)[-1]
        rel = Path(named.replace("\\", "/"))
        for d in dirs:
            for cand in (d / rel, d / base):
                if cand.is_file():
                    return cand
        stem = Path(base).stem
    else:
        stem = label_path.stem
    for d in dirs:
        for ext in IMAGE_EXTS:
            for e in (ext, ext.upper()):
                cand = d / f"{stem}{e}"
                if cand.is_file():
                    return cand
    return None


def parse_float(value: str | None, path: Path, field: str) -> float:
    try:
        if value is None:
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise LabelError(path, f"field {field!r} is not a number: {value!r}") from None


def load_each(
    paths: Path | str | list[Path] | list[str],
    pattern: str,
    parse: Callable[[Path], T | None],
    problems: list[ImportProblem] | None = None,
) -> list[T]:
    """The importers' one load loop: ``parse`` every label file of ``paths`` (a folder globbed
    recursively with ``pattern``, one file, or a list); a file that fails is recorded in
    ``problems`` (or logged) and the rest still load. ``parse`` returning None skips a file."""
    out: list[T] = []
    for p in as_path_list(paths, pattern):
        try:
            record = parse(p)
        except LabelError as exc:
            note(problems, exc.path, exc.reason, "error")
            continue
        if record is not None:
            out.append(record)
    return out


def as_path_list(paths: Path | str | list[Path] | list[str], pattern: str) -> list[Path]:
    """A folder (globbed recursively with ``pattern``), one file, or an explicit list."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir():
            return sorted(p.rglob(pattern))
        return [p]
    return [Path(p) for p in paths]
