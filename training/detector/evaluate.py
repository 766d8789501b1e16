"""Measure the shipped detector (ONNX, 1 thread) on evaluation sets it never trained on.

  1. plate recall / precision at IoU > 0.4 on openalpr-dev (per region and overall);
  2. vehicle recall on openalpr-dev against the COCO teacher's vehicle labels (IoU > 0.5);
  3. plate recall on uc3m-lp-val (Spanish scenes, YOLO labels).

    python -m training.detector.evaluate [--model models/detector.onnx] [--write]

``--write`` stores the figures in models/detector.json ("metrics") for the model card.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.detect.vision import box_iou, decode_yolo, letterbox, to_nchw_float, unletterbox_boxes
from training.detector import offline

PLATE_IOU = 0.4
VEHICLE_IOU = 0.5
VEHICLE_ID, PLATE_ID = 0, 1


@dataclass
class Counts:
    """Greedy one-to-one matching tallies for one class on one set."""

    n_images: int = 0
    n_truth: int = 0
    n_pred: int = 0
    n_hit: int = 0  # truths matched by a prediction
    n_tp_pred: int = 0  # predictions matched to a truth

    @property
    def recall(self) -> float:
        return self.n_hit / self.n_truth if self.n_truth else float("nan")

    @property
    def precision(self) -> float:
        return self.n_tp_pred / self.n_pred if self.n_pred else float("nan")

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
        }


def match(truth: np.ndarray, pred: np.ndarray, iou_threshold: float) -> tuple[int, int]:
    """Greedy best-IoU matching; returns (truths matched, predictions matched)."""
    if len(truth) == 0 or len(pred) == 0:
        return 0, 0
    iou = box_iou(truth, pred)
    hits = 0
    while True:
        t, p = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if iou[t, p] <= iou_threshold:
            break
        hits += 1
        iou[t, :] = -1
        iou[:, p] = -1
    return hits, hits


@dataclass
class Detector:
    """Thin ONNX Runtime wrapper: frame in, boxes in frame pixels out."""

    model: Path
    conf: float = 0.25
    iou: float = 0.5
    imgsz: tuple[int, int] = (416, 416)
    times_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        from training.detector.export import onnx_session

        self.sess = onnx_session(self.model)
        shape = self.sess.get_inputs()[0].shape
        self.imgsz = (int(shape[2]), int(shape[3]))

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        img, lb = letterbox(frame, self.imgsz)
        x = to_nchw_float(img)
        t0 = time.perf_counter()
        out = self.sess.run(None, {"images": x})[0]
        self.times_ms.append((time.perf_counter() - t0) * 1000)
        boxes, scores, classes = decode_yolo(out, self.conf, self.iou)
        h, w = frame.shape[:2]
        return unletterbox_boxes(boxes, lb, w, h), scores, classes


def openalpr_truth(label: Path) -> tuple[str, np.ndarray]:
    """One ``file\\tx\\ty\\tw\\th\\tTEXT`` line -> (image file name, (1,4) xyxy)."""
    parts = label.read_text().strip().split("\t")
    if len(parts) < 5:
        raise ValueError(f"{label}: expected 'file x y w h TEXT' tab-separated, got {parts}")
    x, y, w, h = (float(v) for v in parts[1:5])
    return parts[0], np.array([[x, y, x + w, y + h]], dtype=np.float32)


def yolo_truth(label: Path, width: int, height: int) -> np.ndarray:
    rows = (
        [ln.split() for ln in label.read_text().splitlines() if ln.strip()]
        if label.exists()
        else []
    )
    out = []
    for r in rows:
        cx, cy, bw, bh = (float(v) for v in r[1:5])
        out.append(
            [
                (cx - bw / 2) * width,
                (cy - bh / 2) * height,
                (cx + bw / 2) * width,
                (cy + bh / 2) * height,
            ]
        )
    return np.array(out, dtype=np.float32).reshape(-1, 4)


def evaluate_openalpr(det: Detector, root: Path, teacher=None) -> dict[str, dict[str, Counts]]:
    """Per region: plate counts, and vehicle counts when a teacher is given."""
    results: dict[str, dict[str, Counts]] = {}
    for region_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        plate, vehicle = Counts(), Counts()
        for label in sorted(region_dir.glob("*.txt")):
            name, truth = openalpr_truth(label)
            frame = cv2.imread(str(region_dir / name))
            if frame is None:
                raise FileNotFoundError(f"{label}: image {name} not readable")
            boxes, _, classes = det(frame)
            plates = boxes[classes == PLATE_ID]
            hit, tp = match(truth, plates, PLATE_IOU)
            plate.n_images += 1
            plate.n_truth += len(truth)
            plate.n_pred += len(plates)
            plate.n_hit += hit
            plate.n_tp_pred += tp
            if teacher is not None:
                vt = np.array([d.box for d in teacher.detect(frame)], np.float32).reshape(-1, 4)
                vp = boxes[classes == VEHICLE_ID]
                hit, tp = match(vt, vp, VEHICLE_IOU)
                vehicle.n_images += 1
                vehicle.n_truth += len(vt)
                vehicle.n_pred += len(vp)
                vehicle.n_hit += hit
                vehicle.n_tp_pred += tp
        results[region_dir.name] = {"plate": plate, "vehicle": vehicle}
    return results


def evaluate_yolo_set(det: Detector, root: Path) -> Counts:
    c = Counts()
    for image in sorted((root / "images").iterdir()):
        frame = cv2.imread(str(image))
        if frame is None:
            continue
        truth = yolo_truth(root / "labels" / f"{image.stem}.txt", frame.shape[1], frame.shape[0])
        boxes, _, classes = det(frame)
        plates = boxes[classes == PLATE_ID]
        hit, tp = match(truth, plates, PLATE_IOU)
        c.n_images += 1
        c.n_truth += len(truth)
        c.n_pred += len(plates)
        c.n_hit += hit
        c.n_tp_pred += tp
    return c


def _total(counts: Sequence[Counts]) -> Counts:
    t = Counts()
    for c in counts:
        for k in asdict(t):
            setattr(t, k, getattr(t, k) + getattr(c, k))
    return t


def run(model: Path, data: Path, with_teacher: bool = True) -> dict:
    import onnxruntime  # noqa: F401  (fail early with a clear error)

    det = Detector(model)
    teacher = None
    if with_teacher and offline.DEFAULT_CHECKPOINT.exists():
        from training.detector.teacher import VehicleTeacher

        teacher = VehicleTeacher(offline.DEFAULT_CHECKPOINT, conf_threshold=0.3)
    oa = evaluate_openalpr(det, data / "openalpr-dev", teacher)
    rows: dict[str, dict] = {}
    for region, d in oa.items():
        rows[f"openalpr-dev/{region}"] = {k: v.as_dict() for k, v in d.items() if v.n_images}
    rows["openalpr-dev/all"] = {
        k: _total([d[k] for d in oa.values()]).as_dict()
        for k in ("plate", "vehicle")
        if any(d[k].n_images for d in oa.values())
    }
    uc3m = data / "uc3m-lp-val"
    if uc3m.exists():
        rows["uc3m-lp-val"] = {"plate": evaluate_yolo_set(det, uc3m).as_dict()}
    times = np.array(det.times_ms)
    return {
        "input_size": list(det.imgsz),
        "conf_threshold": det.conf,
        "plate_iou": PLATE_IOU,
        "vehicle_iou": VEHICLE_IOU,
        "onnx_ms_1thread_median": round(float(np.median(times)), 2),
        "sets": rows,
    }


def format_table(metrics: dict) -> str:
    lines = ["| set | class | images | truths | recall | precision |", "|---|---|---|---|---|---|"]
    for name, d in metrics["sets"].items():
        for cls, c in d.items():
            lines.append(
                f"| {name} | {cls} | {c['n_images']} | {c['n_truth']} | "
                f"{c['recall']:.3f} | {c['precision']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    from training.detector.export import MODELS_DIR, sha256

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", type=Path, default=MODELS_DIR / "detector.onnx")
    ap.add_argument("--data", type=Path, default=offline.data_root())
    ap.add_argument("--no-teacher", action="store_true", help="skip vehicle recall")
    ap.add_argument("--write", action="store_true", help="store metrics in detector.json")
    args = ap.parse_args(argv)
    metrics = run(args.model, args.data, not args.no_teacher)
    print(format_table(metrics))
    print(
        f"ONNX Runtime 1 thread, {metrics['input_size']}: median "
        f"{metrics['onnx_ms_1thread_median']} ms per frame"
    )
    if args.write:
        meta_path = args.model.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        if meta.get("onnx_sha256") != sha256(args.model):
            raise ValueError(f"{meta_path} does not describe {args.model} (sha256 differs)")
        meta["metrics"] = metrics
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        from training.detector.card import render_card
        from training.detector.train import RUN_NAME, RUN_PROJECT

        card = args.model.with_suffix(".md")
        card.write_text(
            render_card(
                meta,
                RUN_PROJECT / RUN_NAME,
                offline.WORK_DIR / "dataset" / "manifest.json",
                args.model,
            )
        )
        print(f"wrote metrics to {meta_path} and {card}")


if __name__ == "__main__":
    main()
