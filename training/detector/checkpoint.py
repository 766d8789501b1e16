"""Read the official YOLOv5 COCO checkpoint without the YOLOv5 code base, and move its weights
into an Ultralytics model.

The .pt is a pickled ``models.yolo.Model``; its classes (``models.common.Conv``, ``C3`` ...) are
not importable here. A permissive unpickler substitutes empty ``nn.Module`` subclasses for them;
because torch modules pickle their ``__dict__`` (children, buffers, attributes such as ``f``/``i``),
the stand-ins come back with every tensor and the layer graph intact.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

# Modules of the YOLOv5 repository that the checkpoint references by name.
_FOREIGN_PREFIXES = ("models", "utils")


class StandIn(nn.Module):
    """Base of every substituted YOLOv5 class; has no forward of its own (see teacher.py)."""


_STAND_INS: dict[tuple[str, str], type] = {}


def _stand_in(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STAND_INS:
        # One class per (module, name) so type(layer).__name__ still says "Conv", "C3", ...
        _STAND_INS[key] = type(name, (StandIn,), {"__module__": f"yolov5_standin.{module}"})
    return _STAND_INS[key]


class PermissiveUnpickler(pickle.Unpickler):
    """Resolves YOLOv5 classes to stand-ins; everything else (torch, collections) as usual."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _FOREIGN_PREFIXES:
            return _stand_in(module, name)
        return super().find_class(module, name)


def _pickle_module() -> types.ModuleType:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)`` using our unpickler."""
    mod = types.ModuleType("platewatch_permissive_pickle")
    for attr in dir(pickle):
        if not attr.startswith("__"):
            setattr(mod, attr, getattr(pickle, attr))
    mod.Unpickler = PermissiveUnpickler  # type: ignore[attr-defined]
    return mod


def load_yolov5_checkpoint(path: str | Path) -> nn.Module:
    """Return the checkpoint's model (EMA weights when present) as float32 stand-in modules."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"YOLOv5 checkpoint not found: {path}")
    # weights_only=False is required: the file pickles whole modules. Only load trusted files.
    ckpt = torch.load(path, map_location="cpu", pickle_module=_pickle_module(), weights_only=False)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, nn.Module):
        raise ValueError(f"{path}: no 'model'/'ema' nn.Module in checkpoint keys {list(ckpt)}")
    model = model.float().eval()
    for m in model.modules():
        # Checkpoints pickled by older torch lack attributes newer nn modules read in forward.
        if isinstance(m, nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None
    return model


def load_yolov5_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The checkpoint's full state_dict (float tensors, keys like ``model.0.conv.weight``)."""
    return {k: v.detach().clone() for k, v in load_yolov5_checkpoint(path).state_dict().items()}


def transfer_weights(
    target: nn.Module, source_state: dict[str, torch.Tensor]
) -> tuple[int, list[str]]:
    """Copy every tensor whose key and shape match into ``target`` (an Ultralytics DetectionModel).

    Backbone and neck (layers 0-23) of Ultralytics' yolov5n.yaml are layer-for-layer YOLOv5n, so
    their keys coincide; the anchor-free Detect head differs in structure and is left as
    initialised. Returns (number of tensors copied, target keys left untouched).
    """
    target_state = target.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for key, value in source_state.items():
        if key in target_state and target_state[key].shape == value.shape:
            copied[key] = value.to(target_state[key].dtype)
    target.load_state_dict(copied, strict=False)
    untouched = [k for k in target_state if k not in copied]
    return len(copied), untouched
