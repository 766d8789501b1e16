"""Message models, schema files, crop encoding and the non-network sinks."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from support import HAVE_JSONSCHEMA, SCHEMA_ERRORS

from edge.events import schema as events
from edge.events.schema import (
    SCHEMAS,
    CameraStats,
    Candidate,
    PlateEvent,
    decode_crop,
    encode_crop,
    stale_schemas,
    utc_now,
)
from edge.sinks.base import MultiSink, Sink
from edge.sinks.jsonl import JsonlSink
from edge.sinks.stdout import StdoutSink

T0 = datetime(2025, 5, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc)


def make_event(**overrides: object) -> PlateEvent:
    fields: dict[str, object] = dict(
        type="final",
        camera="gate",
        track_id=7,
        plate="AB123CD",
        confidence=0.91,
        char_confidences=[0.99, 0.98, 0.91, 0.95, 0.97, 0.93, 0.96],
        candidates=[
            Candidate(text="AB123CD", votes=9, score=0.82),
            Candidate(text="AB128CD", votes=2, score=0.18),
        ],
        region="eu",
        format="it",
        first_seen=T0,
        last_seen=T0 + timedelta(seconds=3),
        first_frame=100,
        last_frame=175,
        video_time_s=5.5,
        vehicle_box=[100, 200, 900, 800],
        plate_box=[400, 650, 560, 690],
        direction="entry",
    )
    fields.update(overrides)
    return PlateEvent(**fields)  # type: ignore[arg-type]


def make_stats(**overrides: object) -> CameraStats:
    fields: dict[str, object] = dict(
        camera="gate",
        ts=T0,
        online=True,
        fps_in=25.0,
        fps_analysed=8.3,
        frames_dropped=3,
        frames_corrupt=1,
        latency_ms_p50=41.5,
        latency_ms_p95=88.0,
        reconnects=2,
        queue_depth=1,
    )
    fields.update(overrides)
    return CameraStats(**fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ schema files


def test_committed_schemas_match_models() -> None:
    assert stale_schemas() == [], "run: python -m edge.events.schema --write-schemas"
    assert events.main(["--check"]) == 0


def test_check_detects_stale_schema(tmp_path: Path) -> None:
    events.write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    (tmp_path / "camera_stats.schema.json").write_text("{}")
    assert stale_schemas(tmp_path) == ["camera_stats.schema.json"]


def _all_properties(schema: dict) -> list[tuple[str, dict]]:
    out = [(name, prop) for name, prop in schema["properties"].items()]
    for model in schema.get("$defs", {}).values():
        out += [(f"{model['title']}.{name}", prop) for name, prop in model["properties"].items()]
    return out


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_field_has_title_and_description(name: str) -> None:
    schema = json.loads((events.SCHEMA_DIR / name).read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema.get("description")
    for field_name, prop in _all_properties(schema):
        assert prop.get("title"), f"{name}: {field_name} has no title"
        assert prop.get("description"), f"{name}: {field_name} has no description"
    # Serialization schema: every field is always emitted, nulls included.
    assert set(schema["required"]) == set(schema["properties"])


def test_required_event_fields_present() -> None:
    props = json.loads((events.SCHEMA_DIR / "plate_event.schema.json").read_text())["properties"]
    wanted = {
        "event_id",
        "type",
        "camera",
        "track_id",
        "plate",
        "confidence",
        "char_confidences",
        "candidates",
        "region",
        "format",
        "first_seen",
        "last_seen",
        "first_frame",
        "last_frame",
        "video_time_s",
        "vehicle_box",
        "plate_box",
        "direction",
        "crop_jpeg_b64",
        "schema_version",
    }
    assert wanted <= set(props)
    stats = json.loads((events.SCHEMA_DIR / "camera_stats.schema.json").read_text())["properties"]
    assert {
        "camera",
        "ts",
        "fps_in",
        "fps_analysed",
        "frames_dropped",
        "frames_corrupt",
        "latency_ms_p50",
        "latency_ms_p95",
        "reconnects",
        "online",
        "queue_depth",
    } <= set(stats)


def test_emitted_messages_validate_against_schema_files(validate_message) -> None:  # type: ignore[no-untyped-def]
    crop = np.random.default_rng(0).integers(0, 255, (40, 160, 3), dtype=np.uint8)
    variants = [
        make_event(),
        make_event(
            type="provisional",
            vehicle_box=None,
            direction=None,
            video_time_s=None,
            region=None,
            format=None,
            candidates=[],
        ),
        make_event(crop_jpeg_b64=encode_crop(crop)),
    ]
    for event in variants:
        validate_message(json.loads(event.to_json()), "plate_event.schema.json")
    validate_message(json.loads(make_stats().to_json()), "camera_stats.schema.json")
    validate_message(
        json.loads(
            make_stats(
                latency_ms_p50=None,
                latency_ms_p95=None,
                online=False,
                last_error="connection refused",
            ).to_json()
        ),
        "camera_stats.schema.json",
    )


def test_schema_file_rejects_bad_messages(validate_message) -> None:  # type: ignore[no-untyped-def]
    good = json.loads(make_event().to_json())
    bad_cases = [
        {**good, "type": "maybe"},
        {**good, "confidence": 1.5},
        {**good, "plate_box": [1, 2, 3]},
        {**good, "first_seen": "2025-05-01 12:00:00"},
        {**good, "surprise": 1},
        {k: v for k, v in good.items() if k != "event_id"},
    ]
    for bad in bad_cases:
        with pytest.raises(SCHEMA_ERRORS):
            validate_message(bad, "plate_event.schema.json")
    print(f"schema validator: {'jsonschema' if HAVE_JSONSCHEMA else 'built-in subset'}")


# ------------------------------------------------------------------------------ model rules


def test_wire_format_details() -> None:
    event = make_event()
    obj = json.loads(event.to_json())
    assert obj["first_seen"] == "2025-05-01T12:00:00.250Z"
    assert obj["last_seen"] == "2025-05-01T12:00:03.250Z"
    assert obj["schema_version"] == events.SCHEMA_VERSION
    assert obj["crop_jpeg_b64"] is None and "crop_jpeg_b64" in obj  # nulls are emitted
    # A model equals its own wire form (timestamps carry milliseconds only).
    assert PlateEvent.model_validate_json(event.to_json()) == event
    # Every message gets its own UUID.
    assert make_event().event_id != make_event().event_id


def test_timestamps_are_utc_and_aware() -> None:
    cest = timezone(timedelta(hours=2))
    event = make_event(
        first_seen=datetime(2025, 5, 1, 14, 0, tzinfo=cest),
        last_seen=datetime(2025, 5, 1, 14, 0, 1, tzinfo=cest),
    )
    assert json.loads(event.to_json())["first_seen"] == "2025-05-01T12:00:00.000Z"
    with pytest.raises(ValidationError, match="timezone-aware"):
        make_event(first_seen=datetime(2025, 5, 1, 12, 0))
    assert utc_now().tzinfo is not None


def test_numpy_inputs_are_coerced() -> None:
    event = make_event(
        track_id=np.int64(3),
        confidence=np.float32(0.9),
        char_confidences=list(np.full(7, 0.8, dtype=np.float32)),
        plate_box=np.array([10.4, 20.6, 30.0, 40.0]),
        vehicle_box=np.array([1, 2, 300, 400], dtype=np.int32),
    )
    obj = json.loads(event.to_json())
    assert obj["track_id"] == 3
    assert obj["confidence"] == 0.9  # rounded, no float32 noise
    assert obj["plate_box"] == [10, 21, 30, 40]
    assert obj["vehicle_box"] == [1, 2, 300, 400]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"char_confidences": [0.9, 0.9]}, "char_confidences has 2 values"),
        ({"plate_box": [10, 10, 5, 20]}, "x2 >= x1"),
        ({"camera": "gate/1"}, "camera"),
        ({"camera": "gate+"}, "camera"),
        ({"type": "update"}, "type"),
        ({"direction": "north"}, "direction"),
        ({"confidence": -0.1}, "confidence"),
        ({"last_frame": 10}, "last_frame is before first_frame"),
        ({"last_seen": T0 - timedelta(seconds=1)}, "last_seen is before first_seen"),
        ({"color": "red"}, "color"),
        ({"event_id": "not-a-uuid"}, "event_id"),
    ],
)
def test_bad_events_are_rejected_with_the_field_named(overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_event(**overrides)


def test_stats_roundtrip() -> None:
    stats = make_stats(fps_analysed=np.float32(8.333333))
    obj = json.loads(stats.to_json())
    assert obj["fps_analysed"] == 8.333
    assert obj["ts"] == "2025-05-01T12:00:00.250Z"
    assert CameraStats.model_validate_json(stats.to_json()) == stats
    with pytest.raises(ValidationError, match="frames_dropped"):
        make_stats(frames_dropped=-1)


# ------------------------------------------------------------------------------ crops


def test_encode_crop_caps_width_and_decodes() -> None:
    crop = np.zeros((100, 400, 3), dtype=np.uint8)
    crop[:, 200:] = (0, 0, 255)  # right half red (BGR)
    b64 = encode_crop(crop, max_width=200, quality=90)
    img = decode_crop(b64)
    assert img.shape == (50, 200, 3)
    assert img[25, 150, 2] > 200 and img[25, 150, 0] < 50  # colours survive, BGR order kept
    assert img[25, 50].max() < 30
    small = np.full((20, 60), 128, dtype=np.uint8)  # grayscale, narrower than the cap: kept
    assert decode_crop(encode_crop(small, max_width=200)).shape == (20, 60, 3)
    assert len(encode_crop(crop, quality=20)) < len(encode_crop(crop, quality=95))


@pytest.mark.parametrize(
    ("crop", "kwargs", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), {}, "empty crop"),
        (np.zeros((10, 10, 4), np.uint8), {}, "channels"),
        (np.zeros(10, np.uint8), {}, "HxW"),
        (np.zeros((10, 10, 3), np.uint8), {"quality": 0}, "quality"),
        (np.zeros((10, 10, 3), np.uint8), {"max_width": 0}, "max_width"),
    ],
)
def test_encode_crop_rejects_bad_input(crop: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_crop(crop, **kwargs)


# ------------------------------------------------------------------------------ local sinks


def test_jsonl_sink_writes_wire_objects(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.jsonl"
    stats_path = tmp_path / "out" / "stats.jsonl"
    sent = [make_event(), make_event(type="provisional", track_id=8)]
    with JsonlSink(path, stats_path=stats_path) as sink:
        for event in sent:
            sink.publish_event(event)
        sink.publish_stats(make_stats())
        # Flushed per line: readable before close.
        assert len(path.read_text().splitlines()) == 2
    lines = path.read_text().splitlines()
    assert lines == [e.to_json() for e in sent]
    assert [PlateEvent.model_validate_json(line) for line in lines] == sent
    assert json.loads(stats_path.read_text())["camera"] == "gate"
    with pytest.raises(RuntimeError, match="closed"):
        sink.publish_event(make_event())
    # Appends across runs, never truncates.
    with JsonlSink(path) as sink:
        sink.publish_event(make_event())
    assert len(path.read_text().splitlines()) == 3


def test_stdout_sink_strips_crop_by_default() -> None:
    crop = encode_crop(np.full((20, 80, 3), 200, np.uint8))
    buf = io.StringIO()
    sink = StdoutSink(buf)
    sink.publish_event(make_event(crop_jpeg_b64=crop))
    sink.publish_stats(make_stats())  # ignored unless stats=True
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["crop_jpeg_b64"] is None
    buf2 = io.StringIO()
    StdoutSink(buf2, include_crop=True, stats=True).publish_event(make_event(crop_jpeg_b64=crop))
    assert json.loads(buf2.getvalue())["crop_jpeg_b64"] == crop


class _Broken(Sink):
    def publish_event(self, event: PlateEvent) -> None:
        raise OSError("disk full")

    def close(self, timeout: float = 2.0) -> None:
        raise OSError("still full")


def test_multisink_isolates_failures() -> None:
    buf = io.StringIO()
    multi = MultiSink([_Broken(), StdoutSink(buf)])
    multi.publish_event(make_event())
    multi.close()
    assert len(buf.getvalue().splitlines()) == 1
