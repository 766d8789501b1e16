"""Turn a shipped detector ONNX file back into a trainable Ultralytics model.

Detector 0.2 is a fine-tune of 0.1, and 0.1's PyTorch checkpoint was never kept: only the ONNX
file is. Ultralytics exports with every Conv+BatchNorm fused into one biased convolution and keeps
the parameter names (``model.0.conv.weight``, ``model.0.conv.bias``, ...), so the weights map back
one to one, except that each BatchNorm has to be rebuilt.

A BatchNorm set to the identity would be exact in eval mode but wrong in training mode, where it
normalises by the batch's own statistics and would rescale every channel on the first step. So
each BatchNorm is set from the statistics of its convolution's output over a few real images:
running mean ``m`` and variance ``v``, scale ``sqrt(v + eps)`` and shift ``bias + m``. In eval
mode that is exactly the fused layer; in training mode, on images like those, it is close to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """The named float initialisers of an ONNX file (the graph's constants are skipped)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {
        init.name: numpy_helper.to_array(init)
        for init in model.graph.initializer
        if init.name.startswith("model.")
    }


def _conv_bn_pairs(model: nn.Module) -> Iterable[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """(prefix, conv, bn) of every Ultralytics ``Conv`` block: a bias-free conv and its norm."""
    for name, module in model.named_modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            yield name, conv, bn


def load_fused(model: nn.Module, weights: dict[str, np.ndarray]) -> int:
    """Copy fused ONNX weights into ``model`` (an unfused DetectionModel); BatchNorms become the
    identity plus the fused bias. Returns the number of tensors copied; raises when any of the
    model's weights has no counterpart, so a different architecture is never half-loaded."""
    state = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    paired: set[str] = set()
    for prefix, conv, bn in _conv_bn_pairs(model):
        w, b = weights.get(f"{prefix}.conv.weight"), weights.get(f"{prefix}.conv.bias")
        if w is None or b is None or tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{prefix}: no fused weight of shape {tuple(conv.weight.shape)}")
        new[f"{prefix}.conv.weight"] = torch.from_numpy(w.copy())
        new[f"{prefix}.bn.weight"] = torch.ones(len(b))
        new[f"{prefix}.bn.bias"] = torch.from_numpy(b.copy())
        new[f"{prefix}.bn.running_mean"] = torch.zeros(len(b))
        new[f"{prefix}.bn.running_var"] = torch.full((len(b),), 1.0 - bn.eps)
        paired.add(prefix)
    for key, value in state.items():
        if key in new or key.rsplit(".", 2)[0] in paired or key.endswith("num_batches_tracked"):
            continue
        if key not in weights or tuple(weights[key].shape) != tuple(value.shape):
            raise ValueError(f"{key}: not in the ONNX file with shape {tuple(value.shape)}")
        new[key] = torch.from_numpy(weights[key].copy())
    model.load_state_dict(new, strict=False)
    return len(new)


@torch.no_grad()
def calibrate_norms(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Give each identity BatchNorm the statistics of its input over ``batches`` (NCHW floats in
    [0, 1]), keeping the eval-mode function unchanged. Returns the number of norms set."""
    pairs = list(_conv_bn_pairs(model))
    sums: dict[str, torch.Tensor] = {}
    squares: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []
    for prefix, conv, _ in pairs:

        def hook(_m, _inp, out, prefix=prefix):
            x = out.transpose(0, 1).reshape(out.shape[1], -1).double()
            sums[prefix] = sums.get(prefix, 0) + x.sum(1)
            squares[prefix] = squares.get(prefix, 0) + (x * x).sum(1)
            counts[prefix] = counts.get(prefix, 0) + x.shape[1]

        hooks.append(conv.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    for prefix, _, bn in pairs:
        if prefix not in counts:
            raise ValueError(f"{prefix}: the calibration pass never reached this layer")
        n = counts[prefix]
        mean = sums[prefix] / n
        var = (squares[prefix] / n - mean * mean).clamp_min(1e-6)
        fused_bias = bn.bias.detach().double().clone()
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
        bn.weight.copy_(torch.sqrt(var + bn.eps).float())
        bn.bias.copy_((fused_bias + mean).float())
    return len(pairs)


def image_batches(images: Iterable[Path], imgsz: int, batch: int = 8) -> Iterable[torch.Tensor]:
    """Letterboxed RGB batches of real images, as the trainer feeds them."""
    import cv2

    from edge.detect.vision import letterbox, to_nchw_float

    chunk: list[np.ndarray] = []
    for path in images:
        im = cv2.imread(str(path))
        if im is None:
            continue
        chunk.append(to_nchw_float(letterbox(im, imgsz)[0])[0])
        if len(chunk) == batch:
            yield torch.from_numpy(np.stack(chunk))
            chunk = []
    if chunk:
        yield torch.from_numpy(np.stack(chunk))


def detection_model(onnx_path: Path, calibration: Iterable[torch.Tensor]):
    """An Ultralytics ``yolov5n.yaml`` DetectionModel holding ``onnx_path``'s weights, its
    BatchNorms calibrated on ``calibration``; train it with ``KeepModelTrainer``.

    The class branch's width is read from the file: detector 0.1 was trained with the head
    Ultralytics sized for 80 classes (80 channels) and 2 outputs, a shape that ``yolov5n.yaml``
    with ``nc=2`` no longer builds (64 channels)."""
    from ultralytics.nn.tasks import DetectionModel

    weights = onnx_weights(onnx_path)
    width = int(weights["model.24.cv3.0.0.conv.weight"].shape[0])
    nc = int(weights["model.24.cv3.0.2.weight"].shape[0])
    model = DetectionModel("yolov5n.yaml", nc=width if width > 64 else nc, verbose=False)
    head = model.model[-1]
    for branch in head.cv3:
        branch[2] = nn.Conv2d(branch[2].in_channels, nc, 1)
    head.nc, head.no = nc, nc + head.reg_max * 4
    model.yaml["nc"], model.nc = nc, nc
    model.names = {i: str(i) for i in range(nc)}
    load_fused(model, weights)
    calibrate_norms(model, calibration)
    return model


def keep_model_trainer():
    """A DetectionTrainer that trains the given model as it is. The stock trainer rebuilds the
    network from its yaml and copies shape-matching tensors, which would drop 0.1's class head
    (see ``detection_model``), both at the start and on ``--resume``."""
    import copy

    from ultralytics.models.yolo.detect.train import DetectionTrainer

    class KeepModelTrainer(DetectionTrainer):
        def get_model(self, cfg=None, weights=None, verbose=True):
            if not isinstance(weights, nn.Module):
                return super().get_model(cfg=cfg, weights=weights, verbose=verbose)
            model = copy.deepcopy(weights).float()
            for p in model.parameters():
                p.requires_grad_(True)
            return self.set_model_names_for_load(model)

    return KeepModelTrainer
