"""The video runtime: cameras in, plate events out. Threads, queues, shutdown.

    capture thread per camera (edge.capture.camera.CameraCapture, bounded queue, drop/back-pressure)
        -> ONE inference worker thread, round-robin over the cameras' queues:
             FrameSampler (every Nth frame) -> MotionGate (optional)
             -> InferenceEngine.infer (one Detector + one Reader for all cameras; plate crops
                from the full-resolution frame, all crops of a frame in one reader batch)
             -> FrameAnalysis -> CameraAnalyzer (tracks, links, votes; edge.analysis.analyzer)
             -> PlateEvent
        -> sink thread (SinkWorker queue -> edge.sinks.*): MQTT spooling or a slow disk never
           blocks inference.

The worker also emits one `CameraStats` per camera every ``stats_interval_s``. When a file
source ends, its camera's trackers are flushed so every track gets its FINAL event.

Operator rules, per event the analyzer returns (zones/direction and the watchlist match are
already on it, and events outside ``require_zones`` already dropped: edge.analysis.analyzer):
    watchlist match -> `AlertGate.should_fire` (vehicle key = track UUID; the clock is the
    event's ``last_seen``, i.e. video time for files) -> alert on ``<prefix>/<camera>/alerts``
    -> `apply_privacy` (keyed hash of unlisted plates) -> sinks, the history sink first.
A confident provisional (it passed the provisional thresholds) alerts at once, so a gate opens
while the car is still approaching; the final of the same track shares its UUID and the gate
does not fire again. Provisionals alert only when provisional events are published.

`edge.app.watchdog.StageWatchdog` (when configured) watches the capture threads, the worker and the
sink thread: a stalled live capture is replaced (`restart_capture`), a stuck worker or sink
makes `healthy()` False so systemd's watchdog restarts the process.

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

from edge.analysis.analyzer import (
    CameraAnalyzer,
    EventOptions,
    FrameAnalysis,
    TrackOverlay,
)
from edge.app.stats import CameraHealth
from edge.app.watchdog import CameraWatch, StageWatchdog, capture_stall_threshold
from edge.capture.camera import CameraCapture, CaptureStats, Frame
from edge.capture.sampling import FrameSampler, MotionConfig, MotionGate
from edge.capture.sources import FrameSource
from edge.config.schema import AppConfig, CameraConfig, WatchdogConfig
from edge.events.schema import CameraStats, PlateEvent, WatchlistHit
from edge.integrations.homeassistant import alert_payload
from edge.rules.privacy import apply_privacy
from edge.rules.watchlist import AlertGate, Match, Watchlists
from edge.sinks.base import MultiSink, Sink
from edge.track.tracker import TrackerConfig
from edge.types import PlateResult
from edge.vote.formats import PlateFormats
from edge.vote.voter import VoterConfig

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
    """`edge.detect.alpr.Alpr` as the pipeline's inference engine (the shipped models)."""

    def __init__(self, alpr: object) -> None:
        from edge.detect.alpr import VEHICLE, Alpr

        if not isinstance(alpr, Alpr):
            raise TypeError("AlprEngine needs an edge.detect.alpr.Alpr")
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
        from edge.detect.alpr import Alpr
        from edge.detect.models import load_models

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


@dataclass(frozen=True)
class Alert:
    """A watchlist alert on its way to the sinks (``payload``:
    edge.integrations.homeassistant.alert_payload)."""

    camera: str
    payload: bytes


class SinkWorker:
    """Moves events, alerts and stats to a `Sink` on its own thread (unbounded queue: events are
    few, and dropping one is never an option)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._queue: queue.Queue[PlateEvent | CameraStats | Alert | None] = queue.Queue()
        self.events = 0
        self.alerts = 0
        self.seconds = 0.0  # time spent inside the sink (the "sink" stage)
        self._busy_since: float | None = None  # monotonic start of the current item (watchdog)
        self._closing = False
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="sinks", daemon=True)
        t.start()
        return t

    def put(self, item: PlateEvent | CameraStats | Alert) -> None:
        self._queue.put(item)

    @property
    def busy_since(self) -> float | None:
        return self._busy_since

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._closing

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def restart(self) -> None:
        """A new thread on the same queue (the watchdog calls this when the thread died)."""
        if not self._closing and not self._thread.is_alive():
            self._busy_since = None
            self._thread = self._start_thread()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            t0 = time.perf_counter()
            self._busy_since = time.monotonic()
            try:
                if isinstance(item, PlateEvent):
                    self.sink.publish_event(item)
                    self.events += 1
                elif isinstance(item, Alert):
                    self.sink.publish_alert(item.camera, item.payload)
                    self.alerts += 1
                else:
                    self.sink.publish_stats(item)
            except Exception:
                log.exception("sink failed on %s", type(item).__name__)
            finally:
                self._busy_since = None
            self.seconds += time.perf_counter() - t0

    def close(self, timeout: float = 1.5) -> None:
        """Deliver everything queued, then close the sink; within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._closing = True
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
    outside_zones: int = 0  # decisions dropped/held back by require_zones
    watchlist_matches: int = 0  # published events that matched a watchlist
    alerts: int = 0  # alerts fired (AlertGate said yes)
    hashed: int = 0  # events published with a keyed hash instead of the plate
    capture_restarts: int = 0  # stalled captures replaced by the watchdog


@dataclass
class PipelineSummary:
    cameras: list[CameraSummary]
    seconds: float
    stages: StageTimes
    sink_seconds: float
    events: int
    watchdog: dict[str, int] = field(default_factory=dict)

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
    alerts: int = 0
    hashed: int = 0
    # Counters of captures replaced by the watchdog, so stats stay cumulative across restarts.
    restarts: int = 0
    prior: dict[str, int] = field(default_factory=dict)
    restart_note: str | None = None


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
        watchlists: Watchlists | None = None,
        privacy_key: bytes | None = None,
        watchdog: WatchdogConfig | None = None,
    ) -> None:
        enabled = [c for c in cameras if c.enabled]
        if not enabled:
            raise ValueError("no enabled camera in the configuration")
        self.watchlists = watchlists if watchlists is not None and len(watchlists) else None
        # One gate for all cameras (its keys include the camera); thread-safe.
        self.alert_gate = AlertGate(self.watchlists) if self.watchlists is not None else None
        self.privacy_key = privacy_key
        self._source_factory = source_factory
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
        self._busy_since: float | None = None  # monotonic start of the frame in work
        self.cameras: list[_Camera] = []
        for cfg in enabled:
            self.cameras.append(
                _Camera(
                    config=cfg,
                    capture=self._new_capture(cfg),
                    sampler=FrameSampler(cfg.sample_every),
                    gate=MotionGate(motion) if cfg.motion_gate else None,
                    analyzer=CameraAnalyzer(
                        cfg.name,
                        voter_config=voter_config,
                        formats=formats,
                        trackers=trackers,
                        events=self.events,
                        geometry=cfg.geometry,
                        watchlists=self.watchlists,
                    ),
                    health=CameraHealth(cfg.name),
                )
            )
        self.watchdog_config = watchdog
        self.watchdog: StageWatchdog | None = None
        if watchdog is not None and watchdog.enabled:
            self.watchdog = StageWatchdog(
                watchdog,
                [
                    CameraWatch(
                        c.config.name,
                        capture=lambda c=c: c.capture,  # type: ignore[misc]
                        restart=lambda note, c=c: self.restart_capture(c, note),  # type: ignore[misc]
                        stall_s=capture_stall_threshold(
                            watchdog.capture_stall_s,
                            c.config.open_timeout_s,
                            c.config.read_timeout_s,
                        ),
                    )
                    for c in self.cameras
                ],
                worker=_WorkerProbe(self),
                sink=self.sinks,
                restart_sink=self.sinks.restart,
                running=lambda: (
                    self._worker is not None and not self._done.is_set() and not self._stop.is_set()
                ),
            )

    def _new_capture(self, cfg: CameraConfig) -> CameraCapture:
        kw = {"source_factory": self._source_factory} if self._source_factory is not None else {}
        return CameraCapture(cfg, on_status=self._on_status, **kw)  # type: ignore[arg-type]

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
        from edge.rules.privacy import resolve_key

        # Before anything opens: privacy on without a key is a configuration error.
        privacy_key = resolve_key(cfg.privacy)
        if sink is None:
            sink = sinks_from_config(cfg, extra_sinks)
        kwargs.setdefault("watchdog", cfg.watchdog)
        return cls(
            cfg.cameras,
            engine,
            sink,
            voter_config=cfg.voting.voter_config(),
            formats=cfg.voting.plate_formats(),
            events=cfg.events.options(),
            stats_interval_s=cfg.mqtt.stats_interval_s if cfg.mqtt else 30.0,
            watchlists=Watchlists(cfg.watchlists) if cfg.watchlists else None,
            privacy_key=privacy_key,
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
        if self.watchdog is not None:
            self.watchdog.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every source has ended and been processed (files), or ``stop()``.
        True when done. Live cameras never end by themselves: use a timeout or a signal."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def healthy(self, stall_s: float | None = None) -> bool:
        """The inference worker is alive and went round its loop within ``stall_s`` seconds
        (default: the watchdog's ``inference_stall_s``, else 30 s), and the stage watchdog (if
        any) reports no stage that only a process restart can fix. A camera that is down is not
        unhealthy: its capture retries on its own, and a stalled one is restarted."""
        if stall_s is None:
            wd = self.watchdog_config
            stall_s = wd.inference_stall_s if wd is not None and wd.enabled else 30.0
        alive = self._worker is not None and self._worker.is_alive()
        if not (alive and time.monotonic() - self.heartbeat < stall_s):
            return False
        return self.watchdog is None or self.watchdog.healthy()

    def restart_capture(self, cam: _Camera, note: str = "restarted") -> None:
        """Replace a camera's capture by a fresh one (watchdog: the old one is stalled).

        The new capture is started BEFORE it is swapped in, and the old one stopped after, so
        the worker never sees a 'finished' capture and never ends the camera. The old thread is
        a daemon blocked in its source: it is abandoned (Python cannot kill a thread). Counters
        of the old capture are kept so stats stay cumulative.
        """
        if self._stop.is_set():
            return  # shutting down: stop() stops the captures it knows
        old = cam.capture
        st = old.stats()
        for k in ("frames_read", "frames_dropped", "frames_corrupt", "reconnects"):
            cam.prior[k] = cam.prior.get(k, 0) + int(getattr(st, k))
        new = self._new_capture(cam.config)
        new.start()
        cam.capture = new
        cam.restarts += 1
        cam.restart_note = note
        old.stop(timeout=0)
        log.warning("camera %s: %s", cam.config.name, note)

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
        if self.watchdog is not None:
            self.watchdog.stop(timeout=0.1)
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
                    self._busy_since = time.monotonic()
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
                    finally:
                        self._busy_since = None
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
            # analysed any more. Ending a camera can fail too (the bug that crashed the loop may
            # sit in the analyzer): the pipeline must still report done, or wait() never returns.
            for cam in self.cameras:
                if cam.done:
                    continue
                try:
                    self._end_camera(cam)
                except BaseException as e:
                    cam.done = True
                    if self.error is None:
                        self.error = e
                    log.exception("camera %s: ending its tracks failed", cam.config.name)
            self._ended_at = time.monotonic()
            self._done.set()

    def _end_camera(self, cam: _Camera) -> None:
        t0 = time.perf_counter()
        for event in cam.analyzer.finish():
            self._deliver(cam, event)
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
        frame_fields = (
            frame.camera,
            frame.index,
            frame.timestamp,
            frame.video_time_s,
            frame.monotonic,
        )
        if analysed:
            inf = self.engine.infer(frame)
            self.stages.detect += inf.detect_ms / 1e3
            self.stages.read += inf.read_ms / 1e3
            crops: tuple[np.ndarray | None, ...] = ()
            if self.events.crop:
                crops = tuple(_crop(frame.image, p) for p in inf.plates)
            fa = FrameAnalysis(
                *frame_fields,
                True,
                inf.vehicle_boxes,
                inf.vehicle_scores,
                inf.plates,
                crops,
                inf.detect_ms,
                inf.read_ms,
                (frame.width, frame.height),
            )
            cam.health.frames_analysed.tick()
        else:
            cam.motion_skipped += 1
            fa = FrameAnalysis(
                *frame_fields,
                False,
                *FrameAnalysis.empty_boxes(),
                frame_size=(frame.width, frame.height),
            )
        t0 = time.perf_counter()
        events = cam.analyzer.update(fa)
        for event in events:
            self._deliver(cam, event)
        self.stages.track_vote += time.perf_counter() - t0
        if analysed:
            cam.health.latency.add((time.monotonic() - frame.monotonic) * 1e3)
        self._hook(frame, fa, cam)

    def _deliver(self, cam: _Camera, event: PlateEvent) -> None:
        """Alert (if the gate fires), privacy, then the sinks (history first): see the module
        docstring for the order and why."""
        match = _match_of(event.watchlist)
        if match is not None and self.alert_gate is not None:
            fire = self.alert_gate.should_fire(
                event.camera,
                event.plate,
                match,
                now=event.last_seen.timestamp(),
                event_id=event.event_id,
                vehicle_key=event.track_uuid,
            )
            if fire:
                cam.alerts += 1
                self.sinks.put(Alert(event.camera, alert_payload(event)))
        published = apply_privacy(event, match, self.privacy_key)
        if published.plate_hashed:
            cam.hashed += 1
        self.sinks.put(published)

    def _hook(self, frame: Frame, fa: FrameAnalysis | None, cam: _Camera) -> None:
        if self.on_frame is not None:
            t0 = time.perf_counter()
            self.on_frame(frame, fa, cam.analyzer.overlays)
            self.stages.annotate += time.perf_counter() - t0

    def _capture_stats(self, cam: _Camera) -> CaptureStats:
        """The capture's stats, cumulative over watchdog restarts (each restart counts as a
        reconnect; its note is the last error until the source reports its own)."""
        st = cam.capture.stats()
        if not cam.restarts:
            return st
        p = cam.prior
        return dataclasses.replace(
            st,
            frames_read=st.frames_read + p.get("frames_read", 0),
            frames_dropped=st.frames_dropped + p.get("frames_dropped", 0),
            frames_corrupt=st.frames_corrupt + p.get("frames_corrupt", 0),
            reconnects=st.reconnects + p.get("reconnects", 0) + cam.restarts,
            last_error=st.last_error or cam.restart_note,
        )

    def _emit_stats(self) -> None:
        for cam in self.cameras:
            try:
                self.sinks.put(cam.health.snapshot(self._capture_stats(cam)))
            except Exception:
                log.exception("camera %s: stats failed", cam.config.name)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> PipelineSummary:
        out = []
        for cam in self.cameras:
            cs = self._capture_stats(cam)
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
                    outside_zones=c.outside_zones,
                    watchlist_matches=c.watchlist_matches,
                    alerts=cam.alerts,
                    hashed=cam.hashed,
                    capture_restarts=cam.restarts,
                )
            )
        end = self._ended_at or time.monotonic()
        seconds = end - self._started_at if self._started_at is not None else 0.0
        wd = self.watchdog.counters.as_dict() if self.watchdog is not None else {}
        return PipelineSummary(out, seconds, self.stages, self.sinks.seconds, self.sinks.events, wd)


class _WorkerProbe:
    """The inference worker as the watchdog sees it."""

    def __init__(self, pipe: Pipeline) -> None:
        self._pipe = pipe

    @property
    def busy_since(self) -> float | None:
        return self._pipe._busy_since

    @property
    def alive(self) -> bool:
        w = self._pipe._worker
        return w is not None and w.is_alive()


def _match_of(hit: WatchlistHit | None) -> Match | None:
    """The `Match` behind an event's ``watchlist`` field (AlertGate and privacy take a Match)."""
    if hit is None:
        return None
    return Match(
        watchlist=hit.name,
        kind=hit.kind,
        entry=hit.entry,
        distance=hit.distance,
        description=hit.description,
        is_regex=hit.entry.startswith("re:"),
    )


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
    """History (first: an event is stored before it goes anywhere else), ``extra``, stdout,
    JSON Lines and MQTT (with Home Assistant discovery when enabled) sinks of a config."""
    sinks: list[Sink] = []
    if cfg.history is not None and cfg.history.enabled:
        from edge.history.store import HistoryStore
        from edge.sinks.history import HistorySink

        sinks.append(HistorySink(HistoryStore.from_config(cfg.history, cfg.privacy)))
    sinks += list(extra)
    if cfg.sinks.stdout:
        from edge.sinks.stdout import StdoutSink

        sinks.append(StdoutSink())
    if cfg.sinks.jsonl is not None:
        from edge.sinks.jsonl import JsonlSink

        sinks.append(JsonlSink(cfg.sinks.jsonl))
    if cfg.mqtt is not None:
        from edge.sinks.mqtt import MqttSink

        discovery = []
        ha = cfg.homeassistant
        if ha.enabled:
            from edge.integrations.homeassistant import discovery_messages

            discovery = discovery_messages(
                [c.name for c in cfg.cameras if c.enabled],
                prefix=ha.discovery_prefix,
                topic_prefix=cfg.mqtt.topic_prefix,
                stats_expire_after_s=ha.stats_expire_after_s,
            )
        sinks.append(MqttSink(cfg.mqtt.mqtt_settings(), discovery=discovery))
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
    "Alert",
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
