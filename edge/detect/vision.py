"""Pure numpy/OpenCV geometry shared by every backend, the runtime and training.

Keeping letterbox, box decoding and NMS here (and nowhere else) is what makes the ONNX Runtime,
TensorRT and PyTorch backends give the same answer for the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How a frame was mapped into the network input: x_in = x * scale + pad_x."""

    scale: float
    pad_x: float
    pad_y: float


def letterbox(
    image: np.ndarray, size: int | tuple[int, int], color: int = 114
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio and pad to ``size`` (square int or (height, width)).

    Padding is split evenly on both sides, as Ultralytics does, so models trained there see
    the same geometry here.
    """
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    scale = min(th / h, tw / w)
    nw, nh = int(round(w * scale)), int(round(h * scale))
    pad_x, pad_y = (tw - nw) / 2.0, (th - nh) / 2.0
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    top, bottom = int(round(pad_y - 0.1)), int(round(pad_y + 0.1))
    left, right = int(round(pad_x - 0.1)), int(round(pad_x + 0.1))
    out = cv2.copyMakeBorder(
        image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(color, color, color)
    )
    return out, Letterbox(scale, float(left), float(top))


def to_nchw_float(image_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> RGB float32 1x3xHxW in [0, 1], one contiguous copy."""
    rgb = image_bgr[:, :, ::-1].transpose(2, 0, 1)
    out = np.ascontiguousarray(rgb, dtype=np.float32)
    out *= np.float32(1.0 / 255.0)  # in place: the per-frame path makes one array, not two
    return out[None]


def unletterbox_boxes(boxes: np.ndarray, lb: Letterbox, width: int, height: int) -> np.ndarray:
    """Map xyxy boxes from network input back to frame pixels, clipped to the frame."""
    out = boxes.astype(np.float32, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - lb.pad_x) / lb.scale
    out[:, [1, 3]] = (out[:, [1, 3]] - lb.pad_y) / lb.scale
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half_w, half_h = xywh[:, 2] / 2, xywh[:, 3] / 2
    out[:, 0] = xywh[:, 0] - half_w
    out[:, 1] = xywh[:, 1] - half_h
    out[:, 2] = xywh[:, 0] + half_w
    out[:, 3] = xywh[:, 1] + half_h
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N,4) x (M,4) -> (N,M)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (ix2 - ix1).clip(0) * (iy2 - iy1).clip(0)
    area_a = (a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0)
    area_b = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = box_iou(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other (a plate sits
    inside its vehicle). Done by offsetting each class into its own coordinate range."""
    if boxes.shape[0] == 0:
        return np.zeros((0,), dtype=np.int64)
    # The offset must exceed the full coordinate span (max - min), not just max: with boxes
    # that start left of/above the origin (allowed before clipping) ``max + 1`` lets classes
    # overlap and suppress each other.
    span = float(boxes.max()) - float(min(boxes.min(), 0.0)) + 1.0
    offset = classes.astype(np.float32)[:, None] * span
    return nms(boxes + offset, scores, iou_threshold)


def decode_yolo(
    output: np.ndarray,
    conf_threshold: float,
    iou_threshold: float,
    max_detections: int = 300,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's raw Ultralytics-style head output.

    ``output`` is (4 + num_classes, N) or (N, 4 + num_classes): centre-xywh in input pixels then
    per-class scores (already sigmoid). Returns (boxes xyxy (K,4), scores (K,), class ids (K,)).
    Pass ``num_classes`` when known: without it the layout is guessed from which axis is
    shorter, which is ambiguous when N < 4 + num_classes.
    """
    out = np.asarray(output)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"decode_yolo decodes one image; got a batch of {out.shape[0]}")
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"expected a (4+nc, N) or (N, 4+nc) head output, got {out.shape}")
    if num_classes is not None:
        channels = 4 + num_classes
        if out.shape[0] == channels:
            out = out.T
        elif out.shape[1] != channels:
            raise ValueError(
                f"head output {out.shape} has no axis of size 4 + {num_classes} classes"
            )
    elif out.shape[0] < out.shape[1]:  # (4+nc, N) as exported by Ultralytics
        out = out.T
    scores_all = out[:, 4:]
    classes = scores_all.argmax(axis=1)
    scores = scores_all[np.arange(out.shape[0]), classes]
    mask = scores >= conf_threshold
    if not mask.any():
        empty = np.zeros((0,), dtype=np.float32)
        return np.zeros((0, 4), dtype=np.float32), empty, np.zeros((0,), dtype=np.int64)
    boxes = xywh_to_xyxy(out[mask, :4].astype(np.float32))
    scores, classes = scores[mask].astype(np.float32), classes[mask]
    keep = batched_nms(boxes, scores, classes, iou_threshold)[:max_detections]
    return boxes[keep], scores[keep], classes[keep].astype(np.int64)
