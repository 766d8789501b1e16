"""The video runtime: cameras in, plate events out. Threads, queues, shutdown.

    capture thread per camera (edge.capture.CameraCapture, bounded queue, drop/back-pressure)
        -> ONE inference worker thread, round-robin over the cameras' queues:
             FrameSampler (every Nth frame) -> MotionGate (optional)
             -> InferenceEngine.infer (one Detector + one Reader for all cameras; plate crops
                from the full-resolution frame, all crops of a frame in one reader batch)
             -> FrameAnalysis -> CameraAnalyzer (tracks, links, votes; edge.analysis)
             -> PlateEvent
        -> sink thread (SinkWorker queue -> edge.sinks.*): MQTT spooling or a slow disk never
           blocks inference.

The worker also emits one `CameraStats` per camera every ``stats_interval_s``. When a file
source ends, its camera's trackers are flushed so every track gets its FINAL event.

Shutdown (`Pipeline.stop`, called by the commands on SIGINT/SIGTERM) takes < 2 s: captures are
told to stop, the worker finishes the frame it is on, discards queued frames, ends every track
(finals), then the sink thread drains and closes the sinks (the MQTT sink keeps anything the
broker has not acknowledged in its disk spool for the next start).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.analysis import (
    CameraAnalyzer,
    EventOptions,
    FrameAnalysis,
    TrackOverlay,
)
from edge.capture import CameraCapture, Frame
from edge.config import AppConfig, CameraConfig
from edge.events import CameraStats, PlateEvent
from edge.motion import FrameSampler, MotionConfig, MotionGate
from edge.plate_format import PlateFormats
from edge.sinks.base import MultiSink, Sink
from edge.sources import FrameSource
from edge.stats import CameraHealth
from edge.tracking import TrackerConfig
from edge.types import PlateResult
from edge.voting import VoterConfig

log = logging.getLogger("platewatch.pipeline")


# ----------------------------------------------------------------------------- inference stage


@dataclass(frozen=True)
class Inference:
    """What the models found in one frame (frame pixels)."""

    vehicle_boxes: np.ndarray  # (V, 4)
    vehicle_scores: np.ndarray  # (V,)
    plates: tuple[PlateResult, ...]
    detect_ms: float = 0.0
    read_ms: float = 0.0


class InferenceEngine(Protocol):
    """Frame -> Inference. The pipeline calls it from one thread only."""

    def infer(self, frame: Frame) -> Inference: ...


class AlprEngine:
    """`edge.alpr.Alpr` as the pipeline's inference engine (the shipped models)."""

    def __init__(self, alpr: object) -> None:
        from edge.alpr import VEHICLE, Alpr

        if not isinstance(alpr, Alpr):
            raise TypeError("AlprEngine needs an edge.alpr.Alpr")
        self.alpr = alpr
        self._vehicle = VEHICLE

    @classmethod
    def load(
        cls,
        detector: str | object,
        reader: str | object,
        threads: int = 1,
        device: str = "auto",
    ) -> AlprEngine:
        from edge.alpr import Alpr
        from edge.models import load_models

        det, rd = load_models(
            threads=threads,
            device=device,
            detector=detector,
            reader=reader,  # type: ignore[arg-type]
        )
        return cls(Alpr(det, rd))

    def infer(self, frame: Frame) -> Inference:
        plates = self.alpr.process(frame.image)  # type: ignore[attr-defined]
        dets = self.alpr.last_detections  # type: ignore[attr-defined]
        vehicles = dets.of_class(self._vehicle)
        t = self.alpr.last_times  # type: ignore[attr-defined]
        return Inference(vehicles.boxes, vehicles.scores, tuple(plates), t.detect_ms, t.read_ms)

    def close(self) -> None:
        self.alpr.close()  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- sink stage


class SinkWorker:
    """Moves events and stats to a `Sink` on its own thread (unbounded queue: events are few,
    and dropping one is never an option)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._queue: queue.Queue[PlateEvent | CameraStats | None] = queue.Queue()
        self.events = 0
        self.seconds = 0.0  # time spent inside the sink (the "sink" stage)
        self._thread = threading.Thread(target=self._run, name="sinks", daemon=True)
        self._thread.start()

    def put(self, item: PlateEvent | CameraStats) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            t0 = time.perf_counter()
            try:
                if isinstance(item, PlateEvent):
                    self.sink.publish_event(item)
                    self.events += 1
                else:
                    self.sink.publish_stats(item)
            except Exception:
                log.exception("sink failed on %s", type(item).__name__)
            self.seconds += time.perf_counter() - t0

    def close(self, timeout: float = 1.5) -> None:
        """Deliver everything queued, then close the sink; within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._thread.join(max(0.0, timeout * 0.5))
        if self._thread.is_alive():
            log.warning("sink thread still busy at shutdown; closing the sinks anyway")
        self.sink.close(max(0.1, deadline - time.monotonic()))


# ----------------------------------------------------------------------------- per camera


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over the run (all cameras)."""

    detect: float = 0.0
    read: float = 0.0
    track_vote: float = 0.0  # tracking, linking, voting and event mapping
    motion: float = 0.0
    annotate: float = 0.0  # handing frames to the annotator (its drawing runs elsewhere)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass
class CameraSummary:
    camera: str
    frames: int = 0
    analysed: int = 0
    motion_skipped: int = 0
    provisional: int = 0
    final: int = 0
    duplicates: int = 0
    dropped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    errors: int = 0  # frames whose processing raised (logged and skipped)
    ended: bool = False


@dataclass
class PipelineSummary:
    cameras: list[CameraSummary]
    seconds: float
    stages: StageTimes
    sink_seconds: float
    events: int

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.cameras)

    @property
    def analysed(self) -> int:
        return sum(c.analysed for c in self.cameras)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


FrameHook = Callable[[Frame, FrameAnalysis | None, Sequence[TrackOverlay]], None]


@dataclass
class _Camera:
    config: CameraConfig
    capture: CameraCapture
    sampler: FrameSampler
    gate: MotionGate | None
    analyzer: CameraAnalyzer
    health: CameraHealth
    frames: int = 0
    motion_skipped: int = 0
    errors: int = 0
    index_offset: int = 0  # added to the capture's frame numbers (see _process)
    last_index: int | None = None
    done: bool = False
    last_frame: Frame | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------- pipeline


class Pipeline:
    """Many cameras, one inference engine, one sink. ``start()``, ``wait()``, ``stop()``."""

    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        engine: InferenceEngine,
        sink: Sink,
        *,
        voter_config: VoterConfig | None = None,
        formats: PlateFormats | None = None,
        events: EventOptions | None = None,
        trackers: dict[int, TrackerConfig] | None = None,
        motion: MotionConfig | None = None,
        stats_interval_s: float = 30.0,
        on_frame: FrameHook | None = None,
        source_factory: Callable[[CameraConfig], FrameSource] | None = None,
        strict: bool = False,
    ) -> None:
        enabled = [c for c in cameras if c.enabled]
        if not enabled:
            raise ValueError("no enabled camera in the configuration")
        self.engine = engine
        self.events = events or EventOptions()
        self.stats_interval_s = stats_interval_s
        self.on_frame = on_frame
        self.strict = strict  # re-raise a frame's processing error instead of logging it
        self.sinks = SinkWorker(sink)
        self.stages = StageTimes()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._stopped = False
        self._worker: threading.Thread | None = None
        self.error: BaseException | None = None
        self.heartbeat = time.monotonic()  # last worker loop iteration (watchdog)
        self.cameras: list[_Camera] = []
        for cfg in enabled:
            kw = {"source_factory": source_factory} if source_factory is not None else {}
            self.cameras.append(
                _Camera(
                    config=cfg,
                    capture=CameraCapture(cfg, on_status=self._on_status, **kw),
                    sampler=FrameSampler(cfg.sample_every),
                    gate=MotionGate(motion) if cfg.motion_gate else None,
                    analyzer=CameraAnalyzer(
                        cfg.name,
                        voter_config=voter_config,
                        formats=formats,
                        trackers=trackers,
                        events=self.events,
                    ),
                    health=CameraHealth(cfg.name),
                )
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls,
        cfg: AppConfig,
        *,
        engine: InferenceEngine | None = None,
        sink: Sink | None = None,
        extra_sinks: Sequence[Sink] = (),
        **kwargs: object,
    ) -> Pipeline:
        """A pipeline for a validated `AppConfig`: its models, sinks, voting and events."""
        if engine is None:
            m = cfg.models
            engine = AlprEngine.load(m.detector, m.reader, threads=m.threads)
        if sink is None:
            sink = sinks_from_config(cfg, extra_sinks)
        e = cfg.events
        return cls(
            cfg.cameras,
            engine,
            sink,
            voter_config=cfg.voting.voter_config(),
            formats=cfg.voting.plate_formats(),
            events=EventOptions(e.crop, e.crop_max_width, e.crop_quality, e.provisional),
            stats_interval_s=cfg.mqtt.stats_interval_s if cfg.mqtt else 30.0,
            **kwargs,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ life cycle

    def start(self) -> Pipeline:
        if self._worker is not None:
            raise RuntimeError("pipeline already started")
        self._started_at = time.monotonic()
        for cam in self.cameras:
            cam.capture.start()
        self._worker = threading.Thread(target=self._run_worker, name="inference", daemon=True)
        self._worker.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every source has ended and been processed (files), or ``stop()``.
        True when done. Live cameras never end by themselves: use a timeout or a signal."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def healthy(self, stall_s: float = 30.0) -> bool:
        """The inference worker is alive and went round its loop within ``stall_s`` seconds
        (a camera that is down is not unhealthy: its capture retries on its own)."""
        alive = self._worker is not None and self._worker.is_alive()
        return alive and time.monotonic() - self.heartbeat < stall_s

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the worker to wind down (signal-handler safe: sets a flag only)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> PipelineSummary:
        """Stop everything within ``timeout`` s: captures, the in-flight frame, all tracks end
        (final events), sinks flushed/closed. Idempotent; returns the summary."""
        if self._stopped:
            return self.summary()
        deadline = time.monotonic() + timeout
        self._stop.set()
        for cam in self.cameras:
            cam.capture.stop(timeout=0)  # flags only; joined at the end
        if self._worker is not None:
            # The in-flight frame (one detector + reader call) and the finals; keep >= 0.6 s
            # for the sinks.
            self._worker.join(max(0.05, deadline - time.monotonic() - 0.6))
            if self._worker.is_alive():
                log.warning("inference worker still busy at shutdown")
        self._emit_stats()
        self.sinks.close(max(0.2, deadline - time.monotonic() - 0.1))
        for cam in self.cameras:
            cam.capture.stop(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
        close = getattr(self.engine, "close", None)
        if callable(close) and (self._worker is None or not self._worker.is_alive()):
            close()
        self._stopped = True
        self._ended_at = self._ended_at or time.monotonic()
        return self.summary()

    def run(self, install_signals: bool = False) -> PipelineSummary:
        """start(), wait for the sources to end (or SIGINT/SIGTERM: ``install_signals``), stop()."""
        restore = install_signal_handlers(self.request_stop) if install_signals else None
        try:
            self.start()
            while not self.wait(0.2):
                if self._stop.is_set():
                    break
        finally:
            summary = self.stop()
            if restore is not None:
                restore()
        return summary

    # ------------------------------------------------------------------ worker

    def _on_status(self, stats: object) -> None:
        log.info("camera %s: %s", getattr(stats, "camera", "?"), getattr(stats, "state", "?"))

    def _run_worker(self) -> None:
        next_stats = time.monotonic() + self.stats_interval_s
        start = 0
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                busy = False
                n = len(self.cameras)
                for k in range(n):
                    if self._stop.is_set():
                        break
                    cam = self.cameras[(start + k) % n]
                    if cam.done:
                        continue
                    frame = cam.capture.get(timeout=0)
                    if frame is None:
                        if cam.capture.finished:
                            self._end_camera(cam)
                        continue
                    busy = True
                    try:
                        self._process(cam, frame)
                    except Exception as e:
                        # One bad frame must not end a service that watches many cameras: log
                        # it, count it, carry on (strict mode re-raises, for tests and tools).
                        cam.errors += 1
                        if self.strict:
                            raise
                        if cam.errors <= 3 or cam.errors % 100 == 0:
                            log.exception(
                                "camera %s: frame %d failed (%d so far): %s",
                                cam.config.name,
                                frame.index,
                                cam.errors,
                                e,
                            )
                start = (start + 1) % n
                if time.monotonic() >= next_stats:
                    self._emit_stats()
                    next_stats = time.monotonic() + self.stats_interval_s
                if all(c.done for c in self.cameras):
                    break
                if not busy:
                    self._stop.wait(0.003)
        except BaseException as e:  # a bug must not leave the service hanging silently
            self.error = e
            log.exception("inference worker crashed")
        finally:
            # Shutdown or crash: every remaining track ends now (finals), nothing queued is
            # analysed any more.
            for cam in self.cameras:
                if not cam.done:
                    self._end_camera(cam)
            self._ended_at = time.monotonic()
            self._done.set()

    def _end_camera(self, cam: _Camera) -> None:
        t0 = time.perf_counter()
        for event in cam.analyzer.finish():
            self.sinks.put(event)
        self.stages.track_vote += time.perf_counter() - t0
        cam.done = True
        log.info("camera %s: ended after %d frames", cam.config.name, cam.frames)

    def _process(self, cam: _Camera, frame: Frame) -> None:
        index = frame.index + cam.index_offset
        if cam.last_index is not None and index <= cam.last_index:
            # A live source that reconnected numbers its frames from 0 again; trackers need
            # increasing frame numbers, so continue the count (files keep their own numbers).
            cam.index_offset += cam.last_index + 1 - index
            index = cam.last_index + 1
        if index != frame.index:
            frame = dataclasses.replace(frame, index=index)
        cam.last_index = index
        cam.frames += 1
        cam.health.frames_taken.tick()
        if not cam.sampler.take(frame.index):
            self._hook(frame, None, cam)
            return
        clock = frame.video_time_s if frame.video_time_s is not None else frame.monotonic
        analysed = True
        if cam.gate is not None:
            t0 = time.perf_counter()
            analysed = cam.gate.check(frame.image, clock)
            self.stages.motion += time.perf_counter() - t0
        if analysed:
            inf = self.engine.infer(frame)
            self.stages.detect += inf.detect_ms / 1e3
            self.stages.read += inf.read_ms / 1e3
            crops: tuple[np.ndarray | None, ...] = ()
            if self.events.crop:
                crops = tuple(_crop(frame.image, p) for p in inf.plates)
            fa = FrameAnalysis(
                frame.camera,
                frame.index,
                frame.timestamp,
                frame.video_time_s,
                frame.monotonic,
                True,
                inf.vehicle_boxes,
                inf.vehicle_scores,
                inf.plates,
                crops,
                inf.detect_ms,
                inf.read_ms,
            )
            cam.health.frames_analysed.tick()
        else:
            cam.motion_skipped += 1
            vb, vs = FrameAnalysis.empty_boxes()
            fa = FrameAnalysis(
                frame.camera,
                frame.index,
                frame.timestamp,
                frame.video_time_s,
                frame.monotonic,
                False,
                vb,
                vs,
            )
        t0 = time.perf_counter()
        events = cam.analyzer.update(fa)
        self.stages.track_vote += time.perf_counter() - t0
        for event in events:
            self.sinks.put(event)
        if analysed:
            cam.health.latency.add((time.monotonic() - frame.monotonic) * 1e3)
        self._hook(frame, fa, cam)

    def _hook(self, frame: Frame, fa: FrameAnalysis | None, cam: _Camera) -> None:
        if self.on_frame is not None:
            t0 = time.perf_counter()
            self.on_frame(frame, fa, cam.analyzer.overlays)
            self.stages.annotate += time.perf_counter() - t0

    def _emit_stats(self) -> None:
        for cam in self.cameras:
            try:
                self.sinks.put(cam.health.snapshot(cam.capture.stats()))
            except Exception:
                log.exception("camera %s: stats failed", cam.config.name)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> PipelineSummary:
        out = []
        for cam in self.cameras:
            cs = cam.capture.stats()
            c = cam.analyzer.counters
            out.append(
                CameraSummary(
                    camera=cam.config.name,
                    frames=cam.frames,
                    analysed=c.analysed,
                    motion_skipped=cam.motion_skipped,
                    provisional=c.provisional,
                    final=c.final,
                    duplicates=c.duplicates,
                    dropped=cs.frames_dropped,
                    corrupt=cs.frames_corrupt,
                    reconnects=cs.reconnects,
                    errors=cam.errors,
                    ended=cs.state == "ended",
                )
            )
        end = self._ended_at or time.monotonic()
        seconds = end - self._started_at if self._started_at is not None else 0.0
        return PipelineSummary(out, seconds, self.stages, self.sinks.seconds, self.sinks.events)


def _crop(image: np.ndarray, plate: PlateResult) -> np.ndarray | None:
    """A copy of the region the plate was read from (the frame itself is not kept)."""
    if plate.crop_box is None:
        x1, y1, x2, y2 = (int(round(v)) for v in plate.box)
    else:
        x1, y1, x2, y2 = plate.crop_box
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return None
    return image[y1:y2, x1:x2].copy()


# ----------------------------------------------------------------------------- helpers


def sinks_from_config(cfg: AppConfig, extra: Sequence[Sink] = ()) -> Sink:
    """MQTT (if configured), JSON Lines and stdout sinks of a config, plus ``extra``."""
    sinks: list[Sink] = list(extra)
    if cfg.sinks.stdout:
        from edge.sinks.stdout import StdoutSink

        sinks.append(StdoutSink())
    if cfg.sinks.jsonl is not None:
        from edge.sinks.jsonl import JsonlSink

        sinks.append(JsonlSink(cfg.sinks.jsonl))
    if cfg.mqtt is not None:
        from edge.sinks.mqtt import MqttSink

        sinks.append(MqttSink(cfg.mqtt.mqtt_settings()))
    return MultiSink(sinks)


def install_signal_handlers(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` on SIGINT/SIGTERM (main thread only); returns a function restoring the
    previous handlers. A second SIGINT while stopping raises KeyboardInterrupt as usual."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    hits = {"n": 0}

    def handler(signum: int, _frame: object) -> None:
        hits["n"] += 1
        if hits["n"] > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("signal %d: stopping", signum)
        callback()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore


__all__ = [
    "AlprEngine",
    "CameraSummary",
    "Inference",
    "InferenceEngine",
    "Pipeline",
    "PipelineSummary",
    "SinkWorker",
    "StageTimes",
    "install_signal_handlers",
    "sinks_from_config",
]
