"""``platewatch dashboard`` server: state rules (pure), HTTP API, SSE and a real mosquitto broker.

The browser side is tested in test_dashboard_browser.py; helpers here (``make_event``,
``running_dashboard``) are shared with it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support import Mosquitto, free_port, port_open, wait_until

from edge.cli import build_parser
from edge.dashboard.server import (
    NO_DATA,
    OFFLINE,
    ONLINE,
    STATIC_DIR,
    DashboardServer,
    DashboardState,
    MqttFeed,
    camera_health,
    decode_jpeg_b64,
    history_query,
    sanitize_event,
)
from edge.events.schema import CameraStats, PlateEvent, WatchlistHit, encode_crop
from edge.events.topics import Topic, parse_topic, subscriptions
from edge.history.store import HistoryStore
from edge.sinks.mqtt import MqttSettings

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def plate_jpeg_b64(text: str, seed: int = 0) -> str:
    """A small but real plate-like JPEG (white plate, black text) as the runtime would send."""
    img = np.full((40, 150, 3), 235, np.uint8)
    cv2.rectangle(img, (1, 1), (148, 38), (20, 20, 20), 2)
    cv2.putText(img, text, (8, 29), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (10, 10, 10), 2)
    return encode_crop(img)


def make_event(
    plate: str = "AB123CD",
    *,
    camera: str = "gate",
    type: str = "final",  # noqa: A002 - the event field's name
    track_uuid: str | None = "new",
    track_id: int = 1,
    watchlist: WatchlistHit | None = None,
    crop: bool = True,
    when: datetime | None = None,
    **kw: Any,
) -> PlateEvent:
    when = when or datetime.now(timezone.utc)
    fields: dict[str, Any] = dict(
        type=type, camera=camera, track_id=track_id,
        track_uuid=str(uuid.uuid4()) if track_uuid == "new" else track_uuid, plate=plate,
        confidence=0.91,
        char_confidences=[0.9] * len(plate), first_seen=when - timedelta(seconds=3),
        last_seen=when, first_frame=0, last_frame=60, plate_box=[10, 10, 160, 50],
        direction="entry", zones=["lane-1"], watchlist=watchlist,
        crop_jpeg_b64=plate_jpeg_b64(plate) if crop else None,
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)


def make_stats(camera: str = "gate", online: bool = True, **kw: Any) -> CameraStats:
    fields: dict[str, Any] = dict(
        camera=camera, online=online, fps_in=25.0, fps_analysed=8.3, frames_dropped=12,
        frames_corrupt=0, latency_ms_p50=48.2, latency_ms_p95=97.5, reconnects=1, queue_depth=2,
    )  # fmt: skip
    fields.update(kw)
    return CameraStats(**fields)


DENY = WatchlistHit(name="stolen", kind="deny", entry="XY987ZZ", distance=0, description="police")
ALLOW = WatchlistHit(name="residents", kind="allow", entry="AB123CD", distance=0)


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ pure rules


def test_parse_topic_and_subscriptions() -> None:
    # <prefix>/<device>/<camera>/<kind> and <prefix>/<device>/status ...
    assert parse_topic("platewatch", "platewatch/j1/gate/events") == Topic("events", "j1", "gate")
    assert parse_topic("platewatch", "platewatch/j1/status") == Topic("status", "j1", None)
    assert parse_topic("site1/pw", "site1/pw/j2/yard/stats") == Topic("stats", "j2", "yard")
    # ... and the layout before device ids (no device level)
    assert parse_topic("platewatch", "platewatch/gate/events") == Topic("events", None, "gate")
    assert parse_topic("platewatch", "platewatch/gate/alerts") == Topic("alerts", None, "gate")
    assert parse_topic("platewatch", "platewatch/status") == Topic("status", None, None)
    assert parse_topic("site1/pw", "site1/pw/yard/stats") == Topic("stats", None, "yard")
    assert parse_topic("platewatch", "platewatch/gate/other") is None
    assert parse_topic("platewatch", "platewatchx/gate/events") is None
    assert parse_topic("platewatch", "platewatch/a/b/c/events") is None
    assert parse_topic("platewatch", "platewatch/a//events") is None
    assert subscriptions("pw") == [
        "pw/+/+/events", "pw/+/events", "pw/+/+/plate", "pw/+/plate", "pw/+/+/stats",
        "pw/+/stats", "pw/+/+/alerts", "pw/+/alerts", "pw/+/status", "pw/status",
    ]  # fmt: skip


def test_camera_health_rules() -> None:
    stats = {"online": True}
    assert camera_health("online", stats, 5.0, 75.0) == ONLINE
    assert camera_health(None, stats, 5.0, 75.0) == ONLINE
    assert camera_health("offline", stats, 5.0, 75.0) == OFFLINE  # Last Will beats old stats
    assert camera_health("online", {"online": False}, 5.0, 75.0) == OFFLINE
    assert camera_health("online", stats, 76.0, 75.0) == NO_DATA  # stale
    assert camera_health("online", None, None, 75.0) == NO_DATA


def test_sanitize_event_keeps_known_fields_and_checks_types() -> None:
    ev = json.loads(make_event(watchlist=DENY).to_json())
    ev["some_future_field"] = 1
    out, crop = sanitize_event(ev, "gate")
    assert out["plate"] == "AB123CD" and out["watchlist"]["kind"] == "deny"
    assert "some_future_field" not in out and "crop_jpeg_b64" not in out
    assert crop is not None and crop[:3] == b"\xff\xd8\xff"
    for field, bad in [("event_id", "../../etc"), ("type", "maybe"), ("plate", ""),
                       ("confidence", "high"), ("zones", "a")]:  # fmt: skip
        broken = dict(ev, **{field: bad})
        with pytest.raises(ValueError, match=field):
            sanitize_event(broken, "gate")


def test_decode_jpeg_b64_rejects_non_jpeg() -> None:
    assert decode_jpeg_b64(base64.b64encode(b"<svg onload=alert(1)>").decode()) is None
    assert decode_jpeg_b64("not base64 !!") is None
    assert decode_jpeg_b64(None) is None
    assert decode_jpeg_b64(plate_jpeg_b64("AB1"))[:2] == b"\xff\xd8"  # type: ignore[index]


def feed(state: DashboardState, ev: PlateEvent, kind: str = "events") -> None:
    state.handle_message(f"platewatch/{ev.camera}/{kind}", ev.to_bytes())


def test_final_replaces_provisional_and_duplicates_are_dropped() -> None:
    state = DashboardState(max_events=10)
    tu = str(uuid.uuid4())
    prov = make_event("AB123CO", type="provisional", track_uuid=tu)
    final = make_event("AB123CD", track_uuid=tu)
    feed(state, prov)
    assert [e["type"] for e in state.snapshot()["events"]] == ["provisional"]
    listener, _ = state.subscribe()
    feed(state, final)
    feed(state, final)  # at-least-once redelivery
    state.handle_message("platewatch/gate/plate", final.to_bytes(), retained=True)  # same id
    events = state.snapshot()["events"]
    assert [(e["plate"], e["type"]) for e in events] == [("AB123CD", "final")]
    assert state.counters["duplicates"] == 2
    kind, msg = listener.queue.get_nowait()
    assert kind == "event" and msg["replaces"] == [prov.event_id]
    # its crop left the ring; it is still served a while for a browser already fetching it
    assert prov.event_id not in state._crops and state.get_crop(prov.event_id) is not None
    assert state.get_crop(final.event_id) == base64.b64decode(final.crop_jpeg_b64 or "")
    # A provisional arriving after the final of its track never replaces it.
    feed(state, make_event("ZZ", type="provisional", track_uuid=tu))
    assert [e["plate"] for e in state.snapshot()["events"]] == ["AB123CD"]
    # Without track_uuid the camera + tracker id identify the track.
    feed(state, make_event("CC1", type="provisional", track_uuid=None, track_id=7))
    # The same tracker id on another camera is another track.
    feed(state, make_event("CC11", track_uuid=None, track_id=7, camera="yard"))
    feed(state, make_event("CC111", track_uuid=None, track_id=7))
    plates = [e["plate"] for e in state.snapshot()["events"]]
    assert plates == ["CC111", "CC11", "AB123CD"]


def test_ring_buffers_are_bounded() -> None:
    state = DashboardState(max_events=5, max_alerts=3)
    events = [make_event(f"AA{i:03d}", watchlist=DENY) for i in range(20)]
    for ev in events:
        feed(state, ev)
    snap = state.snapshot()
    assert [e["plate"] for e in snap["events"]] == [f"AA{i:03d}" for i in range(19, 14, -1)]
    assert len(snap["alerts"]) == 3
    assert len(state._crops) == 5 and len(state._alert_crops) == 3
    from edge.dashboard.server import RETIRED_CROPS

    many = DashboardState(max_events=5, max_alerts=3)
    old = [make_event(f"BB{i:03d}") for i in range(RETIRED_CROPS + 20)]
    for ev in old:
        feed(many, ev)
    assert len(many._retired_crops) == RETIRED_CROPS  # bounded too
    assert many.get_crop(old[0].event_id) is None
    # An alert's crop outlives the event ring (alerts hold their own, bounded).
    small = DashboardState(max_events=2, max_alerts=3)
    hit = make_event("XY987ZZ", watchlist=DENY)
    feed(small, hit)
    for i in range(4):
        feed(small, make_event(f"BB{i}"))
    assert hit.event_id not in {e["event_id"] for e in small.snapshot()["events"]}
    assert small.get_crop(hit.event_id) is not None


def test_alerts_topic_marks_event_and_watchlist_field_highlights() -> None:
    state = DashboardState()
    plain = make_event("AB123CD", watchlist=ALLOW)
    feed(state, plain)
    ev = state.snapshot()["events"][0]
    assert ev["watchlist"]["kind"] == "allow" and ev["alert"] is False
    feed(state, plain, kind="alerts")  # the runtime's alert for the same event id
    snap = state.snapshot()
    assert len(snap["events"]) == 1 and snap["events"][0]["alert"] is True
    assert [a["plate"] for a in snap["alerts"]] == ["AB123CD"]
    # An alert whose event message was not seen (e.g. evicted or lost) still shows up.
    stolen = make_event("XY987ZZ", watchlist=DENY, camera="yard")
    feed(state, stolen, kind="alerts")
    snap = state.snapshot()
    assert snap["events"][0]["plate"] == "XY987ZZ" and snap["events"][0]["alert"]
    assert [a["kind"] for a in snap["alerts"]] == ["deny", "allow"]


def test_camera_health_from_status_and_stats_with_staleness() -> None:
    clock = FakeClock()
    state = DashboardState(stale_after_s=75.0, clock=clock)
    state.handle_message("platewatch/status", b"online", retained=True)
    state.handle_message("platewatch/gate/stats", make_stats().to_bytes())
    state.handle_message(
        "platewatch/yard/stats",
        make_stats("yard", online=False, last_error="rtsp timeout").to_bytes(),
    )
    cams = {c["name"]: c for c in state.snapshot()["cameras"]}
    assert cams["gate"]["health"] == ONLINE and cams["gate"]["stats"]["latency_ms_p95"] == 97.5
    assert cams["yard"]["health"] == OFFLINE
    assert cams["yard"]["stats"]["last_error"] == "rtsp timeout"
    clock.t += 80
    assert {c["health"] for c in state.snapshot()["cameras"]} == {NO_DATA}
    state.handle_message("platewatch/gate/stats", make_stats().to_bytes())
    state.handle_message("platewatch/status", b"offline", retained=True)  # Last Will
    assert {c["health"] for c in state.snapshot()["cameras"]} == {OFFLINE}
    assert state.snapshot()["status"] == "offline"


def test_invalid_messages_are_counted_not_fatal() -> None:
    state = DashboardState()
    state.handle_message("platewatch/gate/events", b"{not json")
    state.handle_message("platewatch/gate/events", b'{"event_id": "x"}')
    state.handle_message("platewatch/gate/stats", b'{"online": "yes"}')
    state.handle_message("elsewhere/gate/events", b"{}")  # not ours: ignored, not counted
    assert state.counters["invalid"] == 3 and state.snapshot()["events"] == []


def test_slow_sse_listener_is_dropped_not_blocking() -> None:
    state = DashboardState(max_events=5)
    listener, _ = state.subscribe()
    for i in range(listener.queue.maxsize + 10):
        feed(state, make_event(f"Q{i}", crop=False))
    assert listener.overflowed  # the stream closes; the page reconnects and resyncs
    assert len(state.snapshot()["events"]) == 5


def test_history_query_parsing() -> None:
    q = history_query({"plate": ["AB123CD"], "camera": [""], "since": ["24h"], "limit": ["10"]})
    assert q["plate"] == "AB123CD" and q["camera"] is None and q["since"] == "24h"
    assert q["limit"] == 10 and q["fuzzy"] is True and q["max_distance"] == 1
    assert history_query({"exact": ["1"]})["fuzzy"] is False
    for bad in ({"limit": ["x"]}, {"limit": ["0"]}, {"limit": ["100000"]},
                {"max_distance": ["9"]}):  # fmt: skip
        with pytest.raises(ValueError):
            history_query(bad)


def test_cli_parser_registers_dashboard() -> None:
    args = build_parser(["dashboard"]).parse_args(
        [
            "dashboard",
            "--mqtt",
            "broker:1884",
            "--port",
            "0",
            "--history",
            "h.db",
            "--topic-prefix",
            "site/pw",
        ]  # fmt: skip
    )
    assert args.command == "dashboard" and args.mqtt == "broker:1884" and args.port == 0
    assert args.topic_prefix == "site/pw" and args.history == "h.db" and callable(args.func)


def test_static_page_has_no_external_assets() -> None:
    files = {p.name: p.read_text() for p in STATIC_DIR.iterdir()}
    assert {"index.html", "app.js", "app.css"} <= set(files)
    for name, text in files.items():
        # No CDN, fonts or analytics: the page must work on an offline control-desk network.
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
        assert "@import" not in text, name
    # Untrusted MQTT text is set with textContent, never parsed as HTML.
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML", files["app.js"])


# ------------------------------------------------------------------ HTTP + broker


class Publisher:
    """A plain paho client standing in for the runtime (or any producer on the same topics)."""

    def __init__(self, broker: Mosquitto, will: bool = False, prefix: str = "platewatch"):
        self.prefix = prefix
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"pub-{uuid.uuid4().hex[:8]}")  # fmt: skip
        if will:
            self.client.will_set(f"{prefix}/status", b"offline", qos=1, retain=True)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        info = self.client.publish(f"{self.prefix}/{topic}", payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def event(self, ev: PlateEvent, kind: str = "events") -> None:
        self.publish(f"{ev.camera}/{kind}", ev.to_bytes())

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def running_dashboard(
    broker: Mosquitto, history: HistoryStore | None = None, **state_kw: Any
) -> Iterator[tuple[DashboardServer, MqttFeed]]:
    """State + MQTT feed + HTTP server on a free loopback port; waits until subscribed."""
    prefix = state_kw.pop("topic_prefix", "platewatch")
    state = DashboardState(prefix, history_enabled=history is not None, **state_kw)
    settings = MqttSettings(host=broker.host, port=broker.port, topic_prefix=prefix,
                            reconnect_min_s=0.2, reconnect_max_s=1.0)  # fmt: skip
    feed_ = MqttFeed(state, settings).start()
    server = DashboardServer(state, "127.0.0.1", 0, history=history).start()
    try:
        assert wait_until(lambda: state.snapshot()["broker"]["connected"], 5.0)
        time.sleep(0.2)  # the SUBACK follows the CONNACK callback
        yield server, feed_
    finally:
        server.stop()
        feed_.stop()


def get(server: DashboardServer, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(server: DashboardServer, path: str) -> tuple[int, Any]:
    status, _, body = get(server, path)
    return status, json.loads(body)


def test_http_api_with_real_broker(mosquitto: Mosquitto) -> None:
    pub = Publisher(mosquitto)
    try:
        with running_dashboard(mosquitto) as (server, _):
            status, headers, body = get(server, "/")
            assert status == 200 and b"/static/app.js" in body
            assert "default-src 'self'" in headers["content-security-policy"]
            assert get(server, "/static/app.js")[1]["content-type"].startswith("text/javascript")
            assert get(server, "/static/../server.py")[0] == 404

            ev = make_event("KA01AB1234"[:8], watchlist=DENY)
            pub.event(ev)
            pub.publish("gate/stats", make_stats().to_bytes())
            pub.publish("status", b"online", retain=True)
            assert wait_until(lambda: len(get_json(server, "/api/state")[1]["events"]) == 1, 5)
            assert wait_until(lambda: get_json(server, "/api/state")[1]["status"] == "online", 5)
            _, snap = get_json(server, "/api/state")
            got = snap["events"][0]
            assert got["event_id"] == ev.event_id and got["has_crop"]
            assert got["watchlist"]["kind"] == "deny" and "crop_jpeg_b64" not in got
            assert snap["alerts"][0]["event_id"] == ev.event_id
            assert wait_until(
                lambda: get_json(server, "/api/state")[1]["cameras"][0]["health"] == ONLINE, 5
            )

            status, headers, crop = get(server, f"/api/crop/{ev.event_id}")
            assert status == 200 and headers["content-type"] == "image/jpeg"
            assert crop == base64.b64decode(ev.crop_jpeg_b64 or "")
            assert cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR) is not None
            assert get(server, f"/api/crop/{uuid.uuid4()}")[0] == 404
            assert get(server, "/api/crop/..%2F..%2Fetc")[0] == 400
            status, err = get_json(server, "/api/history?plate=AB")
            assert status == 404 and "--history" in err["error"]
    finally:
        pub.stop()


def read_sse(resp: http.client.HTTPResponse, want: int, timeout: float) -> list[tuple[str, Any]]:
    """Read ``want`` SSE messages (event name, parsed data) from a streaming response."""
    out: list[tuple[str, Any]] = []
    kind, data = None, []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        line = resp.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and kind is not None:
            out.append((kind, json.loads("\n".join(data))))
            kind, data = None, []
    return out


def test_sse_stream_snapshot_then_live_updates(mosquitto: Mosquitto) -> None:
    pub = Publisher(mosquitto)
    try:
        with running_dashboard(mosquitto) as (server, _):
            first = make_event("FIRST1")
            pub.event(first)
            assert wait_until(lambda: server.state.snapshot()["events"], 5)
            conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
            conn.request("GET", "/api/stream")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("Content-Type").startswith("text/event-stream")
            [(kind, snap)] = read_sse(resp, 1, 5)
            assert kind == "snapshot" and snap["events"][0]["plate"] == "FIRST1"
            tu = str(uuid.uuid4())
            prov = make_event("SEC0ND", type="provisional", track_uuid=tu)
            final = make_event("SECOND", track_uuid=tu)
            pub.event(prov)
            pub.event(final)
            pub.publish("status", b"offline", retain=True)
            msgs = read_sse(resp, 4, 5)  # event, event, camera (last plate), status
            kinds = [k for k, _ in msgs]
            events = [m for k, m in msgs if k == "event"]
            assert [e["event"]["type"] for e in events] == ["provisional", "final"]
            assert events[1]["replaces"] == [prov.event_id]
            assert ("status", {"status": "offline", "devices": {"": "offline"}}) in msgs
            assert "camera" in kinds  # last plate of the camera changed
            resp.close()
            conn.close()
            # The server forgets a closed stream (no leaked listeners).
            assert wait_until(lambda: not server.state._listeners, 3)
    finally:
        pub.stop()


def test_history_search_and_crop_from_store(mosquitto: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    with HistoryStore(db) as writer:
        old = make_event("AB123CD", when=datetime.now(timezone.utc) - timedelta(days=3))
        near = make_event("AB128CD", watchlist=DENY, camera="yard")
        other = make_event("ZZ999ZZ")
        for ev in (old, near, other):
            writer.add(ev)
    store = HistoryStore(db, read_only=True)
    try:
        with running_dashboard(mosquitto, history=store) as (server, _):
            assert get_json(server, "/api/state")[1]["history_enabled"] is True
            _, res = get_json(server, "/api/history?plate=AB123CD")
            assert [r["plate"] for r in res["results"]] == ["AB123CD", "AB128CD"]  # fuzzy, d<=1
            assert [r["distance"] for r in res["results"]] == [0, 1]
            _, res = get_json(server, "/api/history?plate=AB123CD&since=24h")
            assert [r["plate"] for r in res["results"]] == ["AB128CD"]
            _, res = get_json(server, "/api/history?watchlist=*")
            assert [r["plate"] for r in res["results"]] == ["AB128CD"]
            _, res = get_json(server, "/api/history?camera=gate")
            assert {r["plate"] for r in res["results"]} == {"AB123CD", "ZZ999ZZ"}
            _, res = get_json(server, "/api/history?plate=AB123CD&exact=1")
            assert [r["plate"] for r in res["results"]] == ["AB123CD"]
            url = res["results"][0]["crop_url"]
            status, _, crop = get(server, url)  # not in the live ring: served from history
            assert status == 200 and crop == base64.b64decode(old.crop_jpeg_b64 or "")
            status, err = get_json(server, "/api/history?since=yesterday")
            assert status == 400 and "bad time" in err["error"]
    finally:
        store.close()


def test_reconnects_after_broker_restart(mosquitto: Mosquitto) -> None:
    with running_dashboard(mosquitto) as (server, feed_):
        state = server.state
        mosquitto.kill()
        assert wait_until(lambda: not state.snapshot()["broker"]["connected"], 5)
        mosquitto.start()
        assert wait_until(lambda: state.snapshot()["broker"]["connected"], 10)
        time.sleep(0.2)  # re-subscribed in on_connect; let the SUBACK land
        pub = Publisher(mosquitto)
        try:
            ev = make_event("AFTER1")
            pub.event(ev)
            assert wait_until(lambda: bool(state.snapshot()["events"]), 5)
            assert state.snapshot()["events"][0]["event_id"] == ev.event_id
        finally:
            pub.stop()


def test_runtime_last_will_marks_cameras_offline(mosquitto: Mosquitto) -> None:
    """A producer with the runtime's Last Will dies without DISCONNECT -> cameras offline."""
    with running_dashboard(mosquitto) as (server, _):
        runtime = Publisher(mosquitto, will=True)
        runtime.publish("status", b"online", retain=True)
        runtime.publish("gate/stats", make_stats().to_bytes())
        state = server.state
        assert wait_until(lambda: [c["health"] for c in state.snapshot()["cameras"]] == [ONLINE], 5)
        # Drop the TCP connection under paho: the broker sees no DISCONNECT and fires the will.
        runtime.client.loop_stop()
        sock = runtime.client.socket()
        assert sock is not None
        sock.close()
        assert wait_until(lambda: state.snapshot()["status"] == "offline", 5)
        assert [c["health"] for c in state.snapshot()["cameras"]] == [OFFLINE]


def test_cli_serves_and_stops_on_sigint(mosquitto: Mosquitto) -> None:
    """``platewatch dashboard`` end to end: parse, connect, serve the API, exit 0 on Ctrl-C."""
    port = free_port()
    cmd = [sys.executable, "-m", "edge", "dashboard", "--mqtt", f"127.0.0.1:{mosquitto.port}",
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: port_open(port) or proc.poll() is not None, 20), "no server"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""

        def connected() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/api/state")
                return bool(json.loads(conn.getresponse().read())["broker"]["connected"])
            finally:
                conn.close()

        assert wait_until(connected, 10)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert not port_open(port)
        assert f"http://127.0.0.1:{port}/" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _request(
    server: DashboardServer, path: str, headers: dict[str, str]
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    """`curl -H 'Host: evil.example.com' :8080/api/history` used to answer 200."""
    from edge.dashboard.security import Access

    state = DashboardState("platewatch", history_enabled=True)
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        server = DashboardServer(state, "127.0.0.1", 0, history=store).start()
        try:
            status, _, body = _request(server, "/api/history", {"Host": "evil.example.com"})
            assert status == 421 and b"DNS rebinding" in body
            status, _, _ = _request(server, "/api/history", {"Host": f"127.0.0.1:{server.port}"})
            assert status == 200
        finally:
            server.stop()
        server = DashboardServer(
            state, "127.0.0.1", 0, history=store, access=Access.make("127.0.0.1", ["gate.lan"])
        ).start()
        try:
            assert _request(server, "/api/state", {"Host": "gate.lan:8080"})[0] == 200
        finally:
            server.stop()


def test_token_protects_every_path_and_sets_a_cookie() -> None:
    from edge.dashboard.security import COOKIE, Access

    state = DashboardState("platewatch")
    server = DashboardServer(
        state, "127.0.0.1", 0, access=Access.make("127.0.0.1", token="tok-123")
    ).start()
    host = {"Host": f"127.0.0.1:{server.port}"}
    try:
        for path in ("/", "/api/state", "/api/stream", "/static/app.js"):
            assert _request(server, path, host)[0] == 401, path
        assert _request(server, "/api/state", {**host, "Authorization": "Bearer tok-123"})[0] == 200
        status, headers, _ = _request(server, "/?token=tok-123", host)
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert cookie == f"{COOKIE}=tok-123"
        assert _request(server, "/api/state", {**host, "Cookie": cookie})[0] == 200
        assert _request(server, "/?token=wrong", host)[0] == 401
    finally:
        server.stop()


def test_replaced_events_crop_is_still_served() -> None:
    """The browser may still be fetching the crop of a provisional its final just replaced
    (the flaky 404 of the browser test)."""
    state = DashboardState("platewatch")
    tu = str(uuid.uuid4())
    prov = make_event("MH12AB0", type="provisional", track_uuid=tu)
    final = make_event("MH12AB9", track_uuid=tu)
    state.handle_message("platewatch/gate/events", prov.to_bytes())
    state.handle_message("platewatch/gate/events", final.to_bytes())
    ids = [e["event_id"] for e in state.snapshot()["events"]]
    assert ids == [final.event_id]
    assert state.get_crop(prov.event_id) is not None and state.get_crop(final.event_id)
