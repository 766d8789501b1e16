"""Camera health windows and the stats message (edge.app.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.app.stats import LatencyWindow, RateMeter, percentile


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


def test_stats_message_is_schema_valid(validate_message) -> None:  # type: ignore[no-untyped-def]
    from edge.app.stats import CameraHealth
    from edge.capture.camera import CameraCapture
    from edge.capture.config import CaptureConfig

    cfg = CaptureConfig(name="cam1", source="rtsp://127.0.0.1:1/x")
    health = CameraHealth("cam1")
    health.latency.add(12.0)
    stats = health.snapshot(CameraCapture(cfg).stats())
    validate_message(stats.model_dump(mode="json"), "camera_stats.schema.json")
    assert stats.latency_ms_p50 == 12.0 and stats.online is False
