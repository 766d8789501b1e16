"""MQTT message -> database row: pure functions, no database, no broker.

``parse_message`` reads one message of the central broker (topic layout of edge.events.topics)
into one typed row: ``EventRow`` (a PlateEvent, provisional or final), ``AlertRow``,
``StatsRow`` (CameraStats), ``StatusRow`` (a device's retained online/offline) or ``Rejected``
(with the reason, stored as such: nothing is dropped silently). ``merge_batch`` collapses the
rows of one batch so each row of the database is written once per transaction (PostgreSQL's
``ON CONFLICT DO UPDATE`` refuses to touch one row twice in a statement).

Plates are stored as the SQLite history stores them (edge.history.store): normalised, and
O/0-I/1 folded in ``plate_fold`` for search; hashed (privacy) plates as they came, never with a
crop.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from edge.events.schema import CameraStats, PlateEvent
from edge.events.topics import parse_topic
from edge.rules.watchlist import fold_confusables, normalize_plate

MAX_CROP_BYTES = 1024 * 1024  # a plate crop is 5-20 kB; a megabyte is no plate crop


@dataclass(frozen=True)
class EventRow:
    event_id: str
    track_key: str
    final: bool
    device: str
    params: dict[str, Any]  # the events columns
    crop: bytes | None
    received_at: datetime


@dataclass(frozen=True)
class AlertRow:
    event_id: str
    device: str
    params: dict[str, Any]


@dataclass(frozen=True)
class StatsRow:
    device: str
    camera: str
    params: dict[str, Any]


@dataclass(frozen=True)
class StatusRow:
    device: str
    status: str | None  # online / offline; None: cleared
    received_at: datetime


@dataclass(frozen=True)
class Rejected:
    topic: str
    payload: bytes
    error: str
    received_at: datetime


@dataclass(frozen=True)
class Ignored:
    """A message the collector has no table for (legacy layout without a device, another
    prefix's topic): acknowledged, not stored."""

    topic: str
    reason: str


Row = EventRow | AlertRow | StatsRow | StatusRow | Rejected | Ignored


def track_key(event: PlateEvent, device: str) -> str:
    """What makes a provisional and its final one row: the track UUID, else the device, camera,
    tracker id and start of the track (the same for both events of a track)."""
    if event.track_uuid:
        return f"u:{event.track_uuid}"
    return f"t:{device}/{event.camera}#{event.track_id}@{event.first_seen.isoformat()}"


def _crop(event: PlateEvent) -> tuple[bytes | None, str | None]:
    """The crop's JPEG bytes, or None with the reason it was not kept (None: no crop sent)."""
    if not event.crop_jpeg_b64:
        return None, None
    if event.plate_hashed:
        return None, "privacy: no crop with a hashed plate"
    if len(event.crop_jpeg_b64) > MAX_CROP_BYTES * 4 // 3 + 4:
        return None, "crop over 1 MB"
    try:
        data = base64.b64decode(event.crop_jpeg_b64, validate=True)
    except (binascii.Error, ValueError):
        return None, "crop_jpeg_b64 is not base64"
    if not data.startswith(b"\xff\xd8\xff"):
        return None, "crop is not a JPEG"
    return data, None


def event_params(event: PlateEvent, device: str, received_at: datetime) -> dict[str, Any]:
    """The ``events`` columns of one event (no crop bytes)."""
    plate = event.plate if event.plate_hashed else normalize_plate(event.plate) or event.plate
    fold = plate if event.plate_hashed else fold_confusables(plate)
    wl = event.watchlist
    return {
        "event_id": event.event_id,
        "track_key": track_key(event, device),
        "track_uuid": event.track_uuid,
        "schema_version": event.schema_version,
        "type": event.type,
        "device": device,
        "camera": event.camera,
        "track_id": event.track_id,
        "plate": plate,
        "plate_fold": fold,
        "plate_len": len(fold),
        "plate_hashed": event.plate_hashed,
        "confidence": event.confidence,
        "char_confidences": list(event.char_confidences),
        "candidates": json.dumps([c.model_dump() for c in event.candidates]),
        "region": event.region,
        "format": event.format,
        "first_seen": event.first_seen,
        "last_seen": event.last_seen,
        "first_frame": event.first_frame,
        "last_frame": event.last_frame,
        "video_time_s": event.video_time_s,
        "vehicle_box": event.vehicle_box,
        "plate_box": event.plate_box,
        "direction": event.direction,
        "zones": list(event.zones),
        "watchlist": wl.name if wl else None,
        "watchlist_kind": wl.kind if wl else None,
        "watchlist_entry": wl.entry if wl else None,
        "watchlist_distance": wl.distance if wl else None,
        "watchlist_description": wl.description if wl else None,
        "has_crop": False,
        "crop_path": None,
        "received_at": received_at,
    }


def _device_of(topic_device: str, payload_device: str | None) -> str:
    if payload_device is not None and payload_device != topic_device:
        raise ValueError(
            f"payload says device {payload_device!r} but the topic says {topic_device!r} "
            "(a bridge that rewrites topics, or two devices sharing one id?)"
        )
    return topic_device


def parse_message(prefix: str, topic: str, payload: bytes, received_at: datetime) -> Row:
    """One central-broker message as the row it becomes (see the module docstring)."""
    parsed = parse_topic(prefix, topic)
    if parsed is None:
        return Ignored(topic, f"not a {prefix}/<device>/... topic")
    if parsed.device is None:
        return Ignored(topic, "topic has no device level (a runtime older than device ids)")
    device = parsed.device
    if parsed.kind == "plate":
        return Ignored(topic, "retained copy of a final already on .../events")
    try:
        if parsed.kind == "status":
            text = payload.decode("utf-8", errors="replace").strip().lower()
            status = text if text in ("online", "offline") else None
            if payload and status is None:
                raise ValueError(f"status must be online or offline, got {text[:40]!r}")
            return StatusRow(device, status, received_at)
        if parsed.kind == "stats":
            stats = CameraStats.model_validate_json(payload)
            device = _device_of(device, stats.device)
            if stats.camera != parsed.camera:
                raise ValueError(f"stats of camera {stats.camera!r} on {parsed.camera!r}'s topic")
            return StatsRow(device, stats.camera, stats_params(stats, device, received_at))
        event = PlateEvent.model_validate_json(payload)
        device = _device_of(device, event.device)
        if event.camera != parsed.camera:
            raise ValueError(f"event of camera {event.camera!r} on {parsed.camera!r}'s topic")
        if parsed.kind == "alerts":
            if event.watchlist is None:
                raise ValueError("alert without a watchlist match")
            return AlertRow(event.event_id, device, alert_params(event, device, received_at))
        crop, _why = _crop(event)
        params = event_params(event, device, received_at)
        params["has_crop"] = crop is not None
        return EventRow(
            event.event_id,
            params["track_key"],
            event.type == "final",
            device,
            params,
            crop,
            received_at,
        )
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        return Rejected(topic, payload, _reason(exc), received_at)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False)[:5]:
            loc = ".".join(str(p) for p in err["loc"]) or "payload"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc)


def alert_params(event: PlateEvent, device: str, received_at: datetime) -> dict[str, Any]:
    wl = event.watchlist
    assert wl is not None
    plate = event.plate if event.plate_hashed else normalize_plate(event.plate) or event.plate
    return {
        "event_id": event.event_id,
        "device": device,
        "camera": event.camera,
        "plate": plate,
        "plate_hashed": event.plate_hashed,
        "watchlist": wl.name,
        "kind": wl.kind,
        "entry": wl.entry,
        "distance": wl.distance,
        "description": wl.description,
        "last_seen": event.last_seen,
        "received_at": received_at,
    }


def stats_params(stats: CameraStats, device: str, received_at: datetime) -> dict[str, Any]:
    return {
        "device": device,
        "camera": stats.camera,
        "ts": stats.ts,
        "online": stats.online,
        "fps_in": stats.fps_in,
        "fps_analysed": stats.fps_analysed,
        "frames_dropped": stats.frames_dropped,
        "frames_corrupt": stats.frames_corrupt,
        "latency_ms_p50": stats.latency_ms_p50,
        "latency_ms_p95": stats.latency_ms_p95,
        "reconnects": stats.reconnects,
        "queue_depth": stats.queue_depth,
        "last_error": stats.last_error,
        "received_at": received_at,
    }


@dataclass
class Merged:
    """One batch, ready to write: at most one row per database row it touches."""

    events: list[EventRow]
    alerts: list[AlertRow]
    stats: list[StatsRow]
    statuses: dict[str, StatusRow]  # device -> the latest status
    rejected: list[Rejected]
    devices: set[str]


def merge_batch(rows: list[Row]) -> Merged:
    """Rows in arrival order -> one write per database row.

    Events of one track: a final wins over a provisional whatever the order (a redelivered
    provisional after its final changes nothing); of two of one kind the later wins (the same
    message again, or a re-published one). Alerts by event id, stats by (device, camera, ts),
    statuses by device (the latest)."""
    events: dict[str, EventRow] = {}
    alerts: dict[str, AlertRow] = {}
    stats: dict[tuple[str, str, Any], StatsRow] = {}
    statuses: dict[str, StatusRow] = {}
    rejected: list[Rejected] = []
    devices: set[str] = set()
    for row in rows:
        if isinstance(row, EventRow):
            devices.add(row.device)
            old = events.get(row.track_key)
            if old is None or row.final or not old.final:
                events[row.track_key] = row
        elif isinstance(row, AlertRow):
            devices.add(row.device)
            alerts.setdefault(row.event_id, row)
        elif isinstance(row, StatsRow):
            devices.add(row.device)
            stats[(row.device, row.camera, row.params["ts"])] = row
        elif isinstance(row, StatusRow):
            devices.add(row.device)
            statuses[row.device] = row
        elif isinstance(row, Rejected):
            rejected.append(row)
    return Merged(
        list(events.values()),
        list(alerts.values()),
        list(stats.values()),
        statuses,
        rejected,
        devices,
    )
