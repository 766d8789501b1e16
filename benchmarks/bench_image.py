"""Latency of ``platewatch image``'s per-image path on a 1280x720 photo.

Models loaded once, 1 CPU thread (ONNX Runtime intra-op threads = 1), warm-up runs, then N
timed runs; prints the median and p90 of each stage, for two paths measured in the same run,
interleaved (so under the same load):

- ``stills`` (what ``platewatch image`` runs): decode (`edge.detect.images.decode_image`:
  header check, then JPEG -> BGR), detect (letterbox + detector + decoding), read (every crop
  variant of every plate in one reader batch + the choice of one read per plate), total;
- ``single`` (``Alpr.process``: one 8 % crop per plate, what the video pipeline runs and what
  ``platewatch image`` ran before the crop variants): decode (plain ``cv2.imdecode``), detect,
  read, total.

Target: total median <= 150 ms.

With ``--folder DIR`` it also times whole batches as the command runs them (ms per image over
every image of DIR, ``--rounds`` rounds interleaved, median round): ``image`` (edge.cli.image
process_images: crop variants, the next file decoded in a worker thread while this one is
inferred), ``image, no prefetch`` (the same, decoding in line) and ``single-crop loop`` (decode,
``Alpr.process``, one JSON line: the command before crop variants and prefetching).

    python benchmarks/bench_image.py [--image PHOTO] [--models DIR] [--runs 30] [--threads 1]
        [--folder DIR --rounds 3]

Default photo: the first 1280x720 image of openalpr-dev/us (data root $PLATEWATCH_DATA, else
the nearest ``shared/data`` above this checkout); any other photo is resized to 1280x720 first.
The machine's load average is printed before and after: on a shared CPU the figures move.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/onnxruntime start their pools

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.detect.alpr import Alpr  # noqa: E402
from edge.detect.images import decode_image  # noqa: E402
from edge.detect.models import load_models  # noqa: E402

SIZE = (1280, 720)


def data_root() -> Path:
    """$PLATEWATCH_DATA, else the first ``shared/data`` beside a folder above this checkout
    (``/work/main`` -> ``/work/shared/data``; a worktree ``/work/wt/x`` finds it too)."""
    env = os.environ.get("PLATEWATCH_DATA")
    if env:
        return Path(env)
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return REPO.parent / "shared" / "data"


def default_image() -> Path:
    us = data_root() / "openalpr-dev" / "us"
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


def time_folder(alpr: Alpr, folder: Path, rounds: int, min_long_side: int) -> None:
    from edge.cli.image import process_images
    from edge.detect.images import iter_images

    files = [p for p, problem in iter_images([str(folder)]) if problem is None]
    sink = open(os.devnull, "w")

    def single_loop() -> None:  # the command's loop before crop variants and prefetching
        for f in files:
            frame = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR)
            t0 = time.perf_counter()
            result = alpr.process(frame)
            ms = (time.perf_counter() - t0) * 1e3
            plates = [
                {"text": p.text, "confidence": p.confidence, "box": list(p.box)}
                for p in result.plates
            ]
            sink.write(json.dumps({"image": f, "plates": plates, "ms": ms}) + "\n")

    runs = {
        "image": lambda: process_images(
            [str(folder)], alpr, out=sink, err=sink, min_long_side=min_long_side
        ),
        "image, no prefetch": lambda: process_images(
            [str(folder)], alpr, out=sink, err=sink, min_long_side=min_long_side, prefetch=False
        ),
        "single-crop loop": single_loop,
    }
    per_image: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds + 1):  # round 0 warms the caches
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            if r:
                per_image[name].append((time.perf_counter() - t0) * 1e3 / len(files))
    print(f"batch of {len(files)} images in {folder} ({rounds} rounds, ms per image):")
    for name, values in per_image.items():
        rounds_ms = " ".join(f"{v:.1f}" for v in values)
        print(f"  {name:20} median {statistics.median(values):6.1f}   rounds: {rounds_ms}")
    sink.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--folder", type=Path, default=None, help="also time batches of DIR")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    image = args.image or default_image()
    jpeg_bytes = encoded_1280x720(image)
    jpeg = np.frombuffer(jpeg_bytes, np.uint8)
    tmp = Path(tempfile.mkdtemp()) / "bench.jpg"
    tmp.write_bytes(jpeg_bytes)
    detector, reader = load_models(args.models, threads=args.threads, device="cpu")
    alpr = Alpr(detector, reader)
    min_long_side = 10 * max(detector.spec.input_size)  # as `platewatch image`
    paths = ("stills", "single")
    stages = {p: {s: [] for s in ("decode", "detect", "read", "total")} for p in paths}
    texts: dict[str, list[str]] = {}
    for i in range(args.warmup + args.runs):
        for path in paths if i % 2 == 0 else paths[::-1]:  # alternate who goes first
            t0 = time.perf_counter()
            if path == "stills":
                frame = decode_image(str(tmp), min_long_side=min_long_side).image
            else:
                frame = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            result = alpr.process_still(frame) if path == "stills" else alpr.process(frame)
            t2 = time.perf_counter()
            texts[path] = [p.text for p in result.plates]
            if i >= args.warmup:
                stages[path]["decode"].append((t1 - t0) * 1e3)
                stages[path]["detect"].append(result.timings.detect_ms)
                stages[path]["read"].append(result.timings.read_ms)
                stages[path]["total"].append((t2 - t0) * 1e3)

    print(f"image: {image} -> 1280x720")
    print(
        f"detector {detector.path} input {list(detector.spec.input_size)}, "
        f"reader {reader.path}; threads={args.threads}, runs={args.runs}, "
        f"crop variants (stills): {', '.join(v.name for v in alpr.still_variants)}"
    )
    for path in paths:
        print(f"{path}: {len(texts[path])} plate(s) {texts[path]}")
    print(f"{'stage':8} " + " ".join(f"{p + ' median':>14} {'p90':>6}" for p in paths))
    for name in ("decode", "detect", "read", "total"):
        cells = []
        for p in paths:
            values = stages[p][name]
            cells.append(f"{statistics.median(values):14.1f} {np.percentile(values, 90):6.1f}")
        print(f"{name:8} " + " ".join(cells))
    total = statistics.median(stages["stills"]["total"])
    print(f"target <= 150 ms: {'PASS' if total <= 150 else 'FAIL'} ({total:.1f} ms, stills)")
    if args.folder is not None:
        time_folder(alpr, args.folder, args.rounds, min_long_side)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    alpr.close()
    tmp.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
