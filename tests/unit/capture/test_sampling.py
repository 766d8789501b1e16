"""Frame sampling and the motion gate (edge.capture.sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.capture.config import MotionConfig
from edge.capture.sampling import FrameSampler, MotionGate


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
