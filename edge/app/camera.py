"""One camera inside the pipeline: its capture, sampling, motion gate, analyzer and health.

`CameraRuntime.process` takes one captured frame through sampling, the motion gate, inference
and the analyzer, and returns the decisions to deliver. The pipeline's worker calls it; nothing
here starts a thread (the capture owns its own).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from edge.analysis.analyzer import CameraAnalyzer
from edge.app.stats import CameraHealth
from edge.capture.camera import CameraCapture, CaptureStats, make_source
from edge.capture.config import CaptureConfig
from edge.capture.sampling import FrameSampler, MotionGate
from edge.capture.sources import FrameSource
from edge.types import Frame, FrameResult, PlateDecision

log = logging.getLogger("platewatch.pipeline")


class InferenceEngine(Protocol):
    """Frame -> FrameResult (edge.detect.alpr.Alpr). The pipeline calls it from one thread."""

    def infer(self, frame: Frame) -> FrameResult: ...


@dataclass
class StageTotals:
    """Seconds spent per stage, summed over the run (all cameras)."""

    detect: float = 0.0
    read: float = 0.0
    track_vote: float = 0.0  # tracking, linking, voting and event mapping
    motion: float = 0.0
    annotate: float = 0.0  # handing frames to the annotator (its drawing runs elsewhere)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


SourceFactory = Callable[[CaptureConfig], FrameSource]
StatusCallback = Callable[[CaptureStats], None]


@dataclass
class CameraRuntime:
    capture_config: CaptureConfig
    sampler: FrameSampler
    gate: MotionGate | None
    analyzer: CameraAnalyzer
    source_factory: SourceFactory = make_source
    on_status: StatusCallback | None = None
    capture: CameraCapture = field(init=False)
    health: CameraHealth = field(init=False)
    frames: int = 0
    motion_skipped: int = 0
    errors: int = 0  # frames whose processing raised (logged and skipped)
    index_offset: int = 0  # added to the capture's frame numbers (see process)
    last_index: int | None = None
    done: bool = False
    # Counters of captures replaced by the watchdog, so stats stay cumulative across restarts.
    restarts: int = 0
    prior: dict[str, int] = field(default_factory=dict)
    restart_note: str | None = None

    def __post_init__(self) -> None:
        self.capture = self.new_capture()
        self.health = CameraHealth(self.name)

    @property
    def name(self) -> str:
        return self.capture_config.name

    def new_capture(self) -> CameraCapture:
        return CameraCapture(
            self.capture_config, on_status=self.on_status, source_factory=self.source_factory
        )

    def process(
        self, frame: Frame, engine: InferenceEngine, stages: StageTotals
    ) -> tuple[Frame, FrameResult | None, list[PlateDecision], bool]:
        """(frame as numbered for the trackers, its result or None, decisions, sampled)."""
        index = frame.index + self.index_offset
        if self.last_index is not None and index <= self.last_index:
            # A live source that reconnected numbers its frames from 0 again; trackers need
            # increasing frame numbers, so continue the count (files keep their own numbers).
            self.index_offset += self.last_index + 1 - index
            index = self.last_index + 1
        if index != frame.index:
            frame = dataclasses.replace(frame, index=index)
        self.last_index = index
        self.frames += 1
        self.health.frames_taken.tick()
        if not self.sampler.take(frame.index):
            return frame, None, [], False
        analysed = True
        if self.gate is not None:
            clock = frame.video_time_s if frame.video_time_s is not None else frame.monotonic
            t0 = time.perf_counter()
            analysed = self.gate.check(frame.image, clock)
            stages.motion += time.perf_counter() - t0
        result: FrameResult | None = None
        if analysed:
            result = engine.infer(frame)
            stages.detect += result.timings.detect_ms / 1e3
            stages.read += result.timings.read_ms / 1e3
            self.health.frames_analysed.tick()
        else:
            self.motion_skipped += 1
        t0 = time.perf_counter()
        decisions = self.analyzer.update(frame, result)
        stages.track_vote += time.perf_counter() - t0
        if analysed:
            self.health.latency.add((time.monotonic() - frame.monotonic) * 1e3)
        return frame, result, decisions, True

    def capture_stats(self) -> CaptureStats:
        """The capture's stats, cumulative over watchdog restarts (each restart counts as a
        reconnect; its note is the last error until the source reports its own)."""
        st = self.capture.stats()
        if not self.restarts:
            return st
        p = self.prior
        return dataclasses.replace(
            st,
            frames_read=st.frames_read + p.get("frames_read", 0),
            frames_dropped=st.frames_dropped + p.get("frames_dropped", 0),
            frames_corrupt=st.frames_corrupt + p.get("frames_corrupt", 0),
            reconnects=st.reconnects + p.get("reconnects", 0) + self.restarts,
            last_error=st.last_error or self.restart_note,
        )

    def restart_capture(self, note: str = "restarted") -> None:
        """Replace the capture by a fresh one (watchdog: the old one is stalled).

        The new capture is started BEFORE it is swapped in, and the old one stopped after, so
        the worker never sees a 'finished' capture and never ends the camera. The old thread is
        a daemon blocked in its source: it is abandoned (Python cannot kill a thread). Counters
        of the old capture are kept so stats stay cumulative.
        """
        old = self.capture
        st = old.stats()
        for k in ("frames_read", "frames_dropped", "frames_corrupt", "reconnects"):
            self.prior[k] = self.prior.get(k, 0) + int(getattr(st, k))
        new = self.new_capture()
        new.start()
        self.capture = new
        self.restarts += 1
        self.restart_note = note
        old.stop(timeout=0)
        log.warning("camera %s: %s", self.name, note)
