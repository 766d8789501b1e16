"""A second look for small plates in a still: the detector again, on a vehicle's own box.

The detector sees a whole frame letterboxed to its input (416 x 416): the plate of a car across
a 1280-wide parking scene, 26 px high, is 8 px high to it, and that is the kind of plate it
misses (3 of openalpr-dev's 4 missed US plates). Cut from the full-resolution frame, the car's
box alone fills the detector's input, so the same plate is 3x larger to it. OpenALPR and Plate
Recognizer look for plates inside vehicles the same way.

It costs one detector run per vehicle looked at, so it looks only where it can help
(`SecondLook.regions`, pure): vehicles the second look magnifies at least ``min_zoom`` times
more than the frame did, that hold no plate of score ``sure_plate`` or more, the largest first,
at most ``max_vehicles``. A plate found there replaces a first-pass plate it overlaps (IoU
``match_iou``) when it scores higher, and is added when it overlaps none. Still images only: a
video has later frames, closer to the camera, in which the plate is larger anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.detect.vision import box_iou
from edge.types import PLATE, VEHICLE, Detections

Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class SecondLook:
    """Where and how a still gets its second look. Defaults chosen on openalpr-dev (1-3
    vehicles, zoom 1.25-2, sure plate 0.4-0.7 tried; US exact 76.5 % without, 80.2-81.5 % with)
    and checked on uc3m-lp-val, which nothing is tuned on (plate recall 70.9 % -> 77.8 %)."""

    max_vehicles: int = 2
    min_zoom: float = 1.5
    sure_plate: float = 0.6
    match_iou: float = 0.3
    margin: float = 0.05  # each side of the vehicle box: a plate at its very edge is kept whole

    def regions(self, dets: Detections, width: int, height: int) -> list[Region]:
        """The vehicle boxes (with ``margin``, clipped to the frame) to look at again."""
        plate_rows = dets.indices_of(PLATE)
        sure_plates = dets.boxes[plate_rows][dets.scores[plate_rows] >= self.sure_plate]
        # a sure plate whose centre lies in the vehicle: this car's plate is found already
        cx = (sure_plates[:, 0] + sure_plates[:, 2]) / 2
        cy = (sure_plates[:, 1] + sure_plates[:, 3]) / 2
        picks: list[tuple[float, Region]] = []
        for row in dets.indices_of(VEHICLE).tolist():
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[row])
            mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
            r = (
                max(0, int(x1 - mx)),
                max(0, int(y1 - my)),
                min(width, int(np.ceil(x2 + mx))),
                min(height, int(np.ceil(y2 + my))),
            )
            rw, rh = r[2] - r[0], r[3] - r[1]
            if rw < 2 or rh < 2 or max(width, height) / max(rw, rh) < self.min_zoom:
                continue
            if np.any((cx >= r[0]) & (cx <= r[2]) & (cy >= r[1]) & (cy <= r[3])):
                continue
            picks.append((float(rw * rh), r))
        picks.sort(key=lambda p: -p[0])
        return [r for _, r in picks[: self.max_vehicles]]

    def merge(self, dets: Detections, found: Sequence[tuple[np.ndarray, float]]) -> Detections:
        """``dets`` with the second look's plates (frame pixels, score) merged in (module doc);
        rows stay in ``dets``'s order, new plates after them."""
        if not found:
            return dets
        plate_id = dets.classes.index(PLATE)
        boxes, scores = dets.boxes.copy(), dets.scores.copy()
        class_ids = dets.class_ids.copy()
        extra_b, extra_s = [], []
        plate_rows = np.flatnonzero(class_ids == plate_id)
        for box, score in found:
            if len(plate_rows):
                ious = box_iou(np.asarray(box), boxes[plate_rows])[0]
                j = int(np.argmax(ious))
                if ious[j] >= self.match_iou:
                    if score > scores[plate_rows[j]]:
                        boxes[plate_rows[j]], scores[plate_rows[j]] = box, score
                    continue
            extra_b.append(np.asarray(box, np.float32))
            extra_s.append(score)
        if extra_b:
            boxes = np.concatenate([boxes, np.stack(extra_b)])
            scores = np.concatenate([scores, np.asarray(extra_s, np.float32)])
            class_ids = np.concatenate([class_ids, np.full(len(extra_b), plate_id, np.int64)])
        return Detections(boxes, scores, class_ids, dets.classes)


DEFAULT_SECOND_LOOK = SecondLook()
