"""Stage watchdog for unattended devices: notice a stalled stage and restart or report it.

The pipeline has three kinds of stage thread (edge.app.pipeline): one capture thread per camera, the
inference worker and the sink thread. Each can stall in a way no exception reports: an RTSP read
that ignores its timeout inside FFmpeg, a backend call that never returns, a publish blocked on a
dead NFS mount. `StageWatchdog.check` (every ``check_interval_s`` on its own thread) looks at
each stage and

- **capture** (live sources): state ``online`` or ``connecting`` and no new frame for
  ``max(capture_stall_s, 2 x max(open_timeout_s, read_timeout_s))`` -> the pipeline swaps in a
  fresh `CameraCapture` (new source, new thread) and abandons the blocked one (a daemon; Python
  cannot kill a thread). Repeated stalls back off (restart k+1 no sooner than
  ``stall x 2^k`` after restart k, at most 10 minutes), and when more than
  ``max_stuck_threads`` abandoned threads are still blocked the process reports itself
  unhealthy. A file source that stalls is only reported: restarting it would read it again
  from the start. A camera that is down (``backoff``) is not stalled: its capture retries on
  its own.
- **inference worker**: on one frame for more than ``inference_stall_s``, or dead while the
  pipeline runs -> **unhealthy**. A thread stuck in native code cannot be stopped from Python,
  so recovery is a process restart: `healthy()` feeds `edge.app.sdnotify.WatchdogPinger`; without
  pings systemd (``WatchdogSec=`` in deploy/jetson/platewatch.service, ``Restart=on-failure``)
  kills and restarts the service. Outside systemd the condition is logged and counted.
- **sink thread**: inside one publish for more than ``sink_stall_s`` -> unhealthy (same
  reasoning); a sink thread that died is restarted on the same queue (nothing queued is lost).

Counters (``WatchdogCounters``) go into the pipeline summary and every action is logged at
WARNING/ERROR with the camera and how long the stage was stalled. The checks are pure functions
of the stages' state and a clock, so tests drive ``check(now)`` directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from pydantic import Field

from edge.settings import Settings

log = logging.getLogger("platewatch.watchdog")


class WatchdogConfig(Settings):
    """Stage watchdog (edge.app.watchdog): restart a stalled capture, report a stuck worker/sink."""

    enabled: bool = Field(True, description="false: no stage watchdog")
    check_interval_s: float = Field(2.0, gt=0, le=600, description="how often stages are checked")
    capture_stall_s: float = Field(
        30.0,
        gt=0,
        description="a live camera 'online'/'connecting' with no new frame this long is "
        "restarted (at least 2x its open/read timeout)",
    )
    inference_stall_s: float = Field(
        60.0, gt=0, description="the inference worker on one frame this long: unhealthy"
    )
    sink_stall_s: float = Field(
        60.0, gt=0, description="the sink thread inside one publish this long: unhealthy"
    )
    max_stuck_threads: int = Field(
        4, ge=0, description="abandoned blocked capture threads tolerated before 'unhealthy'"
    )


# Capture states (edge.capture.camera) in which frames are supposed to be arriving.
_EXPECTING_FRAMES = ("online", "connecting")
MAX_RESTART_WAIT_S = 600.0


class CaptureLike(Protocol):
    """What the watchdog reads from a `edge.capture.camera.CameraCapture`."""

    is_live: bool
    drop_oldest: bool

    @property
    def running(self) -> bool: ...

    def stats(self) -> object: ...


class StageProbe(Protocol):
    """A single-threaded stage (inference worker, sink thread)."""

    @property
    def busy_since(self) -> float | None:
        """Monotonic time the current item started, None when idle."""
        ...

    @property
    def alive(self) -> bool: ...


@dataclass
class CameraWatch:
    """One camera as the watchdog sees it. ``restart`` replaces the capture (pipeline's job)."""

    name: str
    capture: Callable[[], CaptureLike]
    restart: Callable[[str], None]
    stall_s: float  # effective threshold for this camera


@dataclass
class WatchdogCounters:
    checks: int = 0
    capture_stalls: int = 0  # stall episodes detected (live and files)
    capture_restarts: int = 0  # captures replaced
    inference_stalls: int = 0  # episodes of the worker stuck on one frame
    sink_stalls: int = 0  # episodes of the sink thread stuck in one publish
    sink_restarts: int = 0  # dead sink threads restarted
    worker_dead: int = 0  # checks that found the inference worker dead while running
    stuck_threads: int = 0  # abandoned capture threads still blocked (at the last check)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _CaptureMark:
    capture_id: int
    frames: int
    state: str
    since: float  # last progress (monotonic)
    restarts_in_a_row: int = 0
    next_restart_ok: float = 0.0
    reported: bool = False


@dataclass
class _Episode:
    """One stall episode of a single-threaded stage (counted and logged once)."""

    started: float | None = None
    reported: bool = False


def capture_stall_threshold(stall_s: float, open_timeout_s: float, read_timeout_s: float) -> float:
    """A stall must outlast what the source is allowed to block for (twice, for jitter)."""
    return max(stall_s, 2.0 * max(open_timeout_s, read_timeout_s))


@dataclass
class StageWatchdog:
    """Checks stages every ``config.check_interval_s`` (see module docstring)."""

    config: WatchdogConfig
    cameras: Sequence[CameraWatch]
    worker: StageProbe | None = None
    sink: StageProbe | None = None
    restart_sink: Callable[[], None] | None = None
    running: Callable[[], bool] = lambda: True  # False once the pipeline is done/stopping
    clock: Callable[[], float] = time.monotonic
    counters: WatchdogCounters = field(default_factory=WatchdogCounters)

    def __post_init__(self) -> None:
        self._marks: dict[str, _CaptureMark] = {}
        self._abandoned: list[CaptureLike] = []
        self._worker_ep = _Episode()
        self._sink_ep = _Episode()
        self._problems: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> StageWatchdog:
        if self.config.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.config.check_interval_s):
            try:
                self.check()
            except Exception:  # the watchdog itself must never take the service down
                log.exception("watchdog check failed")

    # ------------------------------------------------------------------ health

    def healthy(self) -> bool:
        """False while a stage is stalled in a way only a process restart fixes."""
        with self._lock:
            return not self._problems

    @property
    def problems(self) -> list[str]:
        """Why the process is unhealthy (empty when healthy), in plain words."""
        with self._lock:
            return list(self._problems)

    # ------------------------------------------------------------------ one pass

    def check(self, now: float | None = None) -> list[str]:
        """Inspect every stage once; act; returns the unhealthy reasons found."""
        now = self.clock() if now is None else now
        self.counters.checks += 1
        problems: list[str] = []
        if self.running():
            for cam in self.cameras:
                self._check_capture(cam, now)
            problems += self._check_abandoned()
            problems += self._check_worker(now)
            problems += self._check_sink(now)
        with self._lock:
            self._problems = problems
        return problems

    def _check_capture(self, cam: CameraWatch, now: float) -> None:
        cap = cam.capture()
        st = cap.stats()
        state = str(getattr(st, "state", ""))
        frames = int(getattr(st, "frames_read", 0))
        mark = self._marks.get(cam.name)
        if mark is None or mark.capture_id != id(cap):
            keep = mark.restarts_in_a_row if mark is not None else 0
            wait = mark.next_restart_ok if mark is not None else 0.0
            self._marks[cam.name] = _CaptureMark(id(cap), frames, state, now, keep, wait)
            return
        if frames != mark.frames or state != mark.state:
            if frames != mark.frames:  # frames flow again: the back-off starts over
                mark.restarts_in_a_row, mark.next_restart_ok = 0, 0.0
            mark.frames, mark.state, mark.since, mark.reported = frames, state, now, False
            return
        if state not in _EXPECTING_FRAMES:
            return
        depth = int(getattr(st, "queue_depth", 0))
        size = int(getattr(st, "queue_size", 1))
        if not cap.drop_oldest and depth >= size:
            mark.since = now  # a file waiting for the pipeline (back-pressure) is not stalled
            return
        stalled_for = now - mark.since
        if stalled_for < cam.stall_s:
            return
        if not mark.reported:
            self.counters.capture_stalls += 1
        if not cap.is_live:
            if not mark.reported:
                log.error(
                    "watchdog: camera %s: file source %s with no frame for %.0f s; not restarted "
                    "(a restart would read the file again from the start)",
                    cam.name,
                    state,
                    stalled_for,
                )
            mark.reported = True
            return
        mark.reported = True
        if now < mark.next_restart_ok:
            return
        log.error(
            "watchdog: camera %s: capture %s but no frame for %.0f s; restarting it "
            "(restart %d in a row)",
            cam.name,
            state,
            stalled_for,
            mark.restarts_in_a_row + 1,
        )
        self._abandoned.append(cap)
        cam.restart(f"watchdog: no frame for {stalled_for:.0f} s while {state}; restarted")
        self.counters.capture_restarts += 1
        mark.restarts_in_a_row += 1
        # Restart k+1 comes no sooner than stall_s * 2^k after restart k (20 s, 40 s, ... for
        # 10 s): a camera that stalls every time is not hammered, nor are threads piled up.
        wait = min(MAX_RESTART_WAIT_S, cam.stall_s * 2**mark.restarts_in_a_row)
        mark.next_restart_ok = now + wait
        # The new capture gets a fresh mark on the next check (different object).

    def _check_abandoned(self) -> list[str]:
        self._abandoned = [c for c in self._abandoned if c.running]
        n = len(self._abandoned)
        self.counters.stuck_threads = n
        if n > self.config.max_stuck_threads:
            return [
                f"{n} restarted capture threads are still blocked in their sources "
                f"(limit {self.config.max_stuck_threads}); the process needs a restart"
            ]
        return []

    def _stage(
        self,
        name: str,
        probe: StageProbe | None,
        episode: _Episode,
        limit_s: float,
        now: float,
    ) -> tuple[bool, str | None]:
        """(stalled now, problem text). Counts and logs an episode once."""
        if probe is None:
            return False, None
        since = probe.busy_since
        if since is None or now - since < limit_s:
            if episode.reported:
                log.warning("watchdog: %s moving again", name)
            episode.started, episode.reported = None, False
            return False, None
        stalled_for = now - since
        first = not episode.reported or episode.started != since
        episode.started, episode.reported = since, True
        if first:
            log.error(
                "watchdog: %s stuck on one item for %.0f s; reporting unhealthy so the "
                "service manager restarts the process (systemd WatchdogSec)",
                name,
                stalled_for,
            )
        return True, f"{name} stuck on one item for {stalled_for:.0f} s"

    def _check_worker(self, now: float) -> list[str]:
        if self.worker is None:
            return []
        if not self.worker.alive:
            self.counters.worker_dead += 1
            if self.counters.worker_dead == 1:
                log.error("watchdog: the inference worker thread is dead; unhealthy")
            return ["the inference worker thread is dead"]
        was = self._worker_ep.started
        stalled, problem = self._stage(
            "inference worker", self.worker, self._worker_ep, self.config.inference_stall_s, now
        )
        if stalled and self._worker_ep.started != was:
            self.counters.inference_stalls += 1
        return [problem] if problem else []

    def _check_sink(self, now: float) -> list[str]:
        if self.sink is None:
            return []
        if not self.sink.alive:
            if self.restart_sink is not None:
                log.error("watchdog: the sink thread died; restarting it on the same queue")
                self.restart_sink()
                self.counters.sink_restarts += 1
                return []
            return ["the sink thread is dead"]
        was = self._sink_ep.started
        stalled, problem = self._stage(
            "sink thread", self.sink, self._sink_ep, self.config.sink_stall_s, now
        )
        if stalled and self._sink_ep.started != was:
            self.counters.sink_stalls += 1
        return [problem] if problem else []


__all__ = [
    "CameraWatch",
    "StageWatchdog",
    "WatchdogCounters",
    "capture_stall_threshold",
]
