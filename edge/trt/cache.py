"""TensorRT engine cache: which engine file belongs to which model, device and build settings.

A serialized TensorRT engine is only valid for the TensorRT version and GPU it was built with,
and only describes the ONNX export it was built from. This module owns the *bookkeeping* (no
TensorRT import anywhere here): the cache key, the file names, the JSON sidecar, and the check
that says whether a cached engine may be loaded on this device or must be rebuilt.

Layout of a cache directory (default ``models/engines``)::

    detector-fp16-<key[:16]>.engine   serialized engine
    detector-fp16-<key[:16]>.json     the model's own metadata (models/detector.json, so
                                      edge.detect.models.Detector can open the engine directly) plus
                                      an ``"engine"`` object holding every key input + the key
    detector-fp16.engine -> ...       stable names (symlinks) to the current build, for configs
    detector-fp16.json   -> ...

Device facts come from a `DeviceInfoProvider` so tests inject fakes; `CudaDeviceInfo` asks
TensorRT and cuda-python on the real device.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

# Bump when the way platewatch builds engines changes in a way that makes old engines wrong
# (e.g. different input names, output layout, preprocessing baked into the graph).
ENGINE_FORMAT_VERSION = 1

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to: TensorRT version and the GPU's name + compute capability."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "8.7" (Orin), "7.2" (Xavier), "9.0" (H100/H200)


class DeviceInfoProvider(Protocol):
    def device_info(self) -> DeviceInfo: ...


@dataclass(frozen=True)
class StaticDeviceInfo:
    """A provider returning fixed facts (tests; or a build for a known target)."""

    info: DeviceInfo

    def device_info(self) -> DeviceInfo:
        return self.info


class DeviceInfoError(RuntimeError):
    """TensorRT or the CUDA device could not be queried (message says which and why)."""


class CudaDeviceInfo:
    """Device facts from the installed TensorRT and cuda-python (the real Jetson/GPU path)."""

    def __init__(self, device_index: int = 0) -> None:
        self.device_index = device_index

    def device_info(self) -> DeviceInfo:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise DeviceInfoError(f"TensorRT is not importable: {exc}") from exc
        from edge.detect.backends.tensorrt import _import_cudart

        try:
            cudart = _import_cudart(Path("<device>"))
        except ImportError as exc:
            raise DeviceInfoError(str(exc)) from exc
        err, prop = cudart.cudaGetDeviceProperties(self.device_index)
        if int(err) != 0:
            raise DeviceInfoError(
                f"cudaGetDeviceProperties({self.device_index}) failed: "
                f"{getattr(err, 'name', err)} (no CUDA device, or the driver is not loaded)"
            )
        name = prop.name
        if isinstance(name, bytes):
            name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
        # All Orin modules report "Orin" / 8.7; the SM count tells an Orin Nano (8 SMs, or 4
        # on the 4 GB) from an AGX Orin (16), whose engines TensorRT advises against sharing.
        sms = getattr(prop, "multiProcessorCount", None)
        gpu = f"{str(name).strip()} ({sms} SMs)" if sms else str(name).strip()
        return DeviceInfo(str(trt.__version__), gpu, f"{prop.major}.{prop.minor}")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes of the optimisation profile: min/opt/max (min == opt == max: fixed)."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(
                f"batch profile must satisfy 1 <= min <= opt <= max, got "
                f"{self.min}:{self.opt}:{self.max}"
            )

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """``"1:8:16"`` (dynamic) or ``"8"`` (fixed batch 8)."""
        parts = text.strip().split(":")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) == 1:
            return cls(nums[0], nums[0], nums[0])
        if len(nums) == 3:
            return cls(*nums)
        raise ValueError(f"batch profile {text!r}: expected MIN:OPT:MAX (e.g. 1:8:16) or N")

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass(frozen=True)
class EngineKeyInputs:
    """Everything an engine depends on. The cache key is the sha256 of this, canonicalised."""

    model: str  # "detector" / "reader"
    onnx_sha256: str
    precision: str
    batch: str  # BatchProfile as "min:opt:max"
    trt_version: str
    gpu_name: str
    compute_capability: str
    calibration_sha256: str | None = None  # int8 only: hash of the calibration cache used
    format_version: int = ENGINE_FORMAT_VERSION

    def key(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, data: Any) -> EngineKeyInputs:
        if not isinstance(data, dict):
            raise ValueError("'engine' must be an object")
        names = set(cls.__dataclass_fields__)
        missing = sorted(n for n in names - set(data) if n not in ("calibration_sha256",))
        if missing:
            raise ValueError(f"'engine' lacks {missing}")
        return cls(**{k: data[k] for k in names if k in data})


def make_key_inputs(
    model: str,
    onnx_path: str | Path,
    precision: str,
    batch: BatchProfile,
    device: DeviceInfo,
    calibration_cache: str | Path | None = None,
) -> EngineKeyInputs:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    calib = None
    if precision == "int8" and calibration_cache is not None and Path(calibration_cache).is_file():
        calib = sha256_file(calibration_cache)
    return EngineKeyInputs(
        model=model,
        onnx_sha256=sha256_file(onnx_path),
        precision=precision,
        batch=str(batch),
        trt_version=device.trt_version,
        gpu_name=device.gpu_name,
        compute_capability=device.compute_capability,
        calibration_sha256=calib,
    )


def engine_stem(model: str, precision: str, key: str) -> str:
    return f"{model}-{precision}-{key[:16]}"


def engine_path(cache_dir: str | Path, inputs: EngineKeyInputs) -> Path:
    return Path(cache_dir) / f"{engine_stem(inputs.model, inputs.precision, inputs.key())}.engine"


def sidecar_of(engine: str | Path) -> Path:
    """The JSON beside an engine (same stem: edge.detect.models.load_spec finds it there too)."""
    return Path(engine).with_suffix(".json")


def stable_path(cache_dir: str | Path, model: str, precision: str) -> Path:
    """``<cache>/<model>-<precision>.engine``: the name configs use; a link to the current build."""
    return Path(cache_dir) / f"{model}-{precision}.engine"


# --------------------------------------------------------------------------- checking a cache


CacheState = Literal["fresh", "missing", "stale", "corrupt"]


@dataclass
class CacheCheck:
    """Verdict on one model+precision in a cache directory, with reasons in plain words."""

    state: CacheState
    path: Path  # the engine that is (fresh) or would be (otherwise) used
    reasons: list[str] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"

    def describe(self) -> str:
        if self.fresh:
            return f"{self.path.name} matches this device and model"
        return f"{self.path.name}: {self.state}: " + "; ".join(self.reasons or ["not built yet"])


_HUMAN = {
    "onnx_sha256": "the ONNX model changed",
    "trt_version": "TensorRT version differs",
    "gpu_name": "built for another GPU",
    "compute_capability": "built for another compute capability",
    "batch": "batch profile differs",
    "calibration_sha256": "INT8 calibration cache differs",
    "format_version": "platewatch engine format changed",
}


def differences(want: EngineKeyInputs, have: EngineKeyInputs) -> list[str]:
    """Why an engine built with ``have`` cannot serve ``want`` (empty when identical)."""
    out = []
    a, b = asdict(want), asdict(have)
    for name, text in _HUMAN.items():
        if a[name] != b[name]:
            shown = (
                f"{str(b[name])[:12]} -> {str(a[name])[:12]}"
                if name.endswith("sha256")
                else f"{b[name]} -> {a[name]}"
            )
            out.append(f"{text} ({shown})")
    return out


def read_sidecar(path: str | Path) -> tuple[dict[str, Any], EngineKeyInputs, str]:
    """(whole JSON, key inputs, recorded engine sha256). Raises ValueError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        eng = data.get("engine")
        if not isinstance(eng, dict):
            raise ValueError("no 'engine' object")
        inputs = EngineKeyInputs.from_dict(eng)
        if not isinstance(eng.get("key"), str) or eng["key"] != inputs.key():
            raise ValueError("recorded key does not match its inputs")
        digest = eng.get("engine_sha256")
        if not isinstance(digest, str):
            raise ValueError("missing 'engine_sha256'")
        return data, inputs, digest
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: unusable engine sidecar: {exc}") from exc


def _candidates(cache_dir: Path, model: str, precision: str) -> Iterable[Path]:
    # Keyed sidecars only (the stable-name link would duplicate one of them).
    prefix = f"{model}-{precision}-"
    return sorted(
        (p for p in cache_dir.glob(f"{prefix}*.json") if not p.is_symlink()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def check_cache(
    cache_dir: str | Path, want: EngineKeyInputs, verify_hash: bool = True
) -> CacheCheck:
    """Is there an engine for exactly ``want`` in ``cache_dir``?

    ``fresh`` only when the keyed engine file exists, its sidecar parses and records the same key
    inputs, and (``verify_hash``) the engine bytes hash to what the sidecar recorded. Otherwise the
    reasons compare against the newest other build of the same model+precision, so the user reads
    "TensorRT version differs (10.3.0 -> 10.7.0)" instead of "not found".
    """
    cache_dir = Path(cache_dir)
    target = engine_path(cache_dir, want)
    side = sidecar_of(target)
    if target.is_file() and side.is_file():
        try:
            _data, have, digest = read_sidecar(side)
        except ValueError as exc:
            return CacheCheck("corrupt", target, [str(exc)])
        diff = differences(want, have)
        if diff:  # a key-prefix collision, or a hand-edited sidecar
            return CacheCheck("stale", target, diff)
        if verify_hash and sha256_file(target) != digest:
            return CacheCheck("corrupt", target, ["engine file does not match its recorded hash"])
        return CacheCheck("fresh", target)
    if target.is_file():
        return CacheCheck("corrupt", target, [f"sidecar {side.name} is missing"])
    for other in _candidates(cache_dir, want.model, want.precision):
        try:
            _data, have, _digest = read_sidecar(other)
        except ValueError as exc:
            return CacheCheck("corrupt", target, [str(exc)])
        return CacheCheck("stale", target, differences(want, have) or ["engine file is missing"])
    return CacheCheck("missing", target, ["no engine built yet"])


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def store_engine(
    cache_dir: str | Path,
    inputs: EngineKeyInputs,
    engine_bytes: bytes,
    model_metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    link: bool = True,
) -> Path:
    """Write engine + sidecar (engine first, so a sidecar never describes a missing file) and
    point the stable name at them. Returns the keyed engine path."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = engine_path(cache_dir, inputs)
    _atomic_write(target, engine_bytes)
    meta = dict(model_metadata or {})
    meta["engine"] = {
        **asdict(inputs),
        "key": inputs.key(),
        "engine_sha256": hashlib.sha256(engine_bytes).hexdigest(),
        **(extra or {}),
    }
    _atomic_write(sidecar_of(target), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    if link:
        link_stable(cache_dir, inputs.model, inputs.precision, target)
    return target


def link_stable(cache_dir: str | Path, model: str, precision: str, target: Path) -> Path:
    """Point ``<model>-<precision>.engine/.json`` at ``target`` (relative symlinks; replaced
    atomically so a service starting at that moment sees the old or the new build)."""
    stable = stable_path(cache_dir, model, precision)
    for link_path, dest in ((stable, target), (sidecar_of(stable), sidecar_of(target))):
        tmp = link_path.with_name(f".{link_path.name}.lnk{os.getpid()}")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(dest.name, tmp)
        os.replace(tmp, link_path)
    return stable


def check_engine_file(engine: str | Path, device: DeviceInfo) -> CacheCheck:
    """Check an engine someone points a config at (often the stable link) against this device,
    without knowing the ONNX it came from: sidecar present, parsable, same TensorRT and GPU."""
    engine = Path(engine)
    if not engine.is_file():
        return CacheCheck("missing", engine, [f"{engine} does not exist"])
    side = sidecar_of(engine)
    if not side.is_file():
        return CacheCheck(
            "corrupt",
            engine,
            [f"no sidecar {side.name}: built outside platewatch (trtexec?); cannot verify it"],
        )
    try:
        _data, have, digest = read_sidecar(side)
    except ValueError as exc:
        return CacheCheck("corrupt", engine, [str(exc)])
    reasons = []
    if have.trt_version != device.trt_version:
        reasons.append(f"TensorRT version differs ({have.trt_version} -> {device.trt_version})")
    if (have.gpu_name, have.compute_capability) != (device.gpu_name, device.compute_capability):
        reasons.append(
            f"built for {have.gpu_name} (sm {have.compute_capability}), this is "
            f"{device.gpu_name} (sm {device.compute_capability})"
        )
    if reasons:
        return CacheCheck("stale", engine, reasons)
    if sha256_file(engine) != digest:
        return CacheCheck("corrupt", engine, ["engine file does not match its recorded hash"])
    return CacheCheck("fresh", engine)
