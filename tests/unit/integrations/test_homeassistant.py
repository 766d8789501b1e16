"""Home Assistant MQTT discovery payloads: topics, required keys, and the Jinja templates."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from edge.events.alerts import Alert
from edge.events.schema import PlateEvent, WatchlistHit
from edge.events.topics import alerts_topic
from edge.integrations.homeassistant import (
    ALERT_EVENT_TYPES,
    discovery_messages,
    publish_discovery,
    removal_messages,
)
from edge.rules.watchlist import Match

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

# Required by HA's MQTT schemas (homeassistant/components/mqtt: config.py MQTT_RO_SCHEMA,
# event.py CONF_EVENT_TYPES, schemas.py device info needs identifiers or connections).
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
}
# Keys every platewatch entity carries (unique_id is what lets HA attach it to a device).
COMMON = {"name", "unique_id", "availability_topic", "payload_available",
          "payload_not_available", "device", "origin"}  # fmt: skip
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>[^/]+)/(?P<component>sensor|binary_sensor|event)/"
    r"(?P<node>[a-zA-Z0-9_-]+)/(?P<object>[a-zA-Z0-9_-]+)/config$"
)


def make_event(**kw: object) -> PlateEvent:
    fields: dict[str, object] = dict(
        type="final", camera="gate", track_id=3, plate="AB123CD", confidence=0.93,
        char_confidences=[0.9] * 7, first_seen=T0, last_seen=T0 + timedelta(seconds=2),
        first_frame=0, last_frame=20, plate_box=[0, 0, 10, 5], direction="entry",
        zones=["lane"], crop_jpeg_b64="/9j/" + "A" * 4000,
        watchlist=WatchlistHit(name="residents", kind="allow", entry="AB123CD", distance=0,
                               description="Anna"),
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)  # type: ignore[arg-type]


def test_topics_and_required_keys() -> None:
    msgs = discovery_messages(["gate", "yard"], version="1.2.3", device="dev1")
    assert len(msgs) == 8
    seen_ids = set()
    for topic, payload, retain in msgs:
        m = DISCOVERY_TOPIC.match(topic)
        assert m, topic
        assert m["prefix"] == "homeassistant" and m["node"].startswith("platewatch_")
        assert retain is True
        assert payload is not None
        missing = (REQUIRED[m["component"]] | COMMON) - set(payload)
        assert not missing, f"{topic}: missing {missing}"
        assert payload["availability_topic"] == "platewatch/dev1/status"
        assert (payload["payload_available"], payload["payload_not_available"]) == (
            "online", "offline"
        )  # fmt: skip
        dev = payload["device"]
        assert dev["identifiers"] == [m["node"]] and dev["sw_version"] == "1.2.3"
        assert {"name", "model"} <= set(dev)
        assert payload["unique_id"] not in seen_ids
        seen_ids.add(payload["unique_id"])
        json.dumps(payload)  # serialisable
    by_topic = {t: p for t, p, _ in msgs}
    plate = by_topic["homeassistant/sensor/platewatch_gate/plate/config"]
    assert plate["state_topic"] == "platewatch/dev1/gate/plate"
    assert plate["json_attributes_topic"] == "platewatch/dev1/gate/plate"
    alert = by_topic["homeassistant/event/platewatch_gate/alert/config"]
    assert alert["state_topic"] == alerts_topic("platewatch", "dev1", "gate")
    assert alert["state_topic"] == "platewatch/dev1/gate/alerts"
    assert alert["event_types"] == list(ALERT_EVENT_TYPES)
    online = by_topic["homeassistant/binary_sensor/platewatch_yard/online/config"]
    assert online["state_topic"] == "platewatch/dev1/yard/stats"
    assert online["device_class"] == "connectivity"


def test_custom_prefixes_and_unsafe_names() -> None:
    msgs = discovery_messages(["cam.1"], prefix="ha", topic_prefix="site/a", device="j-01")
    topics = [t for t, _, _ in msgs]
    assert "ha/sensor/platewatch_cam_1/plate/config" in topics
    payload = msgs[0][1]
    assert payload is not None and payload["state_topic"] == "site/a/j-01/cam.1/plate"
    assert payload["availability_topic"] == "site/a/j-01/status"
    # Without a device id: the host's, as the MQTT sink's.
    from edge.events.schema import default_device_id

    default = discovery_messages(["gate"])[0][1]
    assert default is not None
    assert default["state_topic"] == f"platewatch/{default_device_id()}/gate/plate"
    with pytest.raises(ValueError, match="same HA id"):
        discovery_messages(["cam.1", "cam_1"])
    with pytest.raises(ValueError, match="topic level"):
        discovery_messages(["a/b"])


def test_removal_and_publish() -> None:
    published: list[tuple[str, bytes, int, bool]] = []

    class FakeClient:
        def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
            published.append((topic, payload, qos, retain))

    n = publish_discovery(FakeClient(), discovery_messages(["gate"]))
    assert n == 4 and all(q == 1 and r for _, _, q, r in published)
    assert json.loads(published[0][1])["unique_id"] == "platewatch_gate_plate"
    published.clear()
    publish_discovery(FakeClient(), removal_messages(["gate"]))
    assert [p for _, p, _, _ in published] == [b""] * 4


def test_alert_payload_requires_a_match() -> None:
    match = Match("residents", "allow", "AB123CD", 0)
    assert json.loads(Alert(make_event(), match).payload())["watchlist"]["name"] == "residents"
    with pytest.raises(ValueError, match="watchlist"):
        Alert(make_event(watchlist=None), match)


# ------------------------------------------------------------------ templates rendered as HA does


def _render(template: str, payload: bytes) -> str:
    # HA renders templates with jinja2's immutable sandbox; skip (only these tests) without it.
    sandbox = pytest.importorskip("jinja2.sandbox", reason="jinja2 renders the HA templates")
    env = sandbox.ImmutableSandboxedEnvironment()
    env.filters["to_json"] = json.dumps  # HA's to_json filter
    return env.from_string(template).render(value_json=json.loads(payload))


def _templates() -> dict[str, dict[str, Any]]:
    return {t.split("/")[-2]: p for t, p, _ in discovery_messages(["gate"]) if p}


def test_alert_template_renders_ha_event_payload() -> None:
    alert = _templates()["alert"]
    out = json.loads(_render(alert["value_template"], make_event().to_bytes()))
    assert out["event_type"] in alert["event_types"] and out["event_type"] == "allow"
    assert (out["plate"], out["watchlist"], out["entry"], out["description"]) == (
        "AB123CD", "residents", "AB123CD", "Anna"
    )  # fmt: skip
    deny = make_event(watchlist=WatchlistHit(name="stolen", kind="deny", entry="re:^AB.*",
                                             distance=0))  # fmt: skip
    assert json.loads(_render(alert["value_template"], deny.to_bytes()))["event_type"] == "deny"


def test_plate_templates_keep_the_crop_out_of_attributes() -> None:
    plate = _templates()["plate"]
    body = make_event().to_bytes()
    assert _render(plate["value_template"], body) == "AB123CD"
    attrs = json.loads(_render(plate["json_attributes_template"], body))
    assert attrs["watchlist"] == "residents" and attrs["zones"] == ["lane"]
    assert "crop_jpeg_b64" not in attrs and len(json.dumps(attrs)) < 1000
    no_match = json.loads(
        _render(plate["json_attributes_template"], make_event(watchlist=None).to_bytes())
    )
    assert no_match["watchlist"] is None


def test_stats_templates() -> None:
    t = _templates()
    stats = json.dumps({"online": False, "fps_analysed": 8.5}).encode()
    assert _render(t["online"]["value_template"], stats) == "OFF"
    assert _render(t["fps"]["value_template"], stats) == "8.5"
