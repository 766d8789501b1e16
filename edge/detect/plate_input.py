"""Plate-crop preprocessing for the reader, shared by training and every runtime backend.

Two-line plates (UK/EU square plates, Brazilian motorcycles, many Indian plates) cannot be
read by a left-to-right CTC model as they are. A crop whose width/height is below
``two_line_max_aspect`` is cut into its upper and lower halves, which are laid side by side, so
the reader sees one long line: top row first, then bottom row. One-line plates are never that
square (US plates, the squarest, are 2:1), so the rule is safe and needs no extra model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ReaderInput:
    height: int = 32
    width: int = 128
    two_line_max_aspect: float = 1.5


def unfold_two_line(crop: np.ndarray, max_aspect: float) -> np.ndarray:
    """Lay the halves of a square-ish plate side by side; return one-line crops unchanged."""
    h, w = crop.shape[:2]
    if h == 0 or w / h >= max_aspect:
        return crop
    # A little overlap so characters straddling the middle are not cut in both halves.
    half = h // 2 + max(1, h // 20)
    # Both halves are `half` rows: the top from row 0, the bottom ending on the last row, so
    # odd heights lose nothing.
    return np.concatenate([crop[:half], crop[h - half :]], axis=1)


def prepare_plate(crop_bgr: np.ndarray, spec: ReaderInput) -> np.ndarray:
    """BGR uint8 crop -> float32 (3, H, W), RGB, scaled to [-1, 1]."""
    if crop_bgr.ndim == 2:
        crop_bgr = cv2.cvtColor(crop_bgr, cv2.COLOR_GRAY2BGR)
    line = unfold_two_line(crop_bgr, spec.two_line_max_aspect)
    resized = cv2.resize(
        line,
        (spec.width, spec.height),
        interpolation=cv2.INTER_AREA if line.shape[1] > spec.width else cv2.INTER_LINEAR,
    )
    rgb = resized[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    return (rgb - 127.5) / 127.5


def prepare_batch(crops: list[np.ndarray], spec: ReaderInput) -> np.ndarray:
    """All crops of a frame -> one (B, 3, H, W) batch, so the reader runs once per frame."""
    batch = np.empty((len(crops), 3, spec.height, spec.width), dtype=np.float32)
    for i, crop in enumerate(crops):
        batch[i] = prepare_plate(crop, spec)
    return batch


def expand_box(
    box: tuple[float, float, float, float], width: int, height: int, margin: float = 0.08
) -> tuple[int, int, int, int]:
    """Grow a plate box by ``margin`` of its size on each side (detectors cut characters'
    edges off), clipped to the frame, as integer pixel corners."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (
        int(max(0, np.floor(x1 - mx))),
        int(max(0, np.floor(y1 - my))),
        int(min(width, np.ceil(x2 + mx))),
        int(min(height, np.ceil(y2 + my))),
    )
