"""The second look for small plates in a still (edge.detect.second_look, Alpr.process_still)."""

from __future__ import annotations

import numpy as np

from edge.detect.alpr import Alpr
from edge.detect.second_look import SecondLook
from edge.types import PLATE, VEHICLE, Detections, TextRead

CLASSES = (VEHICLE, PLATE)


def dets(rows: list[tuple[tuple[float, float, float, float], float, int]]) -> Detections:
    return Detections(
        np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        np.array([r[1] for r in rows], np.float32),
        np.array([r[2] for r in rows], np.int64),
        CLASSES,
    )


def test_regions_are_small_vehicles_without_a_sure_plate_largest_first() -> None:
    look = SecondLook(max_vehicles=2, min_zoom=1.5, sure_plate=0.5, margin=0.0)
    d = dets(
        [
            ((0, 0, 1000, 700), 0.9, 0),  # fills the frame: no magnification to gain
            ((100, 100, 300, 250), 0.9, 0),  # small, no plate
            ((500, 100, 800, 300), 0.9, 0),  # larger, a sure plate inside
            ((650, 250, 700, 262), 0.8, 1),
            ((900, 400, 1000, 480), 0.9, 0),  # smallest, an unsure plate inside
            ((940, 450, 960, 456), 0.3, 1),
        ]
    )
    assert look.regions(d, 1280, 720) == [(100, 100, 300, 250), (900, 400, 1000, 480)]
    assert SecondLook(max_vehicles=1, margin=0.0).regions(d, 1280, 720) == [(100, 100, 300, 250)]
    # the margin widens the region, clipped to the frame
    edge = dets([((0, 600, 200, 720), 0.9, 0)])
    assert SecondLook(margin=0.1).regions(edge, 1280, 720) == [(0, 588, 220, 720)]
    assert SecondLook().regions(dets([]), 1280, 720) == []


def test_merge_replaces_weaker_overlapping_plates_and_adds_new_ones() -> None:
    look = SecondLook(match_iou=0.3)
    d = dets([((0, 0, 400, 300), 0.9, 0), ((100, 200, 160, 220), 0.3, 1)])
    out = look.merge(
        d,
        [
            (np.array([102, 201, 162, 221], np.float32), 0.8),  # the same plate, surer
            (np.array([300, 100, 340, 112], np.float32), 0.6),  # a plate not found before
        ],
    )
    assert out.names == [VEHICLE, PLATE, PLATE]
    assert out.boxes[1].tolist() == [102, 201, 162, 221] and out.scores[1] == np.float32(0.8)
    assert out.boxes[2].tolist() == [300, 100, 340, 112]
    # a weaker box over a found plate changes nothing
    same = look.merge(d, [(np.array([101, 200, 161, 220], np.float32), 0.2)])
    assert same.boxes.tolist() == d.boxes.tolist() and same.scores.tolist() == d.scores.tolist()
    assert look.merge(d, []) is d


class SmallPlateDetector:
    """Finds the car in the whole frame but its plate only when given the car's region (the
    plate is too small for it in the whole frame). Records the image sizes it saw."""

    classes = CLASSES

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        self.seen.append((w, h))
        if w > 1000:
            return dets([((400, 200, 700, 420), 0.8, 0)])
        # the crop starts at the region's corner: the plate at frame (520, 380)-(580, 395)
        x0, y0 = 400 - 15, 200 - 11
        return dets([((520 - x0, 380 - y0, 580 - x0, 395 - y0), 0.7, 1)])

    def close(self) -> None:
        pass


class Reader:
    def read(self, crops: list[np.ndarray]) -> list[TextRead]:
        return [TextRead("ABC1234", 0.9, (0.9,) * 7) for _ in crops]

    def close(self) -> None:
        pass


def test_process_still_finds_the_small_plate_in_the_vehicle_region() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    det = SmallPlateDetector()
    plates = Alpr(det, Reader()).process_still(image).plates  # type: ignore[arg-type]
    assert det.seen == [(1280, 720), (330, 242)]  # the frame, then the car with 5 % margins
    assert [p.text for p in plates] == ["ABC1234"]
    assert plates[0].box == (520, 380, 580, 395)  # in frame pixels
    assert plates[0].plate.vehicle_index == 0
    # turned off: the detector sees the frame once and no plate is found
    det = SmallPlateDetector()
    off = Alpr(det, Reader(), second_look=None).process_still(image)  # type: ignore[arg-type]
    assert off.plates == () and det.seen == [(1280, 720)]
