"""The sink interface: where plate events and camera stats go (MQTT, JSON Lines, stdout).

Sinks receive validated models and emit ``model.to_json()`` unchanged, so every sink carries the
same objects. ``publish_*`` must not block the pipeline for long: durable sinks write to disk
and return; network I/O happens on their own threads.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from types import TracebackType

from edge.events.alerts import Alert
from edge.events.schema import CameraStats, PlateEvent

log = logging.getLogger(__name__)


class Sink(ABC):
    """Destination for events and stats. Thread-safe: cameras may publish concurrently."""

    @abstractmethod
    def publish_event(self, event: PlateEvent) -> None:
        """Deliver (or durably enqueue) one plate event."""

    def publish_stats(self, stats: CameraStats) -> None:  # noqa: B027 - optional by design
        """Deliver camera stats; sinks that do not report health ignore them."""

    def publish_alert(self, alert: Alert) -> None:  # noqa: B027 - optional
        """Deliver one watchlist alert (edge.events.alerts). Sinks without an alert channel
        ignore it: the event itself carries the match."""

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until everything accepted so far is delivered; True if it was in time."""
        return True

    def pending(self) -> int:
        """Messages accepted but not delivered yet (after close: left for the next start)."""
        return 0

    @abstractmethod
    def close(self, timeout: float = 2.0) -> None:
        """Flush what can be flushed within ``timeout`` seconds and release resources."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MultiSink(Sink):
    """Fan out to several sinks. One failing sink is logged and does not starve the others."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = list(sinks)

    def publish_event(self, event: PlateEvent) -> None:
        for sink in self.sinks:
            try:
                sink.publish_event(event)
            except Exception:
                log.exception("sink %s failed to publish event %s", sink, event.event_id)

    def publish_stats(self, stats: CameraStats) -> None:
        for sink in self.sinks:
            try:
                sink.publish_stats(stats)
            except Exception:
                log.exception("sink %s failed to publish stats for %s", sink, stats.camera)

    def publish_alert(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.publish_alert(alert)
            except Exception:
                log.exception("sink %s failed to publish an alert for %s", sink, alert.camera)

    def flush(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        return all([sink.flush(max(0.0, deadline - time.monotonic())) for sink in self.sinks])

    def pending(self) -> int:
        return sum(sink.pending() for sink in self.sinks)

    def close(self, timeout: float = 2.0) -> None:
        # Close concurrently would be faster, but sinks flush in parallel already (own threads);
        # splitting the budget keeps the total shutdown time within ``timeout``.
        share = timeout / max(1, len(self.sinks))
        for sink in self.sinks:
            try:
                sink.close(share)
            except Exception:
                log.exception("sink %s failed to close", sink)
