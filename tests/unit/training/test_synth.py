"""Synthetic plate generator and composites (training/synth): fast, CPU-only."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.records import PLATE, Box
from training.synth import (
    ALPHABET,
    REGIONS,
    STYLES,
    SynthPlate,
    composite_on_vehicle,
    composite_scene,
    fonts,
    generate_plate,
    style_regex,
    style_region,
)
from training.synth.layouts import STYLE_SPECS


def _background(seed: int = 0, h: int = 480, w: int = 640) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("degrade", [True, False])
def test_every_style_renders_valid_plates(style: str, degrade: bool) -> None:
    rng = np.random.default_rng(1)
    pattern = style_regex(style)
    for _ in range(6):
        p = generate_plate(rng, style, degrade=degrade)
        assert isinstance(p, SynthPlate)
        assert p.style == style
        assert p.image.dtype == np.uint8 and p.image.ndim == 3 and p.image.shape[2] == 3
        h, w = p.image.shape[:2]
        assert 12 <= h <= 130, (style, p.image.shape)
        assert p.text and set(p.text) <= set(ALPHABET), p.text
        assert pattern.fullmatch(p.text), (style, p.text)
        assert p.two_line == STYLE_SPECS[style].two_line
        aspect = w / h
        if p.two_line:
            assert aspect < 1.4, (style, p.image.shape)
        else:
            assert aspect >= 1.9, (style, p.image.shape)
        # a plate is not a flat colour: characters contrast with the background
        assert p.image.std() > 8


def test_styles_cover_every_region_and_both_layouts() -> None:
    assert {style_region(s) for s in STYLES} == set(REGIONS)
    assert any(STYLE_SPECS[s].two_line for s in STYLES)
    for region in ("us", "eu", "br", "uk", "in", "ec"):
        assert any(style_region(s) == region for s in STYLES)
    with pytest.raises(ValueError, match="unknown plate style"):
        style_region("xx_nowhere")
    with pytest.raises(ValueError, match="unknown plate style"):
        generate_plate(np.random.default_rng(0), "xx_nowhere")


def test_separators_are_drawn_but_not_labelled() -> None:
    rng = np.random.default_rng(3)
    texts = {generate_plate(rng, "eu_de", degrade=False).text for _ in range(20)}
    assert all("-" not in t and " " not in t for t in texts)
    assert len(texts) > 15  # random, not a constant


def test_random_style_draws_many_styles_and_sizes() -> None:
    rng = np.random.default_rng(5)
    plates = [generate_plate(rng) for _ in range(120)]
    assert len({p.style for p in plates}) >= len(STYLES) - 3
    heights = [p.image.shape[0] for p in plates]
    assert min(heights) < 35 and max(heights) > 60


def test_determinism_with_fixed_seed() -> None:
    a = [generate_plate(np.random.default_rng(42)) for _ in range(3)]
    b = [generate_plate(np.random.default_rng(42)) for _ in range(3)]
    for pa, pb in zip(a, b, strict=True):
        assert pa.text == pb.text and pa.style == pb.style
        assert np.array_equal(pa.image, pb.image)
    c = generate_plate(np.random.default_rng(43))
    assert c.text != a[0].text or not np.array_equal(c.image, a[0].image)


def test_corners_locate_the_plate_in_the_crop() -> None:
    p = generate_plate(np.random.default_rng(7), "us_ca", degrade=False)
    h, w = p.image.shape[:2]
    assert p.corners is not None and p.corners.shape == (4, 2)
    assert (p.corners[:, 0] >= -1).all() and (p.corners[:, 0] <= w + 1).all()
    assert (p.corners[:, 1] >= -1).all() and (p.corners[:, 1] <= h + 1).all()


def test_composite_scene_boxes_are_inside_and_cover_the_pasted_plate() -> None:
    rng = np.random.default_rng(11)
    bg = _background()
    img, boxes = composite_scene(rng, bg, 3)
    assert img.shape == bg.shape and img.dtype == np.uint8
    assert 1 <= len(boxes) <= 3
    H, W = bg.shape[:2]
    for b in boxes:
        assert b.label == PLATE and b.text and set(b.text) <= set(ALPHABET)
        assert 0 <= b.x1 < b.x2 <= W and 0 <= b.y1 < b.y2 <= H
        assert 0.025 * W <= b.width <= 0.3 * W, b
        x1, y1, x2, y2 = int(b.x1), int(b.y1), int(np.ceil(b.x2)), int(np.ceil(b.y2))
        diff = np.abs(img[y1:y2, x1:x2].astype(int) - bg[y1:y2, x1:x2].astype(int)).mean()
        assert diff > 15, (b, diff)  # the plate really is there
    # boxes do not overlap each other
    for i, a in enumerate(boxes):
        for c in boxes[i + 1 :]:
            assert a.x2 <= c.x1 or c.x2 <= a.x1 or a.y2 <= c.y1 or c.y2 <= a.y1


def test_composite_scene_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="background_bgr"):
        composite_scene(np.random.default_rng(0), np.zeros((10, 10), np.uint8), 1)


def test_composite_on_vehicle_places_plate_low_in_the_vehicle() -> None:
    rng = np.random.default_rng(2)
    bg = _background(1)
    vehicle = Box("vehicle", 200, 150, 440, 330)
    img, plate = composite_on_vehicle(rng, bg, vehicle)
    assert plate.label == PLATE and plate.text
    assert vehicle.x1 <= plate.x1 < plate.x2 <= vehicle.x2
    cy = (plate.y1 + plate.y2) / 2
    assert vehicle.y1 + 0.55 * vehicle.height <= cy <= vehicle.y2
    assert 0.14 * vehicle.width <= plate.width <= 0.36 * vehicle.width
    x1, y1, x2, y2 = int(plate.x1), int(plate.y1), int(plate.x2), int(plate.y2)
    assert np.abs(img[y1:y2, x1:x2].astype(int) - bg[y1:y2, x1:x2].astype(int)).mean() > 15
    assert np.array_equal(img[:100], bg[:100])  # nothing pasted outside the vehicle


def test_renders_with_ttf_only_when_plate_chars_are_absent(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PLATEWATCH_DATA", str(tmp_path))
    fonts.get_bank.cache_clear()
    try:
        assert fonts.get_bank("de") == {}
        rng = np.random.default_rng(0)
        for style in ("eu_de", "uk_rear", "br_old"):
            p = generate_plate(rng, style)
            assert style_regex(style).fullmatch(p.text)
    finally:
        fonts.get_bank.cache_clear()


def test_real_glyph_banks_load_from_plate_chars() -> None:
    if not (fonts.data_root() / "plate-chars").is_dir():
        pytest.skip(f"shared data absent: {fonts.data_root() / 'plate-chars'}")
    for bank in ("de", "uk", "br", "nl", "fr"):
        glyphs = fonts.get_bank(bank)
        assert len(glyphs) >= 25, (bank, sorted(glyphs))
        assert all(g.shape[0] == fonts.GLYPH_H for v in glyphs.values() for g in v)
