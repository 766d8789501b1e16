"""Synthetic traffic clips (training/synth/video.py): frame counts, truth consistency,
determinism, and replay clips whose transformed plate box stays on the plate."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.synth import fonts, generate_plate, style_regex
from training.synth.video import (
    ClipTruth,
    main,
    make_replay_clip_from_photo,
    read_openalpr_label,
    render_clip,
    truth_path,
    ttf_only_glyphs,
)

W, H, FPS, SECONDS = 320, 240, 25, 2.0


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClipTruth]:
    path = tmp_path_factory.mktemp("clip") / "small.mp4"
    truth = render_clip(path, width=W, height=H, fps=FPS, seconds=SECONDS, n_vehicles=2, seed=3)
    return path, truth


def test_frame_count_and_truth_file(clip: tuple[Path, ClipTruth]) -> None:
    path, truth = clip
    n = round(FPS * SECONDS)
    assert truth.frame_count == n
    frames = _frames(path)
    assert len(frames) == n
    assert frames[0].shape == (H, W, 3)
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()
    loaded = ClipTruth.load(truth_path(path))
    assert loaded.to_json() == truth.to_json()
    assert loaded.path == path.name and loaded.kind == "synthetic"


def test_truth_is_consistent(clip: tuple[Path, ClipTruth]) -> None:
    _, truth = clip
    assert len(truth.vehicles) == 2
    assert len({v.text for v in truth.vehicles}) == 2
    for v in truth.vehicles:
        assert style_regex(v.style).fullmatch(v.text), (v.style, v.text)
        assert v.first_full is not None and v.last_full is not None
        # the plate enters (partly visible), is fully visible for a while, then leaves
        assert v.first_frame < v.first_full < v.last_full < v.last_frame
        assert v.last_full - v.first_full >= 10
        vis = [v.frames[f].plate_visibility for f in range(v.first_frame, v.last_frame + 1)]
        assert vis[0] != "full" and vis[-1] != "full"
        # fully visible frames form one contiguous run (no other car hides these plates)
        full = v.full_frames()
        assert full == list(range(full[0], full[-1] + 1))
        for f, t in v.frames.items():
            assert 0 <= f < truth.frame_count
            vb = t.vehicle_box
            assert vb is not None and 0 <= vb[0] < vb[2] <= W and 0 <= vb[1] < vb[3] <= H
            if t.plate_visibility == "hidden":
                assert t.plate_box is None
                continue
            x1, y1, x2, y2 = t.plate_box
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
            q = np.asarray(t.plate_quad)
            if t.plate_visibility == "full":
                # the visible box is the whole quad, and the plate sits inside its car
                assert np.allclose([x1, y1, x2, y2], [*q.min(0), *q.max(0)], atol=0.11)
                assert vb[0] <= x1 and x2 <= vb[2] and vb[1] <= y1 and y2 <= vb[3]
                assert (x2 - x1) / (y2 - y1) > 1.5  # one-line plates by default


def test_plates_grow_while_approaching(clip: tuple[Path, ClipTruth]) -> None:
    _, truth = clip
    for v in truth.vehicles:
        full = v.full_frames()
        w0 = np.ptp(np.asarray(v.frames[full[0]].plate_quad)[:, 0])
        w1 = np.ptp(np.asarray(v.frames[full[-1]].plate_quad)[:, 0])
        assert (w1 > w0 * 1.3) if v.view == "front" else (w0 > w1 * 1.3), (v.view, w0, w1)


def test_plate_region_differs_from_background(clip: tuple[Path, ClipTruth]) -> None:
    path, truth = clip
    frames = _frames(path)
    for v in truth.vehicles:
        clean = [f for f in v.full_frames() if v.frames[f].degraded is None]
        f = max(clean, key=lambda k: v.frames[k].plate_box[2] - v.frames[k].plate_box[0])
        x1, y1, x2, y2 = (round(c) for c in v.frames[f].plate_box)
        plate = frames[f][y1:y2, x1:x2].astype(np.float32)
        empty = frames[0][y1:y2, x1:x2].astype(np.float32)  # no car on screen at frame 0
        assert not truth.plates_in_frame(0)
        assert np.abs(plate - empty).mean() > 20
        assert plate.std() > 15  # characters on a plate, not a flat patch


def test_same_seed_same_clip_other_seed_other_clip(
    tmp_path: Path, clip: tuple[Path, ClipTruth]
) -> None:
    path, truth = clip
    again = render_clip(
        tmp_path / "again.mp4", width=W, height=H, fps=FPS, seconds=SECONDS, n_vehicles=2, seed=3
    )
    a, b = truth.to_json(), again.to_json()
    for d in (a, b):
        d.pop("render_seconds")
        d.pop("path")
    assert a == b
    fa, fb = _frames(path), _frames(tmp_path / "again.mp4")
    assert all(np.array_equal(x, y) for x, y in zip(fa[::7], fb[::7], strict=True))
    other = render_clip(
        tmp_path / "other.mp4", width=W, height=H, fps=FPS, seconds=SECONDS, n_vehicles=2, seed=4
    )
    assert [v.text for v in other.vehicles] != [v.text for v in truth.vehicles]


def test_styles_views_and_ttf_only(tmp_path: Path) -> None:
    truth = render_clip(
        tmp_path / "s.mp4",
        width=W,
        height=H,
        fps=10,
        seconds=3,
        n_vehicles=3,
        seed=1,
        plate_styles=["uk", "eu_de", "br_mercosul"],
        ttf_only=True,
        noise=0,
    )
    styles = [v.style for v in truth.vehicles]
    assert styles[1:] == ["eu_de", "br_mercosul"]
    assert styles[0] == ("uk_front" if truth.vehicles[0].view == "front" else "uk_rear")
    assert {v.view for v in truth.vehicles} == {"front", "rear"}


def test_ttf_only_glyphs_hides_shared_glyphs_and_restores() -> None:
    before = bool(fonts.get_bank("de"))
    with ttf_only_glyphs():
        assert fonts.get_bank("de") == {}
        assert fonts.get_bank("dejavu_cond")  # TrueType glyphs still there
        p = generate_plate(np.random.default_rng(0), "eu_de", degrade=False)
        assert p.image.std() > 8
    assert bool(fonts.get_bank("de")) == before


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        render_clip(tmp_path / "x.mp4", width=10, height=10)
    with pytest.raises(ValueError, match="unknown plate style"):
        render_clip(tmp_path / "x.mp4", width=W, height=H, seconds=1, plate_styles=["nope"])


def test_cli_writes_clip_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mp4"
    assert (
        main(
            [
                str(out),
                "--width",
                "160",
                "--height",
                "120",
                "--fps",
                "10",
                "--seconds",
                "2",
                "--vehicles",
                "1",
                "--seed",
                "2",
            ]
        )
        == 0
    )
    assert out.is_file() and truth_path(out).is_file()
    assert json.loads(truth_path(out).read_text())["frame_count"] == 20
    assert "vehicle 0" in capsys.readouterr().out


# ---------------------------------------------------------------------------- replay clips


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    b = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-6))


def _check_replay(
    photo: Path,
    box: tuple[float, float, float, float],
    out: Path,
    size: tuple[int, int] | None = None,
) -> None:
    img = cv2.imread(str(photo))
    x1, y1, x2, y2 = (round(v) for v in box)
    ref = img[y1:y2, x1:x2]
    truth = make_replay_clip_from_photo(
        photo, box, out, frames=30, text="ABC123", seed=5, size=size
    )
    frames = _frames(out)
    assert len(frames) == truth.frame_count == 30
    assert ClipTruth.load(truth_path(out)).to_json() == truth.to_json()
    (v,) = truth.vehicles
    assert v.text == "ABC123" and truth.kind == "replay"
    on, off, centres = [], [], []
    for f, fr in enumerate(frames):
        t = v.frames[f]
        assert t.plate_visibility == "full"  # the pan/zoom keeps the plate in view
        bx1, by1, bx2, by2 = (round(c) for c in t.plate_box)
        crop = fr[by1:by2, bx1:bx2]
        # compare at the lower of the two resolutions (the clip may be smaller than the photo)
        small = cv2.resize(ref, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
        on.append(_corr(crop, small))
        dy = round(1.5 * (by2 - by1))  # the same box moved 1.5 plate heights up or down
        sy1 = by1 + dy if by2 + dy <= fr.shape[0] else by1 - dy
        assert sy1 >= 0
        off.append(_corr(fr[sy1 : sy1 + by2 - by1, bx1:bx2], small))
        centres.append(((bx1 + bx2) / 2, (by1 + by2) / 2))
    assert np.median(on) > 0.6, on
    assert np.median(on) > np.median(off) + 0.3, (on, off)
    c = np.asarray(centres)
    assert np.ptp(c[:, 0]) + np.ptp(c[:, 1]) > 5  # the plate actually moves


def test_replay_clip_keeps_box_on_plate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    scene = cv2.resize(small, (400, 300), interpolation=cv2.INTER_CUBIC)
    p = generate_plate(rng, "eu_de", degrade=False, height=30)
    h, w = p.image.shape[:2]
    scene[180 : 180 + h, 150 : 150 + w] = p.image
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), scene)
    _check_replay(photo, (150, 180, 150 + w, 180 + h), tmp_path / "replay.mp4")


def test_replay_clip_on_real_photo(tmp_path: Path) -> None:
    folder = fonts.data_root() / "openalpr-dev" / "us"
    labels = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if not labels:
        pytest.skip(f"shared data not found: {folder} (set PLATEWATCH_DATA)")
    photo, box, text = read_openalpr_label(labels[0])
    assert photo.is_file() and text
    _check_replay(photo, box, tmp_path / "real.mp4", size=(640, 360))


def test_replay_rejects_box_outside_photo(tmp_path: Path) -> None:
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="outside"):
        make_replay_clip_from_photo(photo, (10, 10, 70, 20), tmp_path / "r.mp4")
    # a label a pixel past the edge is the plate at the edge: clamped, not refused
    truth = make_replay_clip_from_photo(photo, (-1, 10, 40, 20), tmp_path / "e.mp4", frames=3)
    assert len(truth.vehicles) == 1


@pytest.mark.slow
def test_1080p_plate_sizes_and_real_backgrounds(tmp_path: Path) -> None:
    """At 1080p a fully visible plate is roughly 70-240 px wide (readable, realistic)."""
    folder = fonts.data_root() / "backgrounds"
    if not folder.is_dir():
        pytest.skip(f"shared data not found: {folder} (set PLATEWATCH_DATA)")
    truth = render_clip(
        tmp_path / "hd.mp4",
        width=1920,
        height=1080,
        fps=10,
        seconds=6,
        n_vehicles=2,
        seed=11,
        backgrounds=folder,
        noise=0,
    )
    assert len(_frames(tmp_path / "hd.mp4")) == truth.frame_count == 60
    for v in truth.vehicles:
        widths = [
            t.plate_box[2] - t.plate_box[0]
            for t in v.frames.values()
            if t.plate_visibility == "full"
        ]
        assert len(widths) >= 10
        assert 60 <= min(widths) <= 110 and 150 <= max(widths) <= 240, (v.style, widths)


# ------------------------------------------------------------------ reader crops from clips


def test_clip_crops_cut_full_readable_plates_with_their_text(tmp_path: Path) -> None:
    from training.reader import clip_crops
    from training.reader.data import load_crop_folder

    path = tmp_path / "c.mp4"
    truth = render_clip(path, width=640, height=360, fps=25, seconds=3, n_vehicles=2, seed=5)
    rng = np.random.default_rng(0)
    crops = clip_crops.crops_from_clip(path, truth, rng, every=3)
    texts = {v.text for v in truth.vehicles}
    assert crops and {t for _, t in crops} <= texts
    # only frames where the plate is whole, big enough, and not washed out
    eligible = sum(
        1
        for v in truth.vehicles
        for f, ft in v.frames.items()
        if f % 3 == 0
        and ft.plate_box is not None
        and ft.plate_visibility == "full"
        and ft.plate_box[3] - ft.plate_box[1] >= clip_crops.MIN_PLATE_HEIGHT
        and ft.degraded not in clip_crops.UNREADABLE
    )
    assert len(crops) == eligible
    for image, _ in crops:
        assert image.ndim == 3 and image.shape[0] >= 6 and image.shape[1] >= 8
    # the CLI writes NNNNNN_TEXT.jpg crops that the reader's training loader reads back
    out = tmp_path / "crops"
    argv = "--clips 1 --seconds 2 --width 640 --height 360 --vehicles 2".split()
    assert clip_crops.main(["--out", str(out), *argv]) == 0
    loaded = load_crop_folder(out, "extra")
    assert loaded and all(c.text.isalnum() for c in loaded)
    with pytest.raises(SystemExit):
        clip_crops.main(["--out", str(out), "--seed-base", "11"])  # a test's seed: refused


def test_jitter_box_moves_edges_within_bounds() -> None:
    from training.reader.clip_crops import jitter_box

    rng = np.random.default_rng(1)
    for _ in range(100):
        x1, y1, x2, y2 = jitter_box((100.0, 50.0, 200.0, 80.0), rng, amount=0.1)
        assert abs(x1 - 100) <= 10 and abs(x2 - 200) <= 10
        assert abs(y1 - 50) <= 3 and abs(y2 - 80) <= 3
