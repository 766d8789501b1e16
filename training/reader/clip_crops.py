"""Reader training crops cut from rendered traffic clips: the video domain, not the plate sheet.

    python -m training.reader.clip_crops --out /work/runs/clip_crops --clips 120 \
        [--seed-base 1000] [--every 3] [--width 1920 --height 1080]

Why: a plate the generator draws flat and then degrades is not what the runtime reads from a
video. On a clip the plate is warped onto a moving car, motion-blurred, shrunk to 20-60 px,
mp4-compressed, and cut by a detector box that is never exactly tight. Crops made the same way
(the clip is written, decoded again, and the plate box jittered and grown by the runtime's
`expand_box` margin) teach the reader that domain. Output: ``NNNNN_TEXT.jpg`` like
``br-plate-crops``, so ``training.reader.train --extra-crops`` reads them as it reads real crops.

Seeds start at ``--seed-base`` (default 1000): the clips of the tests, benchmarks and the demo
use seeds below 100, so none of them is ever trained on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edge.detect.plate_input import expand_box

from .data import valid_text

MIN_PLATE_HEIGHT = 10  # px; below this no reader (or human) can read the characters
UNREADABLE = ("blur", "glare")


def jitter_box(
    box: tuple[float, float, float, float], rng: np.random.Generator, amount: float = 0.08
) -> tuple[float, float, float, float]:
    """Move each edge by up to ``amount`` of the box size, as a detector's box would differ."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx = rng.uniform(-amount, amount, 2) * w
    dy = rng.uniform(-amount, amount, 2) * h
    return (x1 + dx[0], y1 + dy[0], x2 + dx[1], y2 + dy[1])


def crops_from_clip(
    clip: Path, truth: object, rng: np.random.Generator, every: int = 3, margin: float = 0.08
) -> list[tuple[np.ndarray, str]]:
    """Decode ``clip`` and cut every ``every``-th frame's fully visible plates (jittered box)."""
    cap = cv2.VideoCapture(str(clip))
    out: list[tuple[np.ndarray, str]] = []
    index = -1
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            index += 1
            if index % every:
                continue
            h, w = frame.shape[:2]
            for v in truth.vehicles:  # type: ignore[attr-defined]
                ft = v.frames.get(index)
                if ft is None or ft.plate_box is None or ft.plate_visibility != "full":
                    continue
                if ft.plate_box[3] - ft.plate_box[1] < MIN_PLATE_HEIGHT:
                    continue
                # Frames the renderer washed out (heavy blur, glare) are unreadable by design:
                # a label on them would teach the reader to invent characters. Motion blur stays.
                if ft.degraded in UNREADABLE:
                    continue
                x1, y1, x2, y2 = expand_box(jitter_box(ft.plate_box, rng), w, h, margin)
                if x2 - x1 < 8 or y2 - y1 < 6:
                    continue
                out.append((frame[y1:y2, x1:x2].copy(), v.text))
    finally:
        cap.release()
    return out


def main(argv: list[str] | None = None) -> int:
    from training.synth.video import render_clip

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", type=int, default=120)
    ap.add_argument("--seed-base", type=int, default=1000)
    ap.add_argument("--every", type=int, default=3, help="cut plates from every Nth frame")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--vehicles", type=int, default=3)
    a = ap.parse_args(argv)
    if a.seed_base < 100:
        ap.error("--seed-base must be >= 100: seeds below are the tests', benchmarks' and demo's")
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed_base)
    n = len(list(a.out.glob("*.jpg")))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.clips):
            seed = a.seed_base + k
            clip = Path(tmp) / f"clip{seed}.mp4"
            # Alternate the two glyph sources and the frame sizes the runtime meets.
            width, height = (a.width, a.height) if k % 3 else (1280, 720)
            truth = render_clip(
                clip,
                width=width,
                height=height,
                fps=25,
                seconds=a.seconds,
                n_vehicles=a.vehicles,
                seed=seed,
                ttf_only=bool(k % 2),
                noise=float(rng.uniform(1.0, 4.0)),
            )
            for image, text in crops_from_clip(clip, truth, rng, every=a.every):
                if not valid_text(text):
                    continue
                n += 1
                cv2.imwrite(
                    str(a.out / f"{n:06d}_{text}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95]
                )
            clip.unlink(missing_ok=True)  # the truth file goes with the temporary folder
            print(
                f"clip {k + 1}/{a.clips} seed {seed}: {n} crops, "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
