"""benchmarks/soak_memory.py runs short and says what is wrong with its arguments."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_memory.py"


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("soak_memory", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["soak_memory"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_short_runs_sample_often_enough(capsys: pytest.CaptureFixture[str]) -> None:
    """--frames 400 with the default --sample-rss used to crash with IndexError (no samples)."""
    soak = _module()
    assert soak.main(["--frames", "400", "--standin-models"]) == 0
    out = capsys.readouterr().out
    assert "RSS start" in out and "RSS start None" not in out and "20 samples" in out


def test_bad_arguments_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    soak = _module()
    for argv, why in (
        (["--frames", "10"], "--frames must be >= 40"),
        (["--frames", "1000", "--sample-rss", "500"], "fewer than 4 samples"),
    ):
        with pytest.raises(SystemExit) as e:
            soak.main(argv)
        assert e.value.code == 2 and why in capsys.readouterr().err
