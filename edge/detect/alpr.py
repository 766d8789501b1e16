"""Single-frame ALPR: detect vehicles and plates, read every plate, tie plates to vehicles.

Plate crops are cut from the FULL-resolution frame (the detector only saw a downscaled
letterbox; reading from that would throw away the pixels the characters need), and all crops
of a frame go through the reader in one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from edge.detect.models import Detector, Reader
from edge.detect.plate_input import expand_box
from edge.types import Detections, PlateRead, PlateResult
from edge.vote.formats import PlateFormats

PLATE = "plate"
VEHICLE = "vehicle"


def associate_vehicles(
    plate_boxes: np.ndarray, vehicle_boxes: np.ndarray, min_overlap: float = 0.6
) -> list[int | None]:
    """For each plate, the index of the vehicle box covering most of it, or None.

    Overlap is intersection / plate area (not IoU: a plate is tiny next to its vehicle). A
    plate must be > ``min_overlap`` inside a vehicle; among several (a car behind a truck),
    the largest overlap wins, then the smaller vehicle (the nearer fit).
    """
    plates = np.asarray(plate_boxes, dtype=np.float32).reshape(-1, 4)
    vehicles = np.asarray(vehicle_boxes, dtype=np.float32).reshape(-1, 4)
    if vehicles.shape[0] == 0:
        return [None] * plates.shape[0]
    ix1 = np.maximum(plates[:, None, 0], vehicles[None, :, 0])
    iy1 = np.maximum(plates[:, None, 1], vehicles[None, :, 1])
    ix2 = np.minimum(plates[:, None, 2], vehicles[None, :, 2])
    iy2 = np.minimum(plates[:, None, 3], vehicles[None, :, 3])
    inter = (ix2 - ix1).clip(0) * (iy2 - iy1).clip(0)
    plate_area = ((plates[:, 2] - plates[:, 0]) * (plates[:, 3] - plates[:, 1])).clip(1e-9)
    overlap = inter / plate_area[:, None]
    vehicle_area = (vehicles[:, 2] - vehicles[:, 0]) * (vehicles[:, 3] - vehicles[:, 1])
    out: list[int | None] = []
    for row in overlap:
        candidates = np.flatnonzero(row > min_overlap)
        if candidates.size == 0:
            out.append(None)
            continue
        # Sort by overlap (rounded, so float noise does not beat a tighter fit), then area.
        best = min(candidates, key=lambda j: (-round(float(row[j]), 4), float(vehicle_area[j])))
        out.append(int(best))
    return out


# A single read's character that the reader is at least this sure of is never swapped by format
# repair: one frame has no other reads to outvote a wrong repair, and real plates often fall
# outside the configured formats (foreign cars, old series). Chosen on openalpr-dev (0.8-0.95
# tried); the video voter repairs consensus strings instead and does not use it.
PROTECT_CONFIDENCE = 0.9


def apply_formats(read: PlateRead, formats: PlateFormats | None) -> PlateRead:
    """Repair a single read with the configured region formats (O/0, I/1... by position).

    Like OpenALPR's country setting: a read that already matches a format, or that no format
    can be reached from with a few confusable swaps, is returned unchanged. Swaps are 1:1, so
    the per-character confidences still line up.
    """
    if formats is None or not read.text:
        return read
    fixed = formats.repair(read.text, read.char_confidences)
    if fixed is None or fixed[0] == read.text:
        return read
    return PlateRead(fixed[0], read.confidence, read.char_confidences)


@dataclass
class StageTimes:
    """Milliseconds spent in each stage of the last processed frame."""

    detect_ms: float = 0.0
    read_ms: float = 0.0
    total_ms: float = 0.0


class Alpr:
    def __init__(
        self,
        detector: Detector,
        reader: Reader,
        crop_margin: float = 0.08,
        vehicle_overlap: float = 0.6,
        formats: PlateFormats | None = None,
    ) -> None:
        if PLATE not in detector.classes:
            raise ValueError(f"detector classes {detector.classes} have no {PLATE!r} class")
        self.detector = detector
        self.reader = reader
        self.crop_margin = crop_margin
        self.vehicle_overlap = vehicle_overlap
        # Region formats for single-frame reads (still images). The video pipeline leaves this
        # None: its voter validates and repairs the per-track consensus instead.
        self.formats = formats
        self.last_times = StageTimes()
        # The last frame's full detector output (vehicles too, not only the plates returned):
        # the video pipeline tracks vehicles without plates as well.
        self.last_detections: Detections | None = None

    def process(self, frame: np.ndarray, formats: PlateFormats | None = None) -> list[PlateResult]:
        """``formats`` overrides the instance's region formats for this frame."""
        formats = formats if formats is not None else self.formats
        t0 = time.perf_counter()
        dets = self.detector.detect(frame)
        self.last_detections = dets
        t1 = time.perf_counter()
        plates = dets.of_class(PLATE)
        vehicles = dets.of_class(VEHICLE)
        h, w = frame.shape[:2]
        crop_boxes = [
            expand_box(tuple(map(float, b)), w, h, self.crop_margin)  # type: ignore[arg-type]
            for b in plates.boxes
        ]
        crops = [frame[y1:y2, x1:x2] for x1, y1, x2, y2 in crop_boxes]
        reads = self.reader.read(crops)
        t2 = time.perf_counter()
        owners = associate_vehicles(plates.boxes, vehicles.boxes, self.vehicle_overlap)
        results = []
        for box, score, read, owner, crop_box in zip(
            plates.boxes, plates.scores, reads, owners, crop_boxes, strict=True
        ):
            vehicle = None if owner is None else tuple(float(v) for v in vehicles.boxes[owner])
            results.append(
                PlateResult(
                    box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                    detection_score=float(score),
                    read=apply_formats(read, formats),
                    vehicle_box=vehicle,  # type: ignore[arg-type]
                    crop_box=crop_box,
                )
            )
        self.last_times = StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t2 - t0) * 1e3)
        return results

    def close(self) -> None:
        self.detector.close()
        self.reader.close()
