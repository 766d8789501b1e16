"""Annotated video for ``platewatch replay --annotate``: boxes, track ids and the voted plate.

`draw_overlays` is a pure drawing function (frame in, frame out, in place) and `shown` the
pure choice of what is drawn; `VideoAnnotator` writes every frame of the clip (analysed or not:
the last known tracks are drawn on skipped frames) on its own thread, with a bounded queue so a
slow disk holds back the replay instead of buffering the whole clip in memory.

The file is H.264 in MP4 (yuv420p), which every browser and player opens, through PyAV's
bundled libx264. Without PyAV it falls back to OpenCV's mp4v (MPEG-4 part 2), with a warning:
most browsers do not play that.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edge.analysis.analyzer import TrackOverlay

log = logging.getLogger("platewatch.annotate")

VEHICLE_COLOUR = (255, 160, 0)  # BGR: blue-ish
PLATE_COLOUR = (0, 200, 255)  # amber: no decision yet
PROVISIONAL_COLOUR = (0, 255, 255)  # yellow
FINAL_COLOUR = (0, 220, 0)  # green
# A plate track is drawn once its vote could become an event: stripes, signs and badges the
# detector boxes for a frame or two read as one or two junk characters (the demo showed 7-8
# such boxes a frame). Unlinked ones must also be this sure.
MIN_UNLINKED_CONFIDENCE = 0.5
MIN_TEXT_LENGTH = 4  # the voter's default min_plate_length: shorter is never an event
LEGEND = (
    ("V12", VEHICLE_COLOUR, "vehicle track"),
    ("P14 ?", PLATE_COLOUR, "plate track, voting"),
    ("(P)", PROVISIONAL_COLOUR, "provisional published"),
    ("(F)", FINAL_COLOUR, "final published"),
)


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    scale = max(0.5, img.shape[0] / 1400)
    thick = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    y = max(h + base + 2, y)
    cv2.rectangle(img, (x, y - h - base - 4), (x + w + 4, y), colour, -1)
    cv2.putText(img, text, (x + 2, y - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick)


def shown(overlays: Sequence[TrackOverlay], everything: bool = False) -> list[TrackOverlay]:
    """The tracks worth drawing: every vehicle; a plate with a published decision, or whose
    vote reads at least `MIN_TEXT_LENGTH` characters and is tied to a vehicle or at least
    `MIN_UNLINKED_CONFIDENCE` sure (``everything``: all of them)."""
    if everything:
        return list(overlays)
    return [
        o
        for o in overlays
        if o.kind == "vehicle"
        or o.status is not None
        or (
            len(o.plate or "") >= MIN_TEXT_LENGTH
            and (o.linked or (o.confidence or 0.0) >= MIN_UNLINKED_CONFIDENCE)
        )
    ]


def draw_legend(image: np.ndarray) -> None:
    """What the labels mean, bottom left."""
    scale = max(0.45, image.shape[0] / 1600)
    step = int(28 * scale / 0.5)
    y = image.shape[0] - 8 - step * (len(LEGEND) - 1)
    for tag, colour, meaning in LEGEND:
        _label(image, f"{tag} {meaning}", 6, y, colour)
        y += step


def draw_overlays(
    image: np.ndarray, overlays: Sequence[TrackOverlay], header: str | None = None
) -> np.ndarray:
    """Draw tracks on ``image`` (in place) and return it.

    Vehicles: box + ``V<id>``. Plates: box + ``P<id> PLATE`` with the decision state (``?``
    voting, ``(P)`` provisional published, ``(F)`` final published) and ``->V<id>`` when the plate
    is tied to a vehicle: ids are the tracker's, unique per track, so no id is on two boxes.
    Tracks not matched in the last analysed frame (coasting on the Kalman prediction) are drawn
    thin. A legend says what the labels mean.
    """
    thick = max(2, image.shape[0] // 360)
    for o in overlays:
        x1, y1, x2, y2 = (int(round(v)) for v in o.box)
        t = thick if o.matched else 1
        if o.kind == "vehicle":
            cv2.rectangle(image, (x1, y1), (x2, y2), VEHICLE_COLOUR, t)
            _label(image, f"V{o.track_id}", x1, y1, VEHICLE_COLOUR)
            continue
        colour = {"provisional": PROVISIONAL_COLOUR, "final": FINAL_COLOUR}.get(
            o.status or "", PLATE_COLOUR
        )
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, t)
        mark = {"provisional": " (P)", "final": " (F)"}.get(o.status or "", " ?")
        tie = f" ->V{o.vote_key}" if o.linked and o.vote_key not in (None, o.track_id) else ""
        text = f"P{o.track_id} {o.plate or '...'}{mark}{tie}"
        _label(image, text, x1, y2 + max(18, image.shape[0] // 40), colour)
    if header:
        _label(image, header, 4, max(24, image.shape[0] // 30), (255, 255, 255))
    draw_legend(image)
    return image


class _Writer(Protocol):
    def write(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


class H264Writer:
    """H.264 (libx264, yuv420p) in MP4 through PyAV."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        from fractions import Fraction

        import av  # imported here: only replays that annotate need it

        self._container: Any = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream: Any = self._container.add_stream("libx264", rate=rate)
        # yuv420p needs even sizes; the last odd row/column is cut (never scaled)
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}
        self._av = av

    def write(self, image: np.ndarray) -> None:
        h, w = self._stream.height, self._stream.width
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), "bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


class Mp4vWriter:
    """OpenCV's MPEG-4 part 2 (mp4v): the fallback without PyAV."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        self._writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height)
        )
        if not self._writer.isOpened():
            raise OSError(f"cannot open video writer for {path}")

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)

    def close(self) -> None:
        self._writer.release()


def open_writer(path: Path, fps: float, width: int, height: int) -> tuple[_Writer, str]:
    """(writer, codec name): H.264 when PyAV is installed, else mp4v with a warning."""
    try:
        return H264Writer(path, fps, width, height), "h264"
    except ImportError:
        log.warning(
            "PyAV is not installed: writing %s as mp4v, which most browsers do not play "
            "(pip install av for H.264)",
            path,
        )
    return Mp4vWriter(path, fps, width, height), "mp4v"


class VideoAnnotator:
    """Writes annotated frames to ``path`` (H.264, else mp4v) from a background thread."""

    def __init__(
        self, path: str | Path, fps: float, queue_size: int = 8, everything: bool = False
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 25.0
        self._queue: queue.Queue[tuple[np.ndarray, list[TrackOverlay], str] | None] = queue.Queue(
            queue_size
        )
        self._writer: _Writer | None = None
        self.codec: str | None = None
        self.everything = everything  # draw every plate track, junk boxes too
        self.frames_written = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="annotate", daemon=True)
        self._thread.start()

    def put(self, image: np.ndarray, overlays: Sequence[TrackOverlay], header: str = "") -> None:
        """Queue one frame (blocks when the writer is behind). The image is drawn on: pass a
        frame nobody else reads afterwards (the pipeline is done with it)."""
        if self.error is None:
            self._queue.put((image, list(overlays), header))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            image, overlays, header = item
            try:
                if self._writer is None:
                    h, w = image.shape[:2]
                    self._writer, self.codec = open_writer(self.path, self.fps, w, h)
                self._writer.write(draw_overlays(image, shown(overlays, self.everything), header))
                self.frames_written += 1
            except Exception as e:  # keep the replay going; report at close
                self.error = f"{type(e).__name__}: {e}"
                log.error("annotated video %s: %s", self.path, self.error)

    def close(self, timeout: float | None = None) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as e:  # a full disk at the end: say so, like any write error
                self.error = self.error or f"{type(e).__name__}: {e}"


__all__ = ["VideoAnnotator", "draw_legend", "draw_overlays", "open_writer", "shown"]
