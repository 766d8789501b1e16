"""One event per vehicle, with the stand-in (oracle) engine: the failure modes of issue 10
(gap revival, text switch, short visits, low sampling) on the motion patterns of
training.synth.motion, scored by edge.eval.identity. The shipped-model versions are in
tests/integration/test_identity_shipped.py."""

from __future__ import annotations

import numpy as np
import pytest
from doubles import OracleEngine

from edge.analysis.analyzer import CameraAnalyzer
from edge.capture.sampling import FrameSampler
from edge.eval.identity import ClipScore, Recorder, score_clip
from edge.track.config import PLATE_TRACKER, VEHICLE_TRACKER, TrackingConfig
from edge.types import Frame
from edge.vote.config import VotingConfig
from training.synth.motion import (
    PATTERNS,
    PhotoVehicle,
    Stage,
    Visit,
    motion_truth,
    truth_vehicles,
)

STAGE = Stage(1920, 1080, 25.0)
PLATES = ["7AWV401", "8BXK552", "AB123CD", "KL456MN", "5TZA419", "RK300AS", "JQV5526", "CC2881"]


def placeholder(text: str) -> PhotoVehicle:
    """A vehicle for the oracle engine: only its size and plate box matter."""
    bgr = np.zeros((230, 320, 3), np.uint8)
    return PhotoVehicle(bgr, np.ones((230, 320), np.float32), (110, 150, 210, 175), text, "t")


OLD_RULES = {
    "tracking": TrackingConfig(
        vehicle=VEHICLE_TRACKER.model_copy(
            update={"identity_min_confidence": None, "empty_max_age": None}
        ),
        plate=PLATE_TRACKER.model_copy(
            update={"identity_min_confidence": None, "empty_max_age": None}
        ),
    ),
    "voting": VotingConfig(split_reads=None),
}


def replay(
    visits: list[Visit],
    every: int,
    seed: int = 1,
    error_rate: float = 0.25,
    engine_type: type[OracleEngine] = OracleEngine,
    **analyzer_kw: object,
) -> ClipScore:
    truth = motion_truth(visits, STAGE.width, STAGE.height, STAGE.fps)
    engine = engine_type(truth, error_rate=error_rate, seed=seed)
    rec = Recorder(CameraAnalyzer("cam", **analyzer_kw))  # type: ignore[arg-type]
    sampler = FrameSampler(every)
    image = np.zeros((STAGE.height, STAGE.width, 3), np.uint8)
    for f in range(truth.frame_count):
        if sampler.take(f):
            frame = Frame("cam", f, f / STAGE.fps, image, False, video_time_s=f / STAGE.fps)
            rec.update(frame, engine.infer(frame))
    rec.finish(truth.frame_count - 1)
    return score_clip(truth_vehicles(truth), rec.analysed, rec.reads, rec.decisions)


def pattern(name: str, seed: int = 0, n: int | None = None) -> list[Visit]:
    fn, count = PATTERNS[name]
    vehicles = [placeholder(PLATES[i % len(PLATES)]) for i in range(n or count)]
    return fn(np.random.default_rng(seed), vehicles, STAGE)


def outcomes(score: ClipScore) -> list[str]:
    return [v.outcome for v in score.vehicles]


def test_gate_queue_gives_one_right_final_per_car() -> None:
    """At a barrier one car after another stops at one spot, 0.2-1 s of empty road between."""
    for seed in range(3):
        visits = pattern("gate_queue", seed)
        for every in (1, 3, 5):
            score = replay(visits, every)
            assert outcomes(score) == ["right"] * len(visits), (seed, every, outcomes(score))
            assert score.false_events == 0


def standing(text: str, first: int, last: int) -> Visit:
    """A car standing at the one spot from ``first`` to ``last`` (it pulls away between two
    analysed frames: what a low analysed frame rate sees of a barrier)."""
    return Visit(placeholder(text), [(first, 900, 600, 120), (last, 900, 600, 120)])


@pytest.mark.parametrize("gap", [4, 8, 20])
def test_a_lost_track_is_not_revived_by_the_next_car(gap: int) -> None:
    """Gap revival: car 1 stands at the spot and is gone; ``gap`` frames later car 2 stands at
    the same spot, inside the lost track's max_age (30 frames) and its predicted box. Each car
    gets its own right final; with the identity, empty-road and split rules off, the second car
    revives the first one's track and the two make one event (the bug this guards against)."""
    visits = [standing("7AWV401", 5, 80), standing("8BXK552", 80 + gap, 160)]
    for every in (1, 3):
        score = replay(visits, every, error_rate=0.1)
        assert outcomes(score) == ["right", "right"], (every, outcomes(score))
        assert replay(visits, every, error_rate=0.1, **OLD_RULES).count("merged") == 2


@pytest.mark.parametrize("every", [1, 2, 3, 4, 5])
def test_every_sampling_rate_gives_one_right_final_per_vehicle(every: int) -> None:
    """Low sampling / pop-in: drive-through and pop-in at every rate 1-5."""
    for name in ("drive_through", "pop_in", "side_by_side"):
        score = replay(pattern(name, seed=every), every)
        assert outcomes(score) == ["right"] * len(score.vehicles), (name, outcomes(score))


def test_short_visit_with_three_readable_frames_gets_its_final() -> None:
    """A vehicle in view 1.2 s, readable in only 3-5 analysed frames at every 5th frame, still
    gets exactly one final, within the track timeout + 1 s of leaving."""
    v = placeholder("7AWV401")
    half = 160 * 1.2
    visits = [Visit(v, [(5, -half, 600, 120), (5 + 30, STAGE.width + half, 600, 120)])]
    for every in (1, 2, 3, 4, 5):
        score = replay(visits, every, error_rate=0.1)
        (s,) = score.vehicles
        assert s.readable_frames >= 3
        assert s.outcome == "right", (every, s)
        assert s.final_after_leave is not None
        assert s.final_after_leave <= 30 + STAGE.fps  # max_age (source frames) + 1 s


def test_parked_and_reversing_cars_are_one_event_each() -> None:
    for name, every in (("parked", 5), ("reverse", 1), ("reverse", 3), ("occlusion", 1)):
        score = replay(pattern(name), every)
        assert outcomes(score) == ["right"] * len(score.vehicles), (name, every, outcomes(score))


class ParkedBoxEngine(OracleEngine):
    """The oracle's plates, but one vehicle box only, that never moves (a parked car, or a
    false vehicle detection on the background) across the lanes the cars drive through, whose
    own boxes the detector misses."""

    def infer(self, frame: Frame):  # type: ignore[no-untyped-def]
        from edge.detect.alpr import build_result

        r = super().infer(frame)
        vehicles = [((0.0, 300.0, 1920.0, 1000.0), 0.9)]
        plates = [(p.box, p.score, p.read) for p in r.plates]
        return build_result(frame.image, vehicles, plates)


def test_plates_passing_through_a_parked_cars_box_are_not_its_plate() -> None:
    """A plate whose vote was keyed to a vehicle box it only passes through, and is then
    surely read as another plate than that vote's, leaves for a vote of its own."""
    # two cars through the parked box together (two lanes), then a third on its own
    a, b, c = (placeholder(t) for t in PLATES[:3])
    visits = [
        Visit(a, [(5, -200, 500, 120), (80, 2120, 500, 120)]),
        Visit(b, [(10, -200, 820, 120), (85, 2120, 820, 120)]),
        Visit(c, [(100, -200, 650, 120), (175, 2120, 650, 120)]),
    ]
    for every in (1, 3):
        score = replay(visits, every, seed=2, error_rate=0.1, engine_type=ParkedBoxEngine)
        assert outcomes(score) == ["right"] * len(visits), (every, outcomes(score))


class HiddenPlateEngine(ParkedBoxEngine):
    """The parked box, and the plate in the lower lane (y > 700) never read surely (one
    character at 0.4): it gives no identity cue that could split it from the other's vote."""

    def infer(self, frame: Frame):  # type: ignore[no-untyped-def]
        from edge.detect.alpr import build_result
        from edge.types import TextRead

        r = super().infer(frame)
        plates = []
        for p in r.plates:
            read = p.read
            if p.box[1] > 700:
                confs = (0.4, *read.char_confidences[1:])
                read = TextRead(read.text, min(confs), confs)
            plates.append((p.box, p.score, read))
        return build_result(frame.image, [(r.detections.boxes[0].tolist(), 0.9)], plates)


@pytest.mark.parametrize("every", [1, 3])
def test_two_plates_read_in_one_frame_are_never_one_vote(every: int) -> None:
    """A second plate appears inside the vehicle box whose vote the first plate holds (a near
    car's box swallowing the plate of the car it hides) and is never read surely enough for an
    identity cue: two plates read in one frame are still two votes, never one event."""
    a, b = placeholder(PLATES[0]), placeholder(PLATES[1])
    visits = [
        Visit(a, [(5, -200, 500, 120), (110, 2120, 500, 120)]),
        Visit(b, [(40, -200, 820, 120), (120, 2120, 820, 120)]),
    ]
    score = replay(visits, every, seed=4, error_rate=0.1, engine_type=HiddenPlateEngine)
    assert outcomes(score)[0] == "right", outcomes(score)
    assert "merged" not in outcomes(score), outcomes(score)
