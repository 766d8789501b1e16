"""INT8 detector: static quantisation of the exported ONNX detector, calibrated on real frames.

    python -m training.detector.quantize [--model models/detector.onnx]
        [--out runs/detector.int8.onnx] [--calib 160] [--method percentile]

ONNX Runtime's static quantisation (QDQ: int8 weights per output channel, uint8 activations,
the form its x86 kernels run with VNNI) with activation ranges measured on real scenes that are
no evaluation set: ``ro-dashcam`` frames (every video), ``world-plate-scenes`` photos and
plate-free ``backgrounds``. Never ``openalpr-dev`` or ``uc3m-lp-val``, which then judge the
result. Each image is letterboxed exactly as the runtime does (edge.detect.vision), so the
ranges are those the deployed model sees.

The Detect head stays float (see ``quantize``). The sidecar ``detector.int8.json`` is the float
model's, with its own hash and a ``quantization`` record. INT8 becomes the default only where it
keeps plate recall within 1 point and is faster. On the shipped 416 px YOLOv5n it is not faster
on this AVX-512 VNNI CPU (16.1 ms float, 15.8 ms QDQ, 15.7 ms QOperator per frame at 1
thread): the SiLU activations keep most of the network out of the fused int8 kernels. So
``models/`` ships the float model only (measured figures: models/detector.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def calibration_images(data: Path, n: int, seed: int = 0) -> list[Path]:
    """Up to ``n`` real scenes (no evaluation set), spread over the sources."""
    pools = [
        sorted((data / "ro-dashcam").glob("*/*.jpg")),
        sorted((data / "world-plate-scenes" / "images").glob("*.jpg")),
        sorted((data / "backgrounds").glob("*.jpg")),
    ]
    rng = np.random.default_rng(seed)
    share = [0.45, 0.4, 0.15]
    out: list[Path] = []
    for pool, s in zip(pools, share, strict=True):
        if pool:
            k = min(len(pool), max(1, round(n * s)))
            out += [pool[i] for i in sorted(rng.choice(len(pool), k, replace=False))]
    return out


def batches(paths: list[Path], size: tuple[int, int]) -> Iterator[np.ndarray]:
    from edge.detect.vision import letterbox, to_nchw_float

    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            yield to_nchw_float(letterbox(img, size)[0])


def quantize(model: Path, out: Path, paths: list[Path], method: str, fmt: str = "qdq") -> dict:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = json.loads(model.with_suffix(".json").read_text())
    size = tuple(meta["input_size"])
    import onnx

    graph = onnx.load(str(model)).graph
    input_name = graph.input[0].name
    # The Detect head stays float: it concatenates box coordinates (0-416 px) with class
    # scores (0-1) in one tensor, and one uint8 scale for both turns every score into 0 (the
    # first try found no plate at all). Its last node names the head's module.
    head = "/".join(graph.node[-1].name.split("/")[:2]) + "/"
    exclude = [n.name for n in graph.node if n.name.startswith(head)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = ({input_name: b} for b in batches(paths, size))  # type: ignore[arg-type]

        def get_next(self) -> dict | None:
            return next(self.it, None)

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(model), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=exclude,
            extra_options={"CalibPercentile": 99.99} if method == "percentile" else {},
        )
    meta = dict(meta)
    meta["onnx_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    meta["version"] = f"{meta.get('version', 'detector')}-int8"
    meta["quantization"] = {
        "format": "QOperator" if fmt == "qoperator" else "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8",
        "calibration": method,
        "calibration_images": len(paths),
        "calibration_sources": ["ro-dashcam", "world-plate-scenes", "backgrounds"],
        "from": model.name,
        "float_nodes": f"{head} (the Detect head, {len(exclude)} nodes)",
    }
    meta.pop("metrics", None)  # the float model's figures are not this model's
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "detector.onnx")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "detector.int8.onnx")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--calib", type=int, default=160, help="calibration images")
    ap.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="percentile")
    ap.add_argument("--format", choices=("qdq", "qoperator"), default="qdq")
    args = ap.parse_args(argv)
    if not args.model.is_file() or not args.model.with_suffix(".json").is_file():
        print(f"quantize: {args.model} (and its .json) not found", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = calibration_images(args.data, args.calib)
    if len(paths) < 10:
        print(f"quantize: only {len(paths)} calibration images under {args.data}", file=sys.stderr)
        return 2
    meta = quantize(args.model, args.out, paths, args.method, args.format)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.2f} MB), calibrated on {len(paths)} images "
          f"({meta['quantization']['calibration']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
