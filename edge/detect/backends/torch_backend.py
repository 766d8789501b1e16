"""PyTorch / Ultralytics backend for development and GPU hosts (``.pt`` files).

Returns the same raw tensors as the ONNX export (the Ultralytics head output (1, 4+nc, N) for a
detector, the reader's (B, T, C) output), so the shared decoders in edge.detect.vision /
edge.detect.ctc are
used unchanged. torch is imported only when such a model is opened; the runtime never needs it.

Accepted files: TorchScript archives, whole pickled ``nn.Module``s, and checkpoint dicts whose
``"ema"`` or ``"model"`` entry is an ``nn.Module`` (Ultralytics' ``best.pt``/``last.pt``; loading
those needs the ``ultralytics`` package importable, since the pickle names its classes).
Only open files you trust: pickled checkpoints can run code when loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.backends.base import BackendError, Shape, check_inputs

INPUT_NAME = "images"


def _import_torch(path: Path) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"{path}: .pt models need PyTorch (`pip install 'platewatch[train]'`); "
            f"or use the .onnx model ({exc})"
        ) from exc
    return torch


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("constants.pkl") for n in zf.namelist())
    except zipfile.BadZipFile:
        return False


def _first_tensor(out: Any) -> Any:
    """Ultralytics models return (y, feature maps) in eval mode; the ONNX graph exports y."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


class TorchBackend:
    def __init__(self, path: str | Path, threads: int = 1, device: str = "auto") -> None:
        self.path = Path(path)
        torch = self._torch = _import_torch(self.path)
        torch.set_num_threads(threads)
        if device in ("auto", "gpu"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        try:
            if _is_torchscript(self.path):
                model = torch.jit.load(str(self.path), map_location=self.device)
            else:
                obj = torch.load(self.path, map_location="cpu", weights_only=False)
                model = obj
                if isinstance(obj, dict):
                    model = obj.get("ema") or obj.get("model")
                if not isinstance(model, torch.nn.Module):
                    raise BackendError(
                        f"{self.path}: no nn.Module found (got {type(obj).__name__}"
                        + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else "")
                        + "); a bare state_dict needs its architecture: export to ONNX instead"
                    )
                model = model.float().to(self.device)
        except (BackendError, ImportError):
            raise
        except Exception as exc:
            raise BackendError(f"{self.path}: PyTorch cannot load the model: {exc}") from exc
        self._model = model.eval()
        # Ultralytics' Detect head concatenates decoded boxes and sigmoid scores in eval
        # mode, exactly what its ONNX export emits; plain modules are called as they are.
        self._output_name = "output0"

    @property
    def input_names(self) -> list[str]:
        return [INPUT_NAME]

    @property
    def output_names(self) -> list[str]:
        return [self._output_name]

    @property
    def input_shapes(self) -> dict[str, Shape]:
        return {INPUT_NAME: (None, 3, None, None)}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._model is None:
            raise BackendError(f"{self.path}: backend is closed")
        check_inputs(self, inputs, str(self.path))
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(inputs[INPUT_NAME], dtype=np.float32))
        with torch.inference_mode():
            out = _first_tensor(self._model(x.to(self.device)))
        return {self._output_name: out.float().cpu().numpy()}

    def close(self) -> None:
        self._model = None
