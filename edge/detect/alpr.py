"""Single-frame ALPR: detect vehicles and plates, read every plate, tie plates to vehicles.

``Alpr.process(image) -> FrameResult`` is the detect+read stage of the pipeline and the whole of
``platewatch image``. Plate crops are cut once, from the FULL-resolution frame (the detector only
saw a downscaled letterbox; reading from that would throw away the pixels the characters need),
as views (no copy), and all crops of a frame go through the reader in one batch.

Plate fragments (a box lying mostly inside a higher-scoring plate box: half a plate, a group of
characters) are dropped before reading: plain NMS keeps them because their IoU with the whole
plate is small, and their reads would only dilute a vote or add a junk plate to a still image.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from edge.detect.models import Detector, Reader
from edge.detect.plate_input import expand_box
from edge.detect.second_look import DEFAULT_SECOND_LOOK, SecondLook
from edge.detect.stills import (
    DEFAULT_VARIANTS,
    CropVariant,
    StillPlate,
    StillResult,
    choose_read,
    variant_box,
)
from edge.detect.stills import apply_formats as apply_formats  # re-exported: its old home
from edge.track.linking import assign_plates_to_vehicles
from edge.types import (
    PLATE,
    VEHICLE,
    BoxTuple,
    Detections,
    Frame,
    FrameResult,
    Plate,
    StageTimings,
    TextRead,
)
from edge.vote.formats import PlateFormats

# A single read's character that the reader is at least this sure of is never swapped by format
# repair: one frame has no other reads to outvote a wrong repair, and real plates often fall
# outside the configured formats (foreign cars, old series). Chosen on openalpr-dev (0.8-0.95
# tried); the video voter repairs consensus strings instead and does not use it.
PROTECT_CONFIDENCE = 0.9


def nested_plates(boxes: np.ndarray, scores: np.ndarray, containment: float = 0.5) -> list[int]:
    """Indices of plate boxes to keep: a box lying mostly (``containment`` of its own area)
    inside a higher-scoring plate box is a detector fragment, never a second plate."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable")
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    kept: list[int] = []
    for i in order.tolist():
        inside = False
        for j in kept:
            iw = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])
            ih = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])
            if iw > 0 and ih > 0 and iw * ih >= containment * max(area[i], 1e-9):
                inside = True
                break
        if not inside:
            kept.append(i)
    return sorted(kept)


def drop_fragments(dets: Detections) -> Detections:
    """``dets`` without plate fragments (`nested_plates`); other classes untouched, order kept."""
    plates = dets.indices_of(PLATE)
    if len(plates) < 2:
        return dets
    keep = set(plates[nested_plates(dets.boxes[plates], dets.scores[plates])].tolist())
    if len(keep) == len(plates):
        return dets
    rows = [i for i in range(len(dets)) if i not in set(plates.tolist()) or i in keep]
    return dets.select(rows)


def build_result(
    image: np.ndarray | None,
    vehicles: Sequence[tuple[BoxTuple, float]],
    plates: Sequence[tuple[BoxTuple, float, TextRead]],
    *,
    crop_margin: float = 0.0,
    vehicle_overlap: float = 0.6,
    timings: StageTimings | None = None,
) -> FrameResult:
    """A `FrameResult` from boxes and reads made elsewhere (an engine of your own, a stand-in
    in tests and benchmarks): vehicle rows first, then plates; crops cut from ``image`` as the
    detector path cuts them; plates tied to vehicles by the same rule."""
    classes = (VEHICLE, PLATE)
    rows = [(b, s, 0) for b, s in vehicles] + [(b, s, 1) for b, s, _ in plates]
    dets = Detections(
        np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32).reshape(-1),
        np.array([r[2] for r in rows], np.int64).reshape(-1),
        classes,
    )
    vboxes = np.array([b for b, _ in vehicles], np.float32).reshape(-1, 4)
    owners = assign_plates_to_vehicles(
        np.array([b for b, _, _ in plates], np.float32).reshape(-1, 4), vboxes, vehicle_overlap
    )
    h, w = image.shape[:2] if image is not None else (1 << 30, 1 << 30)
    out = []
    for i, ((box, score, read), owner) in enumerate(zip(plates, owners, strict=True)):
        crop_box = expand_box(tuple(map(float, box)), w, h, crop_margin)  # type: ignore[arg-type]
        x1, y1, x2, y2 = crop_box
        out.append(
            Plate(
                det_index=len(vehicles) + i,
                box=_box(np.asarray(box, np.float64)),
                score=float(score),
                read=read,
                crop_box=crop_box,
                vehicle_index=owner,
                vehicle_box=None if owner is None else _box(vboxes[owner]),
                crop=image[y1:y2, x1:x2] if image is not None else None,
            )
        )
    return FrameResult(dets, tuple(out), timings or StageTimings())


class Alpr:
    """Detector + reader for one frame. Also the pipeline's inference engine (``infer``)."""

    def __init__(
        self,
        detector: Detector,
        reader: Reader,
        crop_margin: float = 0.08,
        vehicle_overlap: float = 0.6,
        formats: PlateFormats | None = None,
        still_variants: Sequence[CropVariant] = DEFAULT_VARIANTS,
        second_look: SecondLook | None = DEFAULT_SECOND_LOOK,
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
        if not still_variants:
            raise ValueError("still_variants: at least one crop variant")
        self.still_variants = tuple(still_variants)
        # Stills only: the detector again on vehicles whose plate may be too small for it in
        # the whole frame (edge.detect.second_look); None turns it off.
        self.second_look = second_look
        # Every shipped format: labels still reads when no region is chosen, and (split by
        # region) decides a plate's region from what its variants read (edge.detect.stills).
        self.shipped_formats = PlateFormats.default(None)
        self._by_region = self.shipped_formats.by_region

    def process(self, image: np.ndarray, formats: PlateFormats | None = None) -> FrameResult:
        """``formats`` overrides the instance's region formats for this frame."""
        formats = formats if formats is not None else self.formats
        t0 = time.perf_counter()
        dets = drop_fragments(self.detector.detect(image))
        t1 = time.perf_counter()
        h, w = image.shape[:2]
        plate_rows = dets.indices_of(PLATE)
        crop_boxes = [
            expand_box((float(b[0]), float(b[1]), float(b[2]), float(b[3])), w, h, self.crop_margin)
            for b in dets.boxes[plate_rows]
        ]
        crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in crop_boxes]
        reads = self.reader.read(crops)
        t2 = time.perf_counter()
        vehicle_rows = dets.indices_of(VEHICLE)
        owners = assign_plates_to_vehicles(
            dets.boxes[plate_rows], dets.boxes[vehicle_rows], self.vehicle_overlap
        )
        plates = [
            _plate(dets, row, owner, vehicle_rows, apply_formats(read, formats), crop_box, crop)
            for row, read, owner, crop_box, crop in zip(
                plate_rows.tolist(), reads, owners, crop_boxes, crops, strict=True
            )
        ]
        return FrameResult(dets, tuple(plates), StageTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3))

    def process_still(self, image: np.ndarray, formats: PlateFormats | None = None) -> StillResult:
        """A still image: each plate cut in every crop variant (``still_variants``) from the
        full-resolution image, all crops of all plates read in ONE reader batch, one read kept
        per plate by `edge.detect.stills.choose_read`. ``formats`` (else the instance's) are
        the chosen region's; None: no region chosen."""
        formats = formats if formats is not None else self.formats
        t0 = time.perf_counter()
        dets = drop_fragments(self.detector.detect(image))
        h, w = image.shape[:2]
        if self.second_look is not None:
            dets = drop_fragments(self._look_again(image, dets, self.second_look))
        t1 = time.perf_counter()
        plate_rows = dets.indices_of(PLATE)
        n = len(self.still_variants)
        crop_boxes = [
            variant_box(_box(b), w, h, v)
            for b in dets.boxes[plate_rows]
            for v in self.still_variants
        ]
        crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in crop_boxes]
        reads = self.reader.read(crops)
        choices = [
            choose_read(reads[k * n : (k + 1) * n], formats, self.shipped_formats, self._by_region)
            for k in range(len(plate_rows))
        ]
        t2 = time.perf_counter()
        vehicle_rows = dets.indices_of(VEHICLE)
        owners = assign_plates_to_vehicles(
            dets.boxes[plate_rows], dets.boxes[vehicle_rows], self.vehicle_overlap
        )
        plates = []
        for k, (row, choice, owner) in enumerate(
            zip(plate_rows.tolist(), choices, owners, strict=True)
        ):
            j = k * n + choice.variant
            plate = _plate(dets, row, owner, vehicle_rows, choice.read, crop_boxes[j], crops[j])
            plates.append(
                StillPlate(
                    plate,
                    choice.format,
                    choice.region,
                    self.still_variants[choice.variant].name,
                    choice.repaired,
                )
            )
        return StillResult(dets, tuple(plates), StageTimings((t1 - t0) * 1e3, (t2 - t1) * 1e3))

    def _look_again(self, image: np.ndarray, dets: Detections, look: SecondLook) -> Detections:
        """The plates the detector finds in each of ``look``'s vehicle regions, merged."""
        h, w = image.shape[:2]
        found = []
        for x1, y1, x2, y2 in look.regions(dets, w, h):
            sub = self.detector.detect(image[y1:y2, x1:x2])
            offset = np.array([x1, y1, x1, y1], np.float32)
            for row in sub.indices_of(PLATE).tolist():
                found.append((sub.boxes[row] + offset, float(sub.scores[row])))
        return look.merge(dets, found)

    def infer(self, frame: Frame) -> FrameResult:
        return self.process(frame.image)

    def close(self) -> None:
        self.detector.close()
        self.reader.close()


def _plate(
    dets: Detections,
    row: int,
    owner: int | None,
    vehicle_rows: np.ndarray,
    read: TextRead,
    crop_box: tuple[int, int, int, int],
    crop: np.ndarray,
) -> Plate:
    """One plate of ``dets`` (detection ``row``) with its read, crop and owning vehicle
    (``owner``: a position in ``vehicle_rows``, None: no vehicle)."""
    vrow = None if owner is None else int(vehicle_rows[owner])
    return Plate(
        det_index=row,
        box=_box(dets.boxes[row]),
        score=float(dets.scores[row]),
        read=read,
        crop_box=crop_box,
        vehicle_index=vrow,
        vehicle_box=None if vrow is None else _box(dets.boxes[vrow]),
        crop=crop,
    )


def _box(b: np.ndarray) -> tuple[float, float, float, float]:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
