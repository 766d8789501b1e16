"""Inference backends, chosen by model file extension.

``.onnx`` -> ONNX Runtime (the default everywhere; CPU, or CUDA/TensorRT execution providers
when the installed onnxruntime has them), ``.engine``/``.plan``/``.trt`` -> TensorRT 10
(Jetson/GPU hosts), ``.pt`` -> PyTorch/Ultralytics (development). Heavy packages are imported only
when a
model of that kind is loaded, so the runtime never imports torch or tensorrt by accident.
"""

from __future__ import annotations

from pathlib import Path

from edge.detect.backends.base import Backend, BackendError, Shape

__all__ = [
    "BACKEND_OF_SUFFIX",
    "Backend",
    "BackendError",
    "SUPPORTED_EXTENSIONS",
    "Shape",
    "load_backend",
]

# File extension -> backend name (the names ``models.backend`` takes) and its label.
BACKEND_OF_SUFFIX = {
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".trt": "tensorrt",
    ".pt": "ultralytics",
}
_LABEL = {
    "onnxruntime": "ONNX Runtime",
    "tensorrt": "TensorRT",
    "ultralytics": "PyTorch/Ultralytics",
}
SUPPORTED_EXTENSIONS = {ext: _LABEL[b] for ext, b in BACKEND_OF_SUFFIX.items()}


def load_backend(
    path: str | Path, threads: int = 1, device: str = "auto", backend: str = "auto"
) -> Backend:
    """Open ``path`` with ``backend`` (auto: the one its extension names).

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
    kind = BACKEND_OF_SUFFIX[ext] if backend == "auto" else backend
    if kind != BACKEND_OF_SUFFIX[ext]:
        raise BackendError(f"{path}: backend {backend!r} cannot open a {ext} file")
    if kind == "onnxruntime":
        from edge.detect.backends.ort import OrtBackend

        return OrtBackend(path, threads=threads, device=device)
    if kind == "tensorrt":
        from edge.detect.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(path, device=device)
    from edge.detect.backends.torch_backend import TorchBackend

    return TorchBackend(path, threads=threads, device=device)
