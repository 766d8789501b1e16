"""Frame sources: one small reader per kind of input (video file, stream, USB, GStreamer, folder).

This module owns *opening and reading* a source and nothing else: no threads, no queues, no
retry policy (that is `edge.capture.camera`). Every source answers `read()` with a `SourceRead` that
says one of three things: here is a good frame (possibly after skipping corrupt ones), the source
ended cleanly (files and folders only), or the source failed (live sources: reconnect).
"""

from __future__ import annotations

import enum
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_DEV_VIDEO = re.compile(r"^/dev/video\d+$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

# A file read that fails is retried this many times before we call it the end of the file:
# FFmpeg reports a damaged packet as a failed read and then carries on with the next one.
MAX_FILE_READ_FAILURES = 50
# When the container does not say how many frames it holds, give up sooner.
MAX_FILE_READ_FAILURES_UNKNOWN_LENGTH = 5
# A live source that keeps returning empty images is treated as failed after this many.
MAX_LIVE_CORRUPT_IN_A_ROW = 25


class SourceKind(str, enum.Enum):
    FILE = "file"
    STREAM = "stream"
    USB = "usb"
    GSTREAMER = "gstreamer"
    IMAGES = "images"
    CSI = "csi"  # a Jetson CSI camera, csi://N (only through GStreamer's nvarguscamerasrc)

    @property
    def is_live(self) -> bool:
        """Live sources produce frames on their own clock; we cannot make them wait."""
        return self in (SourceKind.STREAM, SourceKind.USB, SourceKind.GSTREAMER, SourceKind.CSI)


class SourceError(Exception):
    """A source could not be opened. ``permanent`` errors are not worth retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class SourceRead:
    """Result of one `FrameSource.read()`.

    ``corrupt`` counts frames skipped (unreadable or empty) before this result; ``early_eof`` is
    set on ``eof`` when a file ended before the frame count its container announced.
    """

    status: Literal["ok", "eof", "error"]
    image: np.ndarray | None = None
    index: int | None = None
    time_s: float | None = None
    corrupt: int = 0
    early_eof: bool = False
    error: str | None = None


class FrameSource(Protocol):
    """What `edge.capture.camera.CameraCapture` needs from a source (tests inject fakes)."""

    is_live: bool

    def open(self) -> None: ...  # raises SourceError

    def read(self) -> SourceRead: ...

    @property
    def fps(self) -> float | None: ...

    def close(self) -> None: ...


_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)([^/\s]+)@")


def redact(source: str | int) -> str:
    """The source as text with any URL password replaced by ``***`` (for logs and summaries)."""
    return _CREDENTIALS.sub(r"\1***@", str(source))


def detect_source_kind(source: str | int) -> SourceKind:
    """Guess the kind of a source string the way a user would write it.

    ``0`` / ``"0"`` / ``/dev/video0`` -> USB; ``gst:...`` or anything containing ``!`` ->
    GStreamer pipeline; ``csi://0`` -> Jetson CSI camera; ``rtsp://``, ``http://`` ... -> stream;
    an existing directory -> image
    folder; anything else -> video file.
    """
    if isinstance(source, bool):  # bool is an int; a YAML `yes` is never a camera index
        raise ValueError(f"not a video source: {source!r}")
    if isinstance(source, int):
        return SourceKind.USB
    s = source.strip()
    if not s:
        raise ValueError("empty source")
    if s.isdigit() or _DEV_VIDEO.match(s):
        return SourceKind.USB
    if s.startswith("gst:") or "!" in s:
        return SourceKind.GSTREAMER
    if re.match(r"^csi:(//)?\d+$", s, re.IGNORECASE):
        return SourceKind.CSI
    m = _SCHEME.match(s)
    if m and m.group(1).lower() in STREAM_SCHEMES:
        return SourceKind.STREAM
    if m and m.group(1).lower() == "file":
        return SourceKind.FILE
    if os.path.isdir(s) or s.endswith(("/", os.sep)):
        return SourceKind.IMAGES
    return SourceKind.FILE


@lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """True when this OpenCV build can open GStreamer pipelines (pip wheels cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return line.split(":", 1)[1].strip().upper().startswith("YES")
    return False


def gstreamer_pipeline(source: str) -> str:
    """Strip the ``gst:`` prefix and make sure the pipeline ends in an appsink OpenCV can read.

    ``drop=true max-buffers=2`` keeps a slow consumer from building latency inside GStreamer;
    our own queue does the accounting of dropped frames.
    """
    p = source.strip()
    if p.startswith("gst:"):
        p = p[4:].strip()
    if "appsink" not in p:
        p += " ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=2 sync=false"
    return p


def _natural_key(path: Path) -> list[object]:
    # img2.jpg sorts before img10.jpg: people number frames without zero padding.
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _usable(image: np.ndarray | None) -> bool:
    return image is not None and image.size > 0 and image.ndim in (2, 3)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    # Some USB cameras and GStreamer caps deliver grey or BGRA; everything downstream wants BGR.
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class OpenCVSource:
    """Video file, network stream, USB camera or GStreamer pipeline through cv2.VideoCapture."""

    def __init__(
        self,
        kind: SourceKind,
        source: str | int,
        *,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 5.0,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        if kind is SourceKind.IMAGES:
            raise ValueError("use ImageFolderSource for image folders")
        self.kind = kind
        self.source = source
        self.is_live = kind.is_live
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._fps_override = fps
        self._width = width
        self._height = height
        self._cap: cv2.VideoCapture | None = None
        self._fps: float | None = fps
        self._frame_count: int | None = None
        self._next_index = 0
        self._last_index = -1

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return self._frame_count

    def _timeouts(self, network: bool = False) -> list[int]:
        read_ms = self.read_timeout_s * 1000
        if network:
            # On a stalled RTSP stream (connection open, no packets) OpenCV's FFmpeg backend
            # gives up after about three times its read timeout (measured with gst-rtsp-server
            # frozen: 1 s -> 3.0 s, 2 s -> 6.0 s, 4 s -> 12.0 s): ask for a third, so a stall is
            # found after read_timeout_s as configured.
            read_ms /= 3
        return [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            max(1, int(self.open_timeout_s * 1000)),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            max(1, int(read_ms)),
        ]

    def _create(self) -> cv2.VideoCapture:
        kind, src = self.kind, self.source
        if kind is SourceKind.GSTREAMER:
            if not gstreamer_available():
                raise SourceError(
                    "this OpenCV build has no GStreamer support (cv2.getBuildInformation() says "
                    "'GStreamer: NO'; pip's opencv-python wheels never have it). Use the "
                    "distribution's OpenCV (on Jetson: JetPack's python3-opencv) or give the "
                    "camera as a file/rtsp URL instead",
                    permanent=True,
                )
            return cv2.VideoCapture(gstreamer_pipeline(str(src)), cv2.CAP_GSTREAMER)
        if kind is SourceKind.USB:
            if isinstance(src, int) or str(src).isdigit():
                target: str | int = int(src)
            else:
                target = str(src)
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            cap = cv2.VideoCapture(target, backend)
            if self._width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
            if self._height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
            if self._fps_override:
                cap.set(cv2.CAP_PROP_FPS, self._fps_override)
            # One buffered frame: a USB camera queue only adds latency for a live pipeline.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap
        uri = str(src)
        if kind is SourceKind.FILE:
            path = uri[len("file://") :] if uri.startswith("file://") else uri
            if not os.path.exists(path):
                raise SourceError(f"video file not found: {path}", permanent=True)
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, self._timeouts())
            if not cap.isOpened():  # OpenCV builds without FFmpeg (some Jetson images)
                cap = cv2.VideoCapture(path, cv2.CAP_ANY)
            return cap
        # Network stream: FFmpeg with open/read timeouts, else a silent server blocks for 30 s.
        return cv2.VideoCapture(uri, cv2.CAP_FFMPEG, self._timeouts(network=True))

    def open(self) -> None:
        self.close()
        try:
            cap = self._create()
        except cv2.error as e:
            raise SourceError(f"OpenCV could not open {self.describe()}: {e}") from e
        if not cap.isOpened():
            cap.release()
            why = unreadable_video_reason(str(self.source)) if self.kind is SourceKind.FILE else ""
            raise SourceError(
                f"could not open {self.describe()}" + (f": {why}" if why else ""),
                # A file that exists but cannot be decoded will not get better by retrying.
                permanent=self.kind is SourceKind.FILE,
            )
        self._cap = cap
        reported = cap.get(cv2.CAP_PROP_FPS)
        if self._fps_override:
            self._fps = float(self._fps_override)
        elif reported and 0 < reported < 1000:
            self._fps = float(reported)
        else:
            self._fps = None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._frame_count = int(count) if self.kind is SourceKind.FILE and count > 0 else None
        self._next_index = 0
        self._last_index = -1

    def describe(self) -> str:
        return f"{self.kind.value} source {redact(self.source)!r}"

    def read(self) -> SourceRead:
        cap = self._cap
        if cap is None:
            return SourceRead("error", error="source is not open")
        if self.is_live:
            return self._read_live(cap)
        return self._read_file(cap)

    def _read_live(self, cap: cv2.VideoCapture) -> SourceRead:
        corrupt = 0
        while True:
            try:
                ok, image = cap.read()
            except cv2.error as e:
                return SourceRead("error", corrupt=corrupt, error=f"read failed: {e}")
            if not ok:
                return SourceRead(
                    "error",
                    corrupt=corrupt,
                    error=f"no frame within {self.read_timeout_s:g} s or stream lost",
                )
            if not _usable(image):
                corrupt += 1
                if corrupt >= MAX_LIVE_CORRUPT_IN_A_ROW:
                    return SourceRead("error", corrupt=corrupt, error="only empty frames")
                continue
            index = self._next_index
            self._next_index += 1
            return SourceRead("ok", image=_as_bgr(image), index=index, corrupt=corrupt)

    def _read_file(self, cap: cv2.VideoCapture) -> SourceRead:
        failures = 0
        limit = (
            MAX_FILE_READ_FAILURES
            if self._frame_count is not None
            else MAX_FILE_READ_FAILURES_UNKNOWN_LENGTH
        )
        while True:
            try:
                ok, image = cap.read()
            except cv2.error:
                ok, image = False, None
            if ok and image is not None and _usable(image):
                index, time_s = self._position(cap)
                return SourceRead(
                    "ok", image=_as_bgr(image), index=index, time_s=time_s, corrupt=failures
                )
            failures += 1
            pos = cap.get(cv2.CAP_PROP_POS_FRAMES)
            at_end = self._frame_count is not None and pos >= self._frame_count
            if at_end or failures >= limit:
                # Failures that no good frame followed are the end of the file, not corruption.
                early = self._frame_count is not None and self._last_index + 1 < self._frame_count
                return SourceRead("eof", early_eof=early)

    def _position(self, cap: cv2.VideoCapture) -> tuple[int, float | None]:
        """Source frame number and presentation time of the frame just read.

        The time comes from the container (pts), so frames the decoder had to skip leave a gap in
        the index instead of shifting every later frame.
        """
        ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        time_s = ms / 1000.0 if ms is not None and ms >= 0 else None
        index = self._last_index + 1
        if time_s is not None and self._fps:
            index = max(index, int(round(time_s * self._fps)))
        if time_s is None and self._fps:
            time_s = index / self._fps
        self._last_index = index
        return index, time_s

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource:
    """A folder of still images played as a video at a fixed fps, in natural sort order."""

    is_live = False

    def __init__(self, folder: str | Path, *, fps: float | None = None) -> None:
        self.folder = Path(folder)
        self._fps = float(fps) if fps else 1.0
        self._files: list[Path] = []
        self._pos = 0

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return len(self._files)

    def describe(self) -> str:
        return f"image folder {str(self.folder)!r}"

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}", permanent=True)
        self._files = sorted(
            (
                p
                for p in self.folder.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            ),
            key=_natural_key,
        )
        if not self._files:
            raise SourceError(
                f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.folder}", permanent=True
            )
        self._pos = 0

    def read(self) -> SourceRead:
        corrupt = 0
        while self._pos < len(self._files):
            index = self._pos
            self._pos += 1
            image = cv2.imread(str(self._files[index]), cv2.IMREAD_COLOR)
            if not _usable(image):
                corrupt += 1
                continue
            return SourceRead(
                "ok", image=image, index=index, time_s=index / self._fps, corrupt=corrupt
            )
        return SourceRead("eof", corrupt=corrupt)

    def close(self) -> None:
        self._files = []
        self._pos = 0


def unreadable_video_reason(uri: str) -> str:
    """Why a video file that exists cannot be opened, in words a user can act on ('' if unknown).

    OpenCV only says "not opened"; PyAV (the same FFmpeg libraries) tells an empty file, a
    container it cannot parse (an mp4 cut before its index is the common case: the recorder
    died) and a stream whose codec no decoder here knows apart."""
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty"
    except OSError as e:
        return e.strerror or str(e)
    try:
        import av
    except ImportError:  # pragma: no cover - av is a core dependency
        return ""
    try:
        with av.open(path) as container:
            video = [s for s in container.streams if s.type == "video"]
            if not video:
                return "the file has no video stream"
            if video[0].codec_context is None:
                return "no decoder here knows the video's codec (unknown fourcc)"
    except av.error.InvalidDataError:
        return (
            "the container cannot be parsed: truncated (an mp4 cut before its index, e.g. a "
            "recorder that died) or not a video"
        )
    except (av.error.FFmpegError, OSError) as e:
        return str(e)
    return ""
