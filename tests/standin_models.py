"""Tiny stand-in ONNX models with the shipped models' I/O contract, built with onnx.helper.

They let the inference layer and the commands be tested before (and independently of) the
trained models: the detector always "sees" the boxes it was built with (given in network-input
pixels), the reader always "reads" the text it was built with. Both still consume their input
(multiplied by 0), so ONNX Runtime checks shapes and the batch dimension flows through.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CLASSES = ["vehicle", "plate"]


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_detector(
    path: Path,
    boxes: list[tuple[float, float, float, float, int, float]],
    input_size: tuple[int, int] = (64, 64),
    num_anchors: int = 8,
    classes: list[str] | None = None,
    write_json: bool = True,
) -> Path:
    """Detector whose head output always holds ``boxes`` = (x1, y1, x2, y2, class, score) in
    network-input (letterbox) pixels; the other anchors score 0."""
    classes = classes or CLASSES
    nc = len(classes)
    head = np.zeros((1, 4 + nc, num_anchors), np.float32)
    for i, (x1, y1, x2, y2, cls, score) in enumerate(boxes):
        head[0, :4, i] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        head[0, 4 + cls, i] = score
    h, w = input_size
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m", "shape3"], ["m3"]),
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "head"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "standin_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + nc, num_anchors])],
        initializer=[
            numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape3"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(head, "head"),
        ],
    )
    _save(graph, path)
    if write_json:
        path.with_suffix(".json").write_text(
            json.dumps(
                {
                    "kind": "detector",
                    "classes": classes,
                    "input_size": [h, w],
                    "conf_threshold": 0.25,
                    "iou_threshold": 0.5,
                    "version": "standin",
                    "onnx_sha256": "",
                    "output": "ultralytics",
                }
            )
        )
    return path


def text_probs(text: str, steps: int = 32, conf: float = 0.9) -> np.ndarray:
    """(T, C) probabilities whose greedy CTC decode is ``text`` (blank between characters)."""
    c = len(ALPHABET) + 1
    probs = np.full((steps, c), (1 - conf) / (c - 1), np.float32)
    labels = [0] * steps
    for i, ch in enumerate(text):
        labels[2 * i + 1] = ALPHABET.index(ch) + 1
    for t, lab in enumerate(labels):
        probs[t, lab] = conf
    return probs


def make_reader(
    path: Path,
    text: str = "ABC123",
    batch: int | None = None,
    steps: int = 32,
    write_json: bool = True,
) -> Path:
    """Reader that reads ``text`` on every crop; dynamic batch unless ``batch`` is given."""
    probs = text_probs(text, steps)[None]  # (1, T, C)
    bdim: int | str = batch if batch is not None else "batch"
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m", "shape3"], ["m3"]),  # (B, 1, 1)
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "table"], ["probs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "standin_reader",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [bdim, 3, 32, 128])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [bdim, steps, probs.shape[2]])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape3"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(probs, "table"),
        ],
    )
    _save(graph, path)
    if write_json:
        path.with_suffix(".json").write_text(
            json.dumps(
                {
                    "kind": "reader",
                    "alphabet": ALPHABET,
                    "blank_index": 0,
                    "input": {"height": 32, "width": 128, "two_line_max_aspect": 1.5},
                    "version": "standin",
                    "onnx_sha256": "",
                }
            )
        )
    return path
