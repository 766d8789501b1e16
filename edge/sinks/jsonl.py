"""JSON Lines file sink: one event per line, the same objects as on MQTT."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink


class JsonlSink(Sink):
    """Append events to ``path`` (created with its parent directory), flushed per line.

    Stats are not mixed into the event file; pass ``stats_path`` to log them to their own file.
    ``fsync=True`` also forces each line to disk (slower; for power-loss durability).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        stats_path: str | os.PathLike[str] | None = None,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._stats_fh = None
        if stats_path is not None:
            Path(stats_path).parent.mkdir(parents=True, exist_ok=True)
            self._stats_fh = Path(stats_path).open("a", encoding="utf-8")
        self.fsync = fsync
        self._lock = threading.Lock()

    def _append(self, fh, line: str) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            if fh.closed:
                raise RuntimeError(f"JsonlSink({self.path}) is closed")
            fh.write(line + "\n")
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())

    def publish_event(self, event: PlateEvent) -> None:
        self._append(self._fh, event.to_json())

    def publish_stats(self, stats: CameraStats) -> None:
        if self._stats_fh is not None:
            self._append(self._stats_fh, stats.to_json())

    def close(self, timeout: float = 2.0) -> None:
        with self._lock:
            for fh in (self._fh, self._stats_fh):
                if fh is not None and not fh.closed:
                    fh.close()
