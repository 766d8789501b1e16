"""The stage watchdog inside a running pipeline: a stalled capture is replaced, a stuck worker
or sink stops the systemd pings until it recovers, a dead sink thread is restarted."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from doubles import ListSink, build_plate

from edge.app.assembly import build_pipeline
from edge.app.sdnotify import WatchdogPinger
from edge.app.watchdog import WatchdogConfig
from edge.capture.sources import SourceRead
from edge.config.schema import AppConfig, CameraConfig
from edge.detect.alpr import build_result
from edge.events.schema import CameraStats
from edge.types import Frame, FrameResult


class StallingCamera:
    """A live camera at 50 fps. The FIRST instance delivers 15 frames and then blocks inside
    read() until the test releases it (like FFmpeg ignoring its read timeout); later instances
    (opened by the watchdog's restart) work."""

    is_live = True
    instances = 0
    release = threading.Event()

    def __init__(self, cfg: object) -> None:
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

    def infer(self, frame: Frame) -> FrameResult:
        self.calls += 1
        if self.calls == self.slow_frame:
            time.sleep(self.slow_s)
        return build_result(
            frame.image,
            [((20.0, 20.0, 140.0, 110.0), 0.9)],
            [build_plate((50.0, 80.0, 110.0, 95.0), "AB123CD")],
        )


@pytest.fixture
def stalling_camera():  # type: ignore[no-untyped-def]
    StallingCamera.instances = 0
    StallingCamera.release = threading.Event()
    yield StallingCamera
    StallingCamera.release.set()  # let the abandoned thread end


def live_config(**watchdog: float) -> AppConfig:
    cam = CameraConfig(
        name="gate", source="rtsp://127.0.0.1:9/live", open_timeout_s=0.1, read_timeout_s=0.1
    )
    return AppConfig(cameras=[cam], watchdog=WatchdogConfig(**watchdog))


def test_pipeline_restarts_a_stalled_capture(stalling_camera) -> None:  # type: ignore[no-untyped-def]
    sink = ListSink()
    pipe = build_pipeline(
        live_config(capture_stall_s=0.4, check_interval_s=0.05),
        engine=PlateEngine(),
        sink=sink,
        source_factory=stalling_camera,
        stats_interval_s=0.2,
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
        def __init__(self, cfg: object) -> None:
            super().__init__(cfg)
            self.stall = False

    sent: list[int] = []
    pipe = build_pipeline(
        live_config(inference_stall_s=0.4, check_interval_s=0.05),
        engine=PlateEngine(slow_frame=5, slow_s=1.2),
        sink=ListSink(),
        source_factory=Source,
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
        def __init__(self, cfg: object) -> None:
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
    pipe = build_pipeline(
        live_config(sink_stall_s=0.3, check_interval_s=0.05),
        engine=PlateEngine(),
        sink=sink,
        source_factory=Source,
        stats_interval_s=0.1,
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
