"""Tracker, assignment and plate-to-vehicle linking (edge.track)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge.track.assignment import linear_assignment
from edge.track.config import TrackerConfig
from edge.track.linking import PlateVehicleLinker, assign_plates_to_vehicles
from edge.track.tracker import MultiClassTracker, Tracker
from edge.types import PLATE, VEHICLE, Detections, TrackState, TrackStatus


def box(cx: float, cy: float, w: float = 60, h: float = 40) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def by_det(states: list[TrackState]) -> dict[int, int]:
    """det_index -> track_id for tracks matched this frame."""
    return {s.det_index: s.track_id for s in states if s.det_index >= 0}


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7)])
def test_linear_assignment_is_optimal(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.random(shape)
        pairs = linear_assignment(cost)
        n, m = shape
        assert len(pairs) == min(n, m)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        got = sum(cost[r, c] for r, c in pairs)
        if n <= m:
            best = min(
                sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n)
            )
        else:
            best = min(
                sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m)
            )
        assert got == pytest.approx(best)


def test_linear_assignment_empty() -> None:
    assert linear_assignment(np.zeros((0, 3))) == []


def test_straight_line_with_missed_detection_keeps_id() -> None:
    tr = Tracker(TrackerConfig(min_hits=2, max_age=10))
    ids = []
    for f in range(12):
        if f == 5:  # detector misses the object for one frame
            states = tr.update(np.zeros((0, 4)), np.zeros(0), f).live
            assert len(states) == 1 and states[0].state == TrackStatus.LOST
            assert states[0].det_index == -1
            # the lost track keeps predicting forward along its motion
            assert (states[0].box[0] + states[0].box[2]) / 2 > 100 + 8 * 4
            continue
        states = tr.update(np.array([box(100 + 8 * f, 200)]), np.array([0.9]), f).live
        ids.append(by_det(states)[0])
    assert len(set(ids)) == 1
    assert tr.tracks[0].state == TrackStatus.CONFIRMED
    assert tr.tracks[0].hits == 11


def test_frame_sampling_gaps_fast_object_keeps_id() -> None:
    # every 5th frame analysed; the object moves 15 px/frame = 75 px (> its 60 px width) per
    # analysed frame, so consecutive boxes never overlap: only prediction by the gap can follow it
    tr = Tracker(TrackerConfig(max_age=20))
    ids = []
    for k, f in enumerate(range(0, 100, 5)):
        if k == 8:
            continue  # plus one missed analysed frame (a 10-frame gap)
        states = tr.update(np.array([box(50 + 15 * f, 300)]), np.array([0.8]), f).live
        ids.append(by_det(states)[0])
    assert len(set(ids)) == 1
    vx, vy = tr.tracks[0].velocity
    assert vx == pytest.approx(15, rel=0.15) and abs(vy) < 1


def test_two_crossing_objects_keep_their_ids() -> None:
    tr = Tracker(TrackerConfig(max_age=10))
    first: dict[str, int] = {}
    for f in range(40):
        a = box(100 + 10 * f, 200)  # left to right
        b = box(500 - 10 * f, 212)  # right to left, crossing a around f = 20
        order = [a, b] if f % 2 else [b, a]  # detector output order must not matter
        states = tr.update(np.array(order), np.array([0.9, 0.85]), f).live
        m = by_det(states)
        ida, idb = (m[0], m[1]) if f % 2 else (m[1], m[0])
        if f == 0:
            first = {"a": ida, "b": idb}
        assert (ida, idb) == (first["a"], first["b"]), f"swap at frame {f}"


def test_new_object_gets_new_id() -> None:
    tr = Tracker()
    tr.update(np.array([box(100, 100)]), np.array([0.9]), 0)
    tr.update(np.array([box(104, 100)]), np.array([0.9]), 1)
    states = tr.update(np.array([box(108, 100), box(600, 400)]), np.array([0.9, 0.9]), 2).live
    m = by_det(states)
    assert m[0] != m[1]
    new = next(s for s in states if s.det_index == 1)
    assert new.state == TrackStatus.TENTATIVE and new.hits == 1


def test_track_removed_after_max_age_and_reported_once() -> None:
    tr = Tracker(TrackerConfig(min_hits=2, max_age=6))
    for f in range(3):
        tr.update(np.array([box(100, 100)]), np.array([0.9]), f)
    tid = tr.tracks[0].track_id
    empty = (np.zeros((0, 4)), np.zeros(0))
    for f in range(3, 9):  # 6 frames without a match: still alive (lost)
        out = tr.update(*empty, f)
        assert [s.state for s in out.live] == [TrackStatus.LOST]
        assert out.ended == ()
    out = tr.update(*empty, 9)  # 7 frames since the last match > max_age
    assert tr.tracks == []
    assert [(s.track_id, s.state) for s in out.ended] == [(tid, TrackStatus.REMOVED)]
    assert tr.update(*empty, 10).ended == ()


def test_max_age_counts_source_frames_not_updates() -> None:
    tr = Tracker(TrackerConfig(max_age=10))
    for f in (0, 5):
        tr.update(np.array([box(100, 100)]), np.array([0.9]), f)
    tr.update(np.zeros((0, 4)), np.zeros(0), 15)  # 10 frames since the match: alive
    assert len(tr.tracks) == 1
    out = tr.update(np.zeros((0, 4)), np.zeros(0), 20)  # 15 frames: gone
    assert tr.tracks == [] and len(out.ended) == 1


def test_tentative_track_dropped_on_first_miss() -> None:
    tr = Tracker(TrackerConfig(min_hits=3))
    tr.update(np.array([box(100, 100)]), np.array([0.9]), 0)
    out = tr.update(np.zeros((0, 4)), np.zeros(0), 1)
    assert tr.tracks == [] and out.ended[0].state == TrackStatus.REMOVED


def test_min_hits_confirms() -> None:
    tr = Tracker(TrackerConfig(min_hits=3))
    states = []
    for f in range(3):
        states = tr.update(np.array([box(100 + f, 100)]), np.array([0.9]), f).live
        expect = TrackStatus.CONFIRMED if f == 2 else TrackStatus.TENTATIVE
        assert states[0].state == expect


def test_low_score_detection_keeps_track_but_never_starts_one() -> None:
    tr = Tracker(TrackerConfig(high_threshold=0.5, low_threshold=0.1))
    for f in range(3):
        tr.update(np.array([box(100 + 5 * f, 100)]), np.array([0.9]), f)
    tid = tr.tracks[0].track_id
    # occluded: the detector is unsure (0.3) about our object, and sees a faint new thing
    states = tr.update(np.array([box(115, 100), box(700, 500)]), np.array([0.3, 0.3]), 3).live
    assert by_det(states) == {0: tid}
    assert len(states) == 1


def test_frame_index_must_increase() -> None:
    tr = Tracker()
    tr.update(np.array([box(1, 1)]), np.array([0.9]), 5)
    with pytest.raises(ValueError, match="frame_index must increase"):
        tr.update(np.array([box(1, 1)]), np.array([0.9]), 5)


def test_finish_ends_all_tracks() -> None:
    tr = Tracker()
    tr.update(np.array([box(100, 100), box(400, 100)]), np.array([0.9, 0.9]), 0)
    ended = tr.finish()
    assert len(ended) == 2 and all(s.state == TrackStatus.REMOVED for s in ended)
    assert tr.tracks == []


def test_multiclass_trackers_are_separate_with_unique_ids() -> None:
    cfg = TrackerConfig()
    mt = MultiClassTracker({VEHICLE: cfg, PLATE: cfg})
    classes = (VEHICLE, PLATE)
    for f in range(4):
        vb = box(300 + 10 * f, 300, 200, 150)
        pb = box(300 + 10 * f, 340, 60, 15)  # plate inside the vehicle: high IoU with nothing
        dets = Detections(
            np.array([pb, vb], np.float32), np.array([0.8, 0.9], np.float32),
            np.array([1, 0]), classes,
        )  # fmt: skip
        states = mt.update(dets, f).live
    by_cls = {s.cls: s for s in states}
    # det_index is the row of the one Detections object (never a per-class split)
    assert by_cls[PLATE].det_index == 0 and by_cls[VEHICLE].det_index == 1
    assert by_cls[PLATE].track_id != by_cls[VEHICLE].track_id
    assert by_cls[PLATE].hits == by_cls[VEHICLE].hits == 4


def test_multiclass_tracker_ignores_classes_it_does_not_track() -> None:
    mt = MultiClassTracker({PLATE: TrackerConfig(min_hits=1)})
    dets = Detections(
        np.array([box(100, 100), box(300, 300)], np.float32), np.array([0.9, 0.9], np.float32),
        np.array([0, 1]), (VEHICLE, PLATE),
    )  # fmt: skip
    live = mt.update(dets, 0).live
    assert [(t.cls, t.det_index) for t in live] == [(PLATE, 1)]


def test_assign_plates_to_vehicles() -> None:
    vehicles = np.array([[0, 0, 400, 300], [300, 100, 500, 250], [600, 0, 800, 200]])
    plates = np.array(
        [
            [150, 250, 230, 270],  # inside vehicle 0 only
            [380, 200, 440, 215],  # inside 0 and 1: smaller vehicle 1 wins
            [1000, 10, 1060, 25],  # no vehicle
            [395, 50, 455, 65],  # centre x=425 is outside vehicle 0, centre y=57 above vehicle 1
        ]
    )
    assert assign_plates_to_vehicles(plates, vehicles) == [0, 1, None, None]
    assert assign_plates_to_vehicles(plates, np.zeros((0, 4))) == [None] * 4


def _state(tid: int, b: list[float], det: int = 0) -> TrackState:
    return TrackState(tid, tuple(b), 0.9, 3, 3, 0, TrackStatus.CONFIRMED, det, 0, 3, (0.0, 0.0))


def test_plate_keeps_majority_vehicle() -> None:
    link = PlateVehicleLinker()
    car_a = _state(1, [0, 0, 400, 300])
    car_b = _state(2, [300, 100, 500, 250])
    plate = _state(10, [150, 250, 230, 270])
    for _ in range(3):
        assert link.update([plate], [car_a, car_b]) == {10: 1}
    # for two frames the plate box drifts into car b's (smaller) box: majority keeps car a
    drifted = _state(10, [380, 200, 440, 215])
    for _ in range(2):
        assert link.update([drifted], [car_a, car_b]) == {10: 1}
    # an unmatched plate track (det_index -1) does not vote
    link.update([_state(10, [380, 200, 440, 215], det=-1)] * 5, [car_a, car_b])
    assert link.vehicle_of(10) == 1
    link.forget([10])
    assert link.vehicle_of(10) is None


# --------------------------------------------------------------------------- identity (issue 10)


def test_lost_track_is_revived_only_by_a_read_of_the_same_plate() -> None:
    cfg = TrackerConfig(min_hits=2, max_age=30)
    for later, same in (("7AWV401", True), ("7AWV4O1", True), ("8BXK552", False), (None, True)):
        tr = Tracker(cfg)
        for f in range(5):
            out = tr.update(
                np.array([box(300, 200)]), np.array([0.9]), f, reads=[("7AWV401", 0.95)]
            )
        first = by_det(out.live)[0]
        tr.update(np.zeros((0, 4)), np.zeros(0), 5)  # lost for a frame
        cue = None if later is None else (later, 0.95)
        out = tr.update(np.array([box(302, 200)]), np.array([0.9]), 6, reads=[cue])
        assert (by_det(out.live)[0] == first) is same, later


def test_unsure_reads_are_no_identity_cue() -> None:
    tr = Tracker(TrackerConfig(min_hits=2))
    for f in range(5):
        out = tr.update(np.array([box(300, 200)]), np.array([0.9]), f, reads=[("7AWV401", 0.95)])
    first = by_det(out.live)[0]
    out = tr.update(np.array([box(302, 200)]), np.array([0.9]), 5, reads=[("8BXK552", 0.4)])
    assert by_det(out.live)[0] == first


def test_empty_road_ends_lost_tracks_early_and_a_lost_track_is_not_revived_by_distance() -> None:
    cfg = TrackerConfig(min_hits=2, max_age=30, empty_max_age=10)
    tr = Tracker(cfg)
    for f in range(5):
        tr.update(np.array([box(300, 200)]), np.array([0.9]), f)
    ended = []
    for f in range(5, 17):
        ended += tr.update(np.zeros((0, 4)), np.zeros(0), f).ended
    assert len(ended) == 1 and ended[0].last_frame == 4  # gone after 10 empty frames, not 30
    # with the road not empty (another object in view), the lost track lives its max_age, but
    # a detection merely near it (no overlap: stage 3) does not revive it
    tr = Tracker(cfg)
    for f in range(5):
        out = tr.update(np.array([box(300, 200)]), np.array([0.9]), f)
    first = by_det(out.live)[0]
    tr.update(np.array([box(900, 600)]), np.array([0.9]), 5)
    out = tr.update(np.array([box(900, 600), box(380, 200)]), np.array([0.9, 0.9]), 6)
    assert first not in (by_det(out.live).get(1),)
    assert any(t.track_id == first and t.state == TrackStatus.LOST for t in out.live)


def test_a_plate_read_as_another_plate_than_its_vehicles_is_not_linked_to_it() -> None:
    def state(tid: int, b: list[float], cls: str, texts: tuple[str, ...]) -> TrackState:
        return TrackState(
            tid, tuple(b), 0.9, 5, 5, 0, TrackStatus.CONFIRMED, 0, 0, 5, (0.0, 0.0), cls, texts
        )  # type: ignore[arg-type]

    near = state(1, [0, 0, 800, 600], VEHICLE, ("7AWV401",))
    for texts, linked in ((("8BXK552",), None), (("7AWV4O1",), 1), ((), 1)):
        linker = PlateVehicleLinker()
        plate = state(2, [300, 400, 420, 430], PLATE, texts)
        assert linker.update([plate], [near])[2] == linked, texts


def test_a_fast_plate_read_surely_keeps_its_track_beyond_the_distance_gate() -> None:
    """A plate of 72 px diagonal moving 300 px (4 diagonals) per analysed frame: beyond
    ``distance_gate``, so without reads every frame starts a new tentative track; read surely
    as the same plate, stage 4 keeps one track and it confirms. Another plate's read, an unsure
    read or a jump beyond ``identity_gate`` does not."""

    def run(reads: list[tuple[str, float] | None], step: float = 300, **cfg: object) -> set[int]:
        tr = Tracker(TrackerConfig(min_hits=2, **cfg))  # type: ignore[arg-type]
        ids = set()
        for f, cue in enumerate(reads):
            out = tr.update(
                np.array([box(100 + step * f, 200)]), np.array([0.9]), f * 5, reads=[cue]
            )
            ids.add(by_det(out.live)[0])
        return ids

    same = [("7AWV401", 0.95)] * 4
    assert len(run(same)) == 1
    assert len(run([None] * 4)) == 4
    assert len(run(same, identity_gate=None)) == 4  # turned off
    assert len(run([("7AWV401", 0.95), ("8BXK552", 0.95)] * 2)) == 4
    assert len(run([("7AWV401", 0.95), ("7AWV401", 0.4)] * 2)) == 4
    assert len(run(same, step=600)) == 4  # 8 diagonals: beyond the gate of 6


def test_a_still_track_never_takes_a_plate_passing_over_it() -> None:
    """A plate-like sign tracked still for 10 frames; a car's plate (larger, the same row)
    passes over it at every 5th frame. Without the still gate the sign's track takes the
    passing plate (stage 1 overlap, then stage 3 nearness), so the car's reads would be voted
    with the sign's; with it the passing plate starts a track of its own and the sign's track
    stays on the sign. A still track still follows its own object through detector jitter,
    and a moving track is not gated."""

    def run(**cfg: object) -> tuple[set[int], int]:
        tr = Tracker(TrackerConfig(min_hits=2, **cfg))  # type: ignore[arg-type]
        sign = box(600, 300, 75, 25)
        for f in range(10):
            out = tr.update(np.array([sign]), np.array([0.7]), f * 5)
        sign_id = by_det(out.live)[0]
        passing = set()
        for k, cx in enumerate((560, 640)):  # overlaps the sign's box in both frames
            f = 50 + 5 * k
            out = tr.update(np.array([box(cx, 305, 110, 36)]), np.array([0.8]), f)
            passing.add(by_det(out.live)[0])
        return passing, sign_id

    passing, sign_id = run(still_gate=None)
    assert sign_id in passing
    passing, sign_id = run()
    assert sign_id not in passing

    tr = Tracker(TrackerConfig(min_hits=2))
    rng = np.random.default_rng(0)
    ids = set()
    for f in range(20):  # 1.5 px of jitter on a still 75x25 box
        jitter = rng.normal(0, 1.5, 2)
        out = tr.update(np.array([box(600 + jitter[0], 300 + jitter[1], 75, 25)]), [0.7], f)
        ids.add(by_det(out.live)[0])
    assert len(ids) == 1
    tr = Tracker(TrackerConfig(min_hits=2))
    ids = set()
    for f in range(8):  # moving 20 px per frame, then 40: the filter lags, no gate applies
        x = 100 + 20 * f if f < 4 else 160 + 40 * (f - 3)
        out = tr.update(np.array([box(x, 300, 75, 25)]), [0.7], f)
        ids.add(by_det(out.live)[0])
    assert len(ids) == 1
