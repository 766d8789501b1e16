"""Latency of ``platewatch image``'s per-image path on a 1280x720 photo.

Models loaded once, 1 CPU thread (ONNX Runtime intra-op threads = 1), warm-up runs, then N
timed runs; prints the median and p90 of each stage: decode (JPEG -> BGR), detect (letterbox +
detector + decoding), read (crops + reader batch + CTC), total (decode + detect + read, as the
command runs it). Target: total median <= 150 ms.

    python benchmarks/bench_image.py [--image PHOTO] [--models DIR] [--runs 30] [--threads 1]

Default photo: the first 1280x720 image of openalpr-dev/us (data root $PLATEWATCH_DATA or
../shared/data); any other photo is resized to 1280x720 first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/onnxruntime start their pools

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.detect.alpr import Alpr  # noqa: E402
from edge.detect.models import load_models  # noqa: E402

SIZE = (1280, 720)


def default_image() -> Path:
    data = Path(os.environ.get("PLATEWATCH_DATA", REPO.parent / "shared" / "data"))
    us = data / "openalpr-dev" / "us"
    photos = sorted(us.glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no photos in {us}; pass --image PHOTO")
    for p in photos:
        img = cv2.imread(str(p))
        if img is not None and img.shape[1::-1] == SIZE:
            return p
    return photos[0]


def encoded_1280x720(path: Path) -> bytes:
    img = cv2.imread(str(path))
    if img is None:
        raise SystemExit(f"cannot read {path}")
    if img.shape[1::-1] != SIZE:
        img = cv2.resize(img, SIZE, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    image = args.image or default_image()
    jpeg = np.frombuffer(encoded_1280x720(image), np.uint8)
    detector, reader = load_models(args.models, threads=args.threads, device="cpu")
    alpr = Alpr(detector, reader)
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "read": [], "total": []}
    plates = []
    for i in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        result = alpr.process(frame)
        plates = list(result.plates)
        t2 = time.perf_counter()
        if i >= args.warmup:
            stages["decode"].append((t1 - t0) * 1e3)
            stages["detect"].append(result.timings.detect_ms)
            stages["read"].append(result.timings.read_ms)
            stages["total"].append((t2 - t0) * 1e3)

    print(f"image: {image} -> 1280x720, {len(plates)} plate(s): {[p.text for p in plates]}")
    print(
        f"detector {detector.path} input {list(detector.spec.input_size)}, "
        f"reader {reader.path}; threads={args.threads}, runs={args.runs}"
    )
    print(f"{'stage':8} {'median ms':>10} {'p90 ms':>8}")
    for name, values in stages.items():
        p90 = float(np.percentile(values, 90))
        print(f"{name:8} {statistics.median(values):10.1f} {p90:8.1f}")
    total = statistics.median(stages["total"])
    print(f"target <= 150 ms: {'PASS' if total <= 150 else 'FAIL'} ({total:.1f} ms)")
    alpr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
