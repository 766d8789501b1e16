"""YOLO dataset writer (round trip through the importers), video frame extraction, plate
crops and the data CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from training.data.cli import add_subparsers, main, parse_class_map
from training.data.crops import crop_plates
from training.data.dataset import clean_boxes, split_of, write_yolo_dataset
from training.data.frames import extract_frames
from training.data.importers import load_filename_crops, load_folder, load_ultralytics, load_yolo
from training.data.records import PLATE, VEHICLE, Box, ImageRecord

_DEFAULT_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
DATA = Path(os.environ.get("PLATEWATCH_DATA", _DEFAULT_DATA))
MIXED = DATA / "car-plates-mixed"


def _img(path: Path, w: int, h: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


def _records(tmp_path: Path, n: int = 12) -> list[ImageRecord]:
    recs = []
    for i in range(n):
        w, h = 160 + 8 * i, 120
        img = _img(tmp_path / "src" / f"car ({i}).jpg", w, h, i)
        boxes = [
            Box(VEHICLE, 5, 6, 150, 110),
            Box(PLATE, 40.4, 70.2, 90.7, 85.9, f"AB{i}"),
            Box(PLATE, -10, 100, 30, 130),  # crosses the border: clipped
            Box(PLATE, 50, 119.5, 80, 119.5),
        ]  # zero height: dropped
        recs.append(ImageRecord(img, w, h, boxes, "voc"))
    return recs


def test_split_is_deterministic_and_proportional() -> None:
    names = [f"img{i}.jpg" for i in range(2000)]
    first = [split_of(n, 0.2) for n in names]
    assert first == [split_of(n, 0.2) for n in names]
    assert 0.17 < first.count("val") / len(names) < 0.23
    assert all(split_of(n, 0.0) == "train" for n in names[:50])
    assert all(split_of(n, 1.0) == "val" for n in names[:50])


def test_clean_boxes() -> None:
    boxes = [Box(PLATE, -5, 10, 20, 60), Box(PLATE, 99.5, 0, 120, 9)]
    rec = ImageRecord(Path("x.jpg"), 100, 50, boxes)
    kept, dropped = clean_boxes(rec)
    assert [(b.x1, b.y1, b.x2, b.y2) for b in kept] == [(0, 10, 20, 50)] and dropped == 1


def test_dataset_round_trip(tmp_path: Path) -> None:
    recs = _records(tmp_path)
    out = tmp_path / "ds"
    summary = write_yolo_dataset(recs, out, val_fraction=0.3)
    assert summary.images["train"] + summary.images["val"] == len(recs)
    assert summary.images["val"] > 0 and summary.images["train"] > 0
    assert summary.dropped_boxes == len(recs)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == ["vehicle", "plate"] and data["train"] == "images/train"
    linked = next((out / "images" / "train").iterdir())
    assert linked.is_symlink() and linked.read_bytes() == linked.resolve().read_bytes()

    back = {r.image.name: r for r in load_ultralytics(out / "data.yaml")}
    also = {
        r.image.name: r for r in load_yolo(out / "labels" / "val", class_map={0: VEHICLE, 1: PLATE})
    }
    assert set(also) <= set(back) and len(back) == len(recs)
    for rec in recs:
        got = back[rec.image.name]
        want = clean_boxes(rec)[0]
        assert [b.label for b in got.boxes] == [b.label for b in want]
        for g, w in zip(got.boxes, want, strict=True):
            assert np.allclose([g.x1, g.y1, g.x2, g.y2], [w.x1, w.y1, w.x2, w.y2], atol=1.0)

    # same input, same split; an existing dataset is not overwritten silently
    with pytest.raises(FileExistsError):
        write_yolo_dataset(recs, out)
    again = write_yolo_dataset(recs, out, val_fraction=0.3, overwrite=True, copy=True)
    assert again.images == summary.images
    copied = next((out / "images" / "val").iterdir())
    assert not copied.is_symlink()


def test_dataset_name_collisions(tmp_path: Path) -> None:
    a = _img(tmp_path / "a" / "same.jpg", 40, 30, 1)
    b = _img(tmp_path / "b" / "same.jpg", 40, 30, 2)
    s = write_yolo_dataset([ImageRecord(a, 40, 30), ImageRecord(b, 40, 30)], tmp_path / "ds")
    assert s.renamed == 1
    files = sorted((tmp_path / "ds" / "images").rglob("*.jpg"))
    assert len(files) == 2 and len({f.resolve() for f in files}) == 2


@pytest.mark.skipif(not MIXED.is_dir(), reason=f"shared data absent: {MIXED}")
def test_dataset_round_trip_real_mixed(tmp_path: Path) -> None:
    recs = load_folder(MIXED)
    s = write_yolo_dataset(recs, tmp_path / "ds")
    assert s.images["train"] + s.images["val"] == 511
    assert s.boxes["train"] + s.boxes["val"] == 572 - 3 and s.dropped_boxes == 3
    back = {r.image.name: r for r in load_ultralytics(tmp_path / "ds" / "data.yaml")}
    for rec in recs:
        want = clean_boxes(rec)[0]
        got = back[rec.image.name].boxes
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert abs(g.x1 - w.x1) <= 1 and abs(g.y2 - w.y2) <= 1


# ---------------------------------------------------------------- frames


def _write_video(path: Path) -> int:
    """80 frames at 96x64: 0-29 change every frame, 30-59 one static scene with sensor-like
    noise (near-duplicates), 60-79 change again."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    static = cv2.merge([ramp] * 3)
    cv2.rectangle(static, (30, 20), (60, 40), (0, 0, 255), -1)
    for i in range(80):
        if 30 <= i < 60:
            noise = rng.normal(0, 3, static.shape)
            frame = np.clip(static + noise, 0, 255).astype(np.uint8)
        else:
            frame = np.full((64, 96, 3), (i * 37) % 200 + 20, np.uint8)
            cv2.circle(frame, (10 + i, 32), 8, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return 80


def test_extract_frames_drops_duplicates(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    _write_video(video)
    kept = extract_frames(video, tmp_path / "frames", every=5)
    idx = [int(p.stem.rsplit("_", 1)[1]) for p in kept]
    # every 5th frame of the changing parts, and only the first of the static part
    assert idx == [0, 5, 10, 15, 20, 25, 30, 60, 65, 70, 75]
    assert all(p.is_file() and cv2.imread(str(p)).shape == (64, 96, 3) for p in kept)
    everything = extract_frames(video, tmp_path / "all", every=5, min_diff=0)
    assert len(everything) == 16
    assert len(extract_frames(video, tmp_path / "few", every=5, max_frames=3)) == 3


def test_extract_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        extract_frames(tmp_path / "nope.mp4", tmp_path)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        extract_frames(bad, tmp_path / "o")


# ---------------------------------------------------------------- crops


def test_crop_plates(tmp_path: Path) -> None:
    img = _img(tmp_path / "scene.jpg", 200, 100)
    rec = ImageRecord(
        img,
        200,
        100,
        [
            Box(PLATE, 50, 40, 100, 60, "AB12CD"),
            Box(PLATE, 120, 40, 170, 60),
            Box(VEHICLE, 0, 0, 200, 100),
            Box(PLATE, 10, 10, 11, 11, "TINY"),
        ],
    )
    crops = crop_plates([rec], tmp_path / "out")
    assert [c.path.name for c in crops] == ["00001_AB12CD.jpg"]
    assert crops[0].box == (46, 38, 104, 62)  # expand_box, 8 % margin
    assert cv2.imread(str(crops[0].path)).shape == (24, 58, 3)
    back = load_filename_crops(tmp_path / "out")
    assert [r.plates[0].text for r in back] == ["AB12CD"]

    crops = crop_plates([rec], tmp_path / "csv", include_unread=True, labels_csv=True)
    assert [c.path.name for c in crops] == ["00001.jpg", "00002.jpg"]
    rows = (tmp_path / "csv" / "labels.csv").read_text().splitlines()
    assert rows[0].startswith("file,text") and rows[1].startswith("00001.jpg,AB12CD,")
    assert rows[2].startswith("00002.jpg,,")


# ---------------------------------------------------------------- CLI


def test_cli_registers_subcommands() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_subparsers(parser.add_subparsers(dest="cmd"))
    for cmd in ("import-labels", "extract-frames", "crop-plates"):
        args = parser.parse_args([cmd, "x", "y"] if cmd != "import-labels" else [cmd, "x"])
        assert callable(args.func)
    assert parse_class_map("15=plate,2=vehicle,7=-") == {15: PLATE, 2: VEHICLE, 7: None}
    assert parse_class_map("plate") == PLATE


def test_cli_import_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    for i in range(3):
        _img(src / f"p{i}.jpg", 100, 50, i)
        (src / f"p{i}.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    _img(src / "lonely.jpg", 10, 10)
    rc = main(["import-labels", str(src), "--json", "--to-yolo", str(tmp_path / "ds")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["by_format"] == {"yolo": {"images": 3, "boxes": 3}}
    assert out["unlabelled_images"] == 1 and out["images"] == 4
    assert sum(out["yolo_dataset"]["boxes"].values()) == 3
    assert (tmp_path / "ds" / "data.yaml").is_file()
    assert main(["import-labels", str(src)]) == 0
    assert "no label for image" in capsys.readouterr().out
