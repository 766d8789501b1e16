"""Model settings (YAML ``models:``): which files, which backend, which device, how many threads."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.detect.backends import BACKEND_OF_SUFFIX
from edge.detect.models import DETECTOR_FILE, READER_FILE, default_models_dir
from edge.settings import ConfigPath, Settings

Backend = Literal["auto", "onnxruntime", "tensorrt", "ultralytics"]
Device = Literal["auto", "cpu", "cuda", "tensorrt"]


class ModelsConfig(Settings):
    detector: ConfigPath = Field(
        default_factory=lambda: default_models_dir() / DETECTOR_FILE,
        description="detector model (.onnx, .engine/.plan/.trt, .pt) with its .json sidecar",
    )
    reader: ConfigPath = Field(
        default_factory=lambda: default_models_dir() / READER_FILE,
        description="reader model (.onnx, .engine/.plan/.trt, .pt) with its .json sidecar",
    )
    threads: int = Field(1, ge=1, le=256, description="intra-op CPU threads per model")
    backend: Backend = Field(
        "auto", description="auto: by file extension; else every model file must be of its kind"
    )
    device: Device = Field(
        "auto",
        description="auto: the GPU when the backend has one; cpu; cuda; tensorrt (ONNX Runtime's "
        "TensorRT provider for .onnx files)",
    )

    @field_validator("detector", "reader")
    @classmethod
    def _known_suffix(cls, v: Path) -> Path:
        if v.suffix.lower() not in BACKEND_OF_SUFFIX:
            raise ValueError(
                f"unknown model file type {v.suffix or '(none)'!r}; expected one of "
                + ", ".join(sorted(BACKEND_OF_SUFFIX))
            )
        if v.exists() and not v.is_file():
            raise ValueError(f"{v} is a folder, not a model file")
        return v

    @model_validator(mode="after")
    def _backend_fits(self) -> ModelsConfig:
        if self.backend == "auto":
            return self
        for name in ("detector", "reader"):
            path: Path = getattr(self, name)
            kind = BACKEND_OF_SUFFIX[path.suffix.lower()]
            if kind != self.backend:
                raise ValueError(
                    f"backend {self.backend!r} cannot open the {name} {path.name} ({kind} file)"
                    + (
                        "; for ONNX Runtime's TensorRT provider keep backend auto and set "
                        "device: tensorrt"
                        if self.backend == "tensorrt" and kind == "onnxruntime"
                        else ""
                    )
                )
        return self

    def backend_for(self, path: Path) -> str:
        """Backend for one model file: the explicit ``backend`` or the one its extension means."""
        if self.backend != "auto":
            return self.backend
        return BACKEND_OF_SUFFIX[path.suffix.lower()]
