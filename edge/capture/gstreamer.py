"""GStreamer capture pipelines for Jetson hardware decoding, and the choice GStreamer vs FFmpeg.

Pure string builders: a `VideoSource` (what a camera is) + a `Platform` (which GStreamer
elements exist, whether OpenCV was built with GStreamer) -> the string OpenCV opens. Every
pipeline ends in ``appsink`` delivering BGR frames, the convention of edge.capture.sources (a source
string containing ``!`` is opened with ``cv2.CAP_GSTREAMER``).

On Jetson (JetPack 6):
* RTSP / files: ``nvv4l2decoder`` decodes H.264/H.265 on the NVDEC engine, ``nvvidconv``
  converts colour and size on the VIC; the CPU only does the final BGRx -> BGR repack.
* CSI cameras: ``nvarguscamerasrc`` (the ISP path; there is no FFmpeg equivalent).
* USB cameras: ``v4l2src`` with the VIC doing the YUY2 -> BGRx conversion.
Elsewhere (x86, or an OpenCV without GStreamer, e.g. pip's opencv-python wheels) the source is
handed to OpenCV as is: FFmpeg for files and streams, V4L2 for USB cameras.

Live sources end in ``appsink drop=true max-buffers=2 sync=false`` (never build latency);
files end in ``drop=false`` (back-pressure: a recorded clip never loses a frame).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

SourceType = Literal["rtsp", "stream", "file", "csi", "usb", "pipeline"]
Codec = Literal["h264", "h265", "auto"]
CaptureBackend = Literal["gstreamer", "ffmpeg"]

# Elements whose presence decides the capture path (looked up with gst-inspect-1.0).
HW_DECODE = ("nvv4l2decoder", "nvvidconv")
CSI_SOURCE = "nvarguscamerasrc"
INSPECTED = (
    *HW_DECODE,
    CSI_SOURCE,
    "rtspsrc",
    "v4l2src",
    "qtdemux",
    "matroskademux",
    "tsdemux",
    "h264parse",
    "h265parse",
)

LIVE_SINK = "appsink drop=true max-buffers=2 sync=false"
FILE_SINK = "appsink drop=false max-buffers=4 sync=false"
TO_BGR_NV = "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR"
TO_BGR_SW = "videoconvert ! video/x-raw,format=BGR"

_CSI = re.compile(r"^csi:(?://)?(\d+)$", re.IGNORECASE)
_DEV_VIDEO = re.compile(r"^/dev/video(\d+)$")
_DEMUX = {
    ".mp4": "qtdemux",
    ".mov": "qtdemux",
    ".m4v": "qtdemux",
    ".mkv": "matroskademux",
    ".webm": "matroskademux",
    ".ts": "tsdemux",
    ".mts": "tsdemux",
    ".m2ts": "tsdemux",
}
_RAW_ES = {".h264": "h264", ".264": "h264", ".h265": "h265", ".265": "h265", ".hevc": "h265"}


class CaptureUnavailable(RuntimeError):
    """This source cannot be captured on this platform (message says why and what to do)."""


@dataclass(frozen=True)
class VideoSource:
    """What a camera is, independent of how it will be opened."""

    type: SourceType
    location: str  # URL, file path, /dev/videoN, or a full pipeline; CSI: "" (see sensor_id)
    codec: Codec = "h264"  # RTSP/files: the stream's codec ("auto": decodebin picks)
    width: int | None = None  # CSI/USB: capture mode; RTSP/files: resize on the VIC
    height: int | None = None
    fps: float | None = None
    sensor_id: int = 0
    latency_ms: int = 200  # rtspsrc jitter buffer
    flip_method: int = 0  # nvvidconv flip-method (0 none, 2 rotate 180, ...)

    @property
    def is_live(self) -> bool:
        return self.type != "file"


def parse_source(source: str | int, **options: Any) -> VideoSource:
    """``csi://0`` -> CSI sensor 0, ``rtsp://`` -> RTSP, other URLs -> stream, ``0`` or
    ``/dev/video0`` -> USB, anything with ``!`` (or ``gst:``) -> a pipeline, else a file.
    ``options`` set the other `VideoSource` fields (codec, width, height, fps, ...)."""
    if isinstance(source, bool):
        raise ValueError(f"not a video source: {source!r}")
    if isinstance(source, int):
        return VideoSource("usb", f"/dev/video{source}", **options)
    s = source.strip()
    if not s:
        raise ValueError("empty video source")
    if s.startswith("gst:") or "!" in s:
        return VideoSource("pipeline", s[4:].strip() if s.startswith("gst:") else s, **options)
    if m := _CSI.match(s):
        return VideoSource("csi", "", sensor_id=int(m.group(1)), **options)
    if s.isdigit():
        return VideoSource("usb", f"/dev/video{s}", **options)
    if _DEV_VIDEO.match(s):
        return VideoSource("usb", s, **options)
    low = s.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return VideoSource("rtsp", s, **options)
    if re.match(r"^[a-z][a-z0-9+.-]*://", low) and not low.startswith("file://"):
        return VideoSource("stream", s, **options)
    return VideoSource("file", s[len("file://") :] if low.startswith("file://") else s, **options)


def _quote(value: str) -> str:
    """A gst-launch property value: quoted so URLs with ``&``, ``;`` or spaces survive."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _framerate(fps: float) -> str:
    """GStreamer fraction: 30 -> 30/1, 29.97 -> 30000/1001 (the NTSC rates cameras report)."""
    if abs(fps - round(fps)) < 1e-6:
        return f"{round(fps)}/1"
    ntsc = round(fps * 1.001)
    if abs(ntsc * 1000 / 1001 - fps) < 0.005:
        return f"{ntsc * 1000}/1001"
    frac = Fraction(fps).limit_denominator(1000)
    return f"{frac.numerator}/{frac.denominator}"


def _raw_caps(src: VideoSource, base: str = "video/x-raw") -> str:
    parts = [base]
    if src.width:
        parts.append(f"width={src.width}")
    if src.height:
        parts.append(f"height={src.height}")
    if src.fps:
        parts.append(f"framerate={_framerate(src.fps)}")
    return ",".join(parts)


def _decode(codec: Codec, hardware: bool, src: VideoSource) -> str:
    """depay-less decode + conversion to BGR: ``h264parse ! nvv4l2decoder ! nvvidconv ...``."""
    if codec == "auto":
        dec = "decodebin"
    else:
        dec = f"{codec}parse ! " + ("nvv4l2decoder" if hardware else f"avdec_{codec}")
    if hardware:
        flip = f" flip-method={src.flip_method}" if src.flip_method else ""
        size = ""
        if src.width and src.height:
            size = f",width={src.width},height={src.height}"
        conv = (
            f"nvvidconv{flip} ! video/x-raw,format=BGRx{size} ! videoconvert ! "
            "video/x-raw,format=BGR"
        )
    else:
        conv = TO_BGR_SW
        if src.width and src.height:
            conv = f"videoscale ! video/x-raw,width={src.width},height={src.height} ! {conv}"
    return f"{dec} ! {conv}"


def rtsp_pipeline(src: VideoSource, hardware: bool = True) -> str:
    """``rtspsrc ... ! rtph264depay ! h264parse ! nvv4l2decoder ! nvvidconv ! ... ! appsink``.

    ``protocols=tcp``: RTP over the RTSP TCP connection; UDP loses packets (grey smears across
    plates) on busy Wi-Fi and NAT. ``latency``: the jitter buffer in ms.
    """
    head = f"rtspsrc location={_quote(src.location)} latency={src.latency_ms} protocols=tcp"
    if src.codec == "auto":
        return f"{head} ! {_decode('auto', hardware, src)} ! {LIVE_SINK}"
    depay = f"rtp{src.codec}depay"
    return f"{head} ! {depay} ! {_decode(src.codec, hardware, src)} ! {LIVE_SINK}"


def file_pipeline(src: VideoSource, hardware: bool = True) -> str:
    """``filesrc ! qtdemux ! h264parse ! nvv4l2decoder ! ...``; container by extension,
    ``decodebin`` for unknown containers or ``codec: auto``."""
    ext = Path(src.location).suffix.lower()
    head = f"filesrc location={_quote(src.location)}"
    if ext in _RAW_ES and src.codec != "auto":
        codec = _RAW_ES[ext]
        return f"{head} ! {_decode(codec, hardware, src)} ! {FILE_SINK}"  # type: ignore[arg-type]
    demux = _DEMUX.get(ext)
    if demux is None or src.codec == "auto":
        return f"{head} ! {_decode('auto', hardware, src)} ! {FILE_SINK}"
    return f"{head} ! {demux} ! {_decode(src.codec, hardware, src)} ! {FILE_SINK}"


def csi_pipeline(src: VideoSource) -> str:
    """``nvarguscamerasrc sensor-id=N ! video/x-raw(memory:NVMM),... ! nvvidconv ! ...``.

    Width/height/fps must be a mode the sensor offers (``gst-inspect-1.0 nvarguscamerasrc``
    and the Argus log list them); 1920x1080 at 30 fps is the common IMX219/IMX477 mode.
    """
    caps = _raw_caps(
        replace(src, width=src.width or 1920, height=src.height or 1080, fps=src.fps or 30),
        "video/x-raw(memory:NVMM)",
    )
    flip = f" flip-method={src.flip_method}" if src.flip_method else ""
    return (
        f"nvarguscamerasrc sensor-id={src.sensor_id} ! {caps},format=NV12 ! "
        f"nvvidconv{flip} ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        f"{LIVE_SINK}"
    )


def usb_pipeline(src: VideoSource, hardware: bool = True) -> str:
    """``v4l2src device=/dev/videoN ! video/x-raw,... ! (nvvidconv|videoconvert) ! appsink``."""
    conv = TO_BGR_NV if hardware else TO_BGR_SW
    return f"v4l2src device={src.location} ! {_raw_caps(src)} ! {conv} ! {LIVE_SINK}"


def build_pipeline(src: VideoSource, hardware: bool = True) -> str:
    """The GStreamer pipeline for ``src`` (hardware elements when ``hardware``)."""
    if src.type == "rtsp":
        return rtsp_pipeline(src, hardware)
    if src.type == "file":
        return file_pipeline(src, hardware)
    if src.type == "csi":
        return csi_pipeline(src)
    if src.type == "usb":
        return usb_pipeline(src, hardware)
    if src.type == "pipeline":
        return src.location
    raise CaptureUnavailable(
        f"{src.location}: {src.type} sources are opened with FFmpeg, not a GStreamer pipeline"
    )


# ---------------------------------------------------------------------------------- platform


@dataclass(frozen=True)
class Platform:
    """GStreamer elements present and whether OpenCV can open GStreamer pipelines."""

    elements: frozenset[str]
    opencv_gstreamer: bool

    @property
    def hardware_decode(self) -> bool:
        return all(e in self.elements for e in HW_DECODE)

    @property
    def csi(self) -> bool:
        return CSI_SOURCE in self.elements and "nvvidconv" in self.elements

    def has(self, *names: str) -> bool:
        return all(n in self.elements for n in names)


def gst_element_exists(name: str, timeout_s: float = 10.0) -> bool:
    """``gst-inspect-1.0 NAME`` exits 0 when the element is installed."""
    exe = shutil.which("gst-inspect-1.0")
    if exe is None:
        return False
    try:
        return (
            subprocess.run(
                [exe, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def detect_platform(
    exists: Callable[[str], bool] | None = None,
    opencv_gstreamer: bool | None = None,
    elements: Iterable[str] = INSPECTED,
) -> Platform:
    """Probe this machine (``exists`` and ``opencv_gstreamer`` are injectable for tests)."""
    exists = exists or gst_element_exists
    if opencv_gstreamer is None:
        from edge.capture.sources import gstreamer_available

        opencv_gstreamer = gstreamer_available()
    return Platform(frozenset(e for e in elements if exists(e)), bool(opencv_gstreamer))


def choose_capture(
    source: VideoSource | str | int, platform: Platform
) -> tuple[CaptureBackend, str]:
    """(``"gstreamer"``, pipeline) when this platform can hardware-decode the source through an
    OpenCV with GStreamer; else (``"ffmpeg"``, the URL/path/device for OpenCV's own backends:
    FFmpeg for files and streams, V4L2 for USB cameras).

    Raises `CaptureUnavailable` for sources that only exist through GStreamer (CSI cameras,
    explicit pipelines) when this platform cannot run them.
    """
    src = source if isinstance(source, VideoSource) else parse_source(source)
    if src.type == "pipeline":
        if not platform.opencv_gstreamer:
            raise CaptureUnavailable(_NO_CV_GST.format(what="a GStreamer pipeline"))
        return "gstreamer", src.location
    if src.type == "csi":
        if not platform.csi:
            raise CaptureUnavailable(
                f"CSI camera {src.sensor_id} needs nvarguscamerasrc and nvvidconv (JetPack's "
                "GStreamer plugins); not found by gst-inspect-1.0 on this machine"
            )
        if not platform.opencv_gstreamer:
            raise CaptureUnavailable(_NO_CV_GST.format(what=f"CSI camera {src.sensor_id}"))
        return "gstreamer", csi_pipeline(src)
    usable = platform.opencv_gstreamer and platform.hardware_decode
    if src.type == "rtsp" and usable and platform.has("rtspsrc"):
        return "gstreamer", rtsp_pipeline(src, hardware=True)
    if src.type == "file" and usable:
        return "gstreamer", file_pipeline(src, hardware=True)
    if src.type == "usb" and usable and platform.has("v4l2src"):
        return "gstreamer", usb_pipeline(src, hardware=True)
    return "ffmpeg", src.location


_NO_CV_GST = (
    "{what} needs an OpenCV built with GStreamer; this one is not (cv2.getBuildInformation() says "
    "'GStreamer: NO', as every pip opencv wheel does). On Jetson use JetPack's python3-opencv "
    "(the deploy/jetson Docker image does) and uninstall pip's opencv-python*"
)


@lru_cache(maxsize=1)
def this_platform() -> Platform:
    """The probe of this machine, once per process (gst-inspect-1.0 runs take a while). Without
    an OpenCV that opens GStreamer pipelines nothing else matters, so nothing is inspected."""
    from edge.capture.sources import gstreamer_available

    if not gstreamer_available():
        return Platform(frozenset(), False)
    return detect_platform(opencv_gstreamer=True)


def plan_capture(
    source: str | int,
    decoder: Literal["auto", "ffmpeg", "gstreamer"],
    platform: Platform | None = None,
    **options: Any,
) -> tuple[CaptureBackend, str | int]:
    """How a camera's ``source`` is opened: ``decoder`` auto takes the Jetson hardware pipeline
    where `choose_capture` finds one (NVDEC for RTSP and files, the ISP for ``csi://N``), else
    OpenCV's own backends; ``gstreamer`` insists on GStreamer (CaptureUnavailable says why it
    cannot); ``ffmpeg`` never builds a pipeline. ``options`` are `VideoSource` fields."""
    if decoder == "ffmpeg":
        return "ffmpeg", source
    src = parse_source(source, **options)
    backend, target = choose_capture(src, platform or this_platform())
    if decoder == "gstreamer" and backend != "gstreamer":
        raise CaptureUnavailable(
            f"decoder: gstreamer, but this machine cannot hardware-decode {src.type} sources "
            "through GStreamer (needs nvv4l2decoder + nvvidconv and an OpenCV built with "
            "GStreamer); use decoder: auto or ffmpeg"
        )
    return backend, (target if backend == "gstreamer" else source)


def main(argv: list[str] | None = None) -> int:
    """``python3 -m edge.capture.gstreamer SOURCE [--codec h265] [--width W --height H --fps F]``:
    print
    how this machine would capture SOURCE (for pasting into cameras.yaml)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python3 -m edge.capture.gstreamer", description=main.__doc__)
    ap.add_argument("source", help="rtsp://..., a file, csi://N, /dev/videoN or N")
    ap.add_argument("--codec", choices=["h264", "h265", "auto"], default="h264")
    ap.add_argument("--width", type=int)
    ap.add_argument("--height", type=int)
    ap.add_argument("--fps", type=float)
    ap.add_argument(
        "--jetson",
        action="store_true",
        help="print the Jetson hardware pipeline even on this machine",
    )
    a = ap.parse_args(argv)
    src = parse_source(a.source, codec=a.codec, width=a.width, height=a.height, fps=a.fps)
    if a.jetson:
        print(build_pipeline(src, hardware=True))
        return 0
    try:
        backend, target = choose_capture(src, detect_platform())
    except CaptureUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# {backend}")
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
