"""The video runtime: cameras in, plate events out. Threads, queues, shutdown.

    capture thread per camera (edge.capture.camera.CameraCapture, bounded queue, drop/back-pressure)
        -> ONE inference worker thread, round-robin over the cameras (edge.app.camera):
             FrameSampler (every Nth frame) -> MotionGate (optional)
             -> InferenceEngine.infer (one detector + one reader for all cameras: Frame ->
                FrameResult, edge.detect.alpr)
             -> CameraAnalyzer (tracks, links, votes: PlateDecision, edge.analysis)
             -> Delivery (watchlists, wire event, privacy, alerts: edge.app.delivery)
        -> sink thread (edge.app.sink_worker -> edge.sinks.*): MQTT spooling or a slow disk never
           blocks inference.

The worker also emits one `CameraStats` per camera every ``stats_interval_s``. When a file
source ends, its camera's trackers are flushed so every track gets its FINAL event.

`edge.app.watchdog.StageWatchdog` (when configured) watches the capture threads, the worker
and the sink thread: a stalled live capture is replaced (`CameraRuntime.restart_capture`), a
stuck worker or sink makes `healthy()` False so systemd's watchdog restarts the process.

Shutdown (`Pipeline.stop`, called by the commands on SIGINT/SIGTERM) takes < 2 s: captures are
told to stop, the worker finishes the frame it is on, discards queued frames, ends every track
(finals), then the sink thread drains and closes the sinks (the MQTT sink keeps anything the
broker has not acknowledged in its disk spool for the next start).

Pipelines are built from a configuration by edge.app.assembly (the one path for ``run``,
``replay`` and ``demo``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edge.analysis.analyzer import TrackOverlay
from edge.app.camera import CameraRuntime, InferenceEngine, StageTotals
from edge.app.delivery import Delivery
from edge.app.sink_worker import SinkWorker
from edge.app.watchdog import CameraWatch, StageWatchdog, WatchdogConfig, capture_stall_threshold
from edge.capture.camera import CaptureStats
from edge.types import Frame, FrameResult

log = logging.getLogger("platewatch.pipeline")


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
    static_plates: int = 0  # decisions dropped as static text (signs)
    reads: int = 0  # plate reads given to the voter
    unpublished_provisional: int = 0  # provisionals not published (events.provisional: false)
    state: str = ""  # the capture's last state (online, ended, failed, ...)
    last_error: str | None = None  # the capture's last error, if any


@dataclass
class PipelineSummary:
    cameras: list[CameraSummary]
    seconds: float
    stages: StageTotals
    sink_seconds: float
    events: int
    watchdog: dict[str, int] = field(default_factory=dict)
    alerts: int = 0  # alerts handed to the sinks
    undelivered: int = 0  # messages the sinks still held at stop (MQTT: left in the spool)

    @property
    def frames(self) -> int:
        return sum(c.frames for c in self.cameras)

    @property
    def analysed(self) -> int:
        return sum(c.analysed for c in self.cameras)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# Called on the worker thread for every frame: (frame, its result or None when not analysed,
# True when the frame was sampled, the camera's confirmed tracks) (annotated video).
FrameHook = Callable[[Frame, FrameResult | None, bool, Sequence[TrackOverlay]], None]


class Pipeline:
    """Many cameras, one inference engine, one sink thread. ``start()``, ``wait()``, ``stop()``."""

    def __init__(
        self,
        cameras: Sequence[CameraRuntime],
        engine: InferenceEngine,
        sinks: SinkWorker,
        delivery: Delivery,
        *,
        stats_interval_s: float = 30.0,
        watchdog: WatchdogConfig | None = None,
        on_frame: FrameHook | None = None,
        strict: bool = False,
    ) -> None:
        if not cameras:
            raise ValueError("no enabled camera in the configuration")
        self.cameras = list(cameras)
        for cam in self.cameras:
            if cam.on_status is None:
                cam.on_status = self._on_status
        self.engine = engine
        self.sinks = sinks
        self.delivery = delivery
        self.stats_interval_s = stats_interval_s
        self.on_frame = on_frame
        self.strict = strict  # re-raise a frame's processing error instead of logging it
        self.stages = StageTotals()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._stopped = False
        self._worker: threading.Thread | None = None
        self.error: BaseException | None = None
        self.heartbeat = time.monotonic()  # last worker loop iteration (watchdog)
        self._busy_since: float | None = None  # monotonic start of the frame in work
        self._undelivered = 0  # left in the sinks at stop (spooled for the next start)
        self.watchdog_config = watchdog
        self.watchdog: StageWatchdog | None = None
        if watchdog is not None and watchdog.enabled:
            self.watchdog = StageWatchdog(
                watchdog,
                [
                    CameraWatch(
                        c.name,
                        capture=lambda c=c: c.capture,  # type: ignore[misc]
                        restart=lambda note, c=c: self.restart_capture(c, note),  # type: ignore[misc]
                        stall_s=capture_stall_threshold(
                            watchdog.capture_stall_s,
                            c.capture_config.open_timeout_s,
                            c.capture_config.read_timeout_s,
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

    def restart_capture(self, cam: CameraRuntime, note: str = "restarted") -> None:
        """Replace a camera's stalled capture (the watchdog calls this)."""
        if self._stop.is_set():
            return  # shutting down: stop() stops the captures it knows
        cam.restart_capture(note)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the worker to wind down (signal-handler safe: sets a flag only)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0, drain_s: float = 0.0) -> PipelineSummary:
        """Stop everything within ``timeout`` s: captures, the in-flight frame, all tracks end
        (final events), sinks flushed/closed. ``drain_s`` more seconds (before the stop
        budget) let the sinks deliver what is queued (a replay waits for its MQTT spool).
        Idempotent; returns the summary (``undelivered``: left in the sinks for later)."""
        if self._stopped:
            return self.summary()
        if drain_s > 0 and self._done.is_set():
            self.sinks.drain(drain_s)
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
        self._undelivered = self.sinks.sink.pending()
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

    def _on_status(self, stats: CaptureStats) -> None:
        log.info("camera %s: %s", stats.camera, stats.state)

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
                                cam.name,
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
                    log.exception("camera %s: ending its tracks failed", cam.name)
            self._ended_at = time.monotonic()
            self._done.set()

    def _end_camera(self, cam: CameraRuntime) -> None:
        t0 = time.perf_counter()
        for decision in cam.analyzer.finish():
            self.delivery.deliver(cam.analyzer, decision)
        self.stages.track_vote += time.perf_counter() - t0
        cam.done = True
        log.info("camera %s: ended after %d frames", cam.name, cam.frames)

    def _process(self, cam: CameraRuntime, frame: Frame) -> None:
        frame, result, decisions, sampled = cam.process(frame, self.engine, self.stages)
        t0 = time.perf_counter()
        for decision in decisions:
            self.delivery.deliver(cam.analyzer, decision)
        self.stages.track_vote += time.perf_counter() - t0
        if self.on_frame is not None:
            t0 = time.perf_counter()
            self.on_frame(frame, result, sampled, cam.analyzer.overlays)
            self.stages.annotate += time.perf_counter() - t0

    def _emit_stats(self) -> None:
        for cam in self.cameras:
            try:
                self.sinks.put(cam.health.snapshot(cam.capture_stats()))
            except Exception:
                log.exception("camera %s: stats failed", cam.name)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> PipelineSummary:
        out = []
        for cam in self.cameras:
            cs = cam.capture_stats()
            c = cam.analyzer.counters
            d = self.delivery.of(cam.name)
            out.append(
                CameraSummary(
                    camera=cam.name,
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
                    watchlist_matches=d.watchlist_matches,
                    alerts=d.alerts,
                    hashed=d.hashed,
                    capture_restarts=cam.restarts,
                    static_plates=c.static_plates,
                    reads=c.reads,
                    unpublished_provisional=c.unpublished_provisional,
                    state=cs.state,
                    last_error=cs.last_error,
                )
            )
        end = self._ended_at or time.monotonic()
        seconds = end - self._started_at if self._started_at is not None else 0.0
        wd = self.watchdog.counters.as_dict() if self.watchdog is not None else {}
        return PipelineSummary(
            out,
            seconds,
            self.stages,
            self.sinks.seconds,
            self.sinks.events,
            wd,
            self.sinks.alerts,
            self._undelivered,
        )


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
    "CameraSummary",
    "FrameHook",
    "Pipeline",
    "PipelineSummary",
    "install_signal_handlers",
]
