"""Typed messages passed between the inference layer, the ALPR pipeline and the commands.

Boxes are always xyxy in the pixels of the full-resolution frame the caller passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BoxTuple = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detections:
    """One frame's detector output after decoding, NMS and mapping back to frame pixels."""

    boxes: np.ndarray  # (K, 4) float32 xyxy, frame pixels
    scores: np.ndarray  # (K,) float32
    class_ids: np.ndarray  # (K,) int64, index into ``classes``
    classes: tuple[str, ...]  # the model's class names

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.classes[int(c)] for c in self.class_ids]

    def of_class(self, name: str) -> Detections:
        """Only the detections of class ``name`` (empty if the model has no such class)."""
        if name not in self.classes:
            mask = np.zeros(len(self), dtype=bool)
        else:
            mask = self.class_ids == self.classes.index(name)
        return Detections(self.boxes[mask], self.scores[mask], self.class_ids[mask], self.classes)

    @staticmethod
    def empty(classes: tuple[str, ...]) -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int64),
            classes,
        )


@dataclass(frozen=True)
class PlateRead:
    """The reader's answer for one crop."""

    text: str
    confidence: float  # the weakest character's confidence (see edge.detect.ctc.Decoded)
    char_confidences: tuple[float, ...] = ()


@dataclass(frozen=True)
class PlateResult:
    """One plate found in a frame: where, what it says, and the vehicle it belongs to."""

    box: BoxTuple
    detection_score: float
    read: PlateRead
    vehicle_box: BoxTuple | None = None
    crop_box: tuple[int, int, int, int] | None = None  # the (expanded) region that was read

    @property
    def text(self) -> str:
        return self.read.text

    @property
    def confidence(self) -> float:
        return self.read.confidence

    def to_dict(self) -> dict[str, object]:
        """The ``platewatch image`` JSON object for this plate (rounded for humans)."""
        return {
            "text": self.read.text,
            "confidence": round(float(self.read.confidence), 3),
            "box": [round(float(v), 1) for v in self.box],
            "char_confidences": [round(float(c), 3) for c in self.read.char_confidences],
            "vehicle_box": (
                None if self.vehicle_box is None else [round(float(v), 1) for v in self.vehicle_box]
            ),
        }
