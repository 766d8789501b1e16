"""Capture settings of one camera (the YAML ``cameras[i]`` entry is this plus the camera-level
settings of edge.config.schema.CameraConfig) and the motion gate's settings (YAML ``motion:``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.capture.sources import SourceKind, detect_source_kind, redact
from edge.settings import Settings, context_base_dir

CAMERA_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # an MQTT topic level: no / + # spaces
# "rtsp//host", "rtsp:/host", "http:\\host": a stream URL that lost part of its "://".
_MISTYPED_URL = re.compile(r"^(rtsps?|https?|rtmps?|udp|tcp|srt|rtp)(//|:/[^/]|:\\|:[^/])", re.I)


class ReconnectConfig(Settings):
    """Exponential back-off for a camera that cannot be opened or stops sending frames."""

    initial_s: float = Field(1.0, gt=0, description="first retry delay")
    max_s: float = Field(30.0, gt=0, description="retry delay ceiling")
    multiplier: float = Field(2.0, ge=1.0, description="delay growth per failed attempt")
    jitter: float = Field(0.2, ge=0.0, le=1.0, description="+/- fraction of random spread")

    @model_validator(mode="after")
    def _order(self) -> ReconnectConfig:
        if self.max_s < self.initial_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= initial_s ({self.initial_s})")
        return self


class CaptureConfig(Settings):
    """Where one camera's frames come from and how its capture thread treats them."""

    name: str = Field(pattern=CAMERA_NAME, max_length=64, description="camera name (topic level)")
    type: Literal["auto", "file", "stream", "usb", "gstreamer", "images", "csi"] = Field(
        "auto", description="source kind (auto: detected from the source)"
    )
    source: str | int = Field(
        description="file, folder of images, rtsp://..., USB index or /dev/videoN, or a "
        "GStreamer pipeline"
    )
    fps: float | None = Field(None, gt=0, le=1000, description="override the source's fps")
    realtime: bool = Field(False, description="pace files at their fps and drop like live")
    loop: bool = Field(False, description="restart files/folders at the end")
    queue_size: int = Field(4, ge=1, le=1024, description="frames buffered for the pipeline")
    open_timeout_s: float = Field(5.0, gt=0, le=600, description="give up opening after")
    read_timeout_s: float = Field(5.0, gt=0, le=600, description="a live read blocking longer")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    width: int | None = Field(None, gt=0, description="requested USB capture width")
    height: int | None = Field(None, gt=0, description="requested USB capture height")
    decoder: Literal["auto", "ffmpeg", "gstreamer"] = Field(
        "auto",
        description="auto: the Jetson hardware decoder (GStreamer NVDEC/ISP) where this machine "
        "has one, else OpenCV's FFmpeg/V4L2; gstreamer: insist on it; ffmpeg: never",
    )
    codec: Literal["auto", "h264", "h265"] = Field(
        "auto", description="the stream's codec, for the hardware pipeline (auto: decodebin)"
    )

    @field_validator("source", mode="before")
    @classmethod
    def _source_type(cls, v: Any) -> Any:
        # One clear message instead of pydantic's two union branch errors.
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise ValueError(
                "must be a path, URL, GStreamer pipeline (string) or a USB camera index (integer)"
            )
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        if isinstance(v, int) and v < 0:
            raise ValueError("a USB camera index must be >= 0")
        return v

    @field_validator("source")
    @classmethod
    def _plausible_source(cls, v: str | int, info: ValidationInfo) -> str | int:
        # What check-config can know about a source without opening it: a URL that is one
        # typo away from being read as a file, a port FFmpeg would retry forever.
        if not isinstance(v, str):
            return v
        src = v.strip()
        declared = info.data.get("type", "auto")
        kind = SourceKind(declared) if declared != "auto" else detect_source_kind(src)
        if kind is SourceKind.FILE and _MISTYPED_URL.match(src):
            raise ValueError(
                f"{src!r} looks like a URL with a mistyped '://' (it would be opened as a file)"
            )
        if kind is SourceKind.STREAM:
            parts = urlsplit(src)
            try:
                port = parts.port
            except ValueError:
                port = 0
            if port == 0:
                raise ValueError(f"{redact(src)!r}: the port is not 1-65535")
            if not parts.hostname:
                raise ValueError(f"{redact(src)!r}: no host in the URL")
        return v

    @model_validator(mode="after")
    def _relative_source(self, info: ValidationInfo) -> CaptureConfig:
        # A relative file or folder in a YAML file is relative to that file, like every path.
        base = context_base_dir(info)
        if base is None or self.kind not in (SourceKind.FILE, SourceKind.IMAGES):
            return self
        if not isinstance(self.source, str):
            return self
        src = self.source[len("file://") :] if self.source.startswith("file://") else self.source
        p = Path(src).expanduser()
        if not p.is_absolute():
            object.__setattr__(self, "source", os.path.normpath(base / p))
        return self

    @property
    def kind(self) -> SourceKind:
        """The source kind: the explicit ``type`` or the one detected from ``source``."""
        if self.type != "auto":
            return SourceKind(self.type)
        return detect_source_kind(self.source)

    @property
    def is_live(self) -> bool:
        return self.kind.is_live


class MotionConfig(Settings):
    """The motion gate (edge.capture.sampling.MotionGate), for cameras with ``motion_gate``."""

    width: int = Field(160, ge=16, le=1920, description="compare frames scaled to this width")
    blur: int = Field(5, ge=1, description="Gaussian kernel (odd) against sensor noise")
    pixel_threshold: int = Field(18, ge=0, le=255, description="grey-level change that counts")
    min_changed: float = Field(0.002, ge=0, le=1, description="changed share that is motion")
    max_idle_s: float = Field(2.0, gt=0, description="analyse at least this often when idle")

    @field_validator("blur")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be odd (a Gaussian kernel size)")
        return v
