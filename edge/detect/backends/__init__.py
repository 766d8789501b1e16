"""Inference backends, chosen by model file extension.

``.onnx`` -> ONNX Runtime (the default everywhere; CPU, or CUDA/TensorRT execution providers
when the installed onnxruntime has them), ``.engine``/``.plan`` -> TensorRT 10 (Jetson/GPU
hosts), ``.pt`` -> PyTorch/Ultralytics (development). Heavy packages are imported only when a
model of that kind is loaded, so the runtime never imports torch or tensorrt by accident.
"""

from __future__ import annotations

from pathlib import Path

from edge.detect.backends.base import Backend, BackendError, Shape

__all__ = ["Backend", "BackendError", "Shape", "load_backend", "SUPPORTED_EXTENSIONS"]

SUPPORTED_EXTENSIONS = {
    ".onnx": "ONNX Runtime",
    ".engine": "TensorRT",
    ".plan": "TensorRT",
    ".pt": "PyTorch/Ultralytics",
}


def load_backend(path: str | Path, threads: int = 1, device: str = "auto") -> Backend:
    """Open ``path`` with the backend its extension names.

    ``threads``: CPU threads for the backend's intra-op pool (1 keeps a shared CPU usable).
    ``device``: "auto" (GPU when the backend has one, else CPU), "cpu", "cuda", or for ONNX
    Runtime also "tensorrt" (its TensorRT execution provider).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        known = ", ".join(f"{e} ({n})" for e, n in SUPPORTED_EXTENSIONS.items())
        raise BackendError(f"{path}: unknown model file extension {ext!r}; supported: {known}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if ext == ".onnx":
        from edge.detect.backends.ort import OrtBackend

        return OrtBackend(path, threads=threads, device=device)
    if ext in (".engine", ".plan"):
        from edge.detect.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(path, device=device)
    from edge.detect.backends.torch_backend import TorchBackend

    return TorchBackend(path, threads=threads, device=device)
