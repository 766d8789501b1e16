"""``platewatch image`` and ``platewatch eval``: stand-in models for behaviour, the shipped
models (when present) on a real openalpr-dev image."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_images import encoded, png_bomb
from standin_models import make_detector, make_reader

from edge.cli import main
from edge.cli.image import CSV_HEADER
from edge.detect.models import default_models_dir
from edge.eval.evaluate import fold, match_plates
from edge.vote.formats import DEFAULT_PATTERNS, PlateFormats

REPO = Path(__file__).resolve().parents[3]
MODELS = default_models_dir()  # $PLATEWATCH_MODELS or <repo>/models
DATA = Path(os.environ.get("PLATEWATCH_DATA", REPO.parent / "shared" / "data"))
DEV = DATA / "openalpr-dev"

# In a 256x128 frame letterboxed to 64x64 (scale 0.25, 16 px pad), the stand-in detector's
# plate (20, 30, 40, 38) is the frame box (80, 56, 160, 88) inside vehicle (40, 16, 200, 120).
PLATE_BOX = [80, 56, 160, 88]
REGION_OF = {str(p["name"]): str(p["region"]) for p in DEFAULT_PATTERNS}


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    make_detector(d / "detector.onnx", [(20, 30, 40, 38, 1, 0.9), (10, 20, 50, 46, 0, 0.8)])
    make_reader(d / "reader.onnx", "ABC123")
    return d


def _image(path: Path, shape: tuple[int, int] = (128, 256)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*shape, 3), 90, np.uint8))
    return path


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_missing_and_corrupt_files_do_not_stop_the_run(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _image(tmp_path / "good.jpg")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    missing = tmp_path / "missing.png"
    rc = main(["image", str(missing), str(corrupt), str(good), "--models", str(models)])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = _json_lines(out)
    assert [Path(r["image"]).name for r in lines] == ["missing.png", "corrupt.jpg", "good.jpg"]
    assert "no such file" in lines[0]["error"] and "decodable" in lines[1]["error"]
    assert "error" not in lines[2]
    assert "missing.png" in err and "corrupt.jpg" in err and "good.jpg" not in err
    (plate,) = lines[2]["plates"]
    assert plate["text"] == "ABC123"
    assert plate["box"] == PLATE_BOX and all(isinstance(v, int) for v in plate["box"])
    assert plate["vehicle_box"] == [40, 16, 200, 120]
    assert len(plate["char_confidences"]) == 6 and 0 < plate["confidence"] <= 1
    # no region chosen: the format is a label, the first shipped one the text fits
    label = PlateFormats.default(None).match("ABC123")
    assert (plate["format"], plate["region"]) == (label, REGION_OF[label])
    assert set(lines[2]) == {"schema_version", "image", "width", "height", "plates", "ms"}
    assert lines[2]["schema_version"] == "1.0" and lines[2]["ms"] >= 0
    assert (lines[2]["width"], lines[2]["height"]) == (256, 128)
    assert all(r["schema_version"] == "1.0" for r in lines)


def test_all_good_exits_zero_and_walks_folders(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _image(tmp_path / "imgs" / "b.png")
    _image(tmp_path / "imgs" / "sub" / "a.JPG")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    rc = main(["image", str(tmp_path / "imgs"), "--json", "--models", str(models)])
    lines = _json_lines(capsys.readouterr().out)
    assert rc == 0
    assert [Path(r["image"]).name for r in lines] == ["b.png", "a.JPG"]


def test_empty_folder_is_an_error(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["image", str(tmp_path / "empty"), "--models", str(models)]) == 1
    assert "no images" in capsys.readouterr().err


def test_csv_output(tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _image(tmp_path / "good.jpg")
    blank = tmp_path / "blank.bmp"
    blank.write_bytes(b"")
    rc = main(["image", str(good), str(blank), "--csv", "--models", str(models)])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rc == 1
    assert list(rows[0]) == CSV_HEADER
    assert rows[0]["text"] == "ABC123" and rows[0]["x1"] == "80" and rows[0]["y2"] == "88"
    assert rows[0]["vehicle_x2"] == "200" and rows[0]["error"] == ""
    assert rows[0]["schema_version"] == "1.0" and rows[0]["format"] != ""
    assert rows[1]["image"].endswith("blank.bmp") and "empty" in rows[1]["error"]


def test_hostile_files_are_reported_and_the_files_after_them_still_read(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = {
        "bomb.png": png_bomb(),  # 50000 x 50000: OpenCV would raise on it
        "cut.jpg": encoded(".jpg", 256, 128)[:400],  # truncated
        "notes.jpg": b"meeting at noon\n",  # a text file named .jpg
        "empty.png": b"",  # zero bytes
    }
    args = []
    for i, (name, data) in enumerate(hostile.items()):
        (tmp_path / name).write_bytes(data)
        args += [str(tmp_path / name), str(_image(tmp_path / f"good{i}.jpg"))]
    rc = main(["image", *args, "--models", str(models)])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = _json_lines(out)
    assert [Path(r["image"]).name for r in lines] == [Path(a).name for a in args]
    errors = {Path(r["image"]).name: r["error"] for r in lines if "error" in r}
    assert set(errors) == set(hostile)
    assert "too large: 50000 x 50000" in errors["bomb.png"]
    assert "truncated" in errors["cut.jpg"] and "not JPEG, PNG" in errors["notes.jpg"]
    assert "empty" in errors["empty.png"]
    for name in hostile:
        assert f"{name}: " in err
    assert "Traceback" not in err and "good" not in err
    goods = [r for r in lines if Path(r["image"]).name.startswith("good")]
    assert [r["plates"][0]["text"] for r in goods] == ["ABC123"] * 4


def test_prefetch_gives_the_same_results_in_the_same_order(tmp_path: Path) -> None:
    from edge.cli.image import decoded_images
    from edge.detect.images import DecodedImage, ImageError

    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    paths = [str(_image(tmp_path / "a.png")), str(tmp_path / "bad.jpg"), str(tmp_path / "nope")]
    paths.append(str(_image(tmp_path / "b.jpg", (64, 32))))
    runs = [list(decoded_images(paths, prefetch=p)) for p in (True, False)]
    assert [p for p, _ in runs[0]] == [p for p, _ in runs[1]] == paths
    for (_, a), (_, b) in zip(*runs, strict=True):
        assert type(a) is type(b)
        if isinstance(a, DecodedImage):
            assert isinstance(b, DecodedImage) and np.array_equal(a.image, b.image)
        else:
            assert isinstance(a, ImageError) and str(a) == str(b)


def test_max_pixels_option(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = str(_image(tmp_path / "a.png"))
    assert main(["image", img, "--max-pixels", "32768", "--models", str(models)]) == 0
    assert main(["image", img, "--max-pixels", "3e4", "--models", str(models)]) == 1
    out = capsys.readouterr().out
    assert "too large" in _json_lines(out)[1]["error"]


def test_large_jpeg_is_decoded_reduced_and_boxes_are_in_the_files_pixels(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2560 x 1280: 10x the stand-in detector's 64 px input is 640, so it decodes at 1/4.
    # The stand-in finds the same relative box at any size: 10x the 256 x 128 frame's.
    big = _image(tmp_path / "big.jpg", (1280, 2560))
    want = [10 * v for v in PLATE_BOX]
    for extra in ([], ["--full-resolution"]):
        assert main(["image", str(big), "--models", str(models), *extra]) == 0
        (record,) = _json_lines(capsys.readouterr().out)
        assert (record["width"], record["height"]) == (2560, 1280)
        assert record["plates"][0]["box"] == want
        assert record["plates"][0]["vehicle_box"] == [400, 160, 2000, 1200]


def test_junk_reads_are_left_out_unless_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = str(_image(tmp_path / "a.jpg"))
    for text in ("H", ""):  # a badge's letter; nothing read at all (confidence 0)
        d = tmp_path / f"models_{text or 'empty'}"
        d.mkdir()
        make_detector(d / "detector.onnx", [(20, 30, 40, 38, 1, 0.9)])
        make_reader(d / "reader.onnx", text)
        assert main(["image", img, "--models", str(d)]) == 0
        assert _json_lines(capsys.readouterr().out)[0]["plates"] == []
        assert main(["image", img, "--models", str(d), "--all"]) == 0
        (plate,) = _json_lines(capsys.readouterr().out)[0]["plates"]
        assert plate["text"] == text and plate["format"] is None
        assert main(["image", img, "--models", str(d), "--min-length", "1"]) == 0
        assert _json_lines(capsys.readouterr().out)[0]["plates"] == []  # fits no format


def test_min_confidence_and_region_options(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = str(_image(tmp_path / "a.jpg"))  # the stand-in reads ABC123 at 0.9
    assert main(["image", img, "--models", str(models), "--min-confidence", "0.95"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["plates"] == []
    assert main(["image", img, "--models", str(models), "--region", "us"]) == 0
    (plate,) = _json_lines(capsys.readouterr().out)[0]["plates"]
    assert (plate["format"], plate["region"]) == ("us-generic", "us")
    assert main(["image", img, "--models", str(models), "--region", "br"]) == 0
    (plate,) = _json_lines(capsys.readouterr().out)[0]["plates"]
    assert (plate["text"], plate["format"], plate["region"]) == ("ABC123", None, None)


def test_missing_models_is_a_clear_setup_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["image", str(_image(tmp_path / "a.jpg")), "--models", str(tmp_path / "nope")])
    assert rc == 2
    assert "detector.onnx" in capsys.readouterr().err


def test_image_command_does_not_import_torch(tmp_path: Path, models: Path) -> None:
    img = _image(tmp_path / "a.jpg")
    code = (
        "import sys; from edge.cli import main; "
        f"rc = main(['image', {str(img)!r}, '--models', {str(models)!r}]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plates"][0]["text"] == "ABC123"


# --- eval ---------------------------------------------------------------------------------


def test_match_plates_one_to_one() -> None:
    gt = np.array([[0, 0, 10, 10], [100, 0, 110, 10], [0, 0, 10, 11]], np.float32)
    pred = np.array([[0, 0, 10, 10.5], [105, 0, 115, 10]], np.float32)
    # pred 0 overlaps gt 0 (IoU 0.952) and gt 2 (0.955): only the better one gets it; pred 1
    # overlaps gt 1 with IoU 1/3 <= 0.4: no match.
    assert match_plates(gt, pred) == [None, None, 0]
    pred2 = np.vstack([pred, [[0, 0, 10, 10]]])
    assert match_plates(gt, pred2) == [2, None, 0]
    assert match_plates(gt, np.zeros((0, 4), np.float32)) == [None, None, None]
    assert fold("OI0I") == "0101"


def test_eval_openalpr_layout(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bench"
    x1, y1, x2, y2 = PLATE_BOX
    cases = {  # region/name: (box, text) -- the stand-ins find PLATE_BOX and read ABC123
        "us/hit": ((x1, y1, x2 - x1, y2 - y1), "ABC123"),
        "us/misread": ((x1 + 4, y1, x2 - x1, y2 - y1), "A8C123"),
        "eu/folded": ((x1, y1 + 2, x2 - x1, y2 - y1), "ABCI23"),
        "eu/missed": ((0, 0, 30, 15), "ZZ999"),
    }
    for key, ((x, y, w, h), text) in cases.items():
        img = _image(root / f"{key}.jpg")
        img.with_suffix(".txt").write_text(f"{img.name}\t{x:g}\t{y:g}\t{w:g}\t{h:g}\t{text}\n")
    out_json = tmp_path / "eval.json"
    rc = main(["eval", str(root), "--models", str(models), "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0 and "overall" in out and "openalpr" in out
    rows = json.loads(out_json.read_text())["regions"]
    assert rows["us"]["recall"] == 1.0 and rows["us"]["exact_read_rate"] == 0.5
    assert rows["eu"]["recall"] == 0.5 and rows["eu"]["exact_read_rate"] == 0.0
    assert rows["eu"]["folded_read_rate"] == 0.5
    assert rows["eu"]["false_detections"] == 1  # the plate found in "missed" matches no label
    assert rows["overall"]["plates"] == 4 and rows["overall"]["recall"] == 0.75
    # Reader alone on the GT crops reads ABC123 everywhere.
    assert rows["overall"]["ocr_gt_crops_exact"] == 0.25


def test_eval_scores_what_image_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A reader that reads a badge letter: the detector found the plate (recall), but image
    # prints no read for it, so it is neither read nor a false detection, and it is "filtered".
    d = tmp_path / "models"
    d.mkdir()
    make_detector(d / "detector.onnx", [(20, 30, 40, 38, 1, 0.9)])
    make_reader(d / "reader.onnx", "H")
    root = tmp_path / "bench" / "us"
    img = _image(root / "a.jpg")
    x1, y1, x2, y2 = PLATE_BOX
    img.with_suffix(".txt").write_text(f"a.jpg\t{x1}\t{y1}\t{x2 - x1}\t{y2 - y1}\tABC123\n")
    out_json = tmp_path / "eval.json"
    for extra, filtered in (([], 1), (["--all"], 0)):
        args = ["eval", str(tmp_path / "bench"), "--models", str(d), "--json", str(out_json)]
        assert main([*args, "--region", "none", *extra]) == 0
        report = json.loads(out_json.read_text())
        row = report["regions"]["us"]
        assert row["recall"] == 1.0 and row["exact_read_rate"] == 0.0
        assert row["filtered"] == filtered and row["false_detections"] == 0
        assert [v["name"] for v in report["crop_variants"]] == ["tight", "short", "wide", "wider"]
        assert report["plates"][0]["read_before_filter"] == "H"
        assert report["plates"][0]["read"] == (None if filtered else "H")
    assert "filtered" in capsys.readouterr().out


def test_eval_yolo_with_sidecar_text(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "yolo"
    img = _image(root / "a.png")
    x1, y1, x2, y2 = PLATE_BOX
    cx, cy, w, h = (x1 + x2) / 2 / 256, (y1 + y2) / 2 / 128, (x2 - x1) / 256, (y2 - y1) / 128
    img.with_suffix(".txt").write_text(f"3 0.5 0.5 0.6 0.8\n0 {cx} {cy} {w} {h}\n")
    (root / "a.plate.txt").write_text("ABC123\n")
    rc = main(
        ["eval", str(root), "--format", "yolo", "--plate-class", "0", "--models", str(models)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    overall = out.strip().splitlines()[-1].split()
    assert overall[:4] == ["all", "1", "1", "100.0%"] and overall[4] == "100.0%"


# --- shipped models on real data ----------------------------------------------------------

needs_models = pytest.mark.skipif(
    not ((MODELS / "detector.onnx").is_file() and (MODELS / "reader.onnx").is_file()),
    reason=f"shipped models {MODELS}/detector.onnx + reader.onnx not present yet",
)
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"openalpr-dev data not at {DEV}")


@needs_models
@needs_dev
@pytest.mark.parametrize("name", ["us/us10", "us/car19"])
def test_shipped_models_find_known_plate(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    img = DEV / f"{name}.jpg"
    _file, x, y, w, h, text = (DEV / f"{name}.txt").read_text().split("\t")
    rc = main(["image", str(img), "--threads", "1", "--device", "cpu"])
    (record,) = _json_lines(capsys.readouterr().out)
    assert rc == 0
    gt = np.array([[float(x), float(y), float(x) + float(w), float(y) + float(h)]])
    boxes = np.array([p["box"] for p in record["plates"]]).reshape(-1, 4)
    from edge.detect.vision import box_iou

    best = box_iou(gt, boxes).max() if len(boxes) else 0.0
    assert best > 0.4, f"no plate box near the labelled {text.strip()} in {record}"
