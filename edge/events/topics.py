"""MQTT topics of the runtime (``<prefix>`` defaults to ``platewatch``); docs/events.md lists
what goes on each. Every publisher and subscriber (sink, dashboard, Home Assistant discovery)
builds its topics here."""

from __future__ import annotations


def events_topic(prefix: str, camera: str) -> str:
    return f"{prefix}/{camera}/events"


def plate_topic(prefix: str, camera: str) -> str:
    return f"{prefix}/{camera}/plate"


def stats_topic(prefix: str, camera: str) -> str:
    return f"{prefix}/{camera}/stats"


def alerts_topic(prefix: str, camera: str) -> str:
    return f"{prefix}/{camera}/alerts"


def status_topic(prefix: str) -> str:
    return f"{prefix}/status"
