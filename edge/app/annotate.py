"""Annotated video for ``platewatch replay --annotate``: boxes, track ids and the voted plate.

`draw_overlays` is a pure drawing function (frame in, frame out, in place); `VideoAnnotator`
writes every frame of the clip (analysed or not: the last known tracks are drawn on skipped
frames) to an mp4 on its own thread, with a bounded queue so a slow disk holds back the replay
instead of buffering the whole clip in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.analysis.analyzer import TrackOverlay

log = logging.getLogger("platewatch.annotate")

VEHICLE_COLOUR = (255, 160, 0)  # BGR: blue-ish
PLATE_COLOUR = (0, 200, 255)  # amber: no decision yet
PROVISIONAL_COLOUR = (0, 255, 255)  # yellow
FINAL_COLOUR = (0, 220, 0)  # green


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    scale = max(0.5, img.shape[0] / 1400)
    thick = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    y = max(h + base + 2, y)
    cv2.rectangle(img, (x, y - h - base - 4), (x + w + 4, y), colour, -1)
    cv2.putText(img, text, (x + 2, y - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick)


def draw_overlays(
    image: np.ndarray, overlays: Sequence[TrackOverlay], header: str | None = None
) -> np.ndarray:
    """Draw tracks on ``image`` (in place) and return it.

    Vehicles: box + ``V<id>``. Plates: box + ``#<vote key> PLATE`` with the decision state:
    ``?`` voting, ``(P)`` provisional published, ``(F)`` final published. Tracks not matched in
    the last analysed frame (coasting on the Kalman prediction) are drawn thin.
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
        text = f"#{o.track_id} {o.plate or '...'}{mark}"
        _label(image, text, x1, y2 + max(18, image.shape[0] // 40), colour)
    if header:
        _label(image, header, 4, max(24, image.shape[0] // 30), (255, 255, 255))
    return image


class VideoAnnotator:
    """Writes annotated frames to ``path`` (mp4v) from a background thread."""

    def __init__(self, path: str | Path, fps: float, queue_size: int = 8) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps and fps > 0 else 25.0
        self._queue: queue.Queue[tuple[np.ndarray, list[TrackOverlay], str] | None] = queue.Queue(
            queue_size
        )
        self._writer: cv2.VideoWriter | None = None
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
                    self._writer = cv2.VideoWriter(
                        str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h)
                    )
                    if not self._writer.isOpened():
                        raise OSError(f"cannot open video writer for {self.path}")
                self._writer.write(draw_overlays(image, overlays, header))
                self.frames_written += 1
            except Exception as e:  # keep the replay going; report at close
                self.error = f"{type(e).__name__}: {e}"
                log.error("annotated video %s: %s", self.path, self.error)

    def close(self, timeout: float | None = None) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._writer is not None:
            self._writer.release()


__all__ = ["VideoAnnotator", "draw_overlays"]
