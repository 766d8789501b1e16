"""MQTT topics of the runtime; docs/events.md lists what goes on each. Every publisher and
subscriber (sink, dashboard, Home Assistant discovery, the central collector) builds and parses
its topics here.

Layout: ``<prefix>/<device>/<camera>/<kind>`` (kind: events, plate, stats, alerts) and
``<prefix>/<device>/status``. ``<prefix>`` defaults to ``platewatch`` and may have several
levels; ``<device>`` is the runtime's ``device`` id (by default the host name), so every device's
messages stay apart on a broker many devices reach (a bridge to a central broker forwards
``<prefix>/#`` unchanged). Producers before the device level published
``<prefix>/<camera>/<kind>`` and ``<prefix>/status``; ``parse_topic`` still reads those
(``device`` None) so a mixed fleet can be upgraded one device at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

CAMERA_KINDS = ("events", "plate", "stats", "alerts")


def events_topic(prefix: str, device: str, camera: str) -> str:
    return f"{prefix}/{device}/{camera}/events"


def plate_topic(prefix: str, device: str, camera: str) -> str:
    return f"{prefix}/{device}/{camera}/plate"


def stats_topic(prefix: str, device: str, camera: str) -> str:
    return f"{prefix}/{device}/{camera}/stats"


def alerts_topic(prefix: str, device: str, camera: str) -> str:
    return f"{prefix}/{device}/{camera}/alerts"


def status_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/status"


def subscriptions(prefix: str, kinds: tuple[str, ...] = CAMERA_KINDS) -> list[str]:
    """Topic filters for ``kinds`` (and the status) of every device, legacy layout included."""
    out = []
    for kind in kinds:
        out += [f"{prefix}/+/+/{kind}", f"{prefix}/+/{kind}"]
    return out + [f"{prefix}/+/status", f"{prefix}/status"]


@dataclass(frozen=True)
class Topic:
    """A parsed runtime topic. ``camera`` is None for a status; ``device`` None for the legacy
    layout without a device level."""

    kind: str
    device: str | None
    camera: str | None


def parse_topic(prefix: str, topic: str) -> Topic | None:
    """The kind, device and camera of one of the runtime's topics; None for other topics."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if any(not p for p in parts):
        return None
    if parts == ["status"]:
        return Topic("status", None, None)
    if len(parts) == 2 and parts[1] == "status":
        return Topic("status", parts[0], None)
    if len(parts) == 2 and parts[1] in CAMERA_KINDS:
        return Topic(parts[1], None, parts[0])
    if len(parts) == 3 and parts[2] in CAMERA_KINDS:
        return Topic(parts[2], parts[0], parts[1])
    return None
