"""Engine planning, calibration data, the engine cache, and the build-engines command, on CPU.

TensorRT is not installable here: the plan/cache logic is pure and tested directly; the TensorRT
calls are checked against a FAKE ``tensorrt`` module that records them (this proves the call
sequence and the calibrator plumbing, not TensorRT's behaviour). The real build is the skipped
test at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from standin_models import make_detector, make_reader

from edge.detect.models import DetectorSpec, ReaderSpec, load_spec
from edge.detect.plate_input import ReaderInput, expand_box, prepare_batch
from edge.detect.vision import letterbox, to_nchw_float
from edge.trt.build import (
    CalibrationFeeder,
    CalibrationPlan,
    EngineBuildError,
    _build_with_tensorrt,
    calibration_cache_path,
    detector_calibration_batches,
    ensure_engine,
    format_command,
    list_images,
    make_plan,
    plate_crops_from_frames,
    read_onnx_inputs,
    reader_calibration_batches,
    trtexec_command,
)
from edge.trt.cache import (
    BatchProfile,
    DeviceInfo,
    StaticDeviceInfo,
    check_engine_file,
    engine_path,
    make_key_inputs,
    sidecar_of,
    stable_path,
)

ORIN = DeviceInfo("10.3.0", "Orin", "8.7")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    # Detector "sees" a plate at (20,30)-(40,38) and a vehicle, in 64x64 input pixels.
    make_detector(d / "detector.onnx", [(20, 30, 40, 38, 1, 0.9), (10, 20, 50, 46, 0, 0.8)])
    make_reader(d / "reader.onnx", "AB123")
    return d


# ------------------------------------------------------------------------------ profiles/plan


@pytest.mark.parametrize(
    ("text", "want"), [("1:8:16", (1, 8, 16)), ("8", (8, 8, 8)), (" 2:2:4 ", (2, 2, 4))]
)
def test_batch_profile_parse(text: str, want: tuple[int, int, int]) -> None:
    b = BatchProfile.parse(text)
    assert (b.min, b.opt, b.max) == want and str(b) == ":".join(map(str, want))
    assert b.fixed == (want[0] == want[2])


@pytest.mark.parametrize("text", ["0:1:2", "8:4:16", "1:8", "a", ""])
def test_batch_profile_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        BatchProfile.parse(text)


def test_read_onnx_inputs(models: Path) -> None:
    [det] = read_onnx_inputs(models / "detector.onnx")
    assert (det.name, det.shape, det.dtype) == ("images", (1, 3, 64, 64), "float32")
    [rd] = read_onnx_inputs(models / "reader.onnx")
    assert rd.shape == (None, 3, 32, 128)


def test_read_onnx_inputs_without_onnx_package(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # runtime installs have only onnxruntime
    [rd] = read_onnx_inputs(models / "reader.onnx")
    assert (rd.name, rd.shape, rd.dtype) == ("images", (None, 3, 32, 128), "float32")


def test_reader_plan_dynamic_profile(models: Path) -> None:
    plan = make_plan("reader", models / "reader.onnx", "fp16")
    assert plan.batch == BatchProfile(1, 8, 16)
    assert plan.profiles == {"images": ((1, 3, 32, 128), (8, 3, 32, 128), (16, 3, 32, 128))}
    assert plan.flags == ("FP16",) and plan.workspace_bytes == 1024 << 20
    assert plan.calibration is None and plan.metadata["kind"] == "reader"
    fixed = make_plan("reader", models / "reader.onnx", "fp32", BatchProfile.parse("4"), 256)
    assert fixed.profiles["images"][0] == fixed.profiles["images"][2] == (4, 3, 32, 128)
    assert fixed.flags == () and fixed.workspace_bytes == 256 << 20


def test_detector_plan_static_needs_no_profile(models: Path) -> None:
    plan = make_plan("detector", models / "detector.onnx", "fp16")
    assert plan.profiles == {} and plan.batch == BatchProfile(1, 1, 1)
    with pytest.raises(EngineBuildError, match=r"fixed batch of 1.*dynamic batch"):
        make_plan("detector", models / "detector.onnx", "fp16", BatchProfile(1, 2, 4))


def test_fixed_batch_reader_export_is_explained(tmp_path: Path) -> None:
    onnx_path = make_reader(tmp_path / "reader.onnx", batch=4)
    with pytest.raises(EngineBuildError, match=r"reader\.onnx.*fixed batch of 4.*re-export"):
        make_plan("reader", onnx_path, "fp16")
    assert make_plan("reader", onnx_path, "fp16", BatchProfile.parse("4")).profiles == {}


def test_plan_errors_name_the_file(models: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineBuildError, match="precision"):
        make_plan("reader", models / "reader.onnx", "int4")
    with pytest.raises(EngineBuildError, match=r"reader\.json.*not 'detector'"):
        make_plan("detector", models / "reader.onnx")
    meta = json.loads((models / "reader.json").read_text())
    meta["input"]["height"] = 48
    (models / "reader.json").write_text(json.dumps(meta))
    with pytest.raises(EngineBuildError, match=r"axis 2 is 32 but the metadata says 48"):
        make_plan("reader", models / "reader.onnx")
    with pytest.raises(EngineBuildError, match="--calib-dir"):
        make_plan("detector", models / "detector.onnx", "int8", calib_cache=tmp_path / "none.calib")
    (tmp_path / "bad.onnx").write_bytes(b"nope")
    (tmp_path / "bad.json").write_text((models / "detector.json").read_text())
    with pytest.raises(EngineBuildError, match=r"bad\.onnx: not a readable ONNX"):
        make_plan("detector", tmp_path / "bad.onnx")


def test_int8_plan_calibrates_at_opt_shape(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "r.calib"
    plan = make_plan(
        "reader", models / "reader.onnx", "int8", calib_cache=cache, calib_batches=lambda: iter(())
    )
    assert plan.flags == ("INT8", "FP16")
    assert plan.calibration is not None
    assert plan.calibration.batch_shape == (8, 3, 32, 128) and plan.calibration.cache_path == cache


def test_trtexec_commands(models: Path, tmp_path: Path) -> None:
    rd = make_plan("reader", models / "reader.onnx", "fp16")
    assert format_command(trtexec_command(rd, "e/reader.engine")) == (
        f"trtexec --onnx={models}/reader.onnx --saveEngine=e/reader.engine "
        "--memPoolSize=workspace:1024M --minShapes=images:1x3x32x128 "
        "--optShapes=images:8x3x32x128 --maxShapes=images:16x3x32x128 --fp16"
    )
    det = make_plan(
        "detector",
        models / "detector.onnx",
        "int8",
        calib_cache=tmp_path / "d.calib",
        calib_batches=lambda: iter(()),
    )
    cmd = trtexec_command(det, "d.engine")
    assert cmd[-3:] == ["--fp16", "--int8", f"--calib={tmp_path}/d.calib"]
    assert not any(c.startswith("--minShapes") for c in cmd)


# ------------------------------------------------------------------------------ calibration


def _frames(folder: Path, n: int, size: tuple[int, int] = (96, 160)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        p = folder / f"f{i:03d}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        out.append(p)
    return out


def test_list_images_spreads_evenly(tmp_path: Path) -> None:
    files = _frames(tmp_path / "c", 10, (8, 8))
    (tmp_path / "c" / "notes.txt").write_text("x")
    assert list_images(tmp_path / "c") == files
    assert list_images(tmp_path / "c", 3) == [files[0], files[4], files[9]] or list_images(
        tmp_path / "c", 3
    ) == [files[0], files[5], files[9]]
    with pytest.raises(FileNotFoundError, match="calibration folder"):
        list_images(tmp_path / "missing")


def test_detector_batches_use_the_runtime_preprocessing(tmp_path: Path) -> None:
    files = _frames(tmp_path / "c", 3)
    (tmp_path / "c" / "broken.png").write_bytes(b"not an image")
    batches = list(detector_calibration_batches(list_images(tmp_path / "c"), (64, 64), 2))
    assert [b.shape for b in batches] == [(2, 3, 64, 64), (1, 3, 64, 64)]
    img = cv2.imread(str(files[1]))
    np.testing.assert_array_equal(batches[0][1], to_nchw_float(letterbox(img, (64, 64))[0])[0])


def test_reader_batches_from_detected_crops(models: Path, tmp_path: Path) -> None:
    files = _frames(tmp_path / "c", 3, (128, 256))
    crops = list(plate_crops_from_frames(files, models / "detector.onnx"))
    # The stand-in detector finds one plate per frame: 64x64 input, 256x128 frame -> scale 0.25,
    # 32 px padding top: plate (20,30,40,38) -> (80,56,160,88) in the frame, grown by 8%.
    x1, y1, x2, y2 = expand_box((80.0, 56.0, 160.0, 88.0), 256, 128)
    assert len(crops) == 3 and all(c.shape == (y2 - y1, x2 - x1, 3) for c in crops)
    np.testing.assert_array_equal(crops[0], cv2.imread(str(files[0]))[y1:y2, x1:x2])
    spec = ReaderInput()
    batches = list(reader_calibration_batches(iter(crops), spec, 2))
    assert [b.shape for b in batches] == [(2, 3, 32, 128), (1, 3, 32, 128)]
    np.testing.assert_array_equal(batches[0], prepare_batch(crops[:2], spec))


def test_calibration_feeder(tmp_path: Path) -> None:
    shape = (2, 3, 4, 4)
    made = [np.ones(shape, np.float64), np.zeros(shape, np.float32), np.ones((1, 3, 4, 4))]
    plan = CalibrationPlan(tmp_path / "x.calib", "images", shape, lambda: iter(made))
    f = CalibrationFeeder(plan)
    assert f.batch_size == 2 and f.batch_nbytes == 2 * 3 * 4 * 4 * 4
    a, b = f.next_batch(), f.next_batch()
    assert a is not None and a.dtype == np.float32 and a.flags.c_contiguous and a.sum() == 96
    assert b is not None and b.sum() == 0
    assert f.next_batch() is None and f.served == 2  # the short tail is dropped
    assert f.read_cache() is None
    plan.cache_path.write_bytes(b"")
    assert f.read_cache() is None  # empty cache = no cache
    f.write_cache(b"TRT-1003-EntropyCalibration2\nimages: 3c010a14\n")
    assert f.read_cache().startswith(b"TRT-")  # type: ignore[union-attr]
    assert CalibrationFeeder(plan, recalibrate=True).read_cache() is None
    bad = CalibrationPlan(tmp_path / "y.calib", "images", shape, lambda: iter([np.ones((2, 1))]))
    with pytest.raises(EngineBuildError, match="calibration batch shape"):
        CalibrationFeeder(bad).next_batch()
    with pytest.raises(EngineBuildError, match="--calib-dir"):
        CalibrationFeeder(CalibrationPlan(tmp_path / "z", "images", shape)).next_batch()


# ------------------------------------------------------------------------------ engine cache


class CountingBuilder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, plan) -> bytes:  # type: ignore[no-untyped-def]
        self.calls.append(plan.model)
        if plan.calibration is not None and not plan.calibration.cache_path.exists():
            plan.calibration.cache_path.write_bytes(b"calibration v%d" % len(self.calls))
        return f"engine {plan.model} {plan.precision} #{len(self.calls)}".encode()


def test_cache_builds_once_then_reuses(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    plan = make_plan("reader", models / "reader.onnx", "fp16")
    build = CountingBuilder()
    first = ensure_engine(plan, cache, StaticDeviceInfo(ORIN), build)
    assert first.built and first.check.state == "missing" and build.calls == ["reader"]
    assert first.path.name.startswith("reader-fp16-") and first.path.suffix == ".engine"
    assert len(first.path.stem.split("-")[-1]) == 16
    side = json.loads(sidecar_of(first.path).read_text())
    eng = side["engine"]
    assert eng["trt_version"] == "10.3.0" and eng["gpu_name"] == "Orin"
    assert eng["compute_capability"] == "8.7" and eng["batch"] == "1:8:16"
    assert eng["precision"] == "fp16" and eng["format_version"] == 1
    assert eng["key"].startswith(first.path.stem.split("-")[-1])
    # The sidecar doubles as the model metadata: Reader(engine) finds its alphabet there.
    assert isinstance(load_spec(first.path), ReaderSpec)
    assert isinstance(load_spec(stable_path(cache, "reader", "fp16")), ReaderSpec)
    assert stable_path(cache, "reader", "fp16").resolve() == first.path.resolve()
    again = ensure_engine(plan, cache, StaticDeviceInfo(ORIN), build)
    assert not again.built and again.path == first.path and build.calls == ["reader"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("trt", "TensorRT version differs (10.3.0 -> 10.7.0)"),
        ("gpu", "built for another GPU (Orin -> NVIDIA H200)"),
        ("onnx", "the ONNX model changed"),
        ("batch", "batch profile differs (1:8:16 -> 1:4:8)"),
        ("sidecar", "unusable engine sidecar"),
        ("engine", "engine file does not match its recorded hash"),
        ("key", "recorded key does not match"),
    ],
)
def test_stale_or_foreign_engines_are_rebuilt(
    models: Path, tmp_path: Path, change: str, reason: str
) -> None:
    cache = tmp_path / "engines"
    build = CountingBuilder()
    plan = make_plan("reader", models / "reader.onnx", "fp16")
    first = ensure_engine(plan, cache, StaticDeviceInfo(ORIN), build)
    device = ORIN
    if change == "trt":
        device = DeviceInfo("10.7.0", "Orin", "8.7")
    elif change == "gpu":
        device = DeviceInfo("10.3.0", "NVIDIA H200", "9.0")
    elif change == "onnx":
        make_reader(models / "reader.onnx", "ZZ999")
        plan = make_plan("reader", models / "reader.onnx", "fp16")
    elif change == "batch":
        plan = make_plan("reader", models / "reader.onnx", "fp16", BatchProfile(1, 4, 8))
    elif change == "sidecar":
        sidecar_of(first.path).write_text("{ truncated")
    elif change == "engine":
        first.path.write_bytes(b"bit rot")
    elif change == "key":
        side = json.loads(sidecar_of(first.path).read_text())
        side["engine"]["gpu_name"] = "edited by hand"
        sidecar_of(first.path).write_text(json.dumps(side))
    res = ensure_engine(plan, cache, StaticDeviceInfo(device), build)
    assert res.built, res.check
    assert any(reason in r for r in res.check.reasons), res.check.reasons
    assert build.calls == ["reader", "reader"]
    # The rebuilt engine is what the stable name points at now, and it is fresh.
    assert stable_path(cache, "reader", "fp16").resolve() == res.path.resolve()
    assert ensure_engine(plan, cache, StaticDeviceInfo(device), build).built is False


def test_precisions_are_separate_and_force_rebuilds(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    build = CountingBuilder()
    fp16 = ensure_engine(
        make_plan("detector", models / "detector.onnx", "fp16"),
        cache,
        StaticDeviceInfo(ORIN),
        build,
    )
    fp32 = ensure_engine(
        make_plan("detector", models / "detector.onnx", "fp32"),
        cache,
        StaticDeviceInfo(ORIN),
        build,
    )
    assert fp16.path != fp32.path and len(build.calls) == 2
    forced = ensure_engine(
        make_plan("detector", models / "detector.onnx", "fp16"),
        cache,
        StaticDeviceInfo(ORIN),
        build,
        force=True,
    )
    assert forced.built and len(build.calls) == 3
    checked = ensure_engine(
        make_plan("detector", models / "detector.onnx", "fp16"),
        cache,
        StaticDeviceInfo(DeviceInfo("10.7.0", "Orin", "8.7")),
        build,
        check_only=True,
    )
    assert not checked.built and checked.check.state == "stale" and len(build.calls) == 3


def test_int8_key_follows_the_calibration_cache(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    calib = calibration_cache_path(cache, "detector", models / "detector.onnx")
    assert calib.name.startswith("detector-") and calib.suffix == ".calib"
    build = CountingBuilder()

    def plan():  # type: ignore[no-untyped-def]
        return make_plan(
            "detector",
            models / "detector.onnx",
            "int8",
            calib_cache=calib,
            calib_batches=lambda: iter(()),
        )

    first = ensure_engine(plan(), cache, StaticDeviceInfo(ORIN), build)
    assert first.built and calib.is_file()
    assert first.key_inputs.calibration_sha256 is not None  # keyed by the cache it produced
    assert not ensure_engine(plan(), cache, StaticDeviceInfo(ORIN), build).built
    calib.write_bytes(b"recalibrated elsewhere")
    res = ensure_engine(plan(), cache, StaticDeviceInfo(ORIN), build)
    assert res.built and any("calibration cache differs" in r for r in res.check.reasons)


def test_check_engine_file_for_configs(models: Path, tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    res = ensure_engine(
        make_plan("reader", models / "reader.onnx"),
        cache,
        StaticDeviceInfo(ORIN),
        CountingBuilder(),
    )
    assert check_engine_file(res.stable, ORIN).fresh
    v = check_engine_file(res.stable, DeviceInfo("10.3.0", "Jetson Xavier NX", "7.2"))
    assert (
        v.state == "stale" and "built for Orin (sm 8.7), this is Jetson Xavier NX" in v.reasons[0]
    )
    trtexec_built = tmp_path / "mine.engine"
    trtexec_built.write_bytes(b"x")
    assert "trtexec" in check_engine_file(trtexec_built, ORIN).reasons[0]
    assert check_engine_file(tmp_path / "nope.engine", ORIN).state == "missing"


def test_key_depends_on_every_input(models: Path) -> None:
    base = make_key_inputs("reader", models / "reader.onnx", "fp16", BatchProfile(1, 8, 16), ORIN)
    variants = [
        make_key_inputs("reader", models / "reader.onnx", "fp32", BatchProfile(1, 8, 16), ORIN),
        make_key_inputs("reader", models / "reader.onnx", "fp16", BatchProfile(1, 8, 8), ORIN),
        make_key_inputs(
            "reader",
            models / "reader.onnx",
            "fp16",
            BatchProfile(1, 8, 16),
            DeviceInfo("10.3.0", "Orin", "8.6"),
        ),
        make_key_inputs("reader", models / "detector.onnx", "fp16", BatchProfile(1, 8, 16), ORIN),
    ]
    keys = {base.key()} | {v.key() for v in variants}
    assert len(keys) == 5
    assert engine_path("/c", base).name == f"reader-fp16-{base.key()[:16]}.engine"


# ------------------------------------------------------------------------------ fake tensorrt


def _fake_trt_module(parse_ok: bool = True, build_ok: bool = True) -> types.ModuleType:
    """Records the TensorRT 10 builder calls; 'build' drives the calibrator like TensorRT."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"
    trt.log: list[tuple] = []  # type: ignore[attr-defined]
    L = trt.log  # noqa: N806

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            L.append(("calibrator_init",))

    class Tensor:
        name = "images"

    class Network:
        num_inputs = 1

        def get_input(self, i: int) -> Tensor:
            return Tensor()

    class Parser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network: Network, logger: Logger) -> None:
            pass

        def parse_from_file(self, path: str) -> bool:
            L.append(("parse", Path(path).name))
            return parse_ok

        def get_error(self, i: int) -> str:
            return "In node 3 (Reshape): unsupported"

    class Profile:
        def set_shape(self, name: str, lo: tuple, opt: tuple, hi: tuple) -> None:
            L.append(("set_shape", name, lo, opt, hi))

    class Config:
        int8_calibrator = None

        def set_memory_pool_limit(self, pool: str, n: int) -> None:
            L.append(("pool", pool, n))

        def set_flag(self, flag: str) -> None:
            L.append(("flag", flag))

        def add_optimization_profile(self, p: Profile) -> None:
            L.append(("add_profile",))

        def set_calibration_profile(self, p: Profile) -> None:
            L.append(("calibration_profile",))

    class Builder:
        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            L.append(("create_network", flags))
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            cal = config.int8_calibrator
            if cal is not None and cal.read_calibration_cache() is None:
                n = cal.get_batch_size()
                while (ptrs := cal.get_batch(["images"])) is not None:
                    L.append(("batch", n, ptrs))
                cal.write_calibration_cache(b"TRT-calibration-table")
            return b"serialized engine" if build_ok else None

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> object:
            L.append(("deserialize", data))
            return object()

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, Parser, Runtime
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8")
    return trt


class _Cudart:
    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice = 1

    def __init__(self) -> None:
        self.bufs: dict[int, object] = {}
        self.copied: list[np.ndarray] = []
        self.freed: list[int] = []

    def cudaMalloc(self, n: int):  # noqa: N802
        import ctypes

        b = ctypes.create_string_buffer(n)
        self.bufs[ctypes.addressof(b)] = b
        return 0, ctypes.addressof(b)

    def cudaMemcpy(self, dst: int, src: int, n: int, kind: int):  # noqa: N802
        import ctypes

        ctypes.memmove(dst, src, n)
        raw = (ctypes.c_float * (n // 4)).from_address(dst)
        self.copied.append(np.frombuffer(raw, np.float32).copy())
        return (0,)

    def cudaFree(self, p: int):  # noqa: N802
        self.freed.append(p)
        return (0,)


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> tuple[types.ModuleType, _Cudart]:
    import edge.detect.backends.tensorrt as trt_backend

    trt, cudart = _fake_trt_module(), _Cudart()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_backend, "_import_cudart", lambda path: cudart)
    return trt, cudart


def test_build_call_sequence_fp16_reader(models: Path, fake_trt) -> None:  # type: ignore[no-untyped-def]
    trt, _ = fake_trt
    data = _build_with_tensorrt(make_plan("reader", models / "reader.onnx", "fp16"))
    assert data == b"serialized engine"
    assert trt.log == [
        ("create_network", 0),  # TensorRT 10: explicit batch is implied
        ("parse", "reader.onnx"),
        ("pool", "WORKSPACE", 1024 << 20),
        ("flag", "FP16"),
        ("set_shape", "images", (1, 3, 32, 128), (8, 3, 32, 128), (16, 3, 32, 128)),
        ("add_profile",),
        ("deserialize", b"serialized engine"),
    ]


def test_build_int8_feeds_calibrator_and_writes_cache(
    models: Path, tmp_path: Path, fake_trt
) -> None:  # type: ignore[no-untyped-def]
    trt, cudart = fake_trt
    cache = tmp_path / "reader.calib"
    batches = [np.full((8, 3, 32, 128), i, np.float32) for i in range(3)]
    plan = make_plan(
        "reader",
        models / "reader.onnx",
        "int8",
        calib_cache=cache,
        calib_batches=lambda: iter(batches),
    )
    _build_with_tensorrt(plan)
    assert ("flag", "INT8") in trt.log and ("flag", "FP16") in trt.log
    assert ("calibration_profile",) in trt.log
    fed = [e for e in trt.log if e[0] == "batch"]
    assert len(fed) == 3 and all(e[1] == 8 for e in fed)
    assert [float(c.mean()) for c in cudart.copied] == [0.0, 1.0, 2.0]
    assert cache.read_bytes() == b"TRT-calibration-table"
    assert len(cudart.freed) == 1
    # Second build: the cache exists, so no batch is requested (no images needed any more).
    trt.log.clear()
    _build_with_tensorrt(make_plan("reader", models / "reader.onnx", "int8", calib_cache=cache))
    assert not [e for e in trt.log if e[0] == "batch"]


def test_build_errors(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_trt
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt_module(parse_ok=False))
    with pytest.raises(EngineBuildError, match=r"ONNX parser failed: In node 3"):
        _build_with_tensorrt(make_plan("reader", models / "reader.onnx"))
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt_module(build_ok=False))
    with pytest.raises(EngineBuildError, match="could not build the fp16 engine"):
        _build_with_tensorrt(make_plan("reader", models / "reader.onnx"))

    def broken() -> object:
        def gen():  # type: ignore[no-untyped-def]
            yield np.zeros((8, 3, 32, 128), np.float32)
            raise OSError("disk vanished")

        return gen()

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt_module())
    plan = make_plan(
        "reader", models / "reader.onnx", "int8", calib_cache=tmp_path / "c", calib_batches=broken
    )
    with pytest.raises(EngineBuildError, match="INT8 calibration failed: disk vanished"):
        _build_with_tensorrt(plan)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError, match="TensorRT"):
        _build_with_tensorrt(make_plan("reader", models / "reader.onnx"))


# ------------------------------------------------------------------------------ CLI


def _args(models: Path, tmp_path: Path, *extra: str) -> argparse.Namespace:
    # Own parser (not edge.cli's) so these tests do not depend on other commands importing.
    from edge.cli.build_engines import add_parser

    parser = argparse.ArgumentParser(prog="platewatch")
    add_parser(parser.add_subparsers(dest="command"))
    argv = ["build-engines", "--models", str(models), "--cache-dir", str(tmp_path / "eng"), *extra]
    return parser.parse_args(argv)


def test_cli_prints_trtexec_without_tensorrt(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli.build_engines import run

    assert run(_args(models, tmp_path, "--print-trtexec")) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("trtexec --onnx=") and "--fp16" in out[0]
    assert "--optShapes=images:8x3x32x128" in out[1]


def test_cli_without_tensorrt_explains(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli.build_engines import run

    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is importable here")
    rc = run(_args(models, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and "TensorRT is not importable" in err and "--print-trtexec" in err


def test_cli_builds_then_reports_cached(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli.build_engines import run

    build = CountingBuilder()
    dev = StaticDeviceInfo(ORIN)
    assert run(_args(models, tmp_path), device=dev, builder=build) == 0
    out = capsys.readouterr().out
    assert "Orin (compute 8.7), TensorRT 10.3.0" in out and out.count(": built ") == 2
    assert build.calls == ["detector", "reader"]
    assert run(_args(models, tmp_path), device=dev, builder=build) == 0
    assert capsys.readouterr().out.count(": cached ") == 2 and len(build.calls) == 2
    assert run(_args(models, tmp_path, "--check"), device=dev, builder=build) == 0
    newer = StaticDeviceInfo(DeviceInfo("10.7.0", "Orin", "8.7"))
    assert run(_args(models, tmp_path, "--check"), device=newer, builder=build) == 1
    assert "REBUILD" in capsys.readouterr().out and len(build.calls) == 2
    # The stable engines open like the ONNX models (metadata sidecar beside them).
    assert isinstance(load_spec(tmp_path / "eng" / "detector-fp16.engine"), DetectorSpec)


def test_cli_int8_calibrates_from_frames(models: Path, tmp_path: Path) -> None:
    """int8 with --calib-dir: the builder gets calibration batches made from the frames (the
    reader's from plate crops the ONNX detector finds in them)."""
    from edge.cli.build_engines import run

    _frames(tmp_path / "frames", 10, (128, 256))
    seen: dict[str, list[tuple[int, ...]]] = {}

    def builder(plan) -> bytes:  # type: ignore[no-untyped-def]
        f = CalibrationFeeder(plan.calibration)
        shapes = []
        while (b := f.next_batch()) is not None:
            shapes.append(b.shape)
        seen[plan.model] = shapes
        f.write_cache(b"cache")
        return b"engine"

    args = _args(
        models,
        tmp_path,
        "--precision",
        "int8",
        "--calib-dir",
        str(tmp_path / "frames"),
        "--reader-batch",
        "1:4:8",
    )
    assert run(args, device=StaticDeviceInfo(ORIN), builder=builder) == 0
    assert seen["detector"] == [(1, 3, 64, 64)] * 10
    assert seen["reader"] == [(4, 3, 32, 128)] * 2  # 10 crops -> 2 full batches of opt=4
    calib = sorted(p.name for p in (tmp_path / "eng").glob("*.calib"))
    assert len(calib) == 2 and calib[0].startswith("detector-")
    # Without frames and without a cache: a clear error, not a silently uncalibrated engine.
    for p in (tmp_path / "eng").glob("*.calib"):
        os.remove(p)
    assert (
        run(
            _args(models, tmp_path, "--precision", "int8"),
            device=StaticDeviceInfo(ORIN),
            builder=builder,
        )
        == 2
    )


def test_real_tensorrt_build_and_cache(models: Path, tmp_path: Path) -> None:
    pytest.importorskip(
        "tensorrt", reason="needs TensorRT 10 (JetPack 6 or an x86 TensorRT install)"
    )
    from edge.trt.cache import CudaDeviceInfo

    plan = make_plan("reader", models / "reader.onnx", "fp16")
    res = ensure_engine(plan, tmp_path / "eng", CudaDeviceInfo())
    assert res.built and res.path.stat().st_size > 0
    assert not ensure_engine(plan, tmp_path / "eng", CudaDeviceInfo()).built


def test_cuda_device_info_from_fake_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.detect.backends.tensorrt as trt_backend
    from edge.trt.cache import CudaDeviceInfo, DeviceInfoError

    prop = types.SimpleNamespace(name=b"Orin\0\0\0", major=8, minor=7, multiProcessorCount=8)
    cudart = types.SimpleNamespace(cudaGetDeviceProperties=lambda i: (0, prop))
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0"))
    monkeypatch.setattr(trt_backend, "_import_cudart", lambda path: cudart)
    assert CudaDeviceInfo().device_info() == DeviceInfo("10.3.0", "Orin (8 SMs)", "8.7")
    cudart.cudaGetDeviceProperties = lambda i: (100, None)
    with pytest.raises(DeviceInfoError, match="no CUDA device"):
        CudaDeviceInfo().device_info()
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(DeviceInfoError, match="TensorRT is not importable"):
        CudaDeviceInfo().device_info()
