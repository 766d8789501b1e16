"""One event per vehicle with the shipped models (issue 10's failure modes on real pixels):
drawn cars with rendered plates (training.synth.motion.drawn_vehicle, no data set needed) in a
gate queue and standing one after another at one spot, replayed through the shipped detector
and reader and the runtime's analyzer, every frame and every 3rd/5th."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analysis.analyzer import CameraAnalyzer
from edge.capture.sampling import FrameSampler
from edge.detect.alpr import Alpr
from edge.detect.models import load_models
from edge.eval.identity import ClipScore, Recorder, score_clip
from edge.types import Frame
from edge.vote.config import VotingConfig
from training.synth.motion import (
    Stage,
    Visit,
    drawn_vehicle,
    gate_queue,
    render_motion_clip,
    truth_vehicles,
)
from training.synth.video import _scene_geometry, procedural_background

STAGE = Stage(1280, 720, 25.0)


@pytest.fixture(scope="module")
def engine() -> Alpr:
    return Alpr(*load_models(None, threads=1))


def replay(path: Path, truth, engine: Alpr, every: int) -> ClipScore:  # type: ignore[no-untyped-def]
    voting = VotingConfig()
    rec = Recorder(CameraAnalyzer("cam", voting=voting, formats=voting.plate_formats()))
    sampler = FrameSampler(every)
    cap = cv2.VideoCapture(str(path))
    f = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if sampler.take(f):
            frame = Frame("cam", f, f / STAGE.fps, img, False, video_time_s=f / STAGE.fps)
            rec.update(frame, engine.infer(frame))
        f += 1
    cap.release()
    rec.finish(f - 1)
    return score_clip(truth_vehicles(truth), rec.analysed, rec.reads, rec.decisions)


def cars(seed: int, n: int) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    return [drawn_vehicle(rng, style, 420) for style in ("us_ca", "eu_de", "br_mercosul")[:n]]


def background() -> np.ndarray:
    geo = _scene_geometry(STAGE.width, STAGE.height, int(STAGE.height * 0.3))
    return procedural_background(np.random.default_rng(3), STAGE.width, STAGE.height, geo)


def test_gate_queue_and_standing_cars_get_one_event_each(tmp_path: Path, engine: Alpr) -> None:
    vs = cars(1, 3)
    visits = gate_queue(np.random.default_rng(2), vs, STAGE)
    # and two cars standing 1.2 s each at one spot, the second 8 frames after the first. Not
    # longer: these drawn cars are not boxed by the detector, so their plates are tied to no
    # vehicle, and one read for events.static_plate_s (2 s) is taken for a sign. At 1.6 s
    # reader 0.3 read the first plate over 2.08 s (the next car's first frames in its track)
    standing = [
        Visit(vs[0], [(5, 640, 400, 110), (35, 640, 400, 110)]),
        Visit(vs[1], [(43, 640, 400, 110), (73, 640, 400, 110)]),
    ]
    for name, plan, rates in (("queue", visits, (1, 3)), ("standing", standing, (1, 5))):
        clip = tmp_path / f"{name}.mp4"
        truth = render_motion_clip(clip, plan, background(), fps=STAGE.fps)
        for every in rates:
            score = replay(clip, truth, engine, every)
            readable = [v for v in score.vehicles if v.readable]
            assert readable, (name, every, score.vehicles)
            assert score.count("merged") == 0, (name, every, score.vehicles)
            assert score.count("duplicated") == 0, (name, every, score.vehicles)
            assert all(v.outcome == "right" for v in readable), (name, every, score.vehicles)


def test_a_short_visit_gets_its_final(tmp_path: Path, engine: Alpr) -> None:
    """A car in view 2 s, readable in only a handful of analysed frames at every 5th frame,
    gets its one final, within the track timeout + 1 s of leaving. (The voter's text-switch
    split is tested on reads in tests/unit/vote/test_voting.py: with the shipped models the
    tracker's identity cues already keep such cars apart.)

    The faster crossings (40 and 45 frames) are the still gate's and the distance gate's cases.
    With detector 0.1 the scene's plate-like boxes were tracked from frame 0, and at every
    4th-5th frame the car's plate, two widths further each analysed frame, was taken over by
    them one after another: its reads split over three tracks and no final came. With 0.2, at
    40 frames and every 5th, the plate moves 2.7 box diagonals per analysed frame, beyond a
    distance gate of 2: every frame started a new tentative track and none confirmed.
    Which of these short visits the reader gets in 3 frames depends on the models; each one
    it does must get its final."""
    vs = cars(4, 1)
    half = 420 / 2 + 10
    readable = 0
    for span, rates in ((50, (1, 5)), (45, (3, 4, 5)), (40, (3, 4, 5))):
        short = [Visit(vs[0], [(5, -half, 420, 110), (5 + span, STAGE.width + half, 420, 110)])]
        clip = tmp_path / f"short{span}.mp4"
        truth = render_motion_clip(clip, short, background(), fps=STAGE.fps)
        for every in rates:
            (s,) = replay(clip, truth, engine, every).vehicles
            assert s.outcome not in ("merged", "duplicated"), (span, every, s)
            if s.readable:
                readable += 1
                assert s.outcome == "right", (span, every, s)
                assert s.final_after_leave is not None
                assert s.final_after_leave <= 30 + STAGE.fps
    assert readable >= 4  # most of these 8 visits are readable: the test is not vacuous
