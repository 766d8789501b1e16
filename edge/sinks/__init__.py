"""Where events go: MQTT (durable, spooled), JSON Lines files and stdout. See docs/events.md."""

from edge.sinks.base import MultiSink, Sink
from edge.sinks.jsonl import JsonlSink
from edge.sinks.mqtt import MqttSettings, MqttSink
from edge.sinks.spool import Spool, SpoolError
from edge.sinks.stdout import StdoutSink

__all__ = [
    "JsonlSink",
    "MqttSettings",
    "MqttSink",
    "MultiSink",
    "Sink",
    "Spool",
    "SpoolError",
    "StdoutSink",
]
