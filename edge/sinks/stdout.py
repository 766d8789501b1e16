"""Print events (and optionally stats) as JSON, one object per line."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink


class StdoutSink(Sink):
    """One JSON object per line on ``stream`` (default stdout).

    ``include_crop=False`` (the default) nulls ``crop_jpeg_b64``: kilobytes of base64 make a
    terminal unreadable. Use JsonlSink for the exact wire objects.
    """

    def __init__(
        self, stream: TextIO | None = None, *, include_crop: bool = False, stats: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.include_crop = include_crop
        self.stats = stats
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def publish_event(self, event: PlateEvent) -> None:
        if not self.include_crop and event.crop_jpeg_b64 is not None:
            event = event.model_copy(update={"crop_jpeg_b64": None})
        self._write(event.to_json())

    def publish_stats(self, stats: CameraStats) -> None:
        if self.stats:
            self._write(stats.to_json())

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            self.stream.flush()
