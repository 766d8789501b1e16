"""The clock an analyzer votes on.

Files vote on their video time, so dedupe windows and parked-car limits mean video seconds even
when a file is replayed faster than real time; their events report UTC as ``origin +
video_time``, where origin is the wall time of the first frame minus its video time. Live
sources use the frame's wall clock. The clock never runs backwards (the voter needs time order).
"""

from __future__ import annotations

from edge.types import Frame


class StreamClock:
    def __init__(self) -> None:
        self.is_file: bool | None = None  # decided by the first frame
        self._origin: float | None = None
        self._last: float | None = None

    def now(self, frame: Frame) -> float:
        if self.is_file is None:
            self.is_file = frame.video_time_s is not None
            if self.is_file:
                self._origin = frame.timestamp - float(frame.video_time_s or 0.0)
        t = (
            float(frame.video_time_s)
            if self.is_file and frame.video_time_s is not None
            else frame.timestamp
        )
        if self._last is not None and t < self._last:
            t = self._last
        self._last = t
        return t

    @property
    def utc_offset(self) -> float:
        """Seconds to add to this clock for epoch seconds (0 for live sources)."""
        return self._origin if self.is_file and self._origin is not None else 0.0
