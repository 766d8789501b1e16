"""Build TensorRT engines from the shipped ONNX models, on the device that will run them.

Split so almost everything is testable without TensorRT:

* `make_plan` (pure): input shapes read from the ONNX file, the optimisation profile (reader:
  batch min 1 / opt 8 / max 16 by default, or a fixed batch), builder flags per precision, the
  workspace limit, and for INT8 a `CalibrationPlan` whose batches are made by the SAME
  preprocessing the runtime uses (edge.detect.vision.letterbox/to_nchw_float for the detector,
  edge.detect.plate_input.prepare_batch for the reader).
* `CalibrationFeeder` (pure): hands out calibration batches and reads/writes the calibration
  cache file.
* `ensure_engine`: the engine cache (edge.trt.cache): reuse a fresh engine, rebuild a stale,
  foreign or corrupt one, never load one blindly.
* `_build_with_tensorrt(plan)`: the only code that touches the ``tensorrt`` module
  (TensorRT 10 Python API, as on JetPack 6).

INT8: TensorRT 10 deprecates implicit quantization (``IInt8EntropyCalibrator2`` +
``BuilderFlag.INT8``) in favour of explicit Q/DQ nodes in the ONNX graph, but it still works in
every 10.x release so far; it is what JetPack 6 users and ``trtexec --int8 --calib`` use, so it
is what we use. The FP16 flag is set together with INT8 so that layers without an INT8 kernel
fall back to FP16 rather than FP32.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.trt.cache import (
    BatchProfile,
    CacheCheck,
    DeviceInfoProvider,
    EngineKeyInputs,
    check_cache,
    link_stable,
    make_key_inputs,
    sha256_file,
    stable_path,
    store_engine,
)

log = logging.getLogger(__name__)

DEFAULT_READER_BATCH = BatchProfile(1, 8, 16)
DETECTOR_BATCH = BatchProfile(1, 1, 1)
DEFAULT_WORKSPACE_MB = 1024  # plenty for nano/small models; Orin Nano has 8 GB shared memory
DEFAULT_CALIB_IMAGES = 300
PRECISION_FLAGS: dict[str, tuple[str, ...]] = {
    "fp32": (),
    "fp16": ("FP16",),
    "int8": ("INT8", "FP16"),
}


class EngineBuildError(RuntimeError):
    """The engine could not be planned or built (message names the file and the reason)."""


# ----------------------------------------------------------------------------- model inputs


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | None, ...]  # None: dynamic (symbolic) dimension
    dtype: str = "float32"


def read_onnx_inputs(path: str | Path) -> list[TensorSpec]:
    """Graph inputs of an ONNX model (initialisers excluded): via ``onnx`` when installed (no
    session needed), else via onnxruntime's input metadata (a runtime dependency anyway)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    try:
        import onnx
    except ImportError:
        onnx = None  # type: ignore[assignment]
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError & co.
            raise EngineBuildError(f"{path}: not a readable ONNX model: {exc}") from exc
        inits = {i.name for i in model.graph.initializer}
        out = []
        for inp in model.graph.input:
            if inp.name in inits:
                continue
            tt = inp.type.tensor_type
            dims = tuple(
                d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tt.shape.dim
            )
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            out.append(TensorSpec(inp.name, dims, dtype))
        return out
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EngineBuildError(f"{path}: not a readable ONNX model: {exc}") from exc
    types = {"tensor(float)": "float32", "tensor(float16)": "float16"}
    return [
        TensorSpec(
            i.name,
            tuple(d if isinstance(d, int) and d > 0 else None for d in i.shape),
            types.get(i.type, i.type),
        )
        for i in sess.get_inputs()
    ]


def _load_metadata(onnx_path: Path) -> dict[str, Any]:
    """The model's sidecar JSON (validated by edge.detect.models) as a plain dict, for the engine's
    own sidecar so edge.detect.models.Detector/Reader can open the engine like the ONNX."""
    from edge.detect.models import load_spec

    load_spec(onnx_path)  # raises ModelSpecError naming the file and field
    return json.loads(onnx_path.with_suffix(".json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ calibration


@dataclass
class CalibrationPlan:
    """INT8 calibration: where the cache lives and how to make batches if it does not exist."""

    cache_path: Path
    input_name: str
    batch_shape: tuple[int, ...]  # (opt batch, C, H, W): TensorRT calibrates at the opt shape
    batches: Callable[[], Iterator[np.ndarray]] | None = None  # None: cache must exist

    @property
    def batch_size(self) -> int:
        return self.batch_shape[0]


class CalibrationFeeder:
    """What the TensorRT calibrator delegates to: batches of exactly ``batch_shape`` (float32,
    C-contiguous; a short last batch is dropped, TensorRT needs full ones) and the cache file.

    An existing, non-empty cache file is returned by `read_cache`, and TensorRT then skips
    calibration entirely; ``recalibrate=True`` ignores it.
    """

    def __init__(self, plan: CalibrationPlan, recalibrate: bool = False) -> None:
        self.plan = plan
        self.recalibrate = recalibrate
        self.served = 0
        self._it: Iterator[np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        return self.plan.batch_size

    @property
    def batch_nbytes(self) -> int:
        return int(np.prod(self.plan.batch_shape)) * 4

    def next_batch(self) -> np.ndarray | None:
        if self.plan.batches is None:
            raise EngineBuildError(
                f"INT8 calibration cache {self.plan.cache_path} is missing and no calibration "
                "images were given (--calib-dir)"
            )
        if self._it is None:
            self._it = self.plan.batches()
        for batch in self._it:
            if batch.shape != self.plan.batch_shape:
                if batch.shape[1:] == self.plan.batch_shape[1:]:
                    continue  # short tail
                raise EngineBuildError(
                    f"calibration batch shape {batch.shape} != expected {self.plan.batch_shape}"
                )
            self.served += 1
            return np.ascontiguousarray(batch, dtype=np.float32)
        return None

    def read_cache(self) -> bytes | None:
        p = self.plan.cache_path
        if self.recalibrate or not p.is_file() or p.stat().st_size == 0:
            return None
        log.info("using INT8 calibration cache %s", p)
        return p.read_bytes()

    def write_cache(self, data: bytes) -> None:
        self.plan.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.plan.cache_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(data))
        tmp.replace(self.plan.cache_path)
        log.info("wrote INT8 calibration cache %s (%d bytes)", self.plan.cache_path, len(data))


def list_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Images in ``folder`` (recursively), sorted; ``limit`` takes an even spread, not the
    first N, so a folder of consecutive frames still covers the whole day."""
    from edge.capture.sources import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if limit is not None and len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in sorted(set(idx.tolist()))]
    return files


def _read_images(files: Sequence[Path]) -> Iterator[np.ndarray]:
    import cv2

    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None or img.size == 0:
            log.warning("calibration: skipping unreadable image %s", f)
            continue
        yield img


def _batched(arrays: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    buf: list[np.ndarray] = []
    for a in arrays:
        buf.append(a)
        if len(buf) == size:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)  # short tail; the feeder drops it


def detector_calibration_batches(
    frames: Sequence[Path], input_size: tuple[int, int], batch: int
) -> Iterator[np.ndarray]:
    """(batch, 3, H, W) float32 in [0, 1]: exactly what edge.detect.models.Detector feeds the
    model."""
    from edge.detect.vision import letterbox, to_nchw_float

    def one() -> Iterator[np.ndarray]:
        for img in _read_images(frames):
            lb, _ = letterbox(img, input_size)
            yield to_nchw_float(lb)[0]

    return _batched(one(), batch)


def plate_crops_from_frames(
    frames: Sequence[Path], detector_onnx: str | Path, margin: float = 0.08
) -> Iterator[np.ndarray]:
    """Plate crops cut from full-resolution frames where the shipped ONNX detector (ONNX
    Runtime, CPU, 1 thread) finds plates, grown like edge.detect.alpr does."""
    from edge.detect.alpr import PLATE
    from edge.detect.models import Detector
    from edge.detect.plate_input import expand_box

    det = Detector(detector_onnx, threads=1, device="cpu")
    try:
        for img in _read_images(frames):
            h, w = img.shape[:2]
            for box in det.detect(img).of_class(PLATE).boxes:
                x1, y1, x2, y2 = expand_box(tuple(map(float, box)), w, h, margin)  # type: ignore[arg-type]
                if x2 > x1 and y2 > y1:
                    yield img[y1:y2, x1:x2]
    finally:
        det.close()


def reader_calibration_batches(
    crops: Iterator[np.ndarray], spec: Any, batch: int
) -> Iterator[np.ndarray]:
    """(batch, 3, H, W) float32 in [-1, 1]: exactly what edge.detect.models.Reader feeds the
    model."""
    from edge.detect.plate_input import prepare_batch

    buf: list[np.ndarray] = []
    for crop in crops:
        buf.append(crop)
        if len(buf) == batch:
            yield prepare_batch(buf, spec)
            buf = []
    if buf:
        yield prepare_batch(buf, spec)


# ------------------------------------------------------------------------------------- plan


@dataclass
class BuildPlan:
    """Everything `_build_with_tensorrt` needs; built and checked without TensorRT."""

    model: str  # "detector" | "reader"
    onnx_path: Path
    precision: str
    batch: BatchProfile
    inputs: list[TensorSpec]
    # per dynamic input: (min, opt, max) full shapes for the optimisation profile
    profiles: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
    workspace_bytes: int
    flags: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    calibration: CalibrationPlan | None = None
    recalibrate: bool = False

    @property
    def onnx_sha256(self) -> str:
        return sha256_file(self.onnx_path)


def _resolve_shape(
    spec: TensorSpec, batch: BatchProfile, hint: tuple[int, int, int], src: Path
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
    """(min, opt, max) shapes for one NCHW input; None when the input is fully static and the
    requested batch is its batch. Non-batch dynamic dims are filled from the metadata hint."""
    if len(spec.shape) != 4:
        raise EngineBuildError(f"{src}: input {spec.name!r} has shape {spec.shape}; expected NCHW")
    rest = []
    for axis, (dim, want) in enumerate(zip(spec.shape[1:], hint, strict=True), start=1):
        if dim is not None and dim != want:
            raise EngineBuildError(
                f"{src}: input {spec.name!r} axis {axis} is {dim} but the metadata says {want}"
            )
        rest.append(want)
    b = spec.shape[0]
    if b is not None:
        if (batch.min, batch.max) != (b, b):
            raise EngineBuildError(
                f"{src}: input {spec.name!r} has a fixed batch of {b}, so an engine with batch "
                f"{batch} cannot be built from it; re-export the ONNX with a dynamic batch axis "
                f"or use batch {b}"
            )
        if all(d is not None for d in spec.shape):
            return None
    lo = (batch.min, *rest)
    opt = (batch.opt, *rest)
    hi = (batch.max, *rest)
    return lo, opt, hi


def make_plan(
    model: str,
    onnx_path: str | Path,
    precision: str = "fp16",
    batch: BatchProfile | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    calib_cache: str | Path | None = None,
    calib_batches: Callable[[], Iterator[np.ndarray]] | None = None,
    recalibrate: bool = False,
) -> BuildPlan:
    """Plan the build of ``onnx_path`` (its sidecar JSON must be beside it).

    ``batch`` defaults to 1 for the detector and 1:8:16 for the reader. For int8,
    ``calib_cache`` is where the calibration cache is read from / written to and
    ``calib_batches`` (a zero-argument factory) makes the batches when there is no cache.
    """
    onnx_path = Path(onnx_path)
    if precision not in PRECISION_FLAGS:
        raise EngineBuildError(
            f"precision must be one of {list(PRECISION_FLAGS)}, got {precision!r}"
        )
    if workspace_mb < 16:
        raise EngineBuildError(f"workspace must be >= 16 MB, got {workspace_mb}")
    metadata = _load_metadata(onnx_path)
    if metadata.get("kind") != model:
        raise EngineBuildError(
            f"{onnx_path.with_suffix('.json')}: kind is {metadata.get('kind')!r}, not {model!r}"
        )
    if model == "detector":
        h, w = metadata["input_size"]
        default_batch = DETECTOR_BATCH
    else:
        h, w = metadata["input"]["height"], metadata["input"]["width"]
        default_batch = DEFAULT_READER_BATCH
    batch = batch or default_batch
    inputs = read_onnx_inputs(onnx_path)
    if not inputs:
        raise EngineBuildError(f"{onnx_path}: the model has no inputs")
    profiles = {}
    for spec in inputs:
        shapes = _resolve_shape(spec, batch, (3, int(h), int(w)), onnx_path)
        if shapes is not None:
            profiles[spec.name] = shapes
    calibration = None
    if precision == "int8":
        if len(inputs) != 1:
            raise EngineBuildError(f"{onnx_path}: INT8 calibration supports one input")
        if calib_cache is None:
            raise EngineBuildError("int8 needs a calibration cache path")
        opt_shape = (
            profiles[inputs[0].name][1]
            if profiles
            else tuple(int(d) if d is not None else 1 for d in inputs[0].shape)
        )
        calibration = CalibrationPlan(Path(calib_cache), inputs[0].name, opt_shape, calib_batches)
        if calib_batches is None and not Path(calib_cache).is_file():
            raise EngineBuildError(
                f"INT8 for {model}: no calibration cache at {calib_cache}; give a folder of real "
                "frames from your cameras with --calib-dir (a few hundred, day and night)"
            )
    return BuildPlan(
        model=model,
        onnx_path=onnx_path,
        precision=precision,
        batch=batch,
        inputs=inputs,
        profiles=profiles,
        workspace_bytes=int(workspace_mb) << 20,
        flags=PRECISION_FLAGS[precision],
        metadata=metadata,
        calibration=calibration,
        recalibrate=recalibrate,
    )


def calibration_cache_path(cache_dir: str | Path, model: str, onnx_path: str | Path) -> Path:
    """One calibration cache per model *export*: a new ONNX is calibrated afresh."""
    return Path(cache_dir) / f"{model}-{sha256_file(onnx_path)[:12]}.calib"


def trtexec_command(plan: BuildPlan, engine_out: str | Path) -> list[str]:
    """The equivalent ``trtexec`` command line (TensorRT 10 flags) for users who prefer it.

    trtexec's engine has no platewatch sidecar: give its path in the config together with a copy
    of the model's JSON named like the engine (see deploy/jetson/README.md)."""
    cmd = [
        "trtexec",
        f"--onnx={plan.onnx_path}",
        f"--saveEngine={engine_out}",
        f"--memPoolSize=workspace:{plan.workspace_bytes >> 20}M",
    ]
    for name, (lo, opt, hi) in plan.profiles.items():

        def dims(s: tuple[int, ...]) -> str:
            return "x".join(str(d) for d in s)

        cmd += [
            f"--minShapes={name}:{dims(lo)}",
            f"--optShapes={name}:{dims(opt)}",
            f"--maxShapes={name}:{dims(hi)}",
        ]
    if "FP16" in plan.flags:
        cmd.append("--fp16")
    if "INT8" in plan.flags:
        cmd.append("--int8")
        if plan.calibration is not None:
            # Without --calib, trtexec --int8 uses placeholder scales: fast, and wrong.
            cmd.append(f"--calib={plan.calibration.cache_path}")
    return cmd


def format_command(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


# ------------------------------------------------------------------------------ cache + build


@dataclass
class EnsureResult:
    path: Path  # keyed engine path
    stable: Path  # <model>-<precision>.engine link
    built: bool
    check: CacheCheck  # the verdict before building
    key_inputs: EngineKeyInputs


Builder = Callable[[BuildPlan], bytes]


def ensure_engine(
    plan: BuildPlan,
    cache_dir: str | Path,
    device: DeviceInfoProvider,
    builder: Builder | None = None,
    force: bool = False,
    check_only: bool = False,
) -> EnsureResult:
    """Reuse the cached engine when its key matches this device and plan, else build it.

    The key covers the ONNX hash, TensorRT version, GPU name + compute capability, precision,
    batch profile, the INT8 calibration cache's hash and ENGINE_FORMAT_VERSION. An engine whose
    sidecar disagrees on any of them, or whose bytes do not match the sidecar, is rebuilt.
    """
    cache_dir = Path(cache_dir)
    info = device.device_info()
    calib = plan.calibration.cache_path if plan.calibration else None
    want = make_key_inputs(plan.model, plan.onnx_path, plan.precision, plan.batch, info, calib)
    verdict = check_cache(cache_dir, want)
    if verdict.fresh and not force:
        stable = (
            stable_path(cache_dir, plan.model, plan.precision)
            if check_only  # a check writes nothing
            else link_stable(cache_dir, plan.model, plan.precision, verdict.path)
        )
        return EnsureResult(verdict.path, stable, False, verdict, want)
    if check_only:
        return EnsureResult(verdict.path, verdict.path, False, verdict, want)
    log.warning("building %s %s engine (%s)", plan.model, plan.precision, verdict.describe())
    cache_dir.mkdir(parents=True, exist_ok=True)  # the calibration cache is written there
    data = (builder or _build_with_tensorrt)(plan)
    if not data:
        raise EngineBuildError(f"{plan.onnx_path}: the builder returned an empty engine")
    # INT8: the calibration cache may only exist now; key the engine by the cache it used.
    final = make_key_inputs(plan.model, plan.onnx_path, plan.precision, plan.batch, info, calib)
    extra = {"workspace_mb": plan.workspace_bytes >> 20, "onnx": plan.onnx_path.name}
    path = store_engine(cache_dir, final, data, plan.metadata, extra)
    return EnsureResult(
        path, link_stable(cache_dir, plan.model, plan.precision, path), True, verdict, final
    )


def _network_flags(trt: Any) -> int:
    # TensorRT 10: every network is explicit-batch and the flag is deprecated; 8.x needs it.
    major = int(str(trt.__version__).split(".")[0])
    if major >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def _make_calibrator(trt: Any, cudart: Any, feeder: CalibrationFeeder, check: Callable) -> Any:
    """An ``IInt8EntropyCalibrator2`` that copies the feeder's batches into one device buffer.

    Exceptions inside TensorRT's callbacks would be swallowed by the C++ side; they are kept
    and re-raised after the build so a failing image reader is never a silently bad engine.
    """
    h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice

    class _Calibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.error: BaseException | None = None
            self.device_ptr = int(check(cudart.cudaMalloc(feeder.batch_nbytes), "cudaMalloc"))

        def get_batch_size(self) -> int:
            return feeder.batch_size

        def get_batch(self, names: list[str], *args: Any) -> list[int] | None:
            try:
                batch = feeder.next_batch()
                if batch is None:
                    return None
                check(
                    cudart.cudaMemcpy(self.device_ptr, batch.ctypes.data, batch.nbytes, h2d),
                    "cudaMemcpy(calibration batch)",
                )
                return [self.device_ptr]
            except BaseException as exc:  # noqa: BLE001 - re-raised after the build
                self.error = exc
                return None

        def read_calibration_cache(self, *args: Any) -> bytes | None:
            return feeder.read_cache()

        def write_calibration_cache(self, cache: Any, *args: Any) -> None:
            try:
                feeder.write_cache(bytes(cache))
            except BaseException as exc:  # noqa: BLE001
                self.error = exc

        def free(self) -> None:
            if self.device_ptr:
                cudart.cudaFree(self.device_ptr)
                self.device_ptr = 0

    return _Calibrator()


def _build_with_tensorrt(plan: BuildPlan) -> bytes:
    """Build and serialise the engine with the TensorRT 10 Python API; returns engine bytes.

    Runs on the target device only (engines are tied to the GPU and TensorRT version).
    """
    from edge.detect.backends.tensorrt import _import_cudart, _import_trt

    trt = _import_trt(plan.onnx_path)
    cudart = _import_cudart(plan.onnx_path) if plan.calibration is not None else None

    def check(result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise EngineBuildError(f"{plan.onnx_path}: {what} failed: {getattr(err, 'name', err)}")
        return values[0] if len(values) == 1 else (tuple(values) or None)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(plan.onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{plan.onnx_path}: TensorRT's ONNX parser failed: {errors}")
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    planned = [s.name for s in plan.inputs]
    if names != planned:
        raise EngineBuildError(f"{plan.onnx_path}: network inputs {names} != planned {planned}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = None
    if plan.profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in plan.profiles.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)

    calibrator = None
    if plan.calibration is not None:
        feeder = CalibrationFeeder(plan.calibration, recalibrate=plan.recalibrate)
        calibrator = _make_calibrator(trt, cudart, feeder, check)
        config.int8_calibrator = calibrator  # deprecated in TRT 10, still supported
        if profile is not None:
            # Dynamic shapes: calibration runs at the profile's opt shape (the feeder's batch).
            config.set_calibration_profile(profile)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if calibrator is not None and calibrator.error is not None:
        raise EngineBuildError(
            f"{plan.onnx_path}: INT8 calibration failed: {calibrator.error}"
        ) from calibrator.error
    if serialized is None:
        raise EngineBuildError(
            f"{plan.onnx_path}: TensorRT could not build the {plan.precision} engine (see the "
            "TensorRT messages above; a larger --workspace-mb helps when tactics ran out of memory)"
        )
    data = bytes(serialized)
    # A quick round trip proves the engine loads here before it replaces a working one.
    if trt.Runtime(logger).deserialize_cuda_engine(data) is None:
        raise EngineBuildError(f"{plan.onnx_path}: the built engine does not deserialise")
    return data
