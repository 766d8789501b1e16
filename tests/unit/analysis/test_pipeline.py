"""The video runtime: sampling, motion gate, stats windows, decision -> event mapping, the
per-camera analyzer, the threaded pipeline on a rendered clip, and shutdown within 2 s.

``OracleEngine`` (also used by test_replay and test_integration_mqtt) stands in for the neural
models with the clip's ground truth: true vehicle and plate boxes, and reads of the true text
corrupted at a seeded rate (more on blurred/glared frames), so everything after inference is
exercised on realistic motion without the trained models.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from doubles import ListSink, OracleEngine  # noqa: E402

from edge.analysis.analyzer import (
    CameraAnalyzer,
    EventOptions,
    FrameAnalysis,
    ReadContext,
    nested_plates,
    to_plate_event,
)
from edge.app.pipeline import Inference, Pipeline
from edge.app.stats import LatencyWindow, RateMeter, percentile
from edge.capture.camera import Frame
from edge.capture.sampling import FrameSampler, MotionConfig, MotionGate
from edge.capture.sources import SourceRead
from edge.config.schema import CameraConfig
from edge.events.schema import decode_crop
from edge.types import PlateRead as ModelRead
from edge.types import PlateResult
from edge.vote.voter import PlateRead, PlateVoter, VoterConfig


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A 640x360, 6 s clip with three vehicles (rendered once per session)."""
    video = pytest.importorskip("training.synth.video")
    path = tmp_path_factory.mktemp("clip") / "small.mp4"
    truth = video.render_clip(path, width=640, height=360, fps=25, seconds=6, n_vehicles=3, seed=1)
    return path, truth


# ----------------------------------------------------------------------------- sampling, motion


def test_sampler_every_nth_by_index() -> None:
    s = FrameSampler(3)
    assert [i for i in range(10) if s.take(i)] == [0, 3, 6, 9]
    s = FrameSampler(3)  # dropped frames: a gap >= 3 always lets the next one through
    assert [i for i in (0, 1, 5, 6, 7, 8, 20) if s.take(i)] == [0, 5, 8, 20]
    s = FrameSampler(1)
    assert all(s.take(i) for i in range(5))
    with pytest.raises(ValueError):
        FrameSampler(0)


def test_motion_gate_skips_idle_and_wakes_on_motion() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    gate = MotionGate(MotionConfig(max_idle_s=100))
    assert gate.check(base, 0.0)  # first frame: always analysed
    noisy = np.clip(base.astype(int) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    assert not gate.check(noisy, 0.1)  # sensor noise is not motion
    moved = base.copy()
    moved[100:200, 200:330] = 255  # a car-sized bright object appears
    assert gate.check(moved, 0.2)
    assert gate.last_fraction > 0.01
    assert not gate.check(moved, 0.3)  # the analysed frame became the reference


def test_motion_gate_forces_analysis_after_idle_period() -> None:
    img = np.full((100, 100, 3), 80, np.uint8)
    gate = MotionGate(MotionConfig(max_idle_s=1.0))
    assert gate.check(img, 0.0)
    assert not gate.check(img, 0.5)
    assert gate.check(img, 1.1)


# ----------------------------------------------------------------------------- stats


def test_percentile_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    values = list(rng.exponential(30, 101))
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def test_latency_window_forgets_old_samples() -> None:
    w = LatencyWindow(size=10)
    for _ in range(10):
        w.add(1000.0)  # an old spike
    for _ in range(10):
        w.add(10.0)
    assert w.percentile(95) == pytest.approx(10.0)
    assert len(w) == 10


def test_rate_meter_window() -> None:
    m = RateMeter(window_s=2.0)
    for i in range(40):
        m.tick(now=100.0 + i * 0.1)  # 10/s for 4 s
    assert m.rate(now=103.95) == pytest.approx(10.0, abs=0.6)
    assert m.rate(now=110.0) == 0.0
    assert m.total == 40


# ----------------------------------------------------------------------------- event mapping


def _voter_decisions(text: str = "AB123CD") -> list:
    voter = PlateVoter(VoterConfig(provisional_min_reads=3), camera="gate")
    out = []
    crop = np.full((20, 80, 3), 200, np.uint8)
    for i in range(6):
        box = (100.0 + i * 5, 200.0, 180.0 + i * 5, 220.0)
        read = PlateRead(
            text,
            (0.95,) * len(text),
            frame_index=10 + i,
            timestamp=2.0 + 0.4 * i,
            plate_box=box,
            quality=float(i),
            crop=ReadContext(crop, (50.0, 100.0, 300.0, 260.0), 2.0 + 0.4 * i),
        )
        d = voter.add(7, read)
        if d is not None:
            out.append(d)
    out.append(voter.end_track(7))
    return out


def test_event_mapping_is_schema_valid(validate_message) -> None:  # type: ignore[no-untyped-def]
    decisions = _voter_decisions()
    assert [d.type.value for d in decisions] == ["provisional", "final"]
    final = decisions[-1]
    origin = 1_700_000_000.0
    ev = to_plate_event(final, track_id=7, track_uuid="x", to_utc=origin, is_file=True)
    obj = ev.model_dump(mode="json")
    validate_message(obj, "plate_event.schema.json")
    assert obj["plate"] == "AB123CD"
    assert obj["type"] == "final" and obj["event_id"] == final.event_id
    assert obj["first_frame"] == 10 and obj["last_frame"] == 15
    assert obj["first_seen"] == "2023-11-14T22:13:22.000Z"  # origin + 2.0 s
    assert obj["last_seen"] == "2023-11-14T22:13:24.000Z"
    assert obj["video_time_s"] == pytest.approx(4.0)  # the best (last, highest quality) read
    assert obj["plate_box"] == [125, 200, 205, 220]
    assert obj["vehicle_box"] == [50, 100, 300, 260]
    assert obj["candidates"][0] == {"text": "AB123CD", "votes": 6, "score": 1.0}
    assert decode_crop(obj["crop_jpeg_b64"]).shape[:2] == (20, 80)
    # crops off, live source: no crop, no video time
    ev = to_plate_event(final, track_id=7, options=EventOptions(crop=False), to_utc=origin)
    assert ev.crop_jpeg_b64 is None and ev.video_time_s is None


def test_stats_message_is_schema_valid(validate_message) -> None:  # type: ignore[no-untyped-def]
    from edge.app.stats import CameraHealth
    from edge.capture.camera import CameraCapture

    cfg = CameraConfig(name="cam1", source="rtsp://127.0.0.1:1/x")
    health = CameraHealth("cam1")
    health.latency.add(12.0)
    stats = health.snapshot(CameraCapture(cfg).stats())
    validate_message(stats.model_dump(mode="json"), "camera_stats.schema.json")
    assert stats.latency_ms_p50 == 12.0 and stats.online is False


# ----------------------------------------------------------------------------- analyzer


def _fa(index: int, vehicles: list, plates: list[PlateResult], t0: float = 0.0) -> FrameAnalysis:
    return FrameAnalysis(
        "cam",
        index,
        1_700_000_000.0 + index / 25,
        t0 + index / 25,
        0.0,
        True,
        np.array(vehicles, np.float32).reshape(-1, 4),
        np.full(len(vehicles), 0.9, np.float32),
        tuple(plates),
        (),
    )


def _plate(box: tuple, text: str, conf: float = 0.95) -> PlateResult:
    return PlateResult(box, 0.8, ModelRead(text, conf, (conf,) * len(text)))


def test_analyzer_one_vehicle_provisional_then_final_keyed_by_vehicle() -> None:
    an = CameraAnalyzer("cam", voter_config=VoterConfig(reappear_window_s=5))
    events = []
    for i in range(20):
        dx = 8 * i
        v = [100 + dx, 100, 400 + dx, 300]
        p = (200.0 + dx, 250.0, 280.0 + dx, 270.0)
        text = "KA01AB1234" if i != 5 else "KA01A81234"  # one misread
        events += an.update(_fa(i, [v], [_plate(p, text)]))
    assert [e.type for e in events] == ["provisional"]
    for i in range(20, 60):  # the car has gone: tracks age out and end
        events += an.update(_fa(i, [], []))
    assert [e.type for e in events] == ["provisional", "final"]
    prov, final = events
    assert final.plate == "KA01AB1234"
    assert prov.track_uuid == final.track_uuid and prov.event_id != final.event_id
    assert final.vehicle_box is not None
    # keyed by the vehicle track: ids come from one counter, the vehicle tracker runs first
    assert final.track_id == 1
    assert final.first_frame == 0  # the tentative track's first read is kept once confirmed
    assert an.counters.final == 1 and an.counters.duplicates == 0


def test_analyzer_same_plate_again_within_window_is_not_a_new_event() -> None:
    an = CameraAnalyzer("cam", voter_config=VoterConfig(reappear_window_s=30))
    events = []
    for start in (0, 60):  # the same car passes twice, 2.4 s apart
        for i in range(start, start + 12):
            dx = 10 * (i - start)
            events += an.update(
                _fa(
                    i,
                    [[100 + dx, 100, 400 + dx, 300]],
                    [_plate((200.0 + dx, 250, 280 + dx, 270), "XYZ789")],
                )
            )
        for i in range(start + 12, start + 55):
            events += an.update(_fa(i, [], []))
    events += an.finish()
    assert [e.type for e in events] == ["provisional", "final"]
    assert an.counters.duplicates >= 1


def test_analyzer_unlinked_plate_uses_plate_track_and_finish_flushes() -> None:
    an = CameraAnalyzer("cam")
    events = []
    for i in range(6):
        events += an.update(
            _fa(i, [], [_plate((300.0 + 3 * i, 200, 380 + 3 * i, 220), "MH12DE1433")])
        )
    finals = [e for e in an.finish() if e.type == "final"]
    assert len(finals) == 1 and finals[0].plate == "MH12DE1433"
    assert finals[0].vehicle_box is None


def test_static_unlinked_plate_is_a_sign_not_a_car() -> None:
    """An EXIT sign read as a plate (the demo clip's "EXI7"): tied to no vehicle, it never
    moves, so it makes no event; a parked car's plate (tied to its vehicle) and a moving plate
    whose vehicle the detector missed still do."""

    def run(vehicle: bool, speed: float, frames: int = 100) -> tuple[list, CameraAnalyzer]:
        an = CameraAnalyzer("cam")
        events = []
        for i in range(frames):  # 4 s at 25 fps
            jitter = (i % 3) - 1.0  # detector boxes wobble by a pixel or two
            x = 300.0 + speed * i + jitter
            fa = _fa(
                i,
                [[x - 100, 100, x + 200, 300]] if vehicle else [],
                [
                    _plate((x, 200, x + 80, 220), "EXI7"),
                ],
            )
            events += an.update(replace(fa, frame_size=(1280, 720)))
        return events + an.finish(), an

    events, an = run(vehicle=False, speed=0.0)
    assert events == [] and an.counters.static_plates >= 1  # provisional held, final dropped
    # a truck passing in front of the sign covers (and links) it for a moment: still a sign
    an = CameraAnalyzer("cam")
    out = []
    for i in range(100):
        cover = [[200.0, 100, 600, 400]] if 40 <= i < 46 else []
        fa = _fa(i, cover, [_plate((300.0, 200, 380, 220), "EXI7")])
        out += an.update(replace(fa, frame_size=(1280, 720)))
    assert out + an.finish() == []
    events, _ = run(vehicle=True, speed=0.0)  # parked car
    assert [e.type for e in events] == ["provisional", "final"]
    events, _ = run(vehicle=False, speed=4.0)  # 100 px/s, no vehicle box
    assert [e.type for e in events][-1] == "final"
    # off by configuration: the sign is an event again
    an = CameraAnalyzer("cam", events=EventOptions(static_plate_s=None))
    out = []
    for i in range(100):
        fa = _fa(i, [], [_plate((300.0, 200, 380, 220), "EXI7")])
        out += an.update(replace(fa, frame_size=(1280, 720)))
    assert [e.type for e in out + an.finish()] == ["provisional", "final"]


def test_motion_gated_frames_age_tracks() -> None:
    an = CameraAnalyzer("cam")
    for i in range(4):
        an.update(_fa(i, [[0, 0, 100, 100]], [_plate((10.0, 60, 60, 75), "AB1234")]))
    vb, vs = FrameAnalysis.empty_boxes()
    events = []
    for i in range(4, 80):  # idle scene: no detection, but the tracks must still end
        events += an.update(FrameAnalysis("cam", i, 0.0, i / 25, 0.0, False, vb, vs))
    assert [e.type for e in events] == ["final"]
    assert an.counters.analysed == 4 and an.counters.frames == 80


# ----------------------------------------------------------------------------- threaded pipeline


def test_pipeline_on_clip_one_final_per_vehicle(small_clip) -> None:  # type: ignore[no-untyped-def]
    path, truth = small_clip
    sink = ListSink()
    cam = CameraConfig(name="clip", source=str(path), sample_every=2)
    engine = OracleEngine(truth, error_rate=0.3)
    pipe = Pipeline([cam], engine, sink, stats_interval_s=0.2, strict=True)
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

    def __init__(self, cfg: CameraConfig) -> None:
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

    def infer(self, frame: Frame) -> Inference:
        time.sleep(self.delay_s)
        return Inference(
            np.array([[60, 60, 260, 200]], np.float32),
            np.array([0.9], np.float32),
            (_plate((120.0, 150.0, 200.0, 170.0), "GH57XYZ"),),
        )


def test_shutdown_within_two_seconds_with_live_source() -> None:
    sink = ListSink()
    cam = CameraConfig(name="live", source="rtsp://127.0.0.1:9/stream")
    pipe = Pipeline(
        [cam],
        _StaticPlateEngine(0.15),
        sink,
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
    cam = CameraConfig(name="clip", source=str(path), realtime=True)  # ~6 s at real speed
    pipe = Pipeline([cam], OracleEngine(truth), sink)
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    t0 = time.monotonic()
    summary = pipe.run(install_signals=True)
    assert time.monotonic() - t0 < 1.0 + 2.0
    assert 0 < summary.frames < truth.frame_count
    assert sink.closed


def test_second_plate_track_joining_a_vehicle_keeps_time_order() -> None:
    """Two plate tracks on one vehicle (front + rear plate, or an ID switch): the second one's
    buffered tentative reads are older than the vote's latest read and must not break it."""
    an = CameraAnalyzer("cam")
    events = []
    for i in range(12):
        plates = [_plate((200.0, 250, 280, 270), "AB123CD")]
        if i >= 3:  # a second plate appears on the same vehicle later
            plates.append(_plate((320.0, 250, 380, 270), "AB123CD"))
        events += an.update(_fa(i, [[100, 100, 400, 300]], plates))
    events += an.finish()
    finals = [e for e in events if e.type == "final"]
    assert [e.plate for e in finals] == ["AB123CD"] and finals[0].track_id == 1


def test_a_failing_frame_is_logged_and_skipped_not_fatal(small_clip) -> None:  # type: ignore[no-untyped-def]
    path, truth = small_clip

    class Flaky(OracleEngine):
        def infer(self, frame: Frame) -> Inference:
            if frame.index == 30:
                raise RuntimeError("backend hiccup")
            return super().infer(frame)

    sink = ListSink()
    pipe = Pipeline([CameraConfig(name="clip", source=str(path))], Flaky(truth), sink)
    summary = pipe.run()
    assert summary.cameras[0].errors == 1 and summary.frames == truth.frame_count
    assert sorted(e.plate for e in sink.finals()) == sorted(v.text for v in truth.vehicles)
    with pytest.raises(RuntimeError):  # strict mode surfaces it
        strict = Pipeline(
            [CameraConfig(name="clip", source=str(path))], Flaky(truth), ListSink(), strict=True
        )
        strict.run()
        if strict.error is not None:
            raise strict.error


def test_a_crash_that_also_breaks_ending_the_tracks_still_ends_the_pipeline(small_clip) -> None:  # type: ignore[no-untyped-def]
    """The analyzer bug that crashes the loop can break its end-of-stream flush too: wait() must
    still return (found when a replay hung forever with its capture blocked on a full queue)."""
    path, truth = small_clip
    pipe = Pipeline(
        [CameraConfig(name="clip", source=str(path))], OracleEngine(truth), ListSink(), strict=True
    )
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
    from edge.config.schema import ReconnectConfig

    sink = ListSink()
    cam = CameraConfig(
        name="live",
        source="rtsp://127.0.0.1:9/s",
        reconnect=ReconnectConfig(initial_s=0.05, max_s=0.1),
    )
    pipe = Pipeline(
        [cam],
        _StaticPlateEngine(0.01),
        sink,
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


def test_nested_plate_fragments_are_dropped() -> None:
    boxes = np.array(
        [
            [571, 626, 832, 701],  # the plate
            [530, 634, 737, 690],  # a fragment: 80 % of it inside the plate
            [900, 626, 1100, 701],  # another car's plate next to it
            [590, 640, 700, 690],  # a fragment with a higher score than the plate
        ],
        np.float32,
    )
    scores = np.array([0.8, 0.7, 0.9, 0.95], np.float32)
    assert nested_plates(boxes[:3], scores[:3]) == [0, 2]
    # only LOWER-scoring boxes are removed: a high-scoring fragment stays beside its plate
    assert nested_plates(boxes, scores) == [0, 2, 3]
    assert nested_plates(np.zeros((0, 4)), np.zeros(0)) == []
