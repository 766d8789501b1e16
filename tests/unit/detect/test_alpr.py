"""Single-frame ALPR maths (edge.detect.alpr): plate fragments and results built elsewhere."""

from __future__ import annotations

import numpy as np

from edge.detect.alpr import build_result, nested_plates
from edge.types import TextRead


def test_nested_plate_fragments_are_dropped() -> None:
    boxes = np.array(
        [
            [571, 626, 832, 701],  # the plate
            [530, 634, 737, 690],  # a fragment: 80 % of it inside the plate
            [900, 626, 1100, 701],  # another car's plate next to it
            [590, 640, 700, 690],  # a fragment with a higher score than the plate
        ],
        np.float32,
    )
    scores = np.array([0.8, 0.7, 0.9, 0.95], np.float32)
    assert nested_plates(boxes[:3], scores[:3]) == [0, 2]
    # only LOWER-scoring boxes are removed: a high-scoring fragment stays beside its plate
    assert nested_plates(boxes, scores) == [0, 2, 3]
    assert nested_plates(np.zeros((0, 4)), np.zeros(0)) == []


def test_build_result_rows_crops_and_vehicles() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
    read = TextRead("AB12", 0.9, (0.9,) * 4)
    r = build_result(
        image, [((0.0, 0.0, 100.0, 100.0), 0.9)], [((10.0, 60.0, 50.0, 70.0), 0.8, read)]
    )
    assert r.detections.names == ["vehicle", "plate"]
    (p,) = r.plates
    assert p.det_index == 1 and p.vehicle_index == 0 and p.vehicle_box == (0, 0, 100, 100)
    assert p.crop is not None and p.crop.shape == (10, 40, 3)
    assert np.shares_memory(p.crop, image)  # a view, not a copy
