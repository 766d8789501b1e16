"""The sink stage: moves events, alerts and stats to a `Sink` on its own thread, so MQTT
spooling or a slow disk never blocks inference."""

from __future__ import annotations

import logging
import queue
import threading
import time

from edge.events.alerts import Alert
from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink

log = logging.getLogger("platewatch.sinks")

Item = PlateEvent | CameraStats | Alert


class SinkWorker:
    """Unbounded queue (events are few, and dropping one is never an option) + one thread."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._queue: queue.Queue[Item | None] = queue.Queue()
        self.events = 0
        self.alerts = 0
        self.seconds = 0.0  # time spent inside the sink (the "sink" stage)
        self._busy_since: float | None = None  # monotonic start of the current item (watchdog)
        self._closing = False
        self._thread = self._start_thread()

    def _start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self._run, name="sinks", daemon=True)
        t.start()
        return t

    def put(self, item: Item) -> None:
        self._queue.put(item)

    @property
    def busy_since(self) -> float | None:
        return self._busy_since

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._closing

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def restart(self) -> None:
        """A new thread on the same queue (the watchdog calls this when the thread died)."""
        if not self._closing and not self._thread.is_alive():
            self._busy_since = None
            self._thread = self._start_thread()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            t0 = time.perf_counter()
            self._busy_since = time.monotonic()
            try:
                if isinstance(item, PlateEvent):
                    self.sink.publish_event(item)
                    self.events += 1
                elif isinstance(item, Alert):
                    self.sink.publish_alert(item)
                    self.alerts += 1
                else:
                    self.sink.publish_stats(item)
            except Exception:
                log.exception("sink failed on %s", type(item).__name__)
            finally:
                self._busy_since = None
                self._queue.task_done()
            self.seconds += time.perf_counter() - t0

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until every queued item reached the sink and the sink has
        delivered it (an MQTT broker that just came back takes its spool). True when done."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.sink.flush(max(0.0, deadline - time.monotonic())) and not (
            self._queue.unfinished_tasks
        )

    def close(self, timeout: float = 1.5) -> None:
        """Deliver everything queued, then close the sink; within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._closing = True
        self._queue.put(None)
        self._thread.join(max(0.0, timeout * 0.5))
        if self._thread.is_alive():
            log.warning("sink thread still busy at shutdown; closing the sinks anyway")
        self.sink.close(max(0.1, deadline - time.monotonic()))
