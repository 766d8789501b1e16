"""Synthetic US plates on state artwork (training.synth.us_designs), on a design drawn here:
no data set needed."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from training.synth.us_designs import (
    STATE_FORMATS,
    Design,
    UsDesigns,
    blank_design,
    clean_row,
    find_serial,
    make_serial,
)


def design(serial: str = "ABC123") -> np.ndarray:
    """A 480x240 plate: state name on top, a big dark serial, a slogan below, a blue logo."""
    img = np.full((240, 480, 3), (235, 240, 245), np.uint8)
    cv2.putText(img, "GEORGIA", (170, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (40, 40, 160), 2)
    cv2.putText(img, serial, (30, 175), cv2.FONT_HERSHEY_SIMPLEX, 3.6, (30, 30, 30), 13)
    cv2.putText(img, "peach state", (180, 215), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (40, 40, 40), 1)
    cv2.circle(img, (440, 40), 18, (200, 120, 40), -1)
    return img


def test_the_serial_row_is_found_and_painted_out() -> None:
    img = design()
    s = find_serial(img)
    assert s is not None and s.n_glyphs == 6
    x0, y0, x1, y1 = s.box
    assert 25 <= x0 <= 60 and 400 <= x1 <= 475 and 80 <= y0 < y1 <= 185
    assert np.abs(np.array(s.ink) - 30).max() < 40  # the serial's dark ink, not the red title
    blank = blank_design(img, s)
    assert clean_row(blank, s)
    # the state name and slogan are kept (they are the distractors)
    assert np.abs(blank[20:45, 170:300].astype(int) - img[20:45, 170:300]).max() < 10
    assert find_serial(blank) is None or find_serial(blank).n_glyphs < 3  # type: ignore[union-attr]


def test_generated_plates_carry_their_state_format_and_a_readable_serial() -> None:
    img = design()
    s = find_serial(img)
    assert s is not None
    designs = UsDesigns([Design("CA", "t", blank_design(img, s), s)], [])
    rng = np.random.default_rng(0)
    ca = re.compile(r"^[0-9][A-Z]{3}[0-9]{3}$")
    vanity = 0
    for _ in range(40):
        p = designs.generate(rng, degrade=False)
        assert p.image.shape == img.shape and p.style == "us_design_ca"
        if ca.match(p.text) is None:
            vanity += 1
            assert re.match(r"^[A-Z0-9]{2,7}$", p.text)
        # the new serial is drawn dark where the old row was
        assert (cv2.cvtColor(p.image[95:180, 30:460], cv2.COLOR_BGR2GRAY) < 90).mean() > 0.05
    assert 0 < vanity < 20
    small = designs.generate(rng, degrade=True)
    assert 20 <= small.image.shape[0] <= 95


def test_every_state_format_draws_valid_serials() -> None:
    rng = np.random.default_rng(1)
    for state in [*STATE_FORMATS, "XX"]:
        for _ in range(5):
            t = make_serial(rng, state)
            assert re.match(r"^[A-Z0-9]{2,8}$", t), (state, t)


def test_load_refuses_a_folder_that_is_not_the_design_set(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError):
        UsDesigns.load(tmp_path)
