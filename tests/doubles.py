"""Test doubles shared by the test packages.

``OracleEngine`` stands in for the neural models with a rendered clip's ground truth: true
vehicle and plate boxes, and reads of the true text corrupted at a seeded rate (more on
blurred/glared frames), so everything after inference is exercised on realistic motion without
the trained models. ``ListSink`` collects what a pipeline publishes.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from edge.detect.alpr import build_result
from edge.events.alerts import Alert
from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink
from edge.types import Frame, FrameResult, TextRead

ALNUM = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


class ListSink(Sink):
    """Collects what the pipeline publishes (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[PlateEvent] = []
        self.stats: list[CameraStats] = []
        self.alerts: list[Alert] = []
        self.closed = False
        self._lock = threading.Lock()

    def publish_event(self, event: PlateEvent) -> None:
        with self._lock:
            self.events.append(event)

    def publish_stats(self, stats: CameraStats) -> None:
        with self._lock:
            self.stats.append(stats)

    def publish_alert(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def close(self, timeout: float = 2.0) -> None:
        self.closed = True

    def finals(self) -> list[PlateEvent]:
        return [e for e in self.events if e.type == "final"]


def build_plate(box: tuple, text: str, conf: float = 0.95, score: float = 0.8) -> tuple:
    """One plate for edge.detect.alpr.build_result: (box, detector score, read)."""
    return (tuple(float(v) for v in box), score, TextRead(text, conf, (conf,) * len(text)))


def noisy_read(text: str, rng: np.random.Generator, error_rate: float) -> TextRead:
    chars = list(text)
    confs = [float(rng.uniform(0.85, 0.99)) for _ in chars]
    if rng.random() < error_rate:
        i = int(rng.integers(len(chars)))
        chars[i] = ALNUM[int(rng.integers(len(ALNUM)))]
        confs[i] = float(rng.uniform(0.3, 0.6))
    return TextRead("".join(chars), min(confs), tuple(confs))


class OracleEngine:
    """Inference from a `ClipTruth`: detector = true boxes, reader = noisy true text."""

    def __init__(
        self,
        truth: object,
        error_rate: float = 0.25,
        degraded_error_rate: float = 0.8,
        seed: int = 0,
        delay_s: float = 0.0,
    ) -> None:
        self.truth = truth
        self.error_rate = error_rate
        self.degraded_error_rate = degraded_error_rate
        self.seed = seed
        self.delay_s = delay_s
        self.calls = 0

    def infer(self, frame: Frame) -> FrameResult:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        rng = np.random.default_rng((self.seed, frame.index))
        vehicles, plates = [], []
        for v, ft in self.truth.plates_in_frame(frame.index):  # type: ignore[attr-defined]
            if ft.vehicle_box is not None:
                vehicles.append((tuple(ft.vehicle_box), 0.9))
            if ft.plate_box is None or ft.plate_visibility != "full":
                continue
            rate = self.degraded_error_rate if ft.degraded else self.error_rate
            plates.append((tuple(ft.plate_box), 0.8, noisy_read(v.text, rng, rate)))
        return build_result(frame.image, vehicles, plates)
