"""The detector and the plate reader: model metadata, pre-processing, backend call, decoding.

Each model file ``NAME.onnx`` (or ``.engine``/``.plan``/``.pt``) has a sidecar ``NAME.json``
describing its contract (see the team brief / models/*.md). The backend only moves tensors;
the geometry and decoding used here are the shared pure functions in edge.detect.vision,
edge.detect.plate_input and edge.detect.ctc.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.backends import Backend, BackendError, load_backend
from edge.detect.ctc import greedy_decode_batch, softmax
from edge.detect.plate_input import ReaderInput, prepare_batch
from edge.detect.vision import decode_yolo, letterbox, to_nchw_float, unletterbox_boxes
from edge.resources import models_dir
from edge.types import Detections, TextRead

log = logging.getLogger(__name__)

DETECTOR_FILE = "detector.onnx"
READER_FILE = "reader.onnx"


def default_models_dir() -> Path:
    """Env PLATEWATCH_MODELS, else the repository's models/ folder (or a wheel's copy)."""
    return models_dir()


class ModelSpecError(ValueError):
    """The sidecar JSON is missing or invalid; the message names the file and field."""


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], src: Path) -> Any:
    if name not in data:
        raise ModelSpecError(f"{src}: missing field {name!r}")
    value = data[name]
    # bool is an int subclass; never accept it where a number is meant.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        want = " or ".join(k.__name__ for k in _as_tuple(kind))
        raise ModelSpecError(
            f"{src}: field {name!r} must be {want}, got {type(value).__name__} {value!r}"
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _unit_interval(data: dict[str, Any], name: str, default: float, src: Path) -> float:
    if name not in data:
        return default
    value = float(_field(data, name, (int, float), src))
    if not 0.0 <= value <= 1.0:
        raise ModelSpecError(f"{src}: field {name!r} must be in [0, 1], got {value}")
    return value


def _positive_pair(value: Any, name: str, src: Path) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ModelSpecError(f"{src}: field {name!r} must be [height, width] positive ints")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class DetectorSpec:
    classes: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    conf_threshold: float = 0.25
    iou_threshold: float = 0.5
    version: str = ""
    onnx_sha256: str = ""
    output: str = "ultralytics"
    kind: str = "detector"

    @classmethod
    def from_dict(cls, data: dict[str, Any], src: Path) -> DetectorSpec:
        classes = _field(data, "classes", list, src)
        if not classes or not all(isinstance(c, str) and c for c in classes):
            raise ModelSpecError(f"{src}: field 'classes' must be a non-empty list of names")
        output = str(data.get("output", "ultralytics"))
        if output != "ultralytics":
            raise ModelSpecError(f"{src}: field 'output' {output!r} unsupported (ultralytics)")
        return cls(
            classes=tuple(classes),
            input_size=_positive_pair(_field(data, "input_size", list, src), "input_size", src),
            conf_threshold=_unit_interval(data, "conf_threshold", 0.25, src),
            iou_threshold=_unit_interval(data, "iou_threshold", 0.5, src),
            version=str(data.get("version", "")),
            onnx_sha256=str(data.get("onnx_sha256", "")),
            output=output,
        )


@dataclass(frozen=True)
class ReaderSpec:
    alphabet: str
    input: ReaderInput
    blank_index: int = 0
    version: str = ""
    onnx_sha256: str = ""
    kind: str = "reader"

    @classmethod
    def from_dict(cls, data: dict[str, Any], src: Path) -> ReaderSpec:
        alphabet = _field(data, "alphabet", str, src)
        if not alphabet or len(set(alphabet)) != len(alphabet):
            raise ModelSpecError(f"{src}: field 'alphabet' must be non-empty, no repeats")
        blank = _field(data, "blank_index", int, src) if "blank_index" in data else 0
        if blank != 0:
            # edge.detect.ctc decodes with the blank first; other layouts would need a remap.
            raise ModelSpecError(f"{src}: field 'blank_index' must be 0, got {blank}")
        inp = _field(data, "input", dict, src)
        h, w = _positive_pair([inp.get("height"), inp.get("width")], "input.height/width", src)
        aspect = inp.get("two_line_max_aspect", 1.5)
        if isinstance(aspect, bool) or not isinstance(aspect, (int, float)) or aspect < 0:
            raise ModelSpecError(f"{src}: field 'input.two_line_max_aspect' must be >= 0")
        return cls(
            alphabet=alphabet,
            input=ReaderInput(height=h, width=w, two_line_max_aspect=float(aspect)),
            blank_index=blank,
            version=str(data.get("version", "")),
            onnx_sha256=str(data.get("onnx_sha256", "")),
        )


ModelSpec = DetectorSpec | ReaderSpec


def sidecar_path(model_path: str | Path) -> Path:
    """models/detector.onnx -> models/detector.json (the same for .engine, .plan, .pt)."""
    return Path(model_path).with_suffix(".json")


def load_spec(path: str | Path) -> ModelSpec:
    """Parse and validate a sidecar JSON (pass the JSON or the model file)."""
    path = Path(path)
    src = path if path.suffix.lower() == ".json" else sidecar_path(path)
    if not src.is_file():
        raise ModelSpecError(f"{src}: model metadata file not found (needed beside the model)")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSpecError(f"{src}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelSpecError(f"{src}: expected a JSON object")
    kind = _field(data, "kind", str, src)
    if kind == "detector":
        return DetectorSpec.from_dict(data, src)
    if kind == "reader":
        return ReaderSpec.from_dict(data, src)
    raise ModelSpecError(f"{src}: field 'kind' must be 'detector' or 'reader', got {kind!r}")


def _warn_if_hash_differs(model_path: Path, expected: str) -> None:
    """A sidecar that describes another export is a silent accuracy bug; say so loudly."""
    if not expected or model_path.suffix.lower() != ".onnx":
        return
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != expected.lower():
        log.warning(
            "%s: sha256 %s differs from onnx_sha256 in %s",
            model_path,
            digest[:12],
            sidecar_path(model_path).name,
        )


def _single_input(backend: Backend, what: str) -> str:
    names = backend.input_names
    if len(names) != 1:
        raise BackendError(f"{what}: expected one input tensor, the model has {names}")
    return names[0]


class Detector:
    """Vehicle + plate detector: frame (BGR, any size) -> Detections in frame pixels."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 1,
        device: str = "auto",
        spec: DetectorSpec | None = None,
        backend: Backend | None = None,
        backend_kind: str = "auto",
    ) -> None:
        self.path = Path(path)
        loaded = spec or load_spec(self.path)
        if not isinstance(loaded, DetectorSpec):
            raise ModelSpecError(
                f"{sidecar_path(self.path)}: kind is {loaded.kind!r}, not detector"
            )
        self.spec = loaded
        if backend is None:
            _warn_if_hash_differs(self.path, self.spec.onnx_sha256)
            backend = load_backend(self.path, threads, device, backend_kind)
        self.backend = backend
        self._input = _single_input(backend, str(self.path))
        shape = backend.input_shapes[self._input]
        fixed = tuple(shape[2:4]) if len(shape) == 4 else ()
        if all(isinstance(d, int) for d in fixed) and fixed and fixed != self.spec.input_size:
            raise ModelSpecError(
                f"{sidecar_path(self.path)}: input_size {list(self.spec.input_size)} does not "
                f"match the model's input {list(fixed)}"
            )

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.size == 0:
            raise ValueError(f"expected a BGR image HxWx3, got shape {frame_bgr.shape}")
        h, w = frame_bgr.shape[:2]
        img, lb = letterbox(frame_bgr, self.spec.input_size)
        out = self.backend.run({self._input: to_nchw_float(img)})
        raw = next(iter(out.values()))
        boxes, scores, classes = decode_yolo(
            raw,
            self.spec.conf_threshold,
            self.spec.iou_threshold,
            num_classes=len(self.spec.classes),
        )
        boxes = unletterbox_boxes(boxes, lb, w, h)
        # Boxes entirely in the padding collapse to zero area after clipping; drop them.
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Detections(boxes[keep], scores[keep], classes[keep], self.spec.classes)

    def close(self) -> None:
        self.backend.close()


class Reader:
    """Plate reader: list of BGR crops -> one TextRead each, one backend call per batch."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 1,
        device: str = "auto",
        spec: ReaderSpec | None = None,
        backend: Backend | None = None,
        backend_kind: str = "auto",
    ) -> None:
        self.path = Path(path)
        loaded = spec or load_spec(self.path)
        if not isinstance(loaded, ReaderSpec):
            raise ModelSpecError(f"{sidecar_path(self.path)}: kind is {loaded.kind!r}, not reader")
        self.spec = loaded
        if backend is None:
            _warn_if_hash_differs(self.path, self.spec.onnx_sha256)
            backend = load_backend(self.path, threads, device, backend_kind)
        self.backend = backend
        self._input = _single_input(backend, str(self.path))
        shape = backend.input_shapes[self._input]
        # Engines built with a fixed batch (common for TensorRT) are fed in chunks, padded.
        self.fixed_batch = shape[0] if shape and isinstance(shape[0], int) else None
        self._output = "probs" if "probs" in backend.output_names else backend.output_names[0]

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if self.fixed_batch is None:
            probs = self.backend.run({self._input: batch})[self._output]
            return self._as_probs(probs, n)
        parts = []
        for start in range(0, n, self.fixed_batch):
            chunk = batch[start : start + self.fixed_batch]
            if chunk.shape[0] < self.fixed_batch:
                pad = np.zeros((self.fixed_batch - chunk.shape[0], *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self.backend.run({self._input: chunk})[self._output]
            parts.append(out[: min(self.fixed_batch, n - start)])
        return self._as_probs(np.concatenate(parts), n)

    def _as_probs(self, out: np.ndarray, n: int) -> np.ndarray:
        classes = len(self.spec.alphabet) + 1
        if out.ndim != 3 or out.shape[0] != n or out.shape[2] != classes:
            raise BackendError(
                f"{self.path}: reader output {out.shape} is not (batch={n}, T, {classes})"
            )
        # The shipped ONNX ends with a softmax; a .pt development checkpoint gives logits.
        if not np.allclose(out.sum(axis=2), 1.0, atol=1e-2) or out.min() < 0:
            out = softmax(out.astype(np.float32), axis=2)
        return out

    def read(self, crops: list[np.ndarray]) -> list[TextRead]:
        if not crops:
            return []
        valid = [i for i, c in enumerate(crops) if c.ndim >= 2 and min(c.shape[:2]) > 0]
        reads = [TextRead("", 0.0, ())] * len(crops)  # empty crops read as nothing
        if not valid:
            return reads
        batch = prepare_batch([crops[i] for i in valid], self.spec.input)
        decoded = greedy_decode_batch(self._infer(batch), self.spec.alphabet)
        for i, d in zip(valid, decoded, strict=True):
            confs = tuple(float(c) for c in d.char_confidences)
            reads[i] = TextRead(d.text, float(d.confidence), confs)
        return reads

    def close(self) -> None:
        self.backend.close()


def load_models(
    models_dir: str | Path | None = None,
    threads: int = 1,
    device: str = "auto",
    detector: str | Path | None = None,
    reader: str | Path | None = None,
    backend: str = "auto",
) -> tuple[Detector, Reader]:
    """Detector and Reader from ``models_dir`` (default: default_models_dir()), or from
    explicit model files (any backend extension)."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    det_path = Path(detector) if detector else root / DETECTOR_FILE
    rd_path = Path(reader) if reader else root / READER_FILE
    for p in (det_path, rd_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"model file not found: {p} (train/export the models, or pass --models DIR)"
            )
    return (
        Detector(det_path, threads=threads, device=device, backend_kind=backend),
        Reader(rd_path, threads=threads, device=device, backend_kind=backend),
    )


def add_model_arguments(parser: Any) -> None:
    """The model-selection options shared by every command that runs the models."""
    parser.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder with detector.onnx/reader.onnx + .json (default: $PLATEWATCH_MODELS or "
        "the repository's models/)",
    )
    parser.add_argument(
        "--detector",
        type=Path,
        default=None,
        metavar="FILE",
        help="detector model file (.onnx, .engine/.plan/.trt, .pt); overrides --models",
    )
    parser.add_argument(
        "--reader",
        type=Path,
        default=None,
        metavar="FILE",
        help="reader model file (.onnx, .engine/.plan/.trt, .pt); overrides --models",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads per model (default: the config's models.threads, else 1)",
    )
    parser.add_argument(
        "--device",
        default=None,
        choices=["auto", "cpu", "cuda", "tensorrt"],
        help="where to run (default: the config's models.device, else auto: the GPU if the "
        "backend has one)",
    )


def models_from_args(args: Any) -> tuple[Detector, Reader]:
    return load_models(
        args.models,
        threads=args.threads or 1,
        device=args.device or "auto",
        detector=args.detector,
        reader=args.reader,
    )
