"""Per-camera health figures for the periodic ``CameraStats`` messages.

- `RateMeter`: events per second over a sliding time window (frames in, frames analysed).
- `LatencyWindow`: p50/p95 of the most recent latency samples (a bounded window, so a spike
  an hour ago does not colour today's figures).
- `CameraHealth`: the two above plus the capture's own counters -> `edge.events.schema.CameraStats`
  (``fps_in`` is the source's rate from the capture counter, between two snapshots).

Times are ``time.monotonic()`` seconds unless a caller passes its own clock.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Sequence

from edge.capture.camera import CaptureStats
from edge.events.schema import CameraStats


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method) of ``values``; None if empty."""
    if not values:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class LatencyWindow:
    """The last ``size`` samples (ms) and their percentiles. Thread-safe."""

    def __init__(self, size: int = 300) -> None:
        if size < 1:
            raise ValueError("latency window size must be >= 1")
        self._values: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(float(ms))

    def percentile(self, q: float) -> float | None:
        with self._lock:
            values = list(self._values)
        return percentile(values, q)

    def __len__(self) -> int:
        return len(self._values)


class RateMeter:
    """Events per second over the last ``window_s`` seconds. Thread-safe."""

    def __init__(self, window_s: float = 10.0) -> None:
        if window_s <= 0:
            raise ValueError("rate window must be > 0")
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.total = 0

    def tick(self, now: float | None = None, n: int = 1) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for _ in range(n):
                self._times.append(now)
            self.total += n
            self._trim(now)

    def _trim(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._times and self._times[0] < cutoff:
            self._times.popleft()

    def rate(self, now: float | None = None, since: float | None = None) -> float:
        """Events/s in the window. ``since`` (when the meter started) shortens the window while
        it is younger than ``window_s`` so a fresh camera does not read as slow."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            n = len(self._times)
        span = self.window_s if since is None else min(self.window_s, max(now - since, 1e-3))
        return n / span


class CameraHealth:
    """Everything `CameraStats` needs for one camera, fed by the inference worker."""

    def __init__(self, camera: str, window_s: float = 10.0, latency_samples: int = 300) -> None:
        self.camera = camera
        self.started = time.monotonic()
        self.frames_taken = RateMeter(window_s)  # frames the worker took off the queue
        self.frames_analysed = RateMeter(window_s)
        self.latency = LatencyWindow(latency_samples)
        self._read_mark: tuple[float, int] | None = None  # (time, capture frames_read)

    def snapshot(self, capture: CaptureStats, now: float | None = None) -> CameraStats:
        now = time.monotonic() if now is None else now
        # Input rate from the capture's own counter (frames the source delivered, including
        # those later dropped), since the previous snapshot.
        t0, n0 = self._read_mark or (self.started, 0)
        fps_in = max(0, capture.frames_read - n0) / max(now - t0, 1e-3)
        self._read_mark = (now, capture.frames_read)
        return CameraStats(
            camera=self.camera,
            online=capture.online,
            fps_in=fps_in,
            fps_analysed=self.frames_analysed.rate(now, self.started),
            frames_dropped=capture.frames_dropped,
            frames_corrupt=capture.frames_corrupt,
            latency_ms_p50=self.latency.percentile(50),
            latency_ms_p95=self.latency.percentile(95),
            reconnects=capture.reconnects,
            queue_depth=capture.queue_depth,
            last_error=capture.last_error,
        )


__all__ = ["CameraHealth", "LatencyWindow", "RateMeter", "percentile"]
