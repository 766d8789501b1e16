"""Backend factory, ONNX Runtime backend, model metadata, Detector/Reader and the ALPR frame
pipeline, on tiny stand-in ONNX models (tests/standin_models.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from standin_models import ALPHABET, make_detector, make_reader, text_probs

from edge.detect.alpr import Alpr, drop_fragments, nested_plates
from edge.detect.backends import BackendError, load_backend
from edge.detect.models import (
    Detector,
    ModelSpecError,
    Reader,
    ReaderSpec,
    default_models_dir,
    load_spec,
)
from edge.detect.plate_input import ReaderInput
from edge.detect.vision import box_iou
from edge.track.linking import assign_plates_to_vehicles
from edge.types import Detections


def test_unknown_extension_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "model.tflite"
    f.write_bytes(b"x")
    with pytest.raises(BackendError, match=r"unknown model file extension '\.tflite'.*\.onnx"):
        load_backend(f)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        load_backend(tmp_path / "nothing.onnx")


@pytest.mark.parametrize("ext", [".engine", ".plan"])
def test_engine_without_tensorrt_names_tensorrt(
    tmp_path: Path, ext: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / f"detector{ext}"
    f.write_bytes(b"not an engine")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(ImportError, match="TensorRT"):
        load_backend(f)


def test_pt_backend_imports_torch_lazily() -> None:
    import edge.detect.backends
    import edge.detect.backends.tensorrt  # noqa: F401  module import must not need tensorrt

    assert "tensorrt" not in sys.modules or sys.modules["tensorrt"] is None
    assert edge.detect.backends.SUPPORTED_EXTENSIONS[".pt"].startswith("PyTorch")


def test_ort_backend_io(tmp_path: Path) -> None:
    b = load_backend(make_reader(tmp_path / "reader.onnx", "AB1"), threads=1, device="cpu")
    assert b.input_names == ["images"] and b.output_names == ["probs"]
    assert b.input_shapes["images"] == (None, 3, 32, 128)
    out = b.run({"images": np.zeros((3, 3, 32, 128), np.float32)})
    assert out["probs"].shape == (3, 32, len(ALPHABET) + 1)
    with pytest.raises(BackendError, match="shape"):
        b.run({"images": np.zeros((1, 3, 32, 64), np.float32)})
    with pytest.raises(BackendError, match="missing input"):
        b.run({"x": np.zeros((1, 3, 32, 128), np.float32)})
    b.close()
    with pytest.raises(BackendError, match="closed"):
        b.run({"images": np.zeros((1, 3, 32, 128), np.float32)})


def test_ort_rejects_unavailable_gpu(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        load_backend(make_reader(tmp_path / "r.onnx"), device="cuda")


def test_corrupt_onnx_is_backend_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.onnx"
    f.write_bytes(b"garbage")
    with pytest.raises(BackendError, match="bad.onnx"):
        load_backend(f)


# --- model metadata ---------------------------------------------------------------------


def _write(tmp_path: Path, data: object, name: str = "m.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "detector", "input_size": [64, 64]}, "classes"),
        ({"kind": "detector", "classes": ["plate"], "input_size": [64]}, "input_size"),
        (
            {"kind": "detector", "classes": ["plate"], "input_size": [64, 64], "conf_threshold": 2},
            "conf_threshold",
        ),
        ({"kind": "reader", "input": {"height": 32, "width": 128}}, "alphabet"),
        ({"kind": "reader", "alphabet": "AB", "input": {"height": 32}}, "input.height/width"),
        (
            {
                "kind": "reader",
                "alphabet": "AB",
                "blank_index": 2,
                "input": {"height": 32, "width": 128},
            },
            "blank_index",
        ),
        ({"kind": "classifier"}, "kind"),
        ({"classes": []}, "kind"),
    ],
)
def test_spec_errors_name_the_field(tmp_path: Path, data: dict, field: str) -> None:
    with pytest.raises(ModelSpecError, match=f"m.json.*{field}"):
        load_spec(_write(tmp_path, data))


def test_spec_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="not found"):
        load_spec(tmp_path / "detector.onnx")
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ModelSpecError, match="not valid JSON"):
        load_spec(tmp_path / "x.json")


def test_default_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLATEWATCH_MODELS", raising=False)
    assert default_models_dir() == Path(__file__).resolve().parents[3] / "models"
    monkeypatch.setenv("PLATEWATCH_MODELS", str(tmp_path))
    assert default_models_dir() == tmp_path


# --- Detector -----------------------------------------------------------------------------


def test_detector_maps_boxes_back_to_frame(tmp_path: Path) -> None:
    # 256x128 frame into a 64x64 input: scale 0.25, 16 px padding top and bottom.
    path = make_detector(
        tmp_path / "detector.onnx",
        [
            (20, 30, 40, 38, 1, 0.9),  # plate
            (10, 20, 50, 46, 0, 0.8),  # vehicle
            (20, 0, 40, 10, 1, 0.95),  # lies in the padding only -> dropped
            (21, 30, 41, 38, 1, 0.5),  # duplicate plate -> NMS
            (0, 30, 5, 35, 1, 0.1),  # below threshold
        ],
    )
    det = Detector(path, threads=1)
    d = det.detect(np.zeros((128, 256, 3), np.uint8))
    assert d.names == ["plate", "vehicle"]
    np.testing.assert_allclose(d.boxes[0], [80, 56, 160, 88], atol=1e-3)
    np.testing.assert_allclose(d.boxes[1], [40, 16, 200, 120], atol=1e-3)
    assert len(d.of_class("plate")) == 1 and len(d.of_class("truck")) == 0
    with pytest.raises(ValueError, match="BGR"):
        det.detect(np.zeros((10, 10), np.uint8))


def test_detector_input_size_must_match_model(tmp_path: Path) -> None:
    path = make_detector(tmp_path / "detector.onnx", [], input_size=(64, 64))
    spec = json.loads(path.with_suffix(".json").read_text())
    spec["input_size"] = [32, 32]
    path.with_suffix(".json").write_text(json.dumps(spec))
    with pytest.raises(ModelSpecError, match="input_size"):
        Detector(path)


def test_wrong_kind_sidecar(tmp_path: Path) -> None:
    path = make_reader(tmp_path / "reader.onnx")
    with pytest.raises(ModelSpecError, match="not detector"):
        Detector(path)


# --- Reader -------------------------------------------------------------------------------


class FakeReaderBackend:
    """Fixed-batch backend whose 'reading' of each crop is its brightness, so order and
    padding mistakes show up in the decoded texts. Records every call."""

    def __init__(self, batch: int | None) -> None:
        self.batch = batch
        self.calls: list[int] = []

    input_names = ["images"]
    output_names = ["probs"]

    @property
    def input_shapes(self) -> dict:
        return {"images": (self.batch, 3, 32, 128)}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["images"]
        if self.batch is not None:
            assert x.shape[0] == self.batch
        self.calls.append(x.shape[0])
        # prepare_plate maps pixel v to (v - 127.5) / 127.5; crops are filled with 10 * digit.
        digits = np.rint((x.mean(axis=(1, 2, 3)) * 127.5 + 127.5) / 10).astype(int)
        return {"probs": np.stack([text_probs(str(d % 10)) for d in digits])}

    def close(self) -> None:
        pass


SPEC = ReaderSpec(alphabet=ALPHABET, input=ReaderInput())


@pytest.mark.parametrize(("batch", "calls"), [(4, [4, 4]), (None, [6]), (1, [1] * 6)])
def test_reader_chunks_and_pads_fixed_batches(batch: int | None, calls: list[int]) -> None:
    backend = FakeReaderBackend(batch)
    reader = Reader("fake.onnx", spec=SPEC, backend=backend)
    crops = [np.full((20, 80, 3), 10 * d, np.uint8) for d in (3, 1, 4, 1, 5, 9)]
    reads = reader.read(crops)
    assert [r.text for r in reads] == ["3", "1", "4", "1", "5", "9"]
    assert backend.calls == calls
    assert all(r.confidence == pytest.approx(0.9) for r in reads)


def test_reader_empty_inputs() -> None:
    backend = FakeReaderBackend(None)
    reader = Reader("fake.onnx", spec=SPEC, backend=backend)
    assert reader.read([]) == []
    reads = reader.read([np.zeros((0, 5, 3), np.uint8), np.full((20, 80, 3), 70, np.uint8)])
    assert [r.text for r in reads] == ["", "7"] and backend.calls == [1]


def test_reader_onnx_batch_one_call(tmp_path: Path) -> None:
    reader = Reader(make_reader(tmp_path / "reader.onnx", "KX42"), threads=1)
    reads = reader.read([np.zeros((30, 90, 3), np.uint8), np.zeros((60, 70, 3), np.uint8)])
    assert [r.text for r in reads] == ["KX42", "KX42"]
    assert len(reads[0].char_confidences) == 4


def test_reader_softmaxes_logits() -> None:
    class Logits(FakeReaderBackend):
        def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"probs": np.log(super().run(inputs)["probs"]) * 3 + 1}

    reads = Reader("fake.pt", spec=SPEC, backend=Logits(None)).read(
        [np.full((20, 80, 3), 20, np.uint8)]
    )
    assert reads[0].text == "2" and 0.9 < reads[0].confidence <= 1.0


def test_reader_rejects_wrong_output_shape() -> None:
    class Wrong(FakeReaderBackend):
        def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"probs": np.zeros((inputs["images"].shape[0], 32, 11), np.float32)}

    with pytest.raises(BackendError, match="37"):
        Reader("fake.onnx", spec=SPEC, backend=Wrong(None)).read([np.zeros((9, 9, 3), np.uint8)])


# --- ALPR frame pipeline ---------------------------------------------------------------


def test_stills_use_the_trackers_association_rule() -> None:
    """Alpr ties a plate to a vehicle box with the same function the video linker uses (at the
    still-image threshold 0.6)."""
    plates = np.array([[10, 10, 20, 15], [100, 100, 110, 105], [48, 10, 58, 15]], np.float32)
    vehicles = np.array([[0, 0, 50, 50], [5, 5, 30, 30], [200, 200, 300, 300]], np.float32)
    # plate 0: inside both 0 and 1 fully -> smaller vehicle 1; plate 1: none;
    # plate 2: only 20% inside vehicle 0 -> None.
    assert assign_plates_to_vehicles(plates, vehicles, 0.6) == [1, None, None]
    assert assign_plates_to_vehicles(plates, np.zeros((0, 4)), 0.6) == [None, None, None]
    # 70% inside is enough.
    one = np.array([[40, 0, 50, 10]])
    assert assign_plates_to_vehicles(one, np.array([[0, 0, 47, 20]]), 0.6) == [0]


def test_plate_fragments_are_dropped_before_reading() -> None:
    # a half-plate box inside a higher-scoring plate box is a fragment; a separate plate stays
    boxes = np.array([[0, 0, 100, 30], [10, 5, 50, 25], [200, 0, 300, 30]], np.float32)
    assert nested_plates(boxes, np.array([0.9, 0.6, 0.8])) == [0, 2]
    dets = Detections(
        np.vstack([boxes, [[0, 0, 400, 300]]]).astype(np.float32),
        np.array([0.9, 0.6, 0.8, 0.95], np.float32),
        np.array([1, 1, 1, 0]),
        ("vehicle", "plate"),
    )
    kept = drop_fragments(dets)
    assert kept.names == ["plate", "plate", "vehicle"]
    assert kept.boxes[1].tolist() == [200, 0, 300, 30]


def test_alpr_reads_full_resolution_crop(tmp_path: Path) -> None:
    det = Detector(
        make_detector(
            tmp_path / "detector.onnx",
            [
                (20, 30, 40, 38, 1, 0.9),
                (10, 20, 50, 46, 0, 0.8),
                (52, 40, 60, 44, 1, 0.7),
            ],
        )
    )
    calls: list[list[tuple[int, ...]]] = []
    reader = Reader(make_reader(tmp_path / "reader.onnx", "PW123"))
    orig = reader.read
    reader.read = lambda crops: (calls.append([c.shape for c in crops]), orig(crops))[1]
    alpr = Alpr(det, reader)
    result = alpr.process(np.zeros((128, 256, 3), np.uint8))
    results = result.plates
    assert [r.text for r in results] == ["PW123", "PW123"]
    # One batch for both plates; the first crop is the 80x32 plate grown by 8% per side
    # (floor/ceil to pixels: x 73..167, y 53..91).
    assert len(calls) == 1 and calls[0][0] == (38, 94, 3)
    assert box_iou(np.array([results[0].box]), np.array([[80, 56, 160, 88]]))[0, 0] > 0.99
    assert results[0].vehicle_box == pytest.approx((40, 16, 200, 120))
    assert results[1].vehicle_box is None  # second plate lies outside the vehicle
    # the result is returned whole: every detection (the vehicle too), rows the plates point to
    assert result.detections.names == ["plate", "vehicle", "plate"]
    assert [p.det_index for p in results] == [0, 2] and results[0].vehicle_index == 1
    # the crop the reader saw is a view into the frame, not a copy
    assert results[0].crop is not None and results[0].crop.base is not None
    assert result.timings.total_ms >= result.timings.detect_ms > 0


def test_pt_backend_matches_onnx_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The .pt backend returns the same raw head as the ONNX export of the same Ultralytics
    model, so one decoder serves both (random weights; tiny input keeps it fast)."""
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "False")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo_cfg"))
    torch = pytest.importorskip("torch")
    tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics not installed")
    torch.manual_seed(0)
    model = tasks.DetectionModel("yolov5n.yaml", nc=2, verbose=False).eval()
    torch.save({"model": model}, tmp_path / "det.pt")
    x = torch.rand(1, 3, 64, 96)
    for m in model.modules():  # what Ultralytics' exporter sets before tracing
        if hasattr(m, "export"):
            m.export = True
        if hasattr(m, "format"):
            m.format = "onnx"
    torch.onnx.export(
        model,
        x,
        str(tmp_path / "det.onnx"),
        input_names=["images"],
        output_names=["output0"],
        opset_version=17,
        dynamo=False,
    )
    pt = load_backend(tmp_path / "det.pt", device="cpu").run({"images": x.numpy()})
    onnx_out = load_backend(tmp_path / "det.onnx", device="cpu").run({"images": x.numpy()})
    a, b = pt["output0"], onnx_out["output0"]
    assert a.shape == b.shape == (1, 6, 126)
    np.testing.assert_allclose(a, b, atol=1e-3)


# --- TensorRT backend against fake tensorrt + cuda runtime modules --------------------------
# No GPU here: these fakes implement just the TensorRT 10 / cuda-python calls the backend
# makes, with "device" memory in host RAM, so buffer sizing, profile handling, copies in and
# out and the named-tensor bookkeeping are exercised for real.


class _FakeCudart:
    class cudaMemcpyKind:  # noqa: N801 - mirrors cuda-python's names
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.blocks: dict[int, object] = {}
        self.copies: list[tuple[int, int]] = []
        self.freed: list[int] = []

    def _alloc(self, n: int) -> tuple[int, int]:
        buf = self.ctypes.create_string_buffer(n)
        self.blocks[self.ctypes.addressof(buf)] = buf
        return 0, self.ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc  # noqa: N815

    def cudaSetDevice(self, i: int) -> tuple[int]:  # noqa: N802
        return (0,)

    def cudaStreamCreate(self) -> tuple[int, int]:  # noqa: N802
        return 0, 7

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: int, stream: int) -> tuple[int]:  # noqa: N802
        self.ctypes.memmove(dst, src, n)
        self.copies.append((kind, n))
        return (0,)

    def cudaStreamSynchronize(self, s: int) -> tuple[int]:  # noqa: N802
        return (0,)

    def cudaFree(self, p: int) -> tuple[int]:  # noqa: N802
        self.freed.append(p)
        return (0,)

    cudaFreeHost = cudaFree  # noqa: N815

    def cudaStreamDestroy(self, s: int) -> tuple[int]:  # noqa: N802
        return (0,)


def _fake_trt(cudart: _FakeCudart) -> object:
    import types

    weights = np.arange(48 * 6, dtype=np.float32).reshape(48, 6) / 100

    class Context:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addr: dict[str, int] = {}

        def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            b = self.shapes["images"][0]
            return self.shapes["images"] if name == "images" else (b, 2, 3)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addr[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            b = self.shapes["images"][0]
            raw = (cudart.ctypes.c_float * (b * 48)).from_address(self.addr["images"])
            x = np.frombuffer(raw, np.float32).reshape(b, 48)
            out = (cudart.ctypes.c_float * (b * 6)).from_address(self.addr["probs"])
            np.frombuffer(out, np.float32)[:] = (x @ weights).ravel()
            return True

    class Engine:
        num_io_tensors = 2
        names = ["images", "probs"]

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_mode(self, name: str) -> str:
            return "in" if name == "images" else "out"

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return (-1, 3, 4, 4) if name == "images" else (-1, 2, 3)

        def get_tensor_dtype(self, name: str) -> str:
            return "float"

        def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
            return [(1, 3, 4, 4), (2, 3, 4, 4), (4, 3, 4, 4)]

        def create_execution_context(self) -> Context:
            return Context()

    class Runtime:
        def __init__(self, logger: object) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            return Engine() if data == b"fake engine" else None

    trt = types.SimpleNamespace(
        __version__="10.fake",
        Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
        Runtime=Runtime,
        TensorIOMode=types.SimpleNamespace(INPUT="in", OUTPUT="out"),
        nptype=lambda dt: np.float32,
        weights=weights,
    )
    return trt


def test_tensorrt_backend_with_fake_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge.detect.backends.tensorrt as trt_mod

    cudart = _FakeCudart()
    trt = _fake_trt(cudart)
    monkeypatch.setattr(trt_mod, "_import_trt", lambda path: trt)
    monkeypatch.setattr(trt_mod, "_import_cudart", lambda path: cudart)
    engine = tmp_path / "reader.engine"
    engine.write_bytes(b"fake engine")
    b = load_backend(engine)
    assert b.input_names == ["images"] and b.output_names == ["probs"]
    assert b.input_shapes == {"images": (None, 3, 4, 4)}
    allocated = len(cudart.blocks)
    assert allocated == 4  # device + pinned host, per tensor, once
    for batch in (3, 1, 4):
        x = np.random.default_rng(batch).random((batch, 3, 4, 4), dtype=np.float32)
        out = b.run({"images": x})["probs"]
        np.testing.assert_allclose(
            out, (x.reshape(batch, 48) @ trt.weights).reshape(batch, 2, 3), rtol=1e-5
        )
    assert len(cudart.blocks) == allocated  # nothing allocated per frame
    # Only the bytes of the current batch are copied, not the max-shape buffers.
    assert cudart.copies[-2:] == [(1, 4 * 48 * 4), (2, 4 * 6 * 4)]
    with pytest.raises(BackendError, match="outside the engine's profile"):
        b.run({"images": np.zeros((5, 3, 4, 4), np.float32)})
    b.close()
    assert len(cudart.freed) == 4
    with pytest.raises(BackendError, match="closed"):
        b.run({"images": np.zeros((1, 3, 4, 4), np.float32)})
    bad = tmp_path / "bad.plan"
    bad.write_bytes(b"other")
    with pytest.raises(BackendError, match="deserialise"):
        load_backend(bad)
    with pytest.raises(BackendError, match="CUDA device"):
        load_backend(engine, device="cpu")
