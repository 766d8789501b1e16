"""Label formats read once for evaluation and training (edge.eval.labels)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.eval.evaluate import detect_format, load_yolo
from edge.eval.labels import (
    is_openalpr_line,
    parse_openalpr_line,
    parse_yolo_line,
    plate_text,
    yolo_label_for,
)


def test_openalpr_line() -> None:
    label = parse_openalpr_line("car.jpg\t10\t20\t40\t12\tab-123 cd\n")
    assert (label.file, label.box, label.text) == ("car.jpg", (10, 20, 50, 32), "AB123CD")
    assert parse_openalpr_line("car.jpg\t1\t2\t3\t4").text is None
    assert is_openalpr_line("car.jpg\t1\t2\t3\t4\tX") and not is_openalpr_line("0 0.5 0.5 .1 .1")
    with pytest.raises(ValueError, match="field 'w' is not a number"):
        parse_openalpr_line("car.jpg\t1\t2\tx\t4")
    with pytest.raises(ValueError, match="positive"):
        parse_openalpr_line("car.jpg\t1\t2\t0\t4")


def test_yolo_line() -> None:
    line = parse_yolo_line("1 0.5 0.5 0.2 0.1")
    assert line is not None and line.class_id == 1
    assert line.in_pixels(100, 200) == pytest.approx((40, 90, 60, 110))
    poly = parse_yolo_line("0 0.1 0.1 0.3 0.1 0.3 0.2 0.1 0.2")
    assert poly is not None and poly.box == pytest.approx((0.1, 0.1, 0.3, 0.2))
    assert parse_yolo_line("   ") is None
    with pytest.raises(ValueError, match="normalised"):
        parse_yolo_line("0 50 60 20 10")  # pixel coordinates
    assert plate_text(" ab·12-3 ") == "AB123" and plate_text(" - ") is None


def test_eval_reads_the_images_labels_layout(tmp_path: Path) -> None:
    """What `import-labels --to-yolo` writes (images/ + labels/) is a YOLO folder for eval."""
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "images" / split / "a.jpg"), np.zeros((50, 100, 3), np.uint8))
        (tmp_path / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    image = tmp_path / "images" / "val" / "a.jpg"
    assert yolo_label_for(image) == tmp_path / "labels" / "val" / "a.txt"
    assert detect_format(tmp_path) == "yolo"
    samples = load_yolo(tmp_path)
    assert len(samples) == 2 and samples[0].plates[0].box == pytest.approx((40, 20, 60, 30))
