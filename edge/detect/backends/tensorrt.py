"""TensorRT 10 backend (JetPack 6 on Jetson, TensorRT 10 on x86 GPU hosts).

Uses the named-tensor API of TensorRT 10 (``num_io_tensors``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) and cuda-python for memory and streams. Device
buffers and page-locked host buffers are allocated ONCE, for the largest shapes the engine's
optimisation profile 0 allows, and reused for every frame: no allocation on the frame path
except the small output arrays handed to the caller.

``tensorrt`` and ``cuda`` are imported when a backend is created, never at module import, so
CPU-only installs can import this module (and its error messages) freely.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.backends.base import BackendError, Shape

_MISSING_TRT = (
    "TensorRT backend for {path}: the 'tensorrt' Python package is not importable ({exc}). "
    "On Jetson install JetPack 6 (python3-libnvinfer); on x86 GPU hosts `pip install "
    "'platewatch[trt]'`; or use the .onnx model with ONNX Runtime instead."
)
_MISSING_CUDA = (
    "TensorRT backend for {path}: cuda-python is not importable ({exc}); "
    "`pip install cuda-python` (it provides cuda.bindings.runtime / cuda.cudart)."
)


def _import_trt(path: Path) -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:  # also raised by broken stub wheels
        raise ImportError(_MISSING_TRT.format(path=path, exc=exc)) from exc
    return trt


def _import_cudart(path: Path) -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise ImportError(_MISSING_CUDA.format(path=path, exc=exc)) from exc
    return cudart


def _device_index(device: str) -> int:
    device = device.lower()
    if device in ("auto", "cuda", "gpu", "tensorrt"):  # "tensorrt": the --device choice
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise BackendError(f"TensorRT runs on a CUDA device; device {device!r} is not one (use cuda)")


class TensorRTBackend:
    def __init__(self, path: str | Path, device: str = "auto") -> None:
        self.path = Path(path)
        self._trt = trt = _import_trt(self.path)
        self._cudart = _import_cudart(self.path)
        self._closed = True
        self._check(self._cudart.cudaSetDevice(_device_index(device)), "cudaSetDevice")

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise BackendError(
                f"{self.path}: TensorRT could not deserialise the engine (built with another "
                f"TensorRT version ({trt.__version__} here) or for another GPU?)"
            )
        self._context = self._engine.create_execution_context()
        self._stream = self._check(self._cudart.cudaStreamCreate(), "cudaStreamCreate")

        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._dtypes: dict[str, np.dtype] = {}
        self._shapes: dict[str, Shape] = {}
        self._max_shapes: dict[str, tuple[int, ...]] = {}
        self._min_shapes: dict[str, tuple[int, ...]] = {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(name)
            self._dtypes[name] = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            dims = tuple(self._engine.get_tensor_shape(name))
            self._shapes[name] = tuple(d if d >= 0 else None for d in dims)

        # Largest input shapes of optimisation profile 0; set them once to learn the largest
        # output shapes, so every buffer can be sized for the worst case up front.
        for name in self._inputs:
            if None in self._shapes[name]:
                lo, _opt, hi = self._engine.get_tensor_profile_shape(name, 0)
                self._min_shapes[name], self._max_shapes[name] = tuple(lo), tuple(hi)
            else:
                shape = tuple(int(d) for d in self._shapes[name])  # type: ignore[arg-type]
                self._min_shapes[name] = self._max_shapes[name] = shape
            self._set_shape(name, self._max_shapes[name])
        for name in self._outputs:
            shape = tuple(self._context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise BackendError(f"{self.path}: output {name!r} has data-dependent shape {shape}")
            self._max_shapes[name] = shape

        self._device_ptrs: dict[str, int] = {}
        self._host_ptrs: dict[str, int] = {}
        self._host: dict[str, np.ndarray] = {}  # flat views of the pinned buffers
        self._closed = False
        try:
            for name in self._inputs + self._outputs:
                count = int(np.prod(self._max_shapes[name]))
                nbytes = max(1, count * self._dtypes[name].itemsize)
                dptr = self._check(self._cudart.cudaMalloc(nbytes), "cudaMalloc")
                self._device_ptrs[name] = int(dptr)
                hptr = self._check(self._cudart.cudaMallocHost(nbytes), "cudaMallocHost")
                self._host_ptrs[name] = int(hptr)
                raw = (ctypes.c_byte * nbytes).from_address(int(hptr))
                self._host[name] = np.frombuffer(
                    memoryview(raw), dtype=self._dtypes[name], count=count
                )
                self._context.set_tensor_address(name, int(dptr))
        except Exception:
            self.close()
            raise

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        # TensorRT returns False (and only logs why) for a shape outside the profile.
        if self._context.set_input_shape(name, tuple(shape)) is False:
            raise BackendError(
                f"{self.path}: TensorRT rejected shape {tuple(shape)} for input {name!r}"
            )

    def _check(self, result: Any, what: str) -> Any:
        """cuda-python returns (err, *values); raise on error, return the value(s)."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            name = getattr(err, "name", str(err))
            raise BackendError(f"{self.path}: {what} failed: {name}")
        return values[0] if len(values) == 1 else (tuple(values) or None)

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    @property
    def input_shapes(self) -> dict[str, Shape]:
        return {n: self._shapes[n] for n in self._inputs}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._closed:
            raise BackendError(f"{self.path}: backend is closed")
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in self._inputs:
            if name not in inputs:
                raise BackendError(f"{self.path}: missing input {name!r}; expects {self._inputs}")
            arr = inputs[name]
            lo, hi = self._min_shapes[name], self._max_shapes[name]
            if arr.ndim != len(hi) or any(
                s < a or s > b for s, a, b in zip(arr.shape, lo, hi, strict=True)
            ):
                raise BackendError(
                    f"{self.path}: input {name!r} shape {arr.shape} is outside the engine's "
                    f"profile {lo}..{hi}"
                )
            count = arr.size
            # Copy (and cast) into the pinned buffer: DMA from pageable memory would stage.
            np.copyto(self._host[name][:count].reshape(arr.shape), arr, casting="same_kind")
            self._set_shape(name, arr.shape)
            nbytes = count * self._dtypes[name].itemsize
            self._check(
                cudart.cudaMemcpyAsync(
                    self._device_ptrs[name], self._host_ptrs[name], nbytes, h2d, self._stream
                ),
                "cudaMemcpyAsync(H2D)",
            )
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendError(f"{self.path}: TensorRT execute_async_v3 failed")
        shapes: dict[str, tuple[int, ...]] = {}
        for name in self._outputs:
            shapes[name] = tuple(self._context.get_tensor_shape(name))
            nbytes = int(np.prod(shapes[name])) * self._dtypes[name].itemsize
            self._check(
                cudart.cudaMemcpyAsync(
                    self._host_ptrs[name], self._device_ptrs[name], nbytes, d2h, self._stream
                ),
                "cudaMemcpyAsync(D2H)",
            )
        self._check(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        # Copies: the pinned buffers are overwritten by the next frame. fp16 engines are
        # widened so decoders always see float32.
        return {
            n: self._host[n][: int(np.prod(s))].reshape(s).astype(np.float32, copy=True)
            for n, s in shapes.items()
        }

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        cudart = self._cudart
        for ptr in self._device_ptrs.values():
            cudart.cudaFree(ptr)
        for ptr in self._host_ptrs.values():
            cudart.cudaFreeHost(ptr)
        self._device_ptrs.clear()
        self._host_ptrs.clear()
        self._host.clear()
        cudart.cudaStreamDestroy(self._stream)
        self._context = None
        self._engine = None

    def __del__(self) -> None:  # best effort; call close() explicitly
        try:
            self.close()
        except Exception:
            pass
