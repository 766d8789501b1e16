"""The one internal annotation record every importer produces and every exporter consumes.

Boxes are absolute pixel corners (x1, y1, x2, y2) in the image's own resolution, so that
converters never have to guess whether a format was normalised, centre-based or 1-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Canonical class names of platewatch's detector. Importers map foreign labels onto these.
VEHICLE = "vehicle"
PLATE = "plate"
DETECTOR_CLASSES: tuple[str, ...] = (VEHICLE, PLATE)


@dataclass(frozen=True)
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    text: str | None = None  # plate text, upper-case, no separators; None when unknown

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            self.label,
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
            self.text,
        )


@dataclass
class ImageRecord:
    """One labelled image. width/height are the real pixel size (read from the file if the
    label format does not carry it)."""

    image: Path
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    source_format: str = ""  # "voc", "yolo", "coco", "createml", "imglab", "openalpr", "filename"
    region: str | None = None  # e.g. "us", "eu", "br" when the dataset says so

    @property
    def plates(self) -> list[Box]:
        return [b for b in self.boxes if b.label == PLATE]

    @property
    def vehicles(self) -> list[Box]:
        return [b for b in self.boxes if b.label == VEHICLE]
