"""Stage watchdog (edge.app.watchdog): stalled captures are restarted, a stuck worker or sink makes
the process unhealthy (so systemd's WatchdogSec restarts it), a dead sink thread is restarted.

Unit tests drive ``StageWatchdog.check(now)`` with fake stages and an explicit clock; the
pipeline tests use a fake live camera whose read blocks forever (an RTSP stream that stalls
inside the decoder without honouring its timeout), a slow engine and a blocking sink.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from edge.app.pipeline import Inference, Pipeline
from edge.app.sdnotify import WatchdogPinger
from edge.app.watchdog import CameraWatch, StageWatchdog, capture_stall_threshold
from edge.capture.camera import Frame
from edge.capture.sources import SourceRead
from edge.config.schema import CameraConfig, WatchdogConfig
from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink
from edge.types import PlateRead as ModelRead
from edge.types import PlateResult

# ----------------------------------------------------------------------------- unit


@dataclass
class FakeStats:
    state: str = "online"
    frames_read: int = 0
    queue_depth: int = 0
    queue_size: int = 4


class FakeCapture:
    def __init__(self, is_live: bool = True, drop_oldest: bool | None = None) -> None:
        self.is_live = is_live
        self.drop_oldest = is_live if drop_oldest is None else drop_oldest
        self.st = FakeStats()
        self.running = True

    def stats(self) -> FakeStats:
        return self.st


class FakeStage:
    def __init__(self) -> None:
        self.busy_since: float | None = None
        self.alive = True


def make_watchdog(cap_holder: list, **cfg: float) -> tuple[StageWatchdog, list[str]]:
    restarts: list[str] = []

    def restart(note: str) -> None:
        restarts.append(note)
        cap_holder[0] = FakeCapture(cap_holder[0].is_live)

    config = WatchdogConfig(capture_stall_s=10, inference_stall_s=20, sink_stall_s=20, **cfg)
    wd = StageWatchdog(
        config,
        [CameraWatch("cam", lambda: cap_holder[0], restart, stall_s=10.0)],
        worker=FakeStage(),
        sink=FakeStage(),
    )
    return wd, restarts


def test_threshold_covers_the_source_timeouts() -> None:
    assert capture_stall_threshold(30, 5, 5) == 30
    assert capture_stall_threshold(5, 5, 20) == 40  # a read may legally block 20 s


def test_live_capture_without_frames_is_restarted_once_then_backs_off() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder)
    wd.check(0.0)
    holder[0].st.frames_read = 5
    wd.check(1.0)  # progress
    wd.check(10.9)  # 9.9 s without a frame: not yet
    assert restarts == []
    wd.check(11.1)
    assert len(restarts) == 1 and "no frame for 10 s" in restarts[0]
    assert wd.counters.capture_restarts == 1 and wd.counters.capture_stalls == 1
    # the new capture stalls at once too: restart 2 no sooner than 2 x 10 s after restart 1
    wd.check(11.2)  # new capture seen: fresh mark
    wd.check(21.5)  # stalled 10.3 s, but within the back-off
    wd.check(31.0)
    assert len(restarts) == 1
    wd.check(31.2)
    assert len(restarts) == 2
    wd.check(31.3)  # ... and restart 3 no sooner than 4 x 10 s after restart 2
    wd.check(70.0)
    assert len(restarts) == 2
    wd.check(71.3)
    assert len(restarts) == 3
    # frames flowing again reset the back-off
    wd.check(71.4)
    holder[0].st.frames_read = 1
    wd.check(72.0)
    wd.check(82.1)
    assert len(restarts) == 4
    assert wd.healthy()  # a restartable camera never makes the process unhealthy


def test_camera_in_backoff_or_back_pressure_is_not_stalled() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder)
    holder[0].st.state = "backoff"  # a dead camera retries on its own
    wd.check(0.0)
    wd.check(100.0)
    file_cap = FakeCapture(is_live=False)
    file_cap.st.queue_depth = 4  # full queue: the file waits for the pipeline
    holder[0] = file_cap
    wd.check(200.0)
    wd.check(300.0)
    assert restarts == [] and wd.counters.capture_stalls == 0


def test_stalled_file_is_reported_not_restarted() -> None:
    holder = [FakeCapture(is_live=False)]
    wd, restarts = make_watchdog(holder)
    wd.check(0.0)
    wd.check(50.0)
    wd.check(60.0)
    assert restarts == [] and wd.counters.capture_stalls == 1


def test_too_many_stuck_capture_threads_make_the_process_unhealthy() -> None:
    holder = [FakeCapture()]
    wd, restarts = make_watchdog(holder, max_stuck_threads=1)
    t = 0.0
    wd.check(t)
    for _ in range(3):  # each restarted capture stalls again; the old threads stay blocked
        t += 10_000.0
        wd.check(t)
        wd.check(t + 0.1)
    assert len(restarts) == 3
    assert not wd.healthy() and "still blocked" in wd.problems[0]
    assert wd.counters.stuck_threads == 3


def test_stuck_worker_is_unhealthy_until_it_moves_again() -> None:
    holder = [FakeCapture()]
    wd, _ = make_watchdog(holder)
    worker = wd.worker
    assert isinstance(worker, FakeStage)
    worker.busy_since = 100.0
    assert wd.check(110.0) == [] and wd.healthy()
    problems = wd.check(121.0)
    assert problems and "inference worker" in problems[0] and not wd.healthy()
    wd.check(130.0)
    assert wd.counters.inference_stalls == 1  # one episode, counted once
    worker.busy_since = None
    assert wd.check(131.0) == [] and wd.healthy()
    worker.alive = False
    assert "dead" in wd.check(132.0)[0]


def test_dead_sink_thread_is_restarted() -> None:
    holder = [FakeCapture()]
    restarted = []
    wd, _ = make_watchdog(holder)
    wd.restart_sink = lambda: restarted.append(1)
    sink = wd.sink
    assert isinstance(sink, FakeStage)
    sink.alive = False
    assert wd.check(1.0) == [] and restarted == [1] and wd.counters.sink_restarts == 1
    sink.alive = True
    sink.busy_since = 0.0
    assert "sink thread" in wd.check(25.0)[0]
    assert wd.counters.sink_stalls == 1


# ----------------------------------------------------------------------------- pipeline


class ListSink(Sink):
    def __init__(self) -> None:
        self.events: list[PlateEvent] = []
        self.stats: list[CameraStats] = []

    def publish_event(self, event: PlateEvent) -> None:
        self.events.append(event)

    def publish_stats(self, stats: CameraStats) -> None:
        self.stats.append(stats)

    def close(self, timeout: float = 2.0) -> None:
        pass


class StallingCamera:
    """A live camera at 50 fps. The FIRST instance delivers 15 frames and then blocks inside
    read() until the test releases it (like FFmpeg ignoring its read timeout); later instances
    (opened by the watchdog's restart) work."""

    is_live = True
    instances = 0
    release = threading.Event()

    def __init__(self, cfg: CameraConfig) -> None:
        type(self).instances += 1
        self.stall = type(self).instances == 1
        self.i = 0

    def open(self) -> None:
        pass

    @property
    def fps(self) -> float:
        return 50.0

    def read(self) -> SourceRead:
        if self.stall and self.i >= 15:
            type(self).release.wait()
            return SourceRead("error", error="released")
        time.sleep(0.02)
        self.i += 1
        return SourceRead("ok", np.zeros((120, 160, 3), np.uint8), self.i - 1)

    def close(self) -> None:
        pass


class PlateEngine:
    def __init__(self, slow_frame: int | None = None, slow_s: float = 0.0) -> None:
        self.slow_frame = slow_frame
        self.slow_s = slow_s
        self.calls = 0

    def infer(self, frame: Frame) -> Inference:
        self.calls += 1
        if self.calls == self.slow_frame:
            time.sleep(self.slow_s)
        conf = 0.95
        return Inference(
            np.array([[20, 20, 140, 110]], np.float32),
            np.array([0.9], np.float32),
            (PlateResult((50.0, 80.0, 110.0, 95.0), 0.8, ModelRead("AB123CD", conf, (conf,) * 7)),),
        )


@pytest.fixture
def stalling_camera():  # type: ignore[no-untyped-def]
    StallingCamera.instances = 0
    StallingCamera.release = threading.Event()
    yield StallingCamera
    StallingCamera.release.set()  # let the abandoned thread end


def live_camera() -> CameraConfig:
    return CameraConfig(
        name="gate", source="rtsp://127.0.0.1:9/live", open_timeout_s=0.1, read_timeout_s=0.1
    )


def test_pipeline_restarts_a_stalled_capture(stalling_camera) -> None:  # type: ignore[no-untyped-def]
    sink = ListSink()
    wd = WatchdogConfig(capture_stall_s=0.4, check_interval_s=0.05)
    pipe = Pipeline(
        [live_camera()],
        PlateEngine(),
        sink,
        source_factory=stalling_camera,
        stats_interval_s=0.2,
        watchdog=wd,
        strict=True,
    )
    pipe.start()
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and pipe.cameras[0].frames < 40:
            time.sleep(0.05)
        assert pipe.healthy()
    finally:
        summary = pipe.stop()
    assert pipe.error is None
    cam = summary.cameras[0]
    assert cam.capture_restarts == 1 and summary.watchdog["capture_restarts"] == 1
    assert stalling_camera.instances == 2
    assert cam.frames >= 40  # frames flow again after the restart (the stalled one gave 15)
    assert cam.reconnects >= 1  # a restart counts as a reconnect in the stats
    late = [s for s in sink.stats if s.reconnects >= 1]
    assert late and "watchdog" in (late[-1].last_error or "")
    # one vehicle, one track: the restart does not split it (frame numbers continue)
    assert [e.plate for e in sink.events if e.type == "final"] == ["AB123CD"]


def test_stuck_inference_stops_systemd_pings_until_it_recovers() -> None:
    class Source(StallingCamera):
        def __init__(self, cfg: CameraConfig) -> None:
            super().__init__(cfg)
            self.stall = False

    sent: list[int] = []
    pipe = Pipeline(
        [live_camera()],
        PlateEngine(slow_frame=5, slow_s=1.2),
        ListSink(),
        source_factory=Source,
        watchdog=WatchdogConfig(inference_stall_s=0.4, check_interval_s=0.05),
    )
    pinger = WatchdogPinger(healthy=pipe.healthy, interval_s=0.05, send=lambda: sent.append(1))
    pipe.start()
    pinger.start()
    try:
        seen_unhealthy = False
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            if not pipe.healthy():
                seen_unhealthy = True
            elif seen_unhealthy:
                break  # recovered
            time.sleep(0.02)
        assert seen_unhealthy and pipe.healthy()
    finally:
        pinger.stop()
        summary = pipe.stop()
    assert summary.watchdog["inference_stalls"] == 1
    assert pinger.skipped >= 1 and pinger.pings >= 1  # pings stopped during the stall only


def test_stuck_sink_is_unhealthy_and_a_dead_sink_thread_is_restarted() -> None:
    class Source(StallingCamera):
        def __init__(self, cfg: CameraConfig) -> None:
            super().__init__(cfg)
            self.stall = False

    class Killer(BaseException):
        """Not an Exception: it ends the sink thread (like a bug in a C extension would)."""

    gate = threading.Event()

    class BadSink(ListSink):
        calls = 0

        def publish_stats(self, stats: CameraStats) -> None:
            type(self).calls += 1
            if type(self).calls == 1:
                raise Killer()
            if type(self).calls == 2:
                gate.wait(5.0)  # stuck in one publish
            super().publish_stats(stats)

    sink = BadSink()
    old_hook = threading.excepthook
    threading.excepthook = lambda args: None  # the Killer traceback is expected
    pipe = Pipeline(
        [live_camera()],
        PlateEngine(),
        sink,
        source_factory=Source,
        stats_interval_s=0.1,
        watchdog=WatchdogConfig(sink_stall_s=0.3, check_interval_s=0.05),
    )
    pipe.start()
    try:
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline and pipe.healthy():
            time.sleep(0.02)
        assert not pipe.healthy()  # the restarted sink thread is now stuck in publish_stats
        assert pipe.watchdog is not None
        assert any("sink thread" in p for p in pipe.watchdog.problems)
        gate.set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not pipe.healthy():
            time.sleep(0.02)
        assert pipe.healthy()
    finally:
        gate.set()
        summary = pipe.stop()
        threading.excepthook = old_hook
    assert summary.watchdog["sink_restarts"] == 1 and summary.watchdog["sink_stalls"] == 1
    assert len(sink.stats) >= 1  # stats flow again through the restarted thread
