"""The per-camera analyzer (edge.analysis): tracks, links, vote keys, static text, decisions."""

from __future__ import annotations

import numpy as np
from doubles import build_plate

from edge.analysis.analyzer import CameraAnalyzer
from edge.detect.alpr import build_result
from edge.events.config import EventsConfig
from edge.types import Frame, FrameResult
from edge.vote.config import VotingConfig

IMAGE = np.zeros((720, 1280, 3), np.uint8)  # shared: frames only need a size here


def _frame(index: int, t0: float = 0.0) -> Frame:
    return Frame("cam", index, 1_700_000_000.0 + index / 25, IMAGE, False, t0 + index / 25)


def _fa(index: int, vehicles: list, plates: list, t0: float = 0.0) -> tuple[Frame, FrameResult]:
    """A frame and what the detector + reader found in it."""
    result = build_result(IMAGE, [(tuple(map(float, v)), 0.9) for v in vehicles], plates)
    return _frame(index, t0), result


def _plate(box: tuple, text: str, conf: float = 0.95):  # type: ignore[no-untyped-def]
    return build_plate(box, text, conf)


def test_analyzer_one_vehicle_provisional_then_final_keyed_by_vehicle() -> None:
    an = CameraAnalyzer("cam", voting=VotingConfig(reappear_window_s=5))
    events = []
    for i in range(20):
        dx = 8 * i
        v = [100 + dx, 100, 400 + dx, 300]
        p = (200.0 + dx, 250.0, 280.0 + dx, 270.0)
        text = "KA01AB1234" if i != 5 else "KA01A81234"  # one misread
        events += an.update(*_fa(i, [v], [_plate(p, text)]))
    assert [e.type for e in events] == ["provisional"]
    for i in range(20, 60):  # the car has gone: tracks age out and end
        events += an.update(*_fa(i, [], []))
    assert [e.type for e in events] == ["provisional", "final"]
    prov, final = events
    assert final.plate == "KA01AB1234"
    assert prov.track_uuid == final.track_uuid and prov.event_id != final.event_id
    assert final.best_read.context.vehicle_box is not None
    # keyed by the vehicle track: ids come from one counter, the vehicle tracker runs first
    assert final.track_id == 1
    assert final.first_frame == 0  # the tentative track's first read is kept once confirmed
    assert an.counters.final == 1 and an.counters.duplicates == 0


def test_analyzer_same_plate_again_within_window_is_not_a_new_event() -> None:
    an = CameraAnalyzer("cam", voting=VotingConfig(reappear_window_s=30))
    events = []
    for start in (0, 60):  # the same car passes twice, 2.4 s apart
        for i in range(start, start + 12):
            dx = 10 * (i - start)
            events += an.update(
                *_fa(
                    i,
                    [[100 + dx, 100, 400 + dx, 300]],
                    [_plate((200.0 + dx, 250, 280 + dx, 270), "XYZ789")],
                )
            )
        for i in range(start + 12, start + 55):
            events += an.update(*_fa(i, [], []))
    events += an.finish()
    assert [e.type for e in events] == ["provisional", "final"]
    assert an.counters.duplicates >= 1


def test_analyzer_unlinked_plate_uses_plate_track_and_finish_flushes() -> None:
    an = CameraAnalyzer("cam")
    events = []
    for i in range(6):
        events += an.update(
            *_fa(i, [], [_plate((300.0 + 3 * i, 200, 380 + 3 * i, 220), "MH12DE1433")])
        )
    finals = [e for e in an.finish() if e.type == "final"]
    assert len(finals) == 1 and finals[0].plate == "MH12DE1433"
    assert finals[0].best_read.context.vehicle_box is None


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
            events += an.update(*fa)
        return events + an.finish(), an

    events, an = run(vehicle=False, speed=0.0)
    assert events == [] and an.counters.static_plates >= 1  # provisional held, final dropped
    # a truck passing in front of the sign covers (and links) it for a moment: still a sign
    an = CameraAnalyzer("cam")
    out = []
    for i in range(100):
        cover = [[200.0, 100, 600, 400]] if 40 <= i < 46 else []
        out += an.update(*_fa(i, cover, [_plate((300.0, 200, 380, 220), "EXI7")]))
    assert out + an.finish() == []
    events, _ = run(vehicle=True, speed=0.0)  # parked car
    assert [e.type for e in events] == ["provisional", "final"]
    events, _ = run(vehicle=False, speed=4.0)  # 100 px/s, no vehicle box
    assert [e.type for e in events][-1] == "final"
    # off by configuration: the sign is an event again
    an = CameraAnalyzer("cam", events=EventsConfig(static_plate_s=None))
    out = []
    for i in range(100):
        out += an.update(*_fa(i, [], [_plate((300.0, 200, 380, 220), "EXI7")]))
    assert [e.type for e in out + an.finish()] == ["provisional", "final"]


def test_motion_gated_frames_age_tracks() -> None:
    an = CameraAnalyzer("cam")
    for i in range(4):
        an.update(*_fa(i, [[0, 0, 100, 100]], [_plate((10.0, 60, 60, 75), "AB1234")]))
    events = []
    for i in range(4, 80):  # idle scene: no detection, but the tracks must still end
        events += an.update(_frame(i), None)
    assert [e.type for e in events] == ["final"]
    assert an.counters.analysed == 4 and an.counters.frames == 80


def test_second_plate_track_joining_a_vehicle_keeps_time_order() -> None:
    """Two plate tracks on one vehicle (front + rear plate, or an ID switch): the second one's
    buffered tentative reads are older than the vote's latest read and must not break it."""
    an = CameraAnalyzer("cam")
    events = []
    for i in range(12):
        plates = [_plate((200.0, 250, 280, 270), "AB123CD")]
        if i >= 3:  # a second plate appears on the same vehicle later
            plates.append(_plate((320.0, 250, 380, 270), "AB123CD"))
        events += an.update(*_fa(i, [[100, 100, 400, 300]], plates))
    events += an.finish()
    finals = [e for e in events if e.type == "final"]
    assert [e.plate for e in finals] == ["AB123CD"] and finals[0].track_id == 1


def test_a_clip_shorter_than_the_static_window_does_not_make_the_sign_a_final() -> None:
    """1 s of a static EXIT sign (static_plate_s is 2 s): at the end of the stream it is still
    not a vehicle; a moving unlinked plate and a parked car still get their finals."""
    an = CameraAnalyzer("cam")
    out = []
    for i in range(25):
        out += an.update(*_fa(i, [], [_plate((300.0 + (i % 2), 200, 380, 220), "EXI7")]))
    assert out + an.finish() == []
    moving = CameraAnalyzer("cam")
    for i in range(25):
        moving.update(*_fa(i, [], [_plate((300.0 + 8 * i, 200, 380 + 8 * i, 220), "AB1234")]))
    assert [d.plate for d in moving.finish()] == ["AB1234"]
    parked = CameraAnalyzer("cam")
    for i in range(25):
        parked.update(*_fa(i, [[200, 100, 500, 300]], [_plate((300.0, 200, 380, 220), "CD5678")]))
    assert [d.plate for d in parked.finish()] == ["CD5678"]
