"""Extract training frames from a video: every Nth frame, minus near-duplicates.

A parked-camera video repeats the same empty street for minutes; labelling those frames costs
time and teaches nothing. A frame is kept only when its small grey thumbnail differs from the
last *kept* frame's by at least ``min_diff`` grey levels (mean absolute difference). Comparing
with the last kept frame, not the previous one, stops a slow drift being dropped step by step.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

THUMB_WIDTH = 64


def thumbnail(frame: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """Grey, area-downscaled copy: averaging over blocks cancels sensor/codec noise."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference of two thumbnails (0..255)."""
    return float(np.mean(np.abs(a - b)))


def extract_frames(
    video: Path | str,
    out_dir: Path | str,
    *,
    every: int = 10,
    min_diff: float = 2.0,
    max_frames: int | None = None,
    jpeg_quality: int = 95,
    prefix: str | None = None,
) -> list[Path]:
    """Write every ``every``-th frame that is not a near-duplicate of the last kept one as
    ``<prefix>_<frame index:06d>.jpg``; return the written paths in order.

    ``min_diff=0`` keeps every Nth frame. Raises FileNotFoundError / ValueError for a missing
    or unreadable video, naming it.
    """
    video = Path(video)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"{video}: OpenCV cannot open this video")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = prefix if prefix is not None else video.stem
    written: list[Path] = []
    last: np.ndarray | None = None
    index = -1
    try:
        while max_frames is None or len(written) < max_frames:
            index += 1
            if index % every:
                # grab() skips the colour conversion of frames we will not look at.
                if not cap.grab():
                    break
                continue
            ok, frame = cap.read()
            if not ok:
                break
            thumb = thumbnail(frame)
            if last is not None and frame_difference(thumb, last) < min_diff:
                continue
            path = out / f"{prefix}_{index:06d}.jpg"
            if not cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"cannot write {path}")
            written.append(path)
            last = thumb
    finally:
        cap.release()
    if index == 0 and not written:
        raise ValueError(f"{video}: no frame could be decoded")
    return written
