"""A built wheel, installed into a fresh virtual environment away from the checkout, carries
what the commands need: the shipped models and the demo clip (package data), no training
extras (the demo needs no Pillow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin/`` of a fresh venv with the project's wheel (runtime dependencies only)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp / "dist").glob("platewatch-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-2000:]
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLATEWATCH_MODELS")}
    return subprocess.run(
        [str(bin_dir / "platewatch"), *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_wheel_reads_an_image_and_plays_the_demo(installed: Path, tmp_path: Path) -> None:
    cap = cv2.VideoCapture(str(REPO / "samples" / "demo.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "car.jpg"), frame)
    r = _run(installed, tmp_path, "image", "car.jpg")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout.splitlines()[0])
    assert record["image"] == "car.jpg" and "plates" in record
    r = _run(installed, tmp_path, "demo", "--no-broker", "--no-progress")
    assert r.returncode == 0, r.stderr
    finals = [json.loads(x) for x in r.stdout.splitlines() if '"final"' in x]
    assert len(finals) >= 4  # the clip's cars, read by the wheel's own models
    where = subprocess.run(
        [str(installed / "python"), "-c", "from edge import resources as r; print(r.models_dir())"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "site-packages" in where and "_bundled" in where  # not the checkout's models/
