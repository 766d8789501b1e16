"""ONNX Runtime backend: the default on every machine (CPU), GPU execution providers when the
installed onnxruntime build has them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge.detect.backends.base import BackendError, Shape, check_inputs

_GPU_PROVIDERS = {
    "cuda": ["CUDAExecutionProvider"],
    # TensorRT EP builds an engine on first run (minutes); only when asked for explicitly.
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"],
}


def choose_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device``, always ending with the CPU fallback."""
    device = device.lower()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        wanted = _GPU_PROVIDERS["cuda"]
    elif device in _GPU_PROVIDERS:
        wanted = _GPU_PROVIDERS[device]
        missing = [p for p in wanted if p not in available]
        if len(missing) == len(wanted):
            raise BackendError(
                f"device {device!r} needs onnxruntime with {wanted[0]}; this onnxruntime has"
                f" {available} (install onnxruntime-gpu, or use device 'cpu')"
            )
    else:
        raise BackendError(f"unknown device {device!r}; use auto, cpu, cuda or tensorrt")
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


def _shape(dims: list[object]) -> Shape:
    # ONNX Runtime reports dynamic dims as names ("batch") or None.
    return tuple(d if isinstance(d, int) and d > 0 else None for d in dims)


class OrtBackend:
    def __init__(self, path: str | Path, threads: int = 1, device: str = "auto") -> None:
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # warnings about unused initialisers are noise here
        providers = choose_providers(device, ort.get_available_providers())
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"{self.path}: ONNX Runtime cannot load the model: {exc}") from exc
        self.providers = self._session.get_providers()
        self._inputs = self._session.get_inputs()
        self._input_names = [i.name for i in self._inputs]
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._input_shapes = {i.name: _shape(i.shape) for i in self._inputs}
        # fp16 exports (GPU hosts) take half inputs; callers always hand over float32.
        self._input_dtypes = {
            i.name: np.float16 if i.type == "tensor(float16)" else np.float32 for i in self._inputs
        }

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    @property
    def input_shapes(self) -> dict[str, Shape]:
        return dict(self._input_shapes)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise BackendError(f"{self.path}: backend is closed")
        check_inputs(self, inputs, str(self.path))
        feeds = {
            n: np.ascontiguousarray(inputs[n], dtype=self._input_dtypes[n])
            for n in self._input_names
        }
        outs = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, outs, strict=True))

    def close(self) -> None:
        self._session = None
