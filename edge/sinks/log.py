"""Log sink: one log line per event, alert and stats message (the service's own health log)."""

from __future__ import annotations

import logging

from edge.events.alerts import Alert
from edge.events.schema import CameraStats, PlateEvent
from edge.sinks.base import Sink

log = logging.getLogger("platewatch.run")


class LogSink(Sink):
    def publish_event(self, event: PlateEvent) -> None:
        log.info(
            "%s: %s %s (track %s, confidence %.2f)",
            event.camera,
            event.type,
            event.plate,
            event.track_id,
            event.confidence,
        )

    def publish_alert(self, alert: Alert) -> None:
        m, event = alert.match, alert.event
        log.warning(
            "%s: ALERT %s list %r (%s, entry %s, distance %s) %s event",
            alert.camera,
            event.plate,
            m.watchlist,
            m.kind,
            m.entry,
            m.distance,
            event.type,
        )

    def publish_stats(self, s: CameraStats) -> None:
        p50 = "-" if s.latency_ms_p50 is None else f"{s.latency_ms_p50:.0f}"
        p95 = "-" if s.latency_ms_p95 is None else f"{s.latency_ms_p95:.0f}"
        log.info(
            "%s: %s, %.1f fps in, %.1f analysed, latency p50/p95 %s/%s ms, dropped %d, corrupt "
            "%d, reconnects %d, queue %d%s",
            s.camera,
            "online" if s.online else "OFFLINE",
            s.fps_in,
            s.fps_analysed,
            p50,
            p95,
            s.frames_dropped,
            s.frames_corrupt,
            s.reconnects,
            s.queue_depth,
            f", last error: {s.last_error}" if s.last_error and not s.online else "",
        )

    def close(self, timeout: float = 2.0) -> None:
        pass
