"""Dashboard back end: MQTT feed -> bounded in-memory state -> HTTP API + Server-Sent Events.

Owns three things, each usable on its own (tests drive them separately):

- ``DashboardState``: what the page shows, built only from MQTT messages on the runtime's topics
  (``<prefix>/<device>/<camera>/events|plate|stats|alerts`` and ``<prefix>/<device>/status`` of
  every device, edge.events.topics; the layout without a device level too). A camera is known
  by ``<device>/<camera>``; a device's Last Will marks its cameras offline. Bounded: a ring of
  the last ``max_events`` events (their crops live and die with them), a ring of recent watchlist
  hits, a bounded set of seen event ids (at-least-once delivery: duplicates are dropped on
  ``event_id``) and at most ``max_cameras`` cameras. A ``final`` event replaces the
  ``provisional`` one of the same track (``track_uuid``, else camera + ``track_id``).
- ``MqttFeed``: a paho-mqtt 2 subscriber that feeds the state and reconnects by itself
  (exponential back-off, re-subscribes on every connect; clean session: retained messages rebuild
  the last plate and the runtime status after a reconnect).
- ``DashboardServer``: stdlib ``ThreadingHTTPServer`` (no web framework: the API is five routes
  and the page is static) serving the page, ``/api/state``, ``/api/stream`` (SSE: a ``snapshot``
  then incremental ``event``/``camera``/``status``/``broker``/``alert`` messages),
  ``/api/history`` (the history store's ``search``: a device's SQLite or the centre's
  PostgreSQL, edge.history.backend), ``/api/devices`` (every device and camera the store knows,
  with the health of its last stats, merged with the live view) and ``/api/crop/<event_id>``.

Everything from MQTT is untrusted: events are reduced to known fields with checked types
(``sanitize_event``) and crops must be JPEGs; the page renders text with ``textContent`` only and
the server sends a Content-Security-Policy that allows nothing but this origin.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import mimetypes
import queue
import re
import select
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt

from edge.dashboard.security import Access
from edge.events.topics import parse_topic, subscriptions
from edge.sinks.mqtt import MqttSettings, make_client

log = logging.getLogger("platewatch.dashboard")

STATIC_DIR = Path(__file__).resolve().parent / "static"
RETIRED_CROPS = 64  # crops of replaced events still served for images already requested

# Health states of a camera card (pure function camera_health decides).
ONLINE, OFFLINE, NO_DATA = "online", "offline", "no data"

MAX_CROP_BYTES = 256 * 1024  # runtime crops are 5-20 kB; anything far bigger is not a plate crop
_EVENT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_STATS_NUMBERS = (
    "fps_in",
    "fps_analysed",
    "frames_dropped",
    "frames_corrupt",
    "latency_ms_p50",
    "latency_ms_p95",
    "reconnects",
    "queue_depth",
)


# ------------------------------------------------------------------------- pure helpers


def _opt_str(obj: dict[str, Any], key: str, max_len: int = 256) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string or null, got {type(value).__name__}")
    return value[:max_len]


def _opt_num(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"field {key!r} must be a finite number or null, got {value!r}")
    return float(value)


def _box(value: Any) -> list[int] | None:
    if (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return [int(v) for v in value]
    return None


def decode_jpeg_b64(b64: Any) -> bytes | None:
    """JPEG bytes of a ``crop_jpeg_b64`` value; None when absent, not base64, not a JPEG or
    over MAX_CROP_BYTES (the page only ever receives a JPEG from this origin)."""
    if not isinstance(b64, str) or not b64:
        return None
    if len(b64) > MAX_CROP_BYTES * 4 // 3 + 4:
        return None
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(b"\xff\xd8\xff"):
        return None
    return data


def camera_key(device: str | None, camera: str) -> str:
    """How the page names a camera: ``<device>/<camera>``, or the camera alone when the
    producer names no device."""
    return f"{device}/{camera}" if device else camera


def sanitize_event(
    obj: Any, topic_camera: str, topic_device: str | None = None
) -> tuple[dict[str, Any], bytes | None]:
    """A PlateEvent (parsed JSON) reduced to the fields the page uses, types checked, and its
    crop as JPEG bytes. Tolerant of unknown extra fields (a newer runtime); ValueError names the
    bad field otherwise."""
    if not isinstance(obj, dict):
        raise ValueError("event payload is not a JSON object")
    event_id = obj.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise ValueError(f"field 'event_id' missing or invalid: {event_id!r}")
    etype = obj.get("type")
    if etype not in ("provisional", "final"):
        raise ValueError(f"field 'type' must be 'provisional' or 'final', got {etype!r}")
    plate = obj.get("plate")
    if not isinstance(plate, str) or not plate:
        raise ValueError("field 'plate' missing or empty")
    camera = obj.get("camera")
    if not isinstance(camera, str) or not camera:
        camera = topic_camera
    device = obj.get("device")
    if not isinstance(device, str) or not device:
        device = topic_device
    track_id = obj.get("track_id")
    if isinstance(track_id, bool) or not isinstance(track_id, int):
        track_id = None
    zones = obj.get("zones") or []
    if not isinstance(zones, list):
        raise ValueError("field 'zones' must be a list")
    watchlist = obj.get("watchlist")
    hit: dict[str, Any] | None = None
    if isinstance(watchlist, dict):
        kind = watchlist.get("kind")
        hit = {
            "name": str(watchlist.get("name") or "?")[:64],
            "kind": kind if kind in ("allow", "deny") else "deny",
            "entry": str(watchlist.get("entry") or "")[:64],
            "distance": watchlist.get("distance")
            if isinstance(watchlist.get("distance"), int)
            else None,
            "description": _opt_str(watchlist, "description", 200),
        }
    candidates = []
    for c in (obj.get("candidates") or [])[:5]:
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            candidates.append(
                {"text": c["text"][:32], "votes": c.get("votes"), "score": c.get("score")}
            )
    confidence = _opt_num(obj, "confidence")
    event = {
        "event_id": event_id,
        "type": etype,
        "device": device[:64] if device else None,
        "camera": camera[:128],
        "track_id": track_id,
        "track_uuid": _opt_str(obj, "track_uuid", 64),
        "plate": plate[:32],
        "plate_hashed": bool(obj.get("plate_hashed", False)),
        "confidence": None if confidence is None else min(1.0, max(0.0, confidence)),
        "candidates": candidates,
        "region": _opt_str(obj, "region", 32),
        "format": _opt_str(obj, "format", 64),
        "first_seen": _opt_str(obj, "first_seen", 40),
        "last_seen": _opt_str(obj, "last_seen", 40),
        "video_time_s": _opt_num(obj, "video_time_s"),
        "vehicle_box": _box(obj.get("vehicle_box")),
        "plate_box": _box(obj.get("plate_box")),
        "direction": _opt_str(obj, "direction", 16),
        "zones": [str(z)[:64] for z in zones[:16]],
        "watchlist": hit,
    }
    return event, decode_jpeg_b64(obj.get("crop_jpeg_b64"))


def sanitize_stats(obj: Any, camera: str, device: str | None = None) -> dict[str, Any]:
    """CameraStats (parsed JSON) with checked types; ValueError names the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("stats payload is not a JSON object")
    online = obj.get("online")
    if not isinstance(online, bool):
        raise ValueError(f"field 'online' must be true/false, got {online!r}")
    out: dict[str, Any] = {"device": device, "camera": camera, "online": online}
    for key in _STATS_NUMBERS:
        out[key] = _opt_num(obj, key)
    out["ts"] = _opt_str(obj, "ts", 40)
    out["last_error"] = _opt_str(obj, "last_error", 500)
    return out


def track_key(event: dict[str, Any]) -> str:
    """Identity of a vehicle track: ``track_uuid``, else camera + tracker id, else the event."""
    if event.get("track_uuid"):
        return f"u:{event['track_uuid']}"
    if event.get("track_id") is not None:
        return f"t:{camera_key(event.get('device'), event['camera'])}#{event['track_id']}"
    return f"e:{event['event_id']}"


def camera_health(
    runtime_status: str | None,
    stats: dict[str, Any] | None,
    stats_age_s: float | None,
    stale_after_s: float,
) -> str:
    """``online`` / ``offline`` / ``no data`` for one camera card.

    The runtime's retained ``status`` (its Last Will says ``offline``) wins: a dead process has no
    live cameras. Then stats: none yet or older than ``stale_after_s`` -> no data; else the
    camera's own ``online`` flag (false while its source is retrying).
    """
    if runtime_status == "offline":
        return OFFLINE
    if stats is None or stats_age_s is None or stats_age_s > stale_after_s:
        return NO_DATA
    return ONLINE if stats.get("online") else OFFLINE


# ------------------------------------------------------------------------- state


@dataclass
class _Camera:
    name: str  # camera_key(device, camera)
    device: str | None = None
    camera: str = ""
    stats: dict[str, Any] | None = None
    stats_at: float | None = None  # time.time() when the stats arrived (the dashboard's clock)
    last_plate: dict[str, Any] | None = None


@dataclass(eq=False)  # identity hash: listeners live in a set
class _Listener:
    queue: queue.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: queue.Queue(maxsize=512)
    )
    overflowed: bool = False  # a slow client: its stream is closed and it resyncs on reconnect


class DashboardState:
    """Thread-safe, bounded view of the runtime's MQTT topics; fans changes out to listeners."""

    def __init__(
        self,
        topic_prefix: str = "platewatch",
        *,
        max_events: int = 200,
        max_alerts: int = 50,
        max_cameras: int = 256,
        stale_after_s: float = 75.0,
        history_enabled: bool = False,
        clock: Any = time.time,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events}")
        self.topic_prefix = topic_prefix
        self.max_events = max_events
        self.max_cameras = max_cameras
        self.stale_after_s = stale_after_s
        self.history_enabled = history_enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._events: OrderedDict[str, dict[str, Any]] = OrderedDict()  # oldest first
        self._crops: dict[str, bytes] = {}
        self._tracks: dict[str, str] = {}  # track key -> event id in the ring
        self._seen: OrderedDict[str, None] = OrderedDict()  # dedupe; 20x the ring
        self._max_seen = max(1000, 20 * max_events)
        self._alerts: deque[dict[str, Any]] = deque(maxlen=max_alerts)
        self._alert_crops: dict[str, bytes] = {}  # outlive the event ring: alerts matter longer
        # Crops of events just replaced or dropped: a browser that rendered the old row may
        # still be fetching its image (a provisional replaced by its final a moment later
        # answered 404 to that request and showed a console error).
        self._retired_crops: OrderedDict[str, bytes] = OrderedDict()
        self._cameras: dict[str, _Camera] = {}
        self._statuses: dict[str | None, str | None] = {}  # device -> its retained status
        self._broker: dict[str, Any] = {"connected": False, "host": None, "port": None}
        self._listeners: set[_Listener] = set()
        self.counters = {"messages": 0, "invalid": 0, "duplicates": 0}

    # -------------------------------------------------------------- feeding

    def handle_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """One MQTT message on any topic; invalid payloads are logged and dropped."""
        parsed = parse_topic(self.topic_prefix, topic)
        if parsed is None:
            return
        kind, device, camera = parsed.kind, parsed.device, parsed.camera
        self.counters["messages"] += 1
        try:
            if kind == "status":
                self._on_status(device, payload)
                return
            assert camera is not None
            obj = json.loads(payload)
            if kind == "stats":
                self._on_stats(sanitize_stats(obj, camera, device))
            else:
                event, crop = sanitize_event(obj, camera, device)
                self._on_event(event, crop, alert=kind == "alerts")
        except (ValueError, UnicodeDecodeError) as exc:
            self.counters["invalid"] += 1
            log.warning("dropped message on %s: %s", topic, exc)

    def set_broker(self, connected: bool, host: str | None = None, port: int | None = None) -> None:
        with self._lock:
            self._broker = {"connected": connected, "host": host, "port": port}
            self._broadcast("broker", dict(self._broker))

    def _on_status(self, device: str | None, payload: bytes) -> None:
        text = payload.decode("utf-8", errors="replace").strip().lower()
        status = text if text in ("online", "offline") else None
        if not payload:  # a cleared retained status
            status = None
        with self._lock:
            self._statuses[device] = status
            self._broadcast("status", self._status_view())
            for cam in self._cameras.values():  # their health follows their device's status
                if cam.device == device:
                    self._broadcast("camera", self._camera_view(cam))

    def _status_view(self) -> dict[str, Any]:
        """``status``: ``online``/``offline`` when every device that said one agrees, else
        ``partial`` (None before any); ``devices``: each device's own."""
        said = {v for v in self._statuses.values() if v is not None}
        status = None if not said else said.pop() if len(said) == 1 else "partial"
        devices = {str(k or ""): v for k, v in self._statuses.items()}
        return {"status": status, "devices": devices}

    def _camera(self, device: str | None, camera: str) -> _Camera | None:
        name = camera_key(device, camera)
        cam = self._cameras.get(name)
        if cam is None:
            if len(self._cameras) >= self.max_cameras:
                log.warning("more than %d cameras; ignoring %r", self.max_cameras, name)
                return None
            cam = self._cameras[name] = _Camera(name, device, camera)
        return cam

    def _on_stats(self, stats: dict[str, Any]) -> None:
        with self._lock:
            cam = self._camera(stats["device"], stats["camera"])
            if cam is None:
                return
            cam.stats, cam.stats_at = stats, self._clock()
            self._broadcast("camera", self._camera_view(cam))

    def _on_event(self, event: dict[str, Any], crop: bytes | None, alert: bool) -> None:
        eid = event["event_id"]
        now = self._clock()
        with self._lock:
            cam = self._camera(event["device"], event["camera"])
            if eid in self._seen:
                current = self._events.get(eid)
                if alert and current is not None and not current["alert"]:
                    # The runtime fired an alert for an event already shown: mark it in place.
                    current["alert"] = True
                    if current["watchlist"] is None:
                        current["watchlist"] = event["watchlist"]
                    self._broadcast("event", {"event": dict(current), "replaces": []})
                    self._add_alert(current)
                else:
                    self.counters["duplicates"] += 1
                return
            self._remember(eid)
            event["alert"] = alert
            event["has_crop"] = crop is not None
            event["received"] = now
            key = track_key(event)
            replaces: list[str] = []
            old_id = self._tracks.get(key)
            if old_id is not None and old_id in self._events:
                old = self._events[old_id]
                if old["type"] == "final" and event["type"] == "provisional":
                    return  # a late provisional never replaces the definitive reading
                del self._events[old_id]
                self._retire_crop(old_id)
                replaces.append(old_id)
                event["alert"] = event["alert"] or old["alert"]
            self._events[eid] = event
            self._tracks[key] = eid
            if crop is not None:
                self._crops[eid] = crop
            while len(self._events) > self.max_events:
                gone_id, gone = self._events.popitem(last=False)
                self._retire_crop(gone_id)
                if self._tracks.get(track_key(gone)) == gone_id:
                    del self._tracks[track_key(gone)]
            if cam is not None and event["type"] == "final":
                cam.last_plate = {
                    k: event[k]
                    for k in ("event_id", "plate", "plate_hashed", "confidence", "last_seen")
                }
            self._broadcast("event", {"event": dict(event), "replaces": replaces})
            if cam is not None and event["type"] == "final":
                self._broadcast("camera", self._camera_view(cam))
            if alert or (event["watchlist"] is not None and event["type"] == "final"):
                self._add_alert(event)

    def _retire_crop(self, eid: str) -> None:
        crop = self._crops.pop(eid, None)
        if crop is not None:
            self._retired_crops[eid] = crop
            while len(self._retired_crops) > RETIRED_CROPS:
                self._retired_crops.popitem(last=False)

    def _remember(self, eid: str) -> None:
        self._seen[eid] = None
        while len(self._seen) > self._max_seen:
            self._seen.popitem(last=False)

    def _add_alert(self, event: dict[str, Any]) -> None:
        key = track_key(event)
        for i, a in enumerate(self._alerts):
            if a["event_id"] == event["event_id"] or a["track"] == key:
                del self._alerts[i]
                self._alert_crops.pop(a["event_id"], None)
                break
        if len(self._alerts) == self._alerts.maxlen:
            self._alert_crops.pop(self._alerts[0]["event_id"], None)  # about to fall off
        crop = self._crops.get(event["event_id"])
        if crop is not None:
            self._alert_crops[event["event_id"]] = crop
        wl = event["watchlist"] or {}
        item = {
            "event_id": event["event_id"],
            "track": key,
            "device": event.get("device"),
            "camera": event["camera"],
            "plate": event["plate"],
            "plate_hashed": event["plate_hashed"],
            "kind": wl.get("kind", "deny"),
            "list": wl.get("name"),
            "entry": wl.get("entry"),
            "distance": wl.get("distance"),
            "description": wl.get("description"),
            "alert": event["alert"],
            "last_seen": event["last_seen"],
            "has_crop": event["has_crop"],
            "received": event["received"],
        }
        self._alerts.append(item)
        self._broadcast("alert", dict(item))

    # -------------------------------------------------------------- reading

    def _camera_view(self, cam: _Camera) -> dict[str, Any]:
        age = None if cam.stats_at is None else max(0.0, self._clock() - cam.stats_at)
        return {
            "name": cam.name,
            "device": cam.device,
            "camera": cam.camera,
            "runtime_status": self._statuses.get(cam.device),
            "stats": dict(cam.stats) if cam.stats else None,
            "stats_age_s": age,
            "last_plate": dict(cam.last_plate) if cam.last_plate else None,
            "health": camera_health(
                self._statuses.get(cam.device), cam.stats, age, self.stale_after_s
            ),
        }

    def _snapshot_locked(self) -> dict[str, Any]:
        return {
            "topic_prefix": self.topic_prefix,
            "now": self._clock(),
            **self._status_view(),
            "broker": dict(self._broker),
            "stale_after_s": self.stale_after_s,
            "history_enabled": self.history_enabled,
            "max_events": self.max_events,
            "events": [dict(e) for e in reversed(self._events.values())],  # newest first
            "alerts": [dict(a) for a in reversed(self._alerts)],
            "cameras": [
                self._camera_view(c) for c in sorted(self._cameras.values(), key=lambda c: c.name)
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything the page needs, newest event first (also ``GET /api/state``)."""
        with self._lock:
            return self._snapshot_locked()

    def get_crop(self, event_id: str) -> bytes | None:
        with self._lock:
            return (
                self._crops.get(event_id)
                or self._alert_crops.get(event_id)
                or self._retired_crops.get(event_id)
            )

    # -------------------------------------------------------------- listeners (SSE)

    def subscribe(self) -> tuple[_Listener, dict[str, Any]]:
        """A new listener and the snapshot taken atomically with it: no update falls between."""
        listener = _Listener()
        with self._lock:
            self._listeners.add(listener)
            return listener, self._snapshot_locked()

    def unsubscribe(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        # Called with the lock held; never blocks: a full queue drops that listener.
        for listener in list(self._listeners):
            try:
                listener.queue.put_nowait((kind, data))
            except queue.Full:
                listener.overflowed = True
                self._listeners.discard(listener)


# ------------------------------------------------------------------------- MQTT


class MqttFeed:
    """paho-mqtt 2 subscriber feeding a DashboardState; reconnects with back-off by itself."""

    def __init__(self, state: DashboardState, settings: MqttSettings) -> None:
        self.state = state
        self.settings = settings
        s = settings
        self.client_id = s.client_id or (
            f"platewatch-dashboard-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        )
        client = make_client(s, self.client_id)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any):  # type: ignore[no-untyped-def]
        if rc.is_failure:
            log.error(
                "MQTT broker %s:%s refused the dashboard: %s",
                self.settings.host,
                self.settings.port,
                rc,
            )
            return
        # Subscribing on every connect: a clean session forgets subscriptions on reconnect.
        client.subscribe([(t, 1) for t in subscriptions(self.settings.topic_prefix)])
        self.state.set_broker(True, self.settings.host, self.settings.port)
        log.info("dashboard connected to MQTT %s:%s", self.settings.host, self.settings.port)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any):  # type: ignore[no-untyped-def]
        self.state.set_broker(False, self.settings.host, self.settings.port)
        log.warning(
            "dashboard lost MQTT %s:%s (%s); reconnecting",
            self.settings.host,
            self.settings.port,
            rc,
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.state.handle_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # never kill paho's network thread
            log.exception("dashboard: error handling %s", msg.topic)

    def start(self) -> MqttFeed:
        # connect_async: a broker that is down at start is retried like any reconnect.
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
        )
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------------- HTTP

_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _qs_value(qs: dict[str, list[str]], key: str) -> str | None:
    values = qs.get(key)
    if not values:
        return None
    value = values[-1].strip()
    return value or None


def device_list(
    live: dict[str, dict[str, Any]],
    stored: list[dict[str, Any]],
    stale_after_s: float,
    now: float,
) -> list[dict[str, Any]]:
    """Live camera views (``DashboardState``) merged with stored ``CameraStatus`` dicts: one
    entry per ``<device>/<camera>``, sorted, each with its ``health`` (live stats win; stored
    stats are judged by their own timestamp). Devices with no camera yet are listed alone."""
    from edge.history.store import parse_time

    out: dict[str, dict[str, Any]] = {}
    for c in stored:
        if c.get("camera") is None:
            key = f"{c['device']}/"
        else:
            key = camera_key(c.get("device"), c["camera"])
        ts = parse_time(c["stats_ts"]) if c.get("stats_ts") else None
        age = None if ts is None else max(0.0, now - ts)
        out[key] = {
            "name": key,
            "device": c.get("device"),
            "camera": c.get("camera"),
            "device_status": c.get("device_status"),
            "stats": c.get("stats"),
            "stats_age_s": age,
            "last_event_at": c.get("last_event_at"),
            "health": camera_health(c.get("device_status"), c.get("stats"), age, stale_after_s)
            if c.get("camera") is not None
            else (c.get("device_status") or NO_DATA),
            "source": "store",
        }
    for key, v in live.items():
        entry = out.setdefault(key, {"name": key, "last_event_at": None, "device_status": None})
        entry.update(
            {
                "device": v.get("device"),
                "camera": v.get("camera"),
                "stats": v.get("stats") or entry.get("stats"),
                "stats_age_s": v.get("stats_age_s")
                if v.get("stats") is not None
                else entry.get("stats_age_s"),
                "device_status": v.get("runtime_status") or entry.get("device_status"),
                "health": v["health"]
                if v.get("stats") is not None
                else entry.get("health", v["health"]),
                "source": "live",
            }
        )
    # A device listed alone once one of its cameras is known adds nothing.
    cams = {e["device"] for e in out.values() if e.get("camera") is not None}
    return [
        out[k]
        for k in sorted(out)
        if not (out[k].get("camera") is None and out[k].get("device") in cams)
    ]


def history_query(qs: dict[str, list[str]]) -> dict[str, Any]:
    """``/api/history`` query string -> ``HistoryStore.search`` keyword arguments."""
    camera = _qs_value(qs, "camera")
    device = _qs_value(qs, "device")
    if camera is not None and "/" in camera and device is None:
        device, camera = camera.split("/", 1)  # the page's "<device>/<camera>" (camera_key)
    args: dict[str, Any] = {
        "plate": _qs_value(qs, "plate"),
        "camera": camera,
        "device": device,
        "since": _qs_value(qs, "since"),
        "until": _qs_value(qs, "until"),
        "watchlist": _qs_value(qs, "watchlist"),
    }
    for key, default, hi in (("limit", 50, 500), ("max_distance", 1, 3)):
        raw = _qs_value(qs, key)
        try:
            value = default if raw is None else int(raw)
        except ValueError as exc:
            raise ValueError(f"{key} must be an integer, got {raw!r}") from exc
        if not 0 <= value <= hi:
            raise ValueError(f"{key} must be in [0, {hi}], got {value}")
        args[key] = value
    if args["limit"] == 0:
        raise ValueError("limit must be >= 1")
    args["fuzzy"] = _qs_value(qs, "exact") not in ("1", "true", "yes")
    return args


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "platewatch-dashboard"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    # -------------------------------------------------------------- responses

    def _send(self, status: int, body: bytes, ctype: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # -------------------------------------------------------------- routing

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self.do_GET()

    def _admitted(self, url: Any) -> bool:
        """Host check and token (edge.dashboard.security); answers the refusal itself."""
        access = self.server.access
        if not access.host_ok(self.headers.get("Host")):
            self._error(
                421,
                f"Host {self.headers.get('Host')!r} is not one this dashboard serves (DNS "
                "rebinding guard): use its address, or start it with --allowed-host NAME",
            )
            return False
        if access.token is not None:
            given = _qs_value(parse_qs(url.query), "token")
            if given is not None and access.token_matches(given):
                # One visit with ?token=... sets the cookie the page's requests then carry.
                self.send_response(303)
                self.send_header("Location", url.path or "/")
                self.send_header("Set-Cookie", access.set_cookie())
                self.send_header("Content-Length", "0")
                self.end_headers()
                return False
            if not access.authorized(self.headers.get("Authorization"), self.headers.get("Cookie")):
                self._error(401, "this dashboard needs its token: open it once as /?token=TOKEN")
                return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        path = url.path
        if not self._admitted(url):
            return
        try:
            if path in ("/", "/index.html"):
                self._static("index.html")
            elif path.startswith("/static/"):
                self._static(path[len("/static/") :])
            elif path == "/api/state":
                self._json(self.server.state.snapshot())
            elif path == "/api/stream":
                self._stream()
            elif path == "/api/history":
                self._history(parse_qs(url.query))
            elif path == "/api/devices":
                self._devices()
            elif path.startswith("/api/crop/"):
                self._crop(path[len("/api/crop/") :])
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon", "max-age=86400")
            else:
                self._error(404, f"no such page: {path}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-response

    def _static(self, name: str) -> None:
        # Only files that exist directly in static/: no path traversal possible.
        files = self.server.static_files
        if name not in files:
            self._error(404, f"no such file: {name}")
            return
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        self._send(200, files[name], ctype, "no-cache")

    def _crop(self, event_id: str) -> None:
        if not _EVENT_ID.match(event_id):
            self._error(400, f"bad event id: {event_id!r}")
            return
        data = self.server.state.get_crop(event_id)
        if data is None and self.server.history is not None:
            data = self.server.history.get_crop(event_id)
        if data is None:
            self._error(404, f"no crop for event {event_id}")
            return
        # An event id names one immutable crop: the browser may keep it.
        self._send(200, data, "image/jpeg", "private, max-age=86400, immutable")

    def _history(self, qs: dict[str, list[str]]) -> None:
        store = self.server.history
        if store is None:
            self._error(404, "history is not enabled (start the dashboard with --history DB)")
            return
        try:
            args = history_query(qs)
            records = store.search(**args)
        except ValueError as exc:
            self._error(400, str(exc))
            return
        results = []
        for r in records:
            d = r.to_dict()
            d["crop_url"] = f"/api/crop/{r.event_id}" if r.has_crop else None
            results.append(d)
        self._json(
            {
                "query": {k: v for k, v in args.items() if v is not None},
                "count": len(results),
                "results": results,
            }
        )

    def _devices(self) -> None:
        """Every device and camera: the live ones (MQTT) and those the store knows (at the
        centre, each camera's last stats), each with its health."""
        state = self.server.state
        live = {c["name"]: c for c in state.snapshot()["cameras"]}
        stored: list[dict[str, Any]] = []
        if self.server.history is not None:
            try:
                stored = [c.to_dict() for c in self.server.history.cameras()]
            except Exception as exc:  # the store is away: the live part still answers
                log.warning("dashboard: listing the stored cameras failed: %s", exc)
        self._json({"cameras": device_list(live, stored, state.stale_after_s, time.time())})

    def _stream(self) -> None:
        state = self.server.state
        listener, snap = state.subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")  # behind nginx: do not buffer the stream
            self.end_headers()
            self.wfile.write(b"retry: 2000\n\n")
            self._sse("snapshot", snap)
            last_write = time.monotonic()
            while not self.server.stopping.is_set() and not listener.overflowed:
                try:
                    kind, data = listener.queue.get(timeout=0.5)
                except queue.Empty:
                    if self._client_gone():
                        break
                    if time.monotonic() - last_write >= self.server.heartbeat_s:
                        # A comment line: keeps proxies from timing out, detects gone clients.
                        self.wfile.write(b": ping\n\n")
                        self.wfile.flush()
                        last_write = time.monotonic()
                    continue
                self._sse(kind, data)
                last_write = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            state.unsubscribe(listener)
            self.close_connection = True

    def _client_gone(self) -> bool:
        # An SSE client never sends after its request: a readable socket means EOF (closed tab),
        # noticed within the poll interval instead of at the next heartbeat write.
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _sse(self, kind: str, data: dict[str, Any]) -> None:
        body = json.dumps(data, separators=(",", ":"))
        self.wfile.write(f"event: {kind}\ndata: {body}\n\n".encode())
        self.wfile.flush()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True  # SSE connections never block shutdown
    allow_reuse_address = True

    def __init__(
        self, addr: tuple[str, int], state: DashboardState, history: Any, access: Access
    ) -> None:
        super().__init__(addr, _Handler)
        self.access = access
        self.state = state
        self.history = history
        self.stopping = threading.Event()
        self.heartbeat_s = 15.0
        # Read once: the page is a handful of small files and must not change under a browser.
        self.static_files = {p.name: p.read_bytes() for p in STATIC_DIR.iterdir() if p.is_file()}


class DashboardServer:
    """The HTTP side: ``start()`` serves in a thread, ``serve_forever()`` in the caller."""

    def __init__(
        self,
        state: DashboardState,
        host: str = "127.0.0.1",
        port: int = 8080,
        history: Any = None,
        access: Access | None = None,
    ) -> None:
        self.state = state
        self.httpd = _HttpServer((host, port), state, history, access or Access.make(host))
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host.decode() if isinstance(self.host, bytes) else str(self.host)
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="dashboard-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
        self.httpd.server_close()
