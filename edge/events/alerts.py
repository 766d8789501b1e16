"""A watchlist alert on its way to the sinks: the event and the match that fired it.

It stays a typed object through the pipeline and is serialised only in a sink (the MQTT sink
publishes ``event.to_bytes()`` on ``<prefix>/<camera>/alerts``; the log sink logs its fields).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.events.schema import PlateEvent
from edge.rules.watchlist import Match


@dataclass(frozen=True)
class Alert:
    event: PlateEvent  # as published: after privacy, with ``watchlist`` set
    match: Match

    def __post_init__(self) -> None:
        if self.event.watchlist is None:
            raise ValueError(f"event {self.event.event_id}: an alert needs a watchlist match")

    @property
    def camera(self) -> str:
        return self.event.camera

    def payload(self) -> bytes:
        """What goes on the wire (QoS 1, NOT retained: HA ignores retained event triggers)."""
        return self.event.to_bytes()
