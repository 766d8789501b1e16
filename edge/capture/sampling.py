"""Frame sampling and the motion gate: which frames are worth running the detector on.

Both are per-camera, cheap and pure-ish (the gate keeps one small reference image):

- `FrameSampler` analyses one frame in every ``every`` source frames. It counts by frame index,
  not by frames received, so a live camera whose queue dropped frames is not sampled even more
  sparsely than asked (a gap of >= ``every`` frames always lets the next frame through).
- `MotionGate` compares a downscaled, blurred grey copy of the frame with a reference; when less
  than ``min_changed`` of its pixels changed by more than ``pixel_threshold`` the scene is idle
  and the detector is skipped. The reference is the last frame that *was* analysed, so a slow
  creep (a car rolling in over many frames) accumulates until it passes the threshold instead of
  being compared frame-to-frame and never noticed. ``max_idle_s`` forces an analysis now and then
  anyway (a parked car that stopped moving is still re-checked).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.capture.config import MotionConfig


class FrameSampler:
    """Analyse every ``every``-th frame (by source frame index)."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"sample_every must be >= 1, got {every}")
        self.every = every
        self._last: int | None = None

    def take(self, index: int) -> bool:
        """True if frame ``index`` should be analysed (call once per frame, indices increasing)."""
        if self._last is None or index - self._last >= self.every or index < self._last:
            # index < last: a looping file restarted its numbering; start over.
            self._last = index
            return True
        return False


def motion_fraction(a: np.ndarray, b: np.ndarray, pixel_threshold: int) -> float:
    """Fraction of pixels whose grey level differs by more than ``pixel_threshold``."""
    if a.shape != b.shape:
        return 1.0
    diff = cv2.absdiff(a, b)
    return float(np.count_nonzero(diff > pixel_threshold)) / float(diff.size)


class MotionGate:
    """Says whether a frame differs enough from the last analysed one to be worth detecting."""

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._ref: np.ndarray | None = None
        self._ref_time: float = 0.0
        self.last_fraction: float = 0.0

    def small(self, image: np.ndarray) -> np.ndarray:
        """The downscaled, blurred grey image the gate compares."""
        cfg = self.config
        h, w = image.shape[:2]
        sw = min(cfg.width, w)
        sh = max(1, round(h * sw / w))
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (sw, sh), interpolation=cv2.INTER_AREA)
        k = cfg.blur | 1
        return cv2.GaussianBlur(small, (k, k), 0) if k > 1 else small

    def check(self, image: np.ndarray, now: float) -> bool:
        """True when ``image`` should be analysed (motion, first frame, or idle too long).

        ``now`` is the caller's clock in seconds (video time for files, monotonic for live).
        An analysed frame becomes the new reference.
        """
        small = self.small(image)
        if self._ref is None:
            self._ref, self._ref_time, self.last_fraction = small, now, 1.0
            return True
        self.last_fraction = motion_fraction(small, self._ref, self.config.pixel_threshold)
        if self.last_fraction >= self.config.min_changed or now - self._ref_time >= (
            self.config.max_idle_s
        ):
            self._ref, self._ref_time = small, now
            return True
        return False

    def reset(self) -> None:
        self._ref = None


__all__ = ["FrameSampler", "MotionConfig", "MotionGate", "motion_fraction"]
