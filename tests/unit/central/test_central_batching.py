"""When the collector writes a batch: at its size or its maximum wait, whichever is first."""

from __future__ import annotations

import pytest

from edge.central.batching import Batcher


def test_due_at_size() -> None:
    b: Batcher[int] = Batcher(3, 10.0)
    assert not b.due(0.0) and b.time_left(0.0) is None
    for i in range(3):
        assert not b.due(0.0)
        b.add(i, 0.0)
    assert b.full and b.due(0.0)
    assert b.take() == [0, 1, 2]
    assert len(b) == 0 and not b.due(100.0)


def test_due_after_max_wait_from_the_first_item() -> None:
    b: Batcher[str] = Batcher(100, 0.5)
    b.add("a", 10.0)
    b.add("b", 10.4)  # a later item does not restart the clock
    assert not b.due(10.49)
    assert b.time_left(10.2) == pytest.approx(0.3)
    assert b.due(10.5) and b.time_left(11.0) == 0.0
    assert b.take() == ["a", "b"]
    b.add("c", 20.0)  # a new batch has its own clock
    assert not b.due(20.3) and b.due(20.5)


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="batch size"):
        Batcher(0, 1.0)
    with pytest.raises(ValueError, match="max wait"):
        Batcher(1, 0.0)
