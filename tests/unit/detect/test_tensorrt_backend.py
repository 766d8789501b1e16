"""Host-side logic of the TensorRT 10 backend (edge/detect/backends/tensorrt.py) on CPU.

FAKE ``tensorrt`` and ``cuda.bindings.runtime`` modules are put into ``sys.modules`` so the
backend's real import path runs. "Device" memory is host RAM, so buffer sizing, the named-tensor
bookkeeping, per-batch shapes and the copies are exercised for real; what TensorRT itself does
(kernels, deserialisation) is not. tests/test_backends.py covers the single-input happy path;
this file covers several named inputs/outputs, fp16 tensors, and the error paths.

The last test needs the real library and is skipped here with the reason it names.
"""

from __future__ import annotations

import ctypes
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge.detect.backends import BackendError, load_backend

# ------------------------------------------------------------------------------ fake cudart


class FakeCudart(types.ModuleType):
    """The cuda-python runtime calls the backend makes: (err, value) tuples, err 0 = success."""

    class cudaMemcpyKind:  # noqa: N801 - mirrors cuda-python
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaError_t(int):  # noqa: N801
        @property
        def name(self) -> str:
            return {2: "cudaErrorMemoryAllocation", 100: "cudaErrorNoDevice"}.get(int(self), "?")

    def __init__(self) -> None:
        super().__init__("cuda.bindings.runtime")
        self.blocks: dict[int, ctypes.Array] = {}
        self.mallocs: list[tuple[str, int]] = []
        self.copies: list[tuple[int, int]] = []
        self.freed: list[int] = []
        self.fail_malloc_after: int | None = None
        self.set_device_error = 0

    def _alloc(self, kind: str, n: int) -> tuple[object, int]:
        if self.fail_malloc_after is not None and len(self.mallocs) >= self.fail_malloc_after:
            return self.cudaError_t(2), 0
        buf = ctypes.create_string_buffer(n)
        self.blocks[ctypes.addressof(buf)] = buf
        self.mallocs.append((kind, n))
        return self.cudaError_t(0), ctypes.addressof(buf)

    def cudaMalloc(self, n: int):  # noqa: N802
        return self._alloc("device", n)

    def cudaMallocHost(self, n: int):  # noqa: N802
        return self._alloc("host", n)

    def cudaSetDevice(self, i: int):  # noqa: N802
        return (self.cudaError_t(self.set_device_error),)

    def cudaStreamCreate(self):  # noqa: N802
        return self.cudaError_t(0), 42

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: int, stream: int):  # noqa: N802
        assert stream == 42
        ctypes.memmove(dst, src, n)
        self.copies.append((kind, n))
        return (self.cudaError_t(0),)

    def cudaStreamSynchronize(self, s: int):  # noqa: N802
        return (self.cudaError_t(0),)

    def cudaFree(self, p: int):  # noqa: N802
        self.freed.append(p)
        return (self.cudaError_t(0),)

    cudaFreeHost = cudaFree  # noqa: N815

    def cudaStreamDestroy(self, s: int):  # noqa: N802
        return (self.cudaError_t(0),)


# ------------------------------------------------------------------------------ fake tensorrt


class Tensor:
    def __init__(
        self,
        name: str,
        mode: str,
        shape: tuple[int, ...],
        dtype: str = "float32",
        profile: tuple[tuple[int, ...], ...] | None = None,
    ) -> None:
        self.name, self.mode, self.shape, self.dtype, self.profile = (
            name,
            mode,
            shape,
            dtype,
            profile,
        )


def make_fake_trt(
    tensors: list[Tensor],
    output_shape: Callable[[dict[str, tuple[int, ...]], str], tuple[int, ...]],
    compute: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    engine_bytes: bytes = b"fake engine",
) -> types.ModuleType:
    """A ``tensorrt`` module whose engine has ``tensors``; ``output_shape(input_shapes, name)``
    gives output shapes, ``compute(inputs)`` the outputs written to the output addresses."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dt: {"float32": np.float32, "float16": np.float16}[dt]
    by_name = {t.name: t for t in tensors}
    trt.contexts = []

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class Context:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addr: dict[str, int] = {}
            self.shape_calls: list[tuple[str, tuple[int, ...]]] = []
            self.executions = 0
            self.execute_ok = True
            trt.contexts.append(self)

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            t = by_name[name]
            self.shape_calls.append((name, tuple(shape)))
            if t.profile is not None:  # reject like TensorRT does: return False
                lo, _, hi = t.profile
                if any(s < a or s > b for s, a, b in zip(shape, lo, hi, strict=True)):
                    return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if by_name[name].mode == "INPUT":
                return self.shapes[name]
            return output_shape(self.shapes, name)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            assert stream == 42
            self.executions += 1
            ins = {}
            for t in tensors:
                if t.mode == "INPUT":
                    shape = self.shapes[t.name]
                    n = int(np.prod(shape))
                    dt = np.dtype(trt.nptype(t.dtype))
                    raw = (ctypes.c_byte * (n * dt.itemsize)).from_address(self.addr[t.name])
                    ins[t.name] = np.frombuffer(raw, dt).reshape(shape).copy()
            for name, value in compute(ins).items():
                t = by_name[name]
                dt = np.dtype(trt.nptype(t.dtype))
                value = value.astype(dt)
                raw = (ctypes.c_byte * value.nbytes).from_address(self.addr[name])
                np.frombuffer(raw, dt)[:] = value.ravel()
            return self.execute_ok

    class Engine:
        num_io_tensors = len(tensors)

        def get_tensor_name(self, i: int) -> str:
            return tensors[i].name

        def get_tensor_mode(self, name: str) -> str:
            return by_name[name].mode

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return by_name[name].shape

        def get_tensor_dtype(self, name: str) -> str:
            return by_name[name].dtype

        def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
            assert profile == 0
            p = by_name[name].profile
            assert p is not None, f"{name} has no profile"
            return list(p)

        def create_execution_context(self) -> Context:
            return Context()

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            return Engine() if data == engine_bytes else None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> FakeCudart:
    rt = FakeCudart()
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt  # type: ignore[attr-defined]
    cuda.bindings = bindings  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
    return rt


def install(monkeypatch: pytest.MonkeyPatch, trt: types.ModuleType) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", trt)


def engine_file(tmp_path: Path, data: bytes = b"fake engine", name: str = "m.engine") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# A two-input, two-output engine: images (dynamic batch 1..6) + a static per-call gain;
# outputs declared in the opposite order to the graph's computation, fp16 for one of them.
TWO_IN_TWO_OUT = [
    Tensor("gain", "INPUT", (1,)),
    Tensor("images", "INPUT", (-1, 2, 3), profile=((1, 2, 3), (4, 2, 3), (6, 2, 3))),
    Tensor("sums", "OUTPUT", (-1,), dtype="float16"),
    Tensor("scaled", "OUTPUT", (-1, 2, 3)),
]


def two_out_shape(shapes: dict[str, tuple[int, ...]], name: str) -> tuple[int, ...]:
    b = shapes["images"][0]
    return (b,) if name == "sums" else (b, 2, 3)


def two_out_compute(ins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    scaled = ins["images"] * ins["gain"][0]
    return {"scaled": scaled, "sums": scaled.reshape(len(scaled), -1).sum(1)}


def test_named_io_buffer_plan_and_per_batch_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    trt = make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute)
    install(monkeypatch, trt)
    b = load_backend(engine_file(tmp_path), device="cuda:0")
    assert b.input_names == ["gain", "images"] and b.output_names == ["sums", "scaled"]
    assert b.input_shapes == {"gain": (1,), "images": (None, 2, 3)}
    # Buffer plan: one device + one pinned host buffer per tensor, sized for profile max
    # (batch 6) and the tensor's own dtype (fp16 "sums": 2 bytes per element).
    expected = {"gain": 4, "images": 6 * 6 * 4, "sums": 6 * 2, "scaled": 6 * 6 * 4}
    sizes = [n for _kind, n in cudart.mallocs]
    assert sizes == [
        n for name in ("gain", "images", "sums", "scaled") for n in (expected[name], expected[name])
    ]
    ctx = trt.contexts[0]
    assert set(ctx.addr) == {"gain", "images", "sums", "scaled"}
    n_alloc = len(cudart.mallocs)
    rng = np.random.default_rng(0)
    for batch in (4, 1, 6, 2):
        x = rng.random((batch, 2, 3), dtype=np.float32)
        out = b.run({"images": x, "gain": np.array([2.0], np.float32), "unused": x})
        assert set(out) == {"sums", "scaled"}
        np.testing.assert_allclose(out["scaled"], 2 * x, rtol=1e-6)
        # fp16 output widened to float32 for the decoders
        assert out["sums"].dtype == np.float32 and out["sums"].shape == (batch,)
        np.testing.assert_allclose(out["sums"], 2 * x.reshape(batch, -1).sum(1), rtol=2e-3)
        assert ctx.shape_calls[-1] == ("images", (batch, 2, 3))
    assert len(cudart.mallocs) == n_alloc  # nothing allocated per frame
    # Only the current batch's bytes cross the bus: last run (batch 2) copied 4 B gain,
    # 2*6*4 B images in; 2*2 B sums, 2*6*4 B scaled out.
    assert cudart.copies[-4:] == [(1, 4), (1, 48), (2, 4), (2, 48)]
    # The caller owns the outputs: the next frame does not overwrite them.
    first = b.run({"images": np.ones((1, 2, 3), np.float32), "gain": np.ones(1, np.float32)})
    b.run({"images": np.zeros((1, 2, 3), np.float32), "gain": np.ones(1, np.float32)})
    assert first["scaled"].sum() == 6
    b.close()
    assert len(cudart.freed) == 8
    b.close()  # idempotent
    assert len(cudart.freed) == 8


def test_wrong_input_name_and_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    install(monkeypatch, make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute))
    b = load_backend(engine_file(tmp_path))
    gain = np.ones(1, np.float32)
    with pytest.raises(BackendError, match=r"missing input 'images'.*\['gain', 'images'\]"):
        b.run({"image": np.zeros((1, 2, 3), np.float32), "gain": gain})
    with pytest.raises(
        BackendError, match=r"outside the engine's profile \(1, 2, 3\)\.\.\(6, 2, 3\)"
    ):
        b.run({"images": np.zeros((7, 2, 3), np.float32), "gain": gain})
    with pytest.raises(BackendError, match="outside"):
        b.run({"images": np.zeros((2, 3), np.float32), "gain": gain})  # wrong rank
    with pytest.raises(BackendError, match="outside"):
        b.run({"images": np.zeros((2, 2, 4), np.float32), "gain": gain})  # wrong static dim


def test_deserialize_failure_names_file_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    install(monkeypatch, make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute))
    bad = engine_file(tmp_path, b"engine from another TensorRT", "old.plan")
    with pytest.raises(BackendError, match=r"old\.plan.*could not deserialise.*10\.3\.0"):
        load_backend(bad)
    assert cudart.mallocs == []


def test_rejected_shape_execute_failure_and_dynamic_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    trt = make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute)
    install(monkeypatch, trt)
    b = load_backend(engine_file(tmp_path))
    trt.contexts[0].execute_ok = False
    with pytest.raises(BackendError, match="execute_async_v3 failed"):
        b.run({"images": np.zeros((1, 2, 3), np.float32), "gain": np.ones(1, np.float32)})
    # An output whose size depends on the data (NMS inside the graph) cannot be pre-sized.
    install(
        monkeypatch,
        make_fake_trt(
            TWO_IN_TWO_OUT,
            lambda s, n: (-1,) if n == "sums" else (s["images"][0], 2, 3),
            two_out_compute,
        ),
    )
    with pytest.raises(BackendError, match="data-dependent shape"):
        load_backend(engine_file(tmp_path))


def test_set_input_shape_false_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    trt = make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute)
    install(monkeypatch, trt)
    b = load_backend(engine_file(tmp_path))
    # TensorRT has the last word on shapes (it only logs why it says no): False must not be
    # ignored and run into a kernel with stale dimensions.
    trt.contexts[0].set_input_shape = lambda name, shape: name != "images"
    with pytest.raises(BackendError, match=r"rejected shape \(3, 2, 3\) for input 'images'"):
        b.run({"images": np.zeros((3, 2, 3), np.float32), "gain": np.ones(1, np.float32)})


def test_cuda_errors_are_backend_errors_and_free_what_was_allocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    install(monkeypatch, make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute))
    cudart.fail_malloc_after = 3
    with pytest.raises(BackendError, match="cudaMalloc.*cudaErrorMemoryAllocation"):
        load_backend(engine_file(tmp_path))
    assert len(cudart.freed) == 3  # the three buffers that were allocated
    cudart.fail_malloc_after = None
    cudart.set_device_error = 100
    with pytest.raises(BackendError, match="cudaSetDevice failed: cudaErrorNoDevice"):
        load_backend(engine_file(tmp_path))


@pytest.mark.parametrize(
    ("device", "ok"),
    [("auto", True), ("tensorrt", True), ("cuda:1", True), ("cpu", False), ("cuda:x", False)],
)
def test_device_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart, device: str, ok: bool
) -> None:
    install(monkeypatch, make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute))
    if ok:
        load_backend(engine_file(tmp_path), device=device).close()
    else:
        with pytest.raises(BackendError, match="CUDA device"):
            load_backend(engine_file(tmp_path), device=device)


def test_missing_cuda_python_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, make_fake_trt(TWO_IN_TWO_OUT, two_out_shape, two_out_compute))
    for mod in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ImportError, match="cuda-python"):
        load_backend(engine_file(tmp_path))


def test_reader_uses_fixed_batch_engine_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudart: FakeCudart
) -> None:
    """A reader engine built with a fixed batch (``--reader-batch 4``): edge.detect.models.Reader
    pads and chunks, the backend sees exactly batch 4 every time."""
    from standin_models import ALPHABET, text_probs

    from edge.detect.models import Reader, ReaderSpec
    from edge.detect.plate_input import ReaderInput

    probs = text_probs("AB12")
    tensors = [
        Tensor("images", "INPUT", (4, 3, 32, 128)),
        Tensor("probs", "OUTPUT", (4, *probs.shape)),
    ]
    trt = make_fake_trt(
        tensors,
        lambda s, n: (4, *probs.shape),
        lambda ins: {"probs": np.repeat(probs[None], len(ins["images"]), 0)},
    )
    install(monkeypatch, trt)
    reader = Reader(
        engine_file(tmp_path, name="reader.engine"),
        spec=ReaderSpec(alphabet=ALPHABET, input=ReaderInput()),
    )
    reads = reader.read([np.full((20, 80, 3), 100, np.uint8)] * 6)
    assert [r.text for r in reads] == ["AB12"] * 6
    assert [c for c in trt.contexts[0].shape_calls[1:]] == [("images", (4, 3, 32, 128))] * 2


def test_real_tensorrt_matches_onnxruntime(tmp_path: Path) -> None:
    """Needs the real library: build the stand-in reader into an FP32 engine and compare."""
    pytest.importorskip(
        "tensorrt", reason="needs TensorRT 10 (JetPack 6 or an x86 TensorRT install)"
    )
    pytest.importorskip("cuda.bindings.runtime", reason="needs cuda-python with a CUDA device")
    from standin_models import make_reader

    from edge.trt.build import ensure_engine, make_plan
    from edge.trt.cache import CudaDeviceInfo

    onnx_path = make_reader(tmp_path / "reader.onnx", "PW42")
    plan = make_plan("reader", onnx_path, "fp32")
    res = ensure_engine(plan, tmp_path / "engines", CudaDeviceInfo())
    trt_b = load_backend(res.stable)
    ort_b = load_backend(onnx_path, device="cpu")
    x = np.random.default_rng(0).random((5, 3, 32, 128), dtype=np.float32)
    np.testing.assert_allclose(
        trt_b.run({"images": x})["probs"], ort_b.run({"images": x})["probs"], atol=1e-4
    )
    trt_b.close()
