"""The COCO YOLOv5n checkpoint as a vehicle teacher.

The checkpoint's layers come back from ``checkpoint.py`` as stand-in modules without forward
methods. This module runs them: a small executor walks the saved layer list (each layer has its
``f`` "from" indices, YOLOv5 v6 layout) and implements Conv, C3, Bottleneck, SPPF, Upsample,
Concat and the anchor-based Detect decode. The result labels car/motorcycle/bus/truck as
``vehicle`` on images that only carry plate boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.detect.vision import letterbox, nms, to_nchw_float, unletterbox_boxes, xywh_to_xyxy
from training.detector.checkpoint import load_yolov5_checkpoint

# COCO class ids merged into platewatch's single ``vehicle`` class.
COCO_VEHICLE_IDS: tuple[int, ...] = (2, 3, 5, 7)  # car, motorcycle, bus, truck


def _conv(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.act(m.bn(m.conv(x)))


def _bottleneck(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    y = _conv(m.cv2, _conv(m.cv1, x))
    return x + y if getattr(m, "add", False) else y


def _c3(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    a = _conv(m.cv1, x)
    for b in m.m:
        a = _bottleneck(b, a)
    return _conv(m.cv3, torch.cat((a, _conv(m.cv2, x)), 1))


def _sppf(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = _conv(m.cv1, x)
    y1 = m.m(x)
    y2 = m.m(y1)
    return _conv(m.cv2, torch.cat((x, y1, y2, m.m(y2)), 1))


def _detect(m: nn.Module, xs: list[torch.Tensor]) -> torch.Tensor:
    """YOLOv5 anchor-based decode -> (B, N, 5 + nc): xywh in input pixels, obj, class probs."""
    outs = []
    anchors = m.anchors  # (nl, na, 2) in stride units
    for i, x in enumerate(xs):
        p = m.m[i](x)
        b, _, ny, nx = p.shape
        p = p.view(b, m.na, m.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
        stride = float(m.stride[i])
        anchor_px = (anchors[i] * stride).view(1, m.na, 1, 1, 2)
        xy = (p[..., :2] * 2 - 0.5 + grid) * stride
        wh = (p[..., 2:4] * 2) ** 2 * anchor_px
        outs.append(torch.cat((xy, wh, p[..., 4:]), -1).view(b, -1, m.no))
    return torch.cat(outs, 1)


class YoloV5Executor(nn.Module):
    """Forward pass over the unpickled YOLOv5 layer list."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.layers = list(model.model)
        self.save = set(model.save)
        self.names: list[str] = list(model.names)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cache: dict[int, torch.Tensor] = {}
        out: torch.Tensor | list[torch.Tensor] = x
        for i, layer in enumerate(self.layers):
            f = layer.f
            if f != -1:
                inp = [out if j == -1 else cache[j] for j in ([f] if isinstance(f, int) else f)]
                inp = inp[0] if isinstance(f, int) else inp
            else:
                inp = out
            kind = type(layer).__name__
            if kind == "Conv":
                out = _conv(layer, inp)
            elif kind == "C3":
                out = _c3(layer, inp)
            elif kind == "SPPF":
                out = _sppf(layer, inp)
            elif kind == "Concat":
                out = torch.cat(inp, getattr(layer, "d", 1))
            elif kind == "Detect":
                return _detect(layer, inp)
            elif isinstance(layer, nn.Upsample):
                out = layer(inp)
            else:
                raise NotImplementedError(f"YOLOv5 layer {i} of type {kind} is not supported")
            if i in self.save:
                cache[i] = out
        raise RuntimeError("checkpoint has no Detect layer")


@dataclass(frozen=True)
class TeacherDetection:
    box: tuple[float, float, float, float]  # xyxy frame pixels
    score: float
    coco_class: int


class VehicleTeacher:
    """Labels vehicles with the COCO model. ``imgsz`` is the square letterbox side."""

    def __init__(
        self,
        checkpoint: str | Path,
        imgsz: int = 640,
        conf_threshold: float = 0.3,
        iou_threshold: float = 0.5,
        min_size: float = 12.0,
    ):
        torch.set_num_threads(1)
        self.net = YoloV5Executor(load_yolov5_checkpoint(checkpoint))
        self.imgsz, self.conf, self.iou, self.min_size = (
            imgsz,
            conf_threshold,
            iou_threshold,
            min_size,
        )

    def raw(self, image_bgr: np.ndarray) -> tuple[np.ndarray, object]:
        img, lb = letterbox(image_bgr, self.imgsz)
        return self.net(torch.from_numpy(to_nchw_float(img)))[0].numpy(), lb

    def detect(
        self, image_bgr: np.ndarray, classes: tuple[int, ...] = COCO_VEHICLE_IDS
    ) -> list[TeacherDetection]:
        pred, lb = self.raw(image_bgr)
        cls_scores = pred[:, 5:] * pred[:, 4:5]
        wanted = np.asarray(classes)
        sub = cls_scores[:, wanted]
        best = sub.argmax(1)
        score = sub[np.arange(len(sub)), best]
        keep = score >= self.conf
        if not keep.any():
            return []
        boxes = xywh_to_xyxy(pred[keep, :4].astype(np.float32))
        score, cls = score[keep], wanted[best[keep]]
        # Class-agnostic NMS: a pickup labelled both car and truck is one vehicle.
        idx = nms(boxes, score.astype(np.float32), self.iou)
        h, w = image_bgr.shape[:2]
        boxes = unletterbox_boxes(boxes[idx], lb, w, h)
        out = []
        for b, s, c in zip(boxes, score[idx], cls[idx], strict=True):
            if min(b[2] - b[0], b[3] - b[1]) >= self.min_size:
                out.append(TeacherDetection(tuple(float(v) for v in b), float(s), int(c)))
        return out
