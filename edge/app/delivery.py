"""Decisions -> what the sinks get, with the operator rules in their order:

    watchlist match -> wire event (edge.events.mapping) -> privacy (keyed hash of unlisted
    plates, edge.rules.privacy) -> alert if the gate fires -> sinks (history first)

The `Match` found here travels as is to the alert gate, the privacy rule and the `Alert`; it is
never rebuilt from the event. `AlertGate.should_fire` keys a vehicle by its track UUID and runs
on the event's ``last_seen`` (video time for files). A confident provisional (it passed the
provisional thresholds) alerts at once, so a gate opens while the car is still approaching;
the final of the same track shares its UUID and the gate does not fire again. Provisionals
alert only when provisional events are published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.analysis.analyzer import CameraAnalyzer
from edge.events.alerts import Alert
from edge.events.config import EventsConfig
from edge.events.mapping import to_plate_event
from edge.events.schema import CameraStats, PlateEvent
from edge.rules.privacy import apply_privacy, keyed_hash
from edge.rules.watchlist import AlertGate, Watchlists
from edge.types import PlateDecision
from edge.vote.text import normalize_plate


@dataclass
class DeliveryCounters:
    watchlist_matches: int = 0  # published events that matched a watchlist
    alerts: int = 0  # alerts fired (AlertGate said yes)
    hashed: int = 0  # events published with a keyed hash instead of the plate


class Delivery:
    def __init__(
        self,
        put: Callable[[PlateEvent | CameraStats | Alert], None],
        *,
        events: EventsConfig | None = None,
        watchlists: Watchlists | None = None,
        privacy_key: bytes | None = None,
        device: str | None = None,
    ) -> None:
        self.put = put
        self.device = device  # stamped on every event (None: the MQTT sink stamps its own)
        self.events = events or EventsConfig()
        self.watchlists = watchlists if watchlists is not None and len(watchlists) else None
        # One gate for all cameras (its keys include the camera); thread-safe.
        self.alert_gate = AlertGate(self.watchlists) if self.watchlists is not None else None
        self.privacy_key = privacy_key
        self.counters: dict[str, DeliveryCounters] = {}

    def of(self, camera: str) -> DeliveryCounters:
        return self.counters.setdefault(camera, DeliveryCounters())

    def shown(self, plate: str | None) -> str | None:
        """A plate as any other output may show it (annotated video, logs): under privacy, an
        unlisted plate becomes its keyed hash, exactly as in the events."""
        if plate is None or self.privacy_key is None or not normalize_plate(plate):
            return plate
        if self.watchlists is not None and self.watchlists.match(plate) is not None:
            return plate
        return "#" + keyed_hash(plate, self.privacy_key)[:8]

    def deliver(self, analyzer: CameraAnalyzer, decision: PlateDecision) -> PlateEvent:
        """Publish one decision of ``analyzer``'s camera; returns the event as published."""
        c = self.of(decision.camera)
        match = self.watchlists.match(decision.plate) if self.watchlists is not None else None
        event = to_plate_event(
            decision,
            to_utc=analyzer.clock.utc_offset,
            options=self.events,
            regions=analyzer.regions,
            is_file=bool(analyzer.clock.is_file),
            match=match,
        )
        if self.device is not None:
            event.device = self.device
        published = apply_privacy(event, match, self.privacy_key)
        if published.plate_hashed:
            c.hashed += 1
        if match is not None:
            c.watchlist_matches += 1
            if self.alert_gate is not None and self.alert_gate.should_fire(
                event.camera,
                event.plate,
                match,
                now=event.last_seen.timestamp(),
                event_id=event.event_id,
                vehicle_key=event.track_uuid,
            ):
                c.alerts += 1
                self.put(Alert(published, match))
        self.put(published)
        return published
