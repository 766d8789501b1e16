"""Export the trained detector to ONNX (models/detector.onnx) with its metadata JSON, after a
parity check between PyTorch and ONNX Runtime on the same letterboxed real image.

    python -m training.detector.export [--weights best.pt] [--imgsz 416]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.detect.vision import decode_yolo, letterbox, to_nchw_float
from training.data.records import DETECTOR_CLASSES
from training.detector import offline

MODELS_DIR = offline.REPO_ROOT / "models"
CONF_THRESHOLD = 0.25
IOU_THRESHOLD = 0.5


class ParityError(AssertionError):
    """PyTorch and ONNX Runtime disagree on the same input."""


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    n_boxes: int


def check_parity(
    torch_out: np.ndarray,
    onnx_out: np.ndarray,
    atol: float = 1e-3,
    conf_threshold: float = CONF_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    box_tol_px: float = 0.05,
) -> Parity:
    """Raise ParityError unless raw outputs agree within ``atol`` and decode to the same boxes."""
    if torch_out.shape != onnx_out.shape:
        raise ParityError(f"output shapes differ: torch {torch_out.shape} vs onnx {onnx_out.shape}")
    diff = float(np.max(np.abs(torch_out.astype(np.float64) - onnx_out.astype(np.float64))))
    if not np.isfinite(diff) or diff > atol:
        raise ParityError(f"max abs diff {diff:.3g} > {atol}")
    bt, st, ct = decode_yolo(torch_out, conf_threshold, iou_threshold)
    bo, so, co = decode_yolo(onnx_out, conf_threshold, iou_threshold)
    if len(bt) != len(bo) or not np.array_equal(ct, co):
        raise ParityError(f"decoded detections differ: {len(bt)} (torch) vs {len(bo)} (onnx)")
    if len(bt) and float(np.max(np.abs(bt - bo))) > box_tol_px:
        raise ParityError(f"decoded boxes differ by {float(np.max(np.abs(bt - bo))):.3g} px")
    return Parity(diff, len(bt))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def onnx_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # shared CPU; also the figure the runtime docs quote
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def parity_image(imgsz: int) -> np.ndarray:
    """A real street scene (dev set, used for checking only, never for training)."""
    import cv2

    candidates = sorted((offline.data_root() / "openalpr-dev" / "us").glob("*.jpg"))
    if not candidates:
        rng = np.random.default_rng(0)
        return rng.integers(0, 255, (imgsz, imgsz, 3), dtype=np.uint8)
    return cv2.imread(str(candidates[0]))


def torch_raw(weights: Path, x: np.ndarray) -> np.ndarray:
    """Raw head output of the PyTorch model, Conv+BN fused as in the exported graph (unfused,
    float32 rounding alone moves box coordinates of ~400 px by ~1.5e-3)."""
    import torch
    from ultralytics import YOLO

    net = YOLO(str(weights)).model.float().eval().fuse(verbose=False)
    with torch.no_grad():
        y = net(torch.from_numpy(x))
    y = y[0] if isinstance(y, (list, tuple)) else y
    return y.numpy()


def export(weights: Path, imgsz: int, out_dir: Path = MODELS_DIR) -> dict:
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(1)
    onnx_tmp = Path(
        YOLO(str(weights)).export(
            format="onnx",
            imgsz=imgsz,
            opset=17,
            simplify=True,
            dynamic=False,
            half=False,
            device="cpu",
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "detector.onnx"
    shutil.copyfile(onnx_tmp, onnx_path)

    img, _ = letterbox(parity_image(imgsz), imgsz)
    x = to_nchw_float(img)
    sess = onnx_session(onnx_path)
    if sess.get_inputs()[0].name != "images":
        raise ParityError(
            f"ONNX input is named {sess.get_inputs()[0].name!r}, contract says 'images'"
        )
    onnx_out = sess.run(None, {"images": x})[0]
    parity = check_parity(torch_raw(weights, x), onnx_out)
    print(f"[export] parity ok: max abs diff {parity.max_abs_diff:.2e}, {parity.n_boxes} boxes")

    meta_path = out_dir / "detector.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta = {
        "kind": "detector",
        "classes": list(DETECTOR_CLASSES),
        "input_size": [imgsz, imgsz],
        "conf_threshold": CONF_THRESHOLD,
        "iou_threshold": IOU_THRESHOLD,
        "version": f"yolov5n-{imgsz}-{_dt.date.today().isoformat()}",
        "onnx_sha256": sha256(onnx_path),
        "output": "ultralytics",
        "output_shape": list(onnx_out.shape),
        "parity_max_abs_diff": parity.max_abs_diff,
        # metrics are filled in by training.detector.evaluate --write; kept only if same model
        "metrics": old.get("metrics", {}) if old.get("onnx_sha256") == sha256(onnx_path) else {},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"[export] wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.2f} MB) and {meta_path}")
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    from training.detector.train import best_checkpoint

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--weights", type=Path, default=best_checkpoint())
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--out", type=Path, default=MODELS_DIR)
    args = ap.parse_args(argv)
    if not args.weights.exists():
        raise FileNotFoundError(f"weights not found: {args.weights} (train first)")
    export(args.weights, args.imgsz, args.out)


if __name__ == "__main__":
    main()
