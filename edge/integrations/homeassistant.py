"""Home Assistant MQTT discovery: pure payload builders plus a tiny publish helper.

Per camera ``<cam>`` of device ``<dev>`` (topic prefix ``platewatch``, discovery prefix
``homeassistant``):

=====================  ===========================================  ==============================
entity                 discovery topic (retained)                   reads
=====================  ===========================================  ==============================
sensor  Plate          homeassistant/sensor/platewatch_<cam>/plate  platewatch/<dev>/<cam>/plate
                       /config                                      (the retained last final)
event   Watchlist      homeassistant/event/platewatch_<cam>/alert   platewatch/<dev>/<cam>/alerts
        alert          /config                                      (one message per alert)
binary_sensor Online   homeassistant/binary_sensor/platewatch_<cam>  platewatch/<dev>/<cam>/stats
                       /online/config
sensor  Analysed FPS   homeassistant/sensor/platewatch_<cam>/fps    platewatch/<dev>/<cam>/stats
                       /config
=====================  ===========================================  ==============================

All entities are available while ``platewatch/<dev>/status`` is ``online`` (retained birth
message; the broker publishes ``offline`` as the runtime's Last Will). Each camera is one HA
device. HA ids stay ``platewatch_<cam>`` (entities kept across the upgrade that added ``<dev>``):
one Home Assistant should discover one device's cameras, or camera names unique across devices.

Why an *event* entity for alerts: a sensor's state does not change when the same plate is read
twice, so a state-triggered gate automation fires once and never again for that car (Frigate
#18738). An MQTT event entity fires on every (non-retained) message, so the alert gate
(``edge.rules.watchlist.AlertGate``) alone decides when a gate re-fires.

The alert payload is the PlateEvent JSON (same object as on ``events``, with ``watchlist`` set);
the event entity's ``value_template`` turns it into HA's ``{"event_type": ..., ...}`` form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import metadata
from typing import Any, Protocol

from pydantic import Field

from edge.events.schema import default_device_id
from edge.events.topics import alerts_topic, plate_topic, stats_topic, status_topic
from edge.settings import Settings

Message = tuple[str, dict[str, Any] | None, bool]  # (topic, payload or None to delete, retain)

# The event entity's types are the watchlist kinds (the list name is an attribute).
ALERT_EVENT_TYPES = ("allow", "deny")

_ID_SAFE = re.compile(r"[^a-zA-Z0-9_-]")

# HA templates (Jinja). ``value_json`` is the parsed payload. Attributes are picked explicitly so
# the base64 crop never lands in HA's state machine/recorder (attributes are capped at 16 kB).
PLATE_VALUE_TEMPLATE = "{{ value_json.plate }}"
PLATE_ATTRIBUTES_TEMPLATE = (
    "{{ {"
    "'camera': value_json.camera, "
    "'confidence': value_json.confidence, "
    "'plate_hashed': value_json.plate_hashed, "
    "'region': value_json.region, "
    "'direction': value_json.direction, "
    "'zones': value_json.zones, "
    "'watchlist': value_json.watchlist.name if value_json.watchlist else none, "
    "'watchlist_kind': value_json.watchlist.kind if value_json.watchlist else none, "
    "'watchlist_entry': value_json.watchlist.entry if value_json.watchlist else none, "
    "'first_seen': value_json.first_seen, "
    "'last_seen': value_json.last_seen, "
    "'event_id': value_json.event_id, "
    "'track_uuid': value_json.track_uuid"
    "} | to_json }}"
)
ALERT_VALUE_TEMPLATE = (
    "{{ {"
    "'event_type': value_json.watchlist.kind, "
    "'plate': value_json.plate, "
    "'watchlist': value_json.watchlist.name, "
    "'entry': value_json.watchlist.entry, "
    "'distance': value_json.watchlist.distance, "
    "'description': value_json.watchlist.description, "
    "'camera': value_json.camera, "
    "'confidence': value_json.confidence, "
    "'direction': value_json.direction, "
    "'zones': value_json.zones, "
    "'event_id': value_json.event_id, "
    "'track_uuid': value_json.track_uuid, "
    "'last_seen': value_json.last_seen"
    "} | to_json }}"
)
ONLINE_VALUE_TEMPLATE = "{{ 'ON' if value_json.online else 'OFF' }}"
FPS_VALUE_TEMPLATE = "{{ value_json.fps_analysed }}"


class HomeAssistantConfig(Settings):
    enabled: bool = Field(False, description="publish MQTT discovery messages on connect")
    discovery_prefix: str = Field(
        "homeassistant", min_length=1, description="Home Assistant's MQTT discovery prefix"
    )
    stats_expire_after_s: int = Field(
        120, ge=10, description="health entities become unavailable without stats this long"
    )


def sw_version() -> str:
    try:
        return metadata.version("platewatch")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def node_id(camera: str) -> str:
    """``platewatch_<camera>`` with anything HA does not accept in a topic id replaced by '_'."""
    return "platewatch_" + _ID_SAFE.sub("_", camera)


def device_block(camera: str, version: str | None = None) -> dict[str, Any]:
    return {
        "identifiers": [node_id(camera)],
        "name": f"platewatch {camera}",
        "manufacturer": "platewatch",
        "model": "platewatch ALPR camera",
        "sw_version": version or sw_version(),
    }


def _common(camera: str, obj: str, topic_prefix: str, device: str, version: str) -> dict[str, Any]:
    return {
        "unique_id": f"{node_id(camera)}_{obj}",
        "availability_topic": status_topic(topic_prefix, device),
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": device_block(camera, version),
        "origin": {"name": "platewatch", "sw_version": version},
    }


def camera_discovery(
    camera: str,
    prefix: str = "homeassistant",
    topic_prefix: str = "platewatch",
    version: str | None = None,
    stats_expire_after_s: int = 120,
    device: str | None = None,
) -> list[Message]:
    """The discovery messages of one camera (see the module table); ``device``: the runtime's
    device id in the state topics (default: the host name, as the MQTT sink's)."""
    if not camera or any(c in camera for c in "/+#"):
        raise ValueError(f"camera name {camera!r} cannot be an MQTT topic level")
    version = version or sw_version()
    node = node_id(camera)
    device = device or default_device_id()

    plate = {
        "name": "Plate",
        "icon": "mdi:card-text-outline",
        "state_topic": plate_topic(topic_prefix, device, camera),
        "value_template": PLATE_VALUE_TEMPLATE,
        "json_attributes_topic": plate_topic(topic_prefix, device, camera),
        "json_attributes_template": PLATE_ATTRIBUTES_TEMPLATE,
        **_common(camera, "plate", topic_prefix, device, version),
    }
    alert = {
        "name": "Watchlist alert",
        "icon": "mdi:car-key",
        "state_topic": alerts_topic(topic_prefix, device, camera),
        "event_types": list(ALERT_EVENT_TYPES),
        "value_template": ALERT_VALUE_TEMPLATE,
        **_common(camera, "alert", topic_prefix, device, version),
    }
    online = {
        "name": "Camera online",
        "device_class": "connectivity",
        "entity_category": "diagnostic",
        "state_topic": stats_topic(topic_prefix, device, camera),
        "value_template": ONLINE_VALUE_TEMPLATE,
        "payload_on": "ON",
        "payload_off": "OFF",
        "expire_after": stats_expire_after_s,
        **_common(camera, "online", topic_prefix, device, version),
    }
    fps = {
        "name": "Analysed FPS",
        "icon": "mdi:speedometer",
        "entity_category": "diagnostic",
        "state_topic": stats_topic(topic_prefix, device, camera),
        "value_template": FPS_VALUE_TEMPLATE,
        "unit_of_measurement": "fps",
        "state_class": "measurement",
        "expire_after": stats_expire_after_s,
        **_common(camera, "fps", topic_prefix, device, version),
    }
    return [
        (f"{prefix}/sensor/{node}/plate/config", plate, True),
        (f"{prefix}/event/{node}/alert/config", alert, True),
        (f"{prefix}/binary_sensor/{node}/online/config", online, True),
        (f"{prefix}/sensor/{node}/fps/config", fps, True),
    ]


def discovery_messages(
    cameras: Iterable[str],
    prefix: str = "homeassistant",
    topic_prefix: str = "platewatch",
    version: str | None = None,
    stats_expire_after_s: int = 120,
    device: str | None = None,
) -> list[Message]:
    """``(topic, payload_dict, retain)`` for every camera; publish each as JSON, QoS 1."""
    out: list[Message] = []
    seen: dict[str, str] = {}
    for cam in cameras:
        node = node_id(cam)
        if node in seen:
            raise ValueError(f"cameras {seen[node]!r} and {cam!r} map to the same HA id {node!r}")
        seen[node] = cam
        out += camera_discovery(
            cam, prefix, topic_prefix, version, stats_expire_after_s, device=device
        )
    return out


def removal_messages(cameras: Iterable[str], prefix: str = "homeassistant") -> list[Message]:
    """Empty retained payloads that make HA delete the entities (e.g. a camera was removed)."""
    return [(t, None, True) for t, _, _ in discovery_messages(cameras, prefix, version="0")]


class _Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Any: ...


def publish_discovery(client: _Publisher, messages: Iterable[Message]) -> int:
    """Publish messages with a paho-style client (QoS 1); None payloads become empty (delete)."""
    n = 0
    for topic, payload, retain in messages:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        client.publish(topic, body, qos=1, retain=retain)
        n += 1
    return n
