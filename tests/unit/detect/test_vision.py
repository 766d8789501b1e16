"""Shared pure geometry and decoding: edge.detect.vision (letterbox, NMS, YOLO decode) and
edge.detect.ctc."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.ctc import greedy_decode, greedy_decode_batch
from edge.detect.vision import (
    Letterbox,
    batched_nms,
    box_iou,
    decode_yolo,
    letterbox,
    nms,
    to_nchw_float,
    unletterbox_boxes,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize("hw", [(720, 1280), (1080, 1920), (480, 640), (640, 480), (300, 301)])
@pytest.mark.parametrize("size", [320, (384, 640)])
def test_letterbox_round_trip(hw: tuple[int, int], size: int | tuple[int, int]) -> None:
    h, w = hw
    frame = np.zeros((h, w, 3), np.uint8)
    out, lb = letterbox(frame, size)
    th, tw = (size, size) if isinstance(size, int) else size
    assert out.shape == (th, tw, 3)
    boxes = np.array(
        [[0, 0, w, h], [10.5, 20.25, 110, 90], [w / 3, h / 2, w - 1, h - 1]], np.float32
    )
    fwd = boxes.copy()
    fwd[:, [0, 2]] = fwd[:, [0, 2]] * lb.scale + lb.pad_x
    fwd[:, [1, 3]] = fwd[:, [1, 3]] * lb.scale + lb.pad_y
    back = unletterbox_boxes(fwd, lb, w, h)
    np.testing.assert_allclose(back, boxes, atol=1e-3)


def test_letterbox_places_image_between_pads() -> None:
    frame = np.full((100, 200, 3), 255, np.uint8)
    out, lb = letterbox(frame, 64)
    assert lb.scale == pytest.approx(0.32)
    assert (lb.pad_x, lb.pad_y) == (0.0, 16.0)
    assert (out[:16] == 114).all() and (out[48:] == 114).all()
    assert (out[16:48] == 255).all()


def test_unletterbox_clips_to_frame() -> None:
    lb = Letterbox(scale=0.5, pad_x=0.0, pad_y=10.0)
    out = unletterbox_boxes(np.array([[-5, 0, 400, 30]], np.float32), lb, 640, 480)
    np.testing.assert_allclose(out, [[0, 0, 640, 40]])


def test_to_nchw_float_is_rgb_unit_range() -> None:
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    t = to_nchw_float(img)
    assert t.shape == (1, 3, 2, 3) and t.dtype == np.float32
    assert t[0, 2].max() == 1.0 and t[0, 0].max() == 0.0


def test_box_iou_values() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0, 0.0], atol=1e-6)


def test_nms_suppresses_overlaps_keeps_separate() -> None:
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32
    )
    scores = np.array([0.8, 0.9, 0.7, 0.6], np.float32)
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [1, 2]  # best first; 0 and 3 overlap box 1 by > 0.5


def test_nms_threshold_is_strict_and_empty_input() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU 1/3
    assert nms(boxes, np.array([0.9, 0.8]), 1 / 3 + 1e-6).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.3).tolist() == [0]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).size == 0


def test_batched_nms_classes_do_not_suppress_each_other() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10]], np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]


def test_batched_nms_with_negative_coordinates() -> None:
    # Regression: an offset of max+1 let class 1 at [-100..-50] land on class 0's range.
    # Boxes may extend past the origin before clipping (decoded centre minus half size).
    boxes = np.array([[-100, -100, 10, 10], [-100, -100, 10, 10], [-99, -100, 10, 10]], np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]


def _head(rows: list[tuple[float, float, float, float, list[float]]]) -> np.ndarray:
    """(1, 4+nc, N) like an Ultralytics export from (cx, cy, w, h, class scores)."""
    return np.array([[cx, cy, w, h, *s] for cx, cy, w, h, s in rows], np.float32).T[None]


def test_decode_yolo_filters_converts_and_suppresses() -> None:
    out = _head(
        [
            (50, 50, 20, 10, [0.1, 0.9]),  # plate
            (51, 50, 20, 10, [0.05, 0.8]),  # duplicate plate -> suppressed
            (50, 50, 100, 80, [0.7, 0.2]),  # vehicle around it -> kept (other class)
            (10, 10, 5, 5, [0.1, 0.2]),  # below threshold
        ]
        + [(0, 0, 1, 1, [0.0, 0.0])] * 4
    )
    boxes, scores, classes = decode_yolo(out, 0.25, 0.5, num_classes=2)
    assert classes.tolist() == [1, 0]
    np.testing.assert_allclose(scores, [0.9, 0.7], atol=1e-6)
    np.testing.assert_allclose(boxes[0], [40, 45, 60, 55])
    np.testing.assert_allclose(boxes[1], [0, 10, 100, 90])


def test_decode_yolo_layouts_and_empty() -> None:
    out = _head([(50, 50, 20, 10, [0.1, 0.9])] + [(0, 0, 1, 1, [0.0, 0.0])] * 9)
    a = decode_yolo(out, 0.25, 0.5)
    b = decode_yolo(out[0].T, 0.25, 0.5)  # (N, 4+nc) layout
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    boxes, scores, classes = decode_yolo(out, 0.95, 0.5)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and classes.shape == (0,)


def test_decode_yolo_num_classes_resolves_few_anchors() -> None:
    # 3 anchors < 6 channels: without num_classes the shorter-axis guess would be wrong.
    out = _head(
        [(50, 50, 20, 10, [0.1, 0.9]), (10, 10, 4, 4, [0.8, 0.0]), (0, 0, 1, 1, [0.0, 0.0])]
    )
    boxes, _, classes = decode_yolo(out, 0.25, 0.5, num_classes=2)
    assert sorted(classes.tolist()) == [0, 1] and boxes.shape == (2, 4)
    with pytest.raises(ValueError, match="4 \\+ 3 classes"):
        decode_yolo(out, 0.25, 0.5, num_classes=3)


def test_decode_yolo_max_detections() -> None:
    rows = [(i * 30.0 + 10, 10, 8, 8, [0.5 + i / 100, 0.0]) for i in range(10)]
    boxes, scores, _ = decode_yolo(_head(rows), 0.25, 0.5, max_detections=3)
    assert len(boxes) == 3 and scores[0] == pytest.approx(0.59)


def _probs(labels: list[int], conf: list[float] | None = None) -> np.ndarray:
    c = len(ALPHABET) + 1
    p = np.full((len(labels), c), 0.001, np.float32)
    for t, lab in enumerate(labels):
        p[t, lab] = conf[t] if conf else 0.9
    return p


def test_ctc_collapses_repeats_and_blanks() -> None:
    a, b, nine = ALPHABET.index("A") + 1, ALPHABET.index("B") + 1, ALPHABET.index("9") + 1
    d = greedy_decode(_probs([0, a, a, 0, b, 0, nine, 0, nine, nine, 0]), ALPHABET)
    assert d.text == "AB99"
    assert greedy_decode(_probs([0, 0, 0]), ALPHABET).text == ""


def test_ctc_char_confidences_take_max_over_span() -> None:
    a, b = ALPHABET.index("A") + 1, ALPHABET.index("B") + 1
    d = greedy_decode(_probs([a, a, 0, b], [0.6, 0.8, 0.9, 0.5]), ALPHABET)
    assert d.text == "AB"
    assert d.char_confidences == pytest.approx((0.8, 0.5))
    assert d.confidence == pytest.approx(0.5)
    assert greedy_decode(_probs([0]), ALPHABET).confidence == 0.0


def test_ctc_batch_and_shape_errors() -> None:
    one = ALPHABET.index("1") + 1
    batch = np.stack([_probs([one, 0]), _probs([0, 0])])
    assert [d.text for d in greedy_decode_batch(batch, ALPHABET)] == ["1", ""]
    with pytest.raises(ValueError, match="37"):
        greedy_decode(np.zeros((4, 10), np.float32), ALPHABET)
