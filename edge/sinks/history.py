"""History sink: every FINAL event (after privacy) into the local SQLite history
(edge.history.store).

It runs on the pipeline's sink thread like any other sink, first in the `MultiSink`, so a slow
disk never blocks inference and an event is stored before it goes to the network sinks. The crop
stored is the event's own ``crop_jpeg_b64`` (hashed plates are stored without one).
"""

from __future__ import annotations

import logging

from edge.events.schema import PlateEvent
from edge.history.store import HistoryStore
from edge.sinks.base import Sink

log = logging.getLogger(__name__)


class HistorySink(Sink):
    """Adds final events to a `HistoryStore`; provisional events and stats are ignored."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.stored = 0

    def publish_event(self, event: PlateEvent) -> None:
        if event.type == "final" and self.store.add(event):
            self.stored += 1

    def close(self, timeout: float = 2.0) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"HistorySink({self.store.path})"


__all__ = ["HistorySink"]
