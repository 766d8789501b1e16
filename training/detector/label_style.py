"""How a plate box source draws its boxes, against what a detector predicts on its images.

For each plate the detector finds (IoU > 0.4), the ratio of the predicted box's width and
height to the label's; prints the medians per source. Run with the shipped detector to measure
a new source's style before training on it (``build_data.LABEL_STYLE``):

    python -m training.detector.label_style models/detector.onnx
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.detect.vision import box_iou, decode_yolo, letterbox, to_nchw_float, unletterbox_boxes
from training.data.records import ImageRecord
from training.detector import offline


def box_ratios(
    session, records: Sequence[ImageRecord], imgsz: int = 416
) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    """(predicted / label width, height) for every labelled plate found at IoU > 0.4."""
    out = []
    for rec in records:
        image = cv2.imread(str(rec.image))
        if image is None:
            continue
        img, lb = letterbox(image, imgsz)
        raw = session.run(None, {"images": to_nchw_float(img)})[0]
        boxes, _, classes = decode_yolo(raw, 0.25, 0.5)
        pred = unletterbox_boxes(boxes[classes == 1], lb, image.shape[1], image.shape[0])
        for b in rec.boxes:
            if len(pred) == 0 or b.width <= 0 or b.height <= 0:
                continue
            iou = box_iou(np.array([[b.x1, b.y1, b.x2, b.y2]]), pred)[0]
            j = int(iou.argmax())
            if iou[j] > 0.4:
                p = pred[j]
                out.append((float(p[2] - p[0]) / b.width, float(p[3] - p[1]) / b.height))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    from training.detector.build_data import (
        LABEL_STYLE,
        load_dashcam,
        load_plate_folder,
        load_world_scenes,
    )
    from training.detector.export import onnx_session

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", type=Path, default=offline.data_root())
    args = ap.parse_args(argv)
    session = onnx_session(args.model)
    sources = {
        "car-plates-mixed": load_plate_folder(args.data / "car-plates-mixed"),
        "world-plate-scenes": load_world_scenes(args.data / "world-plate-scenes"),
        "ro-dashcam": [r for recs in load_dashcam(args.data / "ro-dashcam").values() for r in recs],
    }
    print("labels as build_data writes them (LABEL_STYLE applied):", LABEL_STYLE)
    for name, records in sources.items():
        ratios = box_ratios(session, records)
        if not ratios:
            print(f"{name}: no plate found")
            continue
        w = statistics.median(r[0] for r in ratios)
        h = statistics.median(r[1] for r in ratios)
        print(f"{name}: {len(ratios)} plates, predicted / label width {w:.3f}, height {h:.3f}")


if __name__ == "__main__":
    main()
