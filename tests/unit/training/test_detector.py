"""Detector training/export pieces: checkpoint reading, weight transfer, teacher, compositing,
export parity, and the shipped ONNX on a real dev image."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "models"


def _data_root() -> Path:
    import os

    return Path(os.environ.get("PLATEWATCH_DATA", str(REPO.parent / "shared" / "data")))


def _checkpoint() -> Path:
    import os

    return Path(
        os.environ.get(
            "PLATEWATCH_COCO_CHECKPOINT", str(REPO.parent / "shared/models/yolov5n-coco.pt")
        )
    )


needs_checkpoint = pytest.mark.skipif(
    not _checkpoint().exists(), reason="COCO YOLOv5n checkpoint not present"
)


@pytest.fixture(scope="module")
def coco_state():
    pytest.importorskip("torch")
    from training.detector.checkpoint import load_yolov5_state_dict

    return load_yolov5_state_dict(_checkpoint())


@needs_checkpoint
def test_unpickler_recovers_full_state_dict(coco_state):
    # YOLOv5n v6/v7: 349 entries (weights, BN stats, counters, anchors) over 25 layers.
    assert len(coco_state) == 349
    assert coco_state["model.0.conv.weight"].shape == (16, 3, 6, 6)
    assert coco_state["model.24.m.0.weight"].shape[0] == 3 * 85  # 3 anchors x (5 + 80 classes)
    assert all(v.dtype != np.float16 for v in coco_state.values())


@needs_checkpoint
def test_weight_transfer_into_ultralytics_yolov5n(coco_state):
    pytest.importorskip("ultralytics")
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from training.detector import offline  # noqa: F401
    from training.detector.checkpoint import transfer_weights

    model = DetectionModel("yolov5n.yaml", nc=2, verbose=False)
    n, untouched = transfer_weights(model, coco_state)
    # Backbone + neck (layers 0-23) transfer in full; the anchor-free head does not.
    assert n == 342
    assert all(k.startswith("model.24.") for k in untouched)
    assert torch.equal(
        model.state_dict()["model.9.cv2.conv.weight"], coco_state["model.9.cv2.conv.weight"]
    )


@needs_checkpoint
def test_teacher_finds_a_car_on_a_real_photo():
    import cv2

    image = _data_root() / "openalpr-dev" / "us" / "car16.jpg"
    if not image.exists():
        pytest.skip(f"{image} not present")
    from training.detector.teacher import VehicleTeacher

    dets = VehicleTeacher(_checkpoint()).detect(cv2.imread(str(image)))
    assert any(d.coco_class == 2 and d.score > 0.5 for d in dets)


def test_paste_plate_returns_box_inside_scene_and_changes_pixels():
    from training.data.records import PLATE, Box
    from training.detector.build_data import paste_plate, yolo_lines

    scene = np.zeros((200, 300, 3), np.uint8)
    crop = np.full((20, 80, 3), 255, np.uint8)
    box = paste_plate(scene, crop, 150, 100, 80, random.Random(0))
    assert box is not None
    x1, y1, x2, y2 = box
    assert 0 <= x1 < x2 <= 300 and 0 <= y1 < y2 <= 200
    assert scene[int((y1 + y2) / 2), int((x1 + x2) / 2)].mean() > 100
    # Off-scene placement is refused rather than clipped into a wrong label.
    assert paste_plate(np.zeros((50, 50, 3), np.uint8), crop, 48, 25, 40, random.Random(0)) is None
    (line,) = yolo_lines([Box(PLATE, x1, y1, x2, y2)], 300, 200)
    cls, cx, cy, w, h = line.split()
    assert cls == "1" and abs(float(cx) * 300 - (x1 + x2) / 2) < 0.01


def test_parity_check_passes_identical_and_fails_perturbed():
    from training.detector.export import ParityError, check_parity

    rng = np.random.default_rng(0)
    out = np.zeros((1, 6, 50), np.float32)
    out[0, :4] = rng.uniform(20, 300, (4, 50))
    out[0, 2:4] = rng.uniform(10, 40, (2, 50))
    out[0, 5, :5] = 0.9  # five confident plates
    assert check_parity(out, out.copy()).n_boxes >= 1
    bad = out.copy()
    bad[0, 0, 0] += 0.01
    with pytest.raises(ParityError):
        check_parity(out, bad)
    with pytest.raises(ParityError):
        check_parity(out, out[:, :, :49])


def test_shipped_onnx_finds_a_real_plate():
    model = MODELS / "detector.onnx"
    if not model.exists():
        pytest.skip("models/detector.onnx not shipped yet")
    label = _data_root() / "openalpr-dev" / "eu" / "eu1.txt"
    if not label.exists():
        pytest.skip(f"{label} not present")
    import cv2

    from edge.detect.vision import box_iou, decode_yolo, letterbox, to_nchw_float, unletterbox_boxes
    from training.detector.evaluate import openalpr_truth
    from training.detector.export import onnx_session

    meta = json.loads((MODELS / "detector.json").read_text())
    assert meta["classes"] == ["vehicle", "plate"]
    name, truth = openalpr_truth(label)
    frame = cv2.imread(str(label.parent / name))
    img, lb = letterbox(frame, tuple(meta["input_size"]))
    out = onnx_session(model).run(None, {"images": to_nchw_float(img)})[0]
    assert out.shape[1] == 4 + len(meta["classes"])
    boxes, _, classes = decode_yolo(out, meta["conf_threshold"], meta["iou_threshold"])
    plates = unletterbox_boxes(boxes[classes == 1], lb, frame.shape[1], frame.shape[0])
    assert len(plates) and box_iou(truth, plates).max() > 0.4


def test_resume_says_why_a_finished_or_missing_run_cannot_resume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    from training.detector.train import resumable

    assert "does not exist" in (resumable(tmp_path / "last.pt") or "")
    done = tmp_path / "run" / "weights" / "last.pt"
    done.parent.mkdir(parents=True)
    torch.save({"epoch": -1, "optimizer": None, "model": None}, done)
    assert "finished" in (resumable(done) or "")
    torch.save({"epoch": 3, "optimizer": {"state": {}}, "model": None}, done)
    assert resumable(done) is None


def test_int8_detector_keeps_its_head_float_and_its_io(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime.quantization")
    import cv2
    import onnx
    import onnxruntime as ort

    from training.detector.quantize import quantize

    model = Path(__file__).resolve().parents[3] / "models" / "detector.onnx"
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):  # calibration scenes: noise and shapes are enough to test the plumbing
        img = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
        cv2.rectangle(img, (200, 200), (320, 240), (255, 255, 255), -1)
        paths.append(tmp_path / f"c{i}.jpg")
        cv2.imwrite(str(paths[-1]), img)
    out = tmp_path / "detector.int8.onnx"
    meta = quantize(model, out, paths, "minmax")
    assert meta["quantization"]["calibration_images"] == 4
    assert json.loads(out.with_suffix(".json").read_text())["onnx_sha256"] == meta["onnx_sha256"]
    g = onnx.load(str(out)).graph
    head = meta["quantization"]["float_nodes"].split(" ")[0]
    ops = [n.op_type for n in g.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert not any(n.op_type == "QuantizeLinear" and n.name.startswith(head) for n in g.node)
    s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert s.get_outputs()[0].shape == ref.get_outputs()[0].shape


def test_shipped_onnx_rebuilds_into_a_trainable_model_with_the_same_output() -> None:
    """Detector 0.2 is a fine-tune of the shipped ONNX file: rebuilt in PyTorch, it must give
    the file's output in eval mode, and its BatchNorms must carry the statistics of real input
    (not the identity), so that training mode starts close to the trained network."""
    pytest.importorskip("ultralytics")
    import torch

    from edge.detect.vision import letterbox, to_nchw_float
    from training.detector import offline  # noqa: F401
    from training.detector.export import onnx_session
    from training.detector.from_onnx import detection_model, keep_model_trainer

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    scenes = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8) for _ in range(3)]
    for s in scenes:  # bright plate-like boxes so the activations are not pure noise
        s[200:230, 280:380] = 240
    batch = torch.from_numpy(np.concatenate([to_nchw_float(letterbox(s, 416)[0]) for s in scenes]))
    model = detection_model(MODELS / "detector.onnx", [batch[:2]]).eval()
    x = batch[2:]
    with torch.no_grad():
        y = model(x)
    y = (y[0] if isinstance(y, (list, tuple)) else y).numpy()
    ref = onnx_session(MODELS / "detector.onnx").run(None, {"images": x.numpy()})[0]
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 5e-3  # fused vs unfused float rounding on ~400 px boxes
    bn = model.model[0].bn
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var), atol=0.01)
    head = model.model[-1]
    assert head.nc == 2 and head.cv3[0][2].out_channels == 2
    # The stock trainer would rebuild the head from yolov5n.yaml; this one keeps the network.
    trainer_cls = keep_model_trainer()
    kept = trainer_cls.get_model(
        type("T", (), {"set_model_names_for_load": lambda self, m: m})(), weights=model
    )
    assert kept is not model and kept.model[-1].cv3[0][0].conv.weight.shape[0] == 80


def test_world_scenes_and_dashcam_loaders_read_their_formats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from training.detector.build_data import LABEL_STYLE, load_dashcam, load_world_scenes

    world = tmp_path / "world"
    (world / "images").mkdir(parents=True)
    cv2.imwrite(str(world / "images" / "a.jpg"), np.zeros((100, 200, 3), np.uint8))
    (world / "annotations.csv").write_text(
        "file,x1,y1,x2,y2\na.jpg,10,20,60,35\na.jpg,150,80,260,99\n"
    )
    (rec,) = load_world_scenes(world)
    assert (rec.width, rec.height) == (200, 100)
    sx, sy = LABEL_STYLE["world-plate-scenes"]
    first, second = rec.boxes
    # restyled about the centre to the convention of the other sources, then clipped
    assert first.width == pytest.approx(50 * sx) and first.height == pytest.approx(15 * sy)
    assert (first.x1 + first.x2) / 2 == pytest.approx(35)
    assert second.x2 == 200
    (world / "annotations.csv").write_text("file,x1,y1,x2,y2\na.jpg,10,20,60\n")
    with pytest.raises(ValueError, match="annotations.csv:2"):
        load_world_scenes(world)

    video = tmp_path / "dash" / "day_1"
    video.mkdir(parents=True)
    cv2.imwrite(str(video / "f1.jpg"), np.zeros((72, 128, 3), np.uint8))
    (video / "f1.xml").write_text(
        "<annotation><filename>f1.jpg</filename><object><name>license-plate</name><bndbox>"
        "<xmin>50.5</xmin><ymin>30</ymin><xmax>70</xmax><ymax>36</ymax></bndbox></object>"
        "</annotation>"
    )
    videos = load_dashcam(tmp_path / "dash")
    assert list(videos) == ["day_1"]
    (plate,) = videos["day_1"][0].boxes
    assert plate.width == pytest.approx(19.5 * LABEL_STYLE["ro-dashcam"][0])
    assert (plate.y1 + plate.y2) / 2 == pytest.approx(33)


def test_small_composite_shrinks_the_plate_into_the_wanted_width(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from training.data.records import PLATE, Box, ImageRecord
    from training.detector.build_data import compose_small

    photo = np.full((400, 600, 3), 90, np.uint8)
    photo[300:340, 250:370] = 255
    cv2.imwrite(str(tmp_path / "car.jpg"), photo)
    bg = tmp_path / "bg.jpg"
    cv2.imwrite(str(bg), np.zeros((600, 800, 3), np.uint8))
    rec = ImageRecord(tmp_path / "car.jpg", 600, 400, [Box(PLATE, 250, 300, 370, 340)])
    for seed in range(5):
        scene, boxes = compose_small(rec, [[0, 0, 600, 400, 0.9]], bg, [], random.Random(seed))
        (plate,) = [b for b in boxes if b.label == PLATE]
        assert 13.5 <= plate.width <= 40.5
        assert 0 <= plate.x1 and plate.x2 <= scene.shape[1]
        patch = scene[int(plate.y1) + 2 : int(plate.y2) - 1, int(plate.x1) + 2 : int(plate.x2) - 2]
        assert patch.mean() > 150  # the white plate landed inside its label
