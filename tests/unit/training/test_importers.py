"""Annotation importers: real mixed-format labels (car-plates-mixed, openalpr-dev) when the
shared data is present, and small synthetic fixtures for every other format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.importers import (
    load_coco,
    load_filename_crops,
    load_folder,
    load_imglab,
    load_openalpr,
    load_openalpr_crops_csv,
    load_voc,
    load_yolo,
    map_label,
    parse_createml,
    parse_voc,
    parse_yolo,
    scan_folder,
    scan_path,
)
from training.data.importers.common import LabelError, MissingImage
from training.data.records import PLATE, VEHICLE

_DEFAULT_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
DATA = Path(os.environ.get("PLATEWATCH_DATA", _DEFAULT_DATA))
MIXED = DATA / "car-plates-mixed"
needs_mixed = pytest.mark.skipif(not MIXED.is_dir(), reason=f"shared data absent: {MIXED}")


def _img(path: Path, w: int = 80, h: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = 200  # not blank, so a codec cannot be lazy about it
    assert cv2.imwrite(str(path), img)
    return path


def _corners(box) -> tuple[float, float, float, float]:
    return (box.x1, box.y1, box.x2, box.y2)


# ---------------------------------------------------------------- label mapping


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("plat nomor", PLATE),
        ("license_plate", PLATE),
        ("License-Plate", PLATE),
        ("lp", PLATE),
        ("plate", PLATE),
        ("car", VEHICLE),
        ("Truck", VEHICLE),
        ("bus", VEHICLE),
        ("motorcycle", VEHICLE),
        ("vehicle", VEHICLE),
        ("person", None),
        ("traffic light", None),
    ],
)
def test_map_label(name: str, want: str | None) -> None:
    assert map_label(name) == want


def test_map_label_override() -> None:
    assert map_label("rider", {"Rider": VEHICLE}) == VEHICLE
    assert map_label("car", {"car": None}) is None


# ---------------------------------------------------------------- real mixed folder


@pytest.fixture(scope="module")
def mixed():
    return scan_folder(MIXED)


@needs_mixed
def test_mixed_counts(mixed) -> None:
    # Measured with scan_folder on car-plates-mixed (541 images, README says ~518 labelled).
    by = mixed.by_format()
    assert by == {
        "voc": {"images": 132, "boxes": 145},
        "yolo": {"images": 187, "boxes": 212},
        "createml": {"images": 192, "boxes": 215},
    }
    s = mixed.summary()
    assert s["images"] == 541 and s["labelled_images"] == 511 and s["boxes"] == 572
    assert s["plates"] == 572 and s["vehicles"] == 0
    assert s["unlabelled_images"] == 30 and s["orphan_labels"] == 0
    assert s["errors"] == 0
    # labelImg's zero-height border boxes, in plat-indonesia (1).xml and others.
    assert s["degenerate_boxes"] == 3
    assert all(r.image.is_file() and r.width > 0 and r.height > 0 for r in mixed.records)
    assert len({r.image for r in mixed.records}) == len(mixed.records)


@needs_mixed
def test_mixed_known_boxes(mixed) -> None:
    recs = {r.image.name: r for r in mixed.records}
    voc = recs["Cars0.jpg"]
    assert voc.source_format == "voc" and (voc.width, voc.height) == (500, 268)
    assert [_corners(b) for b in voc.boxes] == [(221, 114, 426, 185)]
    cm = recs["Cars116.jpg"]  # x=208.58 y=231.18 are the CENTRE of a 120x31 box
    assert cm.source_format == "createml"
    assert _corners(cm.boxes[0]) == pytest.approx((148.579, 215.684, 268.579, 246.684), abs=1e-3)
    yo = recs["Cars100.jpg"]  # "15 0.4825 0.462547 0.1 0.041199" on a 400x267 image
    assert yo.source_format == "yolo" and (yo.width, yo.height) == (400, 267)
    assert _corners(yo.boxes[0]) == pytest.approx((173.0, 118.0, 213.0, 129.0), abs=0.01)
    assert all(b.label == PLATE for r in mixed.records for b in r.boxes)


@needs_mixed
def test_mixed_names_with_spaces_and_jpeg_twins(mixed) -> None:
    recs = {r.image.name: r for r in mixed.records}
    # The XML names the .jpg; the same-stem .jpeg is a different, unlabelled photo.
    r = recs["plat-indonesia (1).jpg"]
    assert (r.width, r.height) == (795, 482) and len(r.boxes) == 3
    unl = {p.name for p in mixed.unlabelled_images}
    assert "plat-indonesia (1).jpeg" in unl
    assert sum(n.endswith(".jpeg") for n in unl) == 7


@needs_mixed
def test_mixed_format_filter() -> None:
    recs = load_folder(MIXED, formats="createml")
    assert len(recs) == 192 and {r.source_format for r in recs} == {"createml"}
    with pytest.raises(ValueError, match="unknown format"):
        scan_folder(MIXED, formats="pascal")


@needs_mixed
def test_mixed_per_format_loaders_agree(mixed) -> None:
    vocs = load_voc(MIXED)
    assert len(vocs) == 132 and sum(len(r.boxes) for r in vocs) == 145


OPENALPR = DATA / "openalpr-dev"


@pytest.mark.skipif(not OPENALPR.is_dir(), reason=f"shared data absent: {OPENALPR}")
def test_openalpr_dev_real() -> None:
    recs = load_openalpr(OPENALPR)
    regions = {g: sum(r.region == g for r in recs) for g in ("us", "eu", "br")}
    assert regions == {"us": 81, "eu": 32, "br": 42}  # README counts
    assert all(len(r.plates) == 1 and r.plates[0].text for r in recs)
    # One label (br/PJT2905) starts at x=-1; after clipping every box must still be a box.
    clipped = [b.clipped(r.width, r.height) for r in recs for b in r.boxes]
    assert all(c.width > 10 and c.height > 5 for c in clipped)


# ---------------------------------------------------------------- synthetic fixtures


def test_coco(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "images" / "b.jpg")
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 80, "height": 60},
            {"id": 2, "file_name": "b.jpg", "width": 80, "height": 60},
            {"id": 3, "file_name": "gone.jpg", "width": 80, "height": 60},
        ],
        "categories": [
            {"id": 7, "name": "license_plate"},
            {"id": 3, "name": "car"},
            {"id": 1, "name": "person"},
        ],
        "annotations": [
            {"image_id": 1, "category_id": 7, "bbox": [10, 20, 30, 8]},
            {"image_id": 1, "category_id": 3, "bbox": [0, 5, 70, 50]},
            {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    problems: list = []
    recs = load_coco(path, problems=problems)
    assert [r.image.name for r in recs] == ["a.jpg", "b.jpg"]
    a = recs[0]
    assert [(b.label, _corners(b)) for b in a.boxes] == [
        (PLATE, (10, 20, 40, 28)),
        (VEHICLE, (0, 5, 70, 55)),
    ]
    assert recs[1].boxes == []  # an unannotated image is a negative, kept
    msgs = " ".join(p.message for p in problems)
    assert "person" in msgs and "gone.jpg" in msgs
    # the same file through the generic entry point
    assert len(scan_path(path).records) == 2


def test_coco_malformed(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"images": [], "annotations": [{"image_id": 1}], "categories": []}))
    with pytest.raises(LabelError, match="bad.json.*annotation 0"):
        load_coco(path)


def test_imglab(tmp_path: Path) -> None:
    _img(tmp_path / "scene one.jpg", 100, 50)
    (tmp_path / "dets.xml").write_text(
        "<?xml version='1.0'?><dataset><name>x</name><images>"
        "<image file='scene one.jpg'>"
        "<box top='10' left='20' width='30' height='12'><label>plate</label></box>"
        "<box top='0' left='0' width='90' height='45'><label>car</label></box>"
        "<box top='1' left='1' width='5' height='5' ignore='1'><label>plate</label></box>"
        "<box top='2' left='3' width='10' height='4'/>"
        "</image></images></dataset>"
    )
    recs = load_imglab(tmp_path / "dets.xml")
    assert len(recs) == 1 and (recs[0].width, recs[0].height) == (100, 50)
    assert [(b.label, _corners(b)) for b in recs[0].boxes] == [
        (PLATE, (20, 10, 50, 22)),
        (VEHICLE, (0, 0, 90, 45)),
    ]  # unlabelled box needs a default
    recs = load_imglab(tmp_path / "dets.xml", default_label=PLATE)
    assert _corners(recs[0].boxes[-1]) == (3, 2, 13, 6)
    # the folder walker recognises imglab XML by its root element
    res = scan_folder(tmp_path)
    assert res.by_format() == {"imglab": {"images": 1, "boxes": 2}}


def test_openalpr_tsv(tmp_path: Path) -> None:
    _img(tmp_path / "eu" / "eu7.jpg", 120, 90)
    (tmp_path / "eu" / "eu7.txt").write_text("eu7.jpg\t10\t20\t40\t12\tab-123 c")
    _img(tmp_path / "eu" / "eu8.jpg")
    (tmp_path / "eu" / "eu8.txt").write_text("eu8.jpg\t10\tX\t40\t12\tABC")
    problems: list = []
    recs = load_openalpr(tmp_path, problems=problems)
    assert len(recs) == 1
    r = recs[0]
    assert r.region == "eu" and r.source_format == "openalpr" and (r.width, r.height) == (120, 90)
    assert _corners(r.boxes[0]) == (10, 20, 50, 32) and r.boxes[0].text == "AB123C"
    assert len(problems) == 1 and problems[0].path.name == "eu8.txt"
    assert "line 1: field 'y'" in problems[0].message and "'X'" in problems[0].message


def test_filename_crops(tmp_path: Path) -> None:
    _img(tmp_path / "00001_ABC1234.jpg", 60, 20)
    _img(tmp_path / "00002_xyz9a99.png", 50, 18)
    _img(tmp_path / "not-a-crop.jpg")
    problems: list = []
    recs = load_filename_crops(tmp_path, region="br", problems=problems)
    assert [(r.plates[0].text, _corners(r.boxes[0])) for r in recs] == [
        ("ABC1234", (0, 0, 60, 20)),
        ("XYZ9A99", (0, 0, 50, 18)),
    ]
    assert all(r.region == "br" for r in recs)
    assert [p.path.name for p in problems] == ["not-a-crop.jpg"]
    # auto mode only treats a folder as crops when every image name carries text
    assert scan_folder(tmp_path).records == []
    assert len(scan_folder(tmp_path, formats="filename").records) == 2


def test_openalpr_crops_csv(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "ak1.jpg", 64, 32)
    _img(tmp_path / "images" / "al2.jpg", 64, 32)
    csv = tmp_path / "groundtruth.csv"
    csv.write_text("ak1.jpg,ak,FUW999\nal2.jpg,al,6A 5730A\nmissing.jpg,ca,X\nbroken row\n")
    problems: list = []
    recs = load_openalpr_crops_csv(csv, problems=problems)
    assert [r.plates[0].text for r in recs] == ["FUW999", "6A5730A"]
    assert all(r.region == "us" and _corners(r.boxes[0]) == (0, 0, 64, 32) for r in recs)
    assert len(problems) == 2 and all(p.path == csv for p in problems)
    res = scan_folder(tmp_path)  # the walker finds the CSV and claims images/ through it
    assert len(res.records) == 2 and res.unlabelled_images == []


def test_yolo_class_map(tmp_path: Path) -> None:
    _img(tmp_path / "a.jpg", 100, 50)
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 1.0 1.0\n9 0.1 0.1 0.1 0.1\n")
    recs = load_yolo(tmp_path)  # no classes.txt: every id is a plate
    assert [b.label for b in recs[0].boxes] == [PLATE] * 3
    problems: list = []
    rec = parse_yolo(tmp_path / "a.txt", class_map={0: PLATE, 2: VEHICLE}, problems=problems)
    assert [(b.label, _corners(b)) for b in rec.boxes] == [
        (PLATE, pytest.approx((40, 20, 60, 30))),
        (VEHICLE, pytest.approx((0, 0, 100, 50))),
    ]
    assert "class id 9" in problems[0].message
    (tmp_path / "classes.txt").write_text("licence plate\nperson\ncar\n")
    rec = parse_yolo(tmp_path / "a.txt", problems=[])
    assert [b.label for b in rec.boxes] == [PLATE, VEHICLE]


def test_voc_vehicle_and_text(tmp_path: Path) -> None:
    _img(tmp_path / "x.jpg", 100, 50)
    (tmp_path / "x.xml").write_text(
        "<annotation><filename>x.jpg</filename><size><width>100</width><height>50</height>"
        "</size><object><name>car</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>90</xmax>"
        "<ymax>48</ymax></bndbox></object><object><name>license_plate</name><text>b 12-x</text>"
        "<bndbox><xmin>40</xmin><ymin>30</ymin><xmax>60</xmax><ymax>36</ymax></bndbox></object>"
        "</annotation>"
    )
    rec = parse_voc(tmp_path / "x.xml")
    assert [(b.label, b.text) for b in rec.boxes] == [(VEHICLE, None), (PLATE, "B12X")]


def test_malformed_files_are_reported_and_skipped(tmp_path: Path) -> None:
    for stem in ("good", "badxml", "notnorm", "badjson", "words"):
        _img(tmp_path / f"{stem}.jpg", 100, 50)
    (tmp_path / "good.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "badxml.xml").write_text("<annotation><object>")
    (tmp_path / "notnorm.txt").write_text("0 50 25 20 10\n")
    (tmp_path / "badjson.json").write_text('[{"image": ')
    (tmp_path / "words.txt").write_text("zero 0.5 0.5 0.1 0.1\n")
    (tmp_path / "orphan.xml").write_text("<annotation><filename>orphan.jpg</filename></annotation>")
    (tmp_path / "classes.txt").write_text("plate\n")
    res = scan_folder(tmp_path)
    assert [r.image.name for r in res.records] == ["good.jpg"]
    errs = {p.path.name: p.message for p in res.problems if p.severity == "error"}
    assert set(errs) == {"badxml.xml", "notnorm.txt", "badjson.json", "words.txt"}
    assert "not valid XML" in errs["badxml.xml"] and "normalised" in errs["notnorm.txt"]
    assert "JSON" in errs["badjson.json"] and "line 1" in errs["words.txt"]
    assert [p.name for p in res.orphan_labels] == ["orphan.xml"]
    assert sorted(p.name for p in res.unlabelled_images) == [
        "badjson.jpg",
        "badxml.jpg",
        "notnorm.jpg",
        "words.jpg",
    ]
    with pytest.raises(MissingImage, match="orphan.xml"):
        parse_voc(tmp_path / "orphan.xml")


def test_createml_multi_entry_and_missing(tmp_path: Path) -> None:
    _img(tmp_path / "a.jpg", 100, 50)
    path = tmp_path / "all.json"
    path.write_text(
        json.dumps(
            [
                {
                    "image": "a.jpg",
                    "annotations": [
                        {
                            "label": "plate",
                            "coordinates": {"x": 50, "y": 25, "width": 20, "height": 10},
                        }
                    ],
                },
                {"image": "gone.jpg", "annotations": []},
            ]
        )
    )
    problems: list = []
    recs = parse_createml(path, problems=problems)
    assert len(recs) == 1 and _corners(recs[0].boxes[0]) == (40, 20, 60, 30)
    assert "gone.jpg" in problems[0].message
