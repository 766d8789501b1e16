"""Every message platewatch emits: pydantic models, JSON serialisation and the JSON Schema files.

This module owns the wire format. Sinks (``edge.sinks``) only move the bytes that
``PlateEvent.to_json()`` / ``CameraStats.to_json()`` produce, so MQTT, JSON Lines and stdout
all carry byte-identical objects. The committed schema files in ``edge/events/schemas/`` are
generated
from these models (``python -m edge.events.schema --write-schemas``) and a test keeps them in sync.

Timestamps are always UTC ISO 8601 with millisecond precision and a ``Z`` suffix
(``2025-05-01T12:00:00.250Z``); naive datetimes are rejected rather than guessed.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import socket
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

SCHEMA_VERSION: Literal["1.0"] = "1.0"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Camera names become MQTT topic levels: '/', '+' and '#' would change the topic's meaning.
CAMERA_NAME_PATTERN = r"^[^/+#\u0000]+$"
# Device ids are a topic level too, and a database key at the centre: a host-name-like word.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TS_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def default_device_id() -> str:
    """This machine's host name as a device id: characters a device id may not hold become
    '-', and it is cut to 64 characters (``jetson-gate.local`` stays as it is)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._")[:64]
    return name or "device"


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (what every timestamp field expects)."""
    return datetime.now(timezone.utc)


def format_utc(ts: datetime) -> str:
    """``2025-05-01T12:00:00.250Z``: UTC, milliseconds, 'Z'. Consumers can sort these as text."""
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _require_aware_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (use edge.events.schema.utc_now())")
    # Truncate to the millisecond the wire format carries, so a model equals its own JSON.
    ts = ts.astimezone(timezone.utc)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def _to_float(value: Any) -> Any:
    # numpy float32 is not a float subclass; the runtime hands us numpy scalars all the time.
    if isinstance(value, np.generic):
        return value.item()
    return value


def _round(ndigits: int) -> Callable[[float], float]:
    def rounder(value: float) -> float:
        return round(value, ndigits)

    return rounder


def _to_box(value: Any) -> Any:
    """Accept numpy arrays / float boxes and round to int pixels (boxes are pixel corners)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            v = _to_float(v)
            if isinstance(v, float):
                if v != v:  # NaN
                    raise ValueError("box coordinate is NaN")
                v = int(round(v))
            out.append(v)
        return out
    return value


def _check_box(box: list[int] | None) -> list[int] | None:
    if box is not None and (box[2] < box[0] or box[3] < box[1]):
        raise ValueError(f"box {box} must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1")
    return box


UtcTimestamp = Annotated[
    datetime,
    AfterValidator(_require_aware_utc),
    PlainSerializer(format_utc, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _TS_PATTERN,
            "examples": ["2025-05-01T12:00:00.250Z"],
        }
    ),
]
# Constraints come before the BeforeValidator so pydantic emits them as JSON Schema keywords.
# Floats are rounded: float32 noise (0.8999999761581421) only inflates payloads.
Unit = Annotated[
    float, Field(ge=0.0, le=1.0), BeforeValidator(_to_float), AfterValidator(_round(4))
]
NonNegFloat = Annotated[float, Field(ge=0.0), BeforeValidator(_to_float), AfterValidator(_round(3))]
NonNegInt = Annotated[int, Field(ge=0), BeforeValidator(_to_float)]
Box = Annotated[
    list[int],
    Field(min_length=4, max_length=4),
    BeforeValidator(_to_box),
    AfterValidator(_check_box),
]


class _Message(BaseModel):
    # forbid: a misspelt field is a bug in the producer, not something to ship silently.
    # serialization_defaults_required: defaulted fields are always emitted, so the schema
    # (generated in serialization mode) lists them as required.
    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        json_schema_serialization_defaults_required=True,
    )

    def to_json(self) -> str:
        """Compact JSON: the exact object every sink emits (nulls included, never omitted)."""
        return self.model_dump_json()

    def to_bytes(self) -> bytes:
        return self.to_json().encode("utf-8")


class Candidate(BaseModel):
    """One alternative reading of a plate from the per-track vote."""

    model_config = ConfigDict(extra="forbid", title="Candidate")

    text: str = Field(min_length=1, title="Text", description="Candidate plate text.")
    votes: NonNegInt = Field(
        title="Votes", description="Number of single-frame reads that voted for this text."
    )
    score: Unit = Field(
        title="Score",
        description="Confidence-weighted vote share of this candidate, in [0, 1]; "
        "candidates are sorted by score, best first.",
    )


class WatchlistHit(BaseModel):
    """The watchlist entry a plate matched: the closest over all lists (edge.rules.watchlist)."""

    model_config = ConfigDict(extra="forbid", title="WatchlistHit")

    name: str = Field(min_length=1, title="Watchlist", description="Name of the matched list.")
    kind: Literal["allow", "deny"] = Field(
        title="Kind", description="'allow' (e.g. open a gate) or 'deny' (raise an alert)."
    )
    entry: str = Field(
        min_length=1,
        title="Entry",
        description="The list entry that matched, as configured ('re:' prefix for regexes).",
    )
    distance: NonNegInt = Field(
        title="Distance",
        description="Edit distance between the plate and a literal entry (0 for regexes).",
    )
    description: str | None = Field(
        default=None, title="Description", description="The entry's description, or null."
    )


class PlateEvent(_Message):
    """A plate read for one vehicle track, published on ``<prefix>/<device>/<camera>/events``.

    A track emits at most one ``provisional`` event (as soon as the vote is confident) and
    exactly one ``final`` event (when the track ends). Both share ``track_uuid``; each message has
    its own ``event_id``, which consumers use to drop at-least-once duplicates.
    """

    model_config = ConfigDict(title="PlateEvent")

    schema_version: Literal["1.0"] = Field(
        default=SCHEMA_VERSION,
        title="Schema version",
        description="Version of this message format; bumped on any incompatible change.",
    )
    event_id: str = Field(
        default_factory=lambda: str(uuid.uuid4()),
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        title="Event id",
        description="UUID of this message. Unique per message (a provisional and the final "
        "event of one track have different ids); redelivered copies keep it, so consumers "
        "dedupe on it.",
    )
    type: Literal["provisional", "final"] = Field(
        title="Type",
        description="'provisional': early consensus while the vehicle is still in view; "
        "'final': the track has ended and this is the definitive reading.",
    )
    device: str | None = Field(
        default=None,
        pattern=DEVICE_ID_PATTERN,
        title="Device",
        description="Id of the platewatch device that made the event (the configuration's "
        "'device', by default its host name; also the MQTT topic level after the prefix); null "
        "from producers older than this field.",
    )
    camera: str = Field(
        min_length=1,
        pattern=CAMERA_NAME_PATTERN,
        title="Camera",
        description="Camera name from the configuration (also the MQTT topic level).",
    )
    track_id: NonNegInt = Field(
        title="Track id", description="Tracker id of the vehicle, unique per camera while running."
    )
    track_uuid: str | None = Field(
        default=None,
        title="Track UUID",
        description="UUID shared by every event of one vehicle track (provisional and final), "
        "unique across restarts; lets consumers replace a provisional reading by the final.",
    )
    plate: str = Field(
        min_length=1,
        max_length=16,
        title="Plate",
        description="Voted plate text (after region-format repair), without separators.",
    )
    confidence: Unit = Field(
        title="Confidence", description="Confidence of the voted plate in [0, 1]."
    )
    char_confidences: list[Unit] = Field(
        title="Character confidences",
        description="Per-character confidence of the voted plate, one per character of 'plate'.",
    )
    candidates: list[Candidate] = Field(
        default_factory=list,
        title="Candidates",
        description="Top-k readings from the vote with their vote counts, best first.",
    )
    region: str | None = Field(
        default=None,
        title="Region",
        description="Region/country code whose format the plate matched, or null if none.",
    )
    format: str | None = Field(
        default=None,
        title="Format",
        description="Name of the configured plate format (regex) the plate matched, or null.",
    )
    first_seen: UtcTimestamp = Field(
        title="First seen", description="When the track was first seen (UTC, ISO 8601, 'Z')."
    )
    last_seen: UtcTimestamp = Field(
        title="Last seen", description="When the track was last seen (UTC, ISO 8601, 'Z')."
    )
    first_frame: NonNegInt = Field(
        title="First frame", description="Source frame index where the track was first seen."
    )
    last_frame: NonNegInt = Field(
        title="Last frame", description="Source frame index where the track was last seen."
    )
    video_time_s: NonNegFloat | None = Field(
        default=None,
        title="Video time",
        description="Position in the video file (seconds) of the best read; null for live sources.",
    )
    vehicle_box: Box | None = Field(
        default=None,
        title="Vehicle box",
        description="Vehicle box [x1, y1, x2, y2] in source-frame pixels at the best read; "
        "null when the plate was not tied to a vehicle.",
    )
    plate_box: Box = Field(
        title="Plate box",
        description="Plate box [x1, y1, x2, y2] in source-frame pixels at the best read.",
    )
    direction: Literal["entry", "exit", "unknown"] | None = Field(
        default=None,
        title="Direction",
        description="Direction of travel when the camera has a direction line configured; "
        "null when not configured.",
    )
    zones: list[str] = Field(
        default_factory=list,
        title="Zones",
        description="Names of the camera's zones the vehicle passed, in order of first visit; "
        "empty when the camera has no zones.",
    )
    watchlist: WatchlistHit | None = Field(
        default=None,
        title="Watchlist match",
        description="The watchlist entry the plate matched (list name, kind, entry, distance), "
        "or null when it is on no list.",
    )
    plate_hashed: bool = Field(
        default=False,
        title="Plate hashed",
        description="True when privacy mode replaced 'plate' by its keyed hash (16 hex chars; "
        "then char_confidences and candidates are empty and no crop is sent).",
    )
    crop_jpeg_b64: str | None = Field(
        default=None,
        title="Plate crop",
        description="Best plate crop as base64 JPEG (see encode_crop); null when disabled.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PlateEvent:
        if not self.plate_hashed and len(self.char_confidences) != len(self.plate):
            raise ValueError(
                f"char_confidences has {len(self.char_confidences)} values for plate "
                f"{self.plate!r} of {len(self.plate)} characters"
            )
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen is before first_seen")
        if self.last_frame < self.first_frame:
            raise ValueError("last_frame is before first_frame")
        return self


class CameraStats(_Message):
    """Health of one camera pipeline, published periodically on
    ``<prefix>/<device>/<camera>/stats``."""

    model_config = ConfigDict(title="CameraStats")

    schema_version: Literal["1.0"] = Field(
        default=SCHEMA_VERSION, title="Schema version", description="Version of this format."
    )
    device: str | None = Field(
        default=None,
        pattern=DEVICE_ID_PATTERN,
        title="Device",
        description="Id of the device the camera belongs to; null from older producers.",
    )
    camera: str = Field(
        min_length=1, pattern=CAMERA_NAME_PATTERN, title="Camera", description="Camera name."
    )
    ts: UtcTimestamp = Field(
        default_factory=utc_now, title="Timestamp", description="When these stats were taken."
    )
    online: bool = Field(
        title="Online", description="True while the source delivers frames; false while retrying."
    )
    fps_in: NonNegFloat = Field(
        title="Input FPS", description="Frames per second read from the source (recent window)."
    )
    fps_analysed: NonNegFloat = Field(
        title="Analysed FPS",
        description="Frames per second that went through detection (after sampling/motion gate).",
    )
    frames_dropped: NonNegInt = Field(
        title="Frames dropped",
        description="Frames dropped because the pipeline fell behind, since start (cumulative).",
    )
    frames_corrupt: NonNegInt = Field(
        title="Corrupt frames",
        description="Frames that failed to decode and were skipped, since start (cumulative).",
    )
    latency_ms_p50: NonNegFloat | None = Field(
        default=None,
        title="Latency p50",
        description="Median capture-to-result latency in ms (recent window); null if no frame "
        "was analysed.",
    )
    latency_ms_p95: NonNegFloat | None = Field(
        default=None,
        title="Latency p95",
        description="95th percentile capture-to-result latency in ms (recent window); null if "
        "no frame was analysed.",
    )
    reconnects: NonNegInt = Field(
        title="Reconnects", description="Times the source was reopened since start (cumulative)."
    )
    queue_depth: NonNegInt = Field(
        title="Queue depth", description="Frames waiting between capture and inference now."
    )
    last_error: str | None = Field(
        default=None,
        title="Last error",
        description="Most recent source error message (e.g. why the camera is offline), or null.",
    )


def encode_crop(crop_bgr: np.ndarray, max_width: int = 256, quality: int = 85) -> str:
    """Base64 JPEG of a BGR (or grayscale) crop, downscaled to at most ``max_width`` pixels wide.

    The width cap keeps MQTT payloads small (a 256 px plate crop is ~5-15 kB) while staying
    readable; the aspect ratio is kept.
    """
    if not isinstance(crop_bgr, np.ndarray) or crop_bgr.ndim not in (2, 3):
        raise ValueError("encode_crop: crop must be an HxW or HxWx3 numpy array")
    if crop_bgr.ndim == 3 and crop_bgr.shape[2] not in (1, 3):
        raise ValueError(f"encode_crop: crop has {crop_bgr.shape[2]} channels, expected 1 or 3")
    h, w = crop_bgr.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"encode_crop: empty crop of shape {crop_bgr.shape}")
    if max_width < 1:
        raise ValueError(f"encode_crop: max_width must be >= 1, got {max_width}")
    if not 1 <= quality <= 100:
        raise ValueError(f"encode_crop: quality must be in [1, 100], got {quality}")
    img = crop_bgr if crop_bgr.dtype == np.uint8 else np.clip(crop_bgr, 0, 255).astype(np.uint8)
    if w > max_width:
        nh = max(1, int(round(h * max_width / w)))
        img = cv2.resize(img, (max_width, nh), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("encode_crop: JPEG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def decode_crop(b64: str) -> np.ndarray:
    """Inverse of encode_crop (for consumers and tests): base64 JPEG -> BGR image."""
    data = np.frombuffer(base64.b64decode(b64, validate=True), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("decode_crop: not a JPEG image")
    return img


# Schema file name -> model. Every message type with a JSON payload is listed here.
SCHEMAS: dict[str, type[_Message]] = {
    "plate_event.schema.json": PlateEvent,
    "camera_stats.schema.json": CameraStats,
}


def json_schema(model: type[_Message]) -> dict[str, Any]:
    """The JSON Schema of an emitted message (serialization mode: what is on the wire)."""
    schema = model.model_json_schema(mode="serialization")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def schema_text(model: type[_Message]) -> str:
    return json.dumps(json_schema(model), indent=2, sort_keys=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(schema_text(model), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of committed schema files that differ from (or are missing vs) the models."""
    stale = []
    for name, model in SCHEMAS.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(model):
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.events.schema", description="Write or check the message JSON Schemas."
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--write-schemas", action="store_true", help="(re)write edge/events/schemas/"
    )
    group.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="schema directory")
    args = parser.parse_args(argv)
    if args.write_schemas:
        for path in write_schemas(args.dir):
            print(path)
        return 0
    stale = stale_schemas(args.dir)
    for name in stale:
        print(f"stale: {args.dir / name} (run python -m edge.events.schema --write-schemas)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
