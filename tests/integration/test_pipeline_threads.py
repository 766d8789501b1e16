"""The threaded pipeline on real video files and fake live sources: one final per vehicle,
shutdown within 2 s, signals, a failing frame, a crashing analyzer, live reconnects."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from doubles import ListSink, OracleEngine, build_plate

from edge.app.assembly import build_pipeline
from edge.capture.sources import SourceRead
from edge.config.schema import AppConfig, CameraConfig
from edge.detect.alpr import build_result
from edge.types import Frame, FrameResult


def config(**camera: object) -> AppConfig:
    return AppConfig(cameras=[CameraConfig.model_validate(camera)])


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A 640x360, 6 s clip with three vehicles (rendered once per session)."""
    video = pytest.importorskip("training.synth.video")
    path = tmp_path_factory.mktemp("clip") / "small.mp4"
    truth = video.render_clip(path, width=640, height=360, fps=25, seconds=6, n_vehicles=3, seed=1)
    return path, truth


def test_pipeline_on_clip_one_final_per_vehicle(small_clip) -> None:  # type: ignore[no-untyped-def]
    path, truth = small_clip
    sink = ListSink()
    engine = OracleEngine(truth, error_rate=0.3)
    pipe = build_pipeline(
        config(name="clip", source=str(path), sample_every=2),
        engine=engine,
        sink=sink,
        stats_interval_s=0.2,
        strict=True,
    )
    summary = pipe.run()
    assert pipe.error is None and pipe.done and sink.closed
    assert summary.frames == truth.frame_count  # files never drop
    assert summary.analysed == (truth.frame_count + 1) // 2  # every 2nd frame
    assert engine.calls == summary.analysed
    finals = sink.finals()
    assert sorted(e.plate for e in finals) == sorted(v.text for v in truth.vehicles)
    assert len({e.event_id for e in sink.events}) == len(sink.events)
    assert all(e.video_time_s is not None for e in finals)
    assert sink.stats and sink.stats[-1].camera == "clip"


class _LiveSource:
    """A fake camera: 25 fps forever, a bright 'plate' patch moving across."""

    is_live = True

    def __init__(self, cfg: object) -> None:
        self.i = 0

    def open(self) -> None:
        self.t0 = time.monotonic()

    @property
    def fps(self) -> float:
        return 25.0

    def read(self) -> SourceRead:
        due = self.t0 + self.i / 25
        time.sleep(max(0.0, due - time.monotonic()))
        img = np.zeros((240, 320, 3), np.uint8)
        self.i += 1
        return SourceRead("ok", img, self.i - 1)

    def close(self) -> None:
        pass


class _StaticPlateEngine:
    """One plate in the middle of every frame; slow like a real 1080p model call."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def infer(self, frame: Frame) -> FrameResult:
        time.sleep(self.delay_s)
        return build_result(
            frame.image,
            [((60.0, 60.0, 260.0, 200.0), 0.9)],
            [build_plate((120.0, 150.0, 200.0, 170.0), "GH57XYZ")],
        )


def test_shutdown_within_two_seconds_with_live_source() -> None:
    sink = ListSink()
    pipe = build_pipeline(
        config(name="live", source="rtsp://127.0.0.1:9/stream"),
        engine=_StaticPlateEngine(0.15),
        sink=sink,
        source_factory=_LiveSource,
        stats_interval_s=0.3,
        strict=True,
    )
    pipe.start()
    time.sleep(2.0)
    assert not pipe.done  # a live camera never ends by itself
    assert pipe.healthy()  # the systemd watchdog check
    t0 = time.monotonic()
    summary = pipe.stop(timeout=2.0)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
    assert not pipe.healthy()
    assert sink.closed
    # the live track was ended by the shutdown: its final was delivered before the sink closed
    finals = sink.finals()
    assert [e.plate for e in finals] == ["GH57XYZ"]
    assert summary.cameras[0].dropped > 0  # 25 fps in, ~6 fps analysed: the oldest dropped
    assert any(s.fps_in > 0 and s.latency_ms_p50 is not None for s in sink.stats)


def test_signal_stops_run(small_clip) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    path, truth = small_clip
    sink = ListSink()
    cfg = config(name="clip", source=str(path), realtime=True)  # ~6 s at real speed
    pipe = build_pipeline(cfg, engine=OracleEngine(truth), sink=sink)
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    t0 = time.monotonic()
    summary = pipe.run(install_signals=True)
    assert time.monotonic() - t0 < 1.0 + 2.0
    assert 0 < summary.frames < truth.frame_count
    assert sink.closed


def test_a_failing_frame_is_logged_and_skipped_not_fatal(small_clip) -> None:  # type: ignore[no-untyped-def]
    path, truth = small_clip

    class Flaky(OracleEngine):
        def infer(self, frame: Frame) -> FrameResult:
            if frame.index == 30:
                raise RuntimeError("backend hiccup")
            return super().infer(frame)

    sink = ListSink()
    cfg = config(name="clip", source=str(path))
    pipe = build_pipeline(cfg, engine=Flaky(truth), sink=sink)
    summary = pipe.run()
    assert summary.cameras[0].errors == 1 and summary.frames == truth.frame_count
    assert sorted(e.plate for e in sink.finals()) == sorted(v.text for v in truth.vehicles)
    with pytest.raises(RuntimeError):  # strict mode surfaces it
        strict = build_pipeline(cfg, engine=Flaky(truth), sink=ListSink(), strict=True)
        strict.run()
        if strict.error is not None:
            raise strict.error


def test_a_crash_that_also_breaks_ending_the_tracks_still_ends_the_pipeline(small_clip) -> None:  # type: ignore[no-untyped-def]
    """The analyzer bug that crashes the loop can break its end-of-stream flush too: wait() must
    still return (found when a replay hung forever with its capture blocked on a full queue)."""
    path, truth = small_clip
    pipe = build_pipeline(
        config(name="clip", source=str(path)), engine=OracleEngine(truth), sink=ListSink(),
        strict=True,
    )  # fmt: skip
    analyzer = pipe.cameras[0].analyzer

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("analyzer bug")

    analyzer.update = broken  # type: ignore[method-assign]
    analyzer.finish = broken  # type: ignore[method-assign]
    pipe.start()
    assert pipe.wait(timeout=20), "pipeline hung after the worker crashed"
    pipe.stop(timeout=2.0)
    assert isinstance(pipe.error, KeyError)


class _FlakyLiveSource(_LiveSource):
    """Loses the stream after 20 frames; every reconnect numbers frames from 0 again."""

    def read(self) -> SourceRead:
        if self.i >= 20:
            return SourceRead("error", error="stream lost")
        return super().read()


def test_live_reconnect_restarting_frame_numbers_keeps_tracking() -> None:
    sink = ListSink()
    cfg = config(
        name="live",
        source="rtsp://127.0.0.1:9/s",
        reconnect={"initial_s": 0.05, "max_s": 0.1},
    )
    pipe = build_pipeline(
        cfg,
        engine=_StaticPlateEngine(0.01),
        sink=sink,
        source_factory=_FlakyLiveSource,
        stats_interval_s=0.5,
        strict=True,
    )
    pipe.start()
    time.sleep(2.5)
    summary = pipe.stop()
    assert pipe.error is None, pipe.error
    c = summary.cameras[0]
    assert c.reconnects >= 2 and c.errors == 0
    assert c.frames > 40  # frames kept flowing after each reconnect
    assert any(s.reconnects >= 1 for s in sink.stats)
