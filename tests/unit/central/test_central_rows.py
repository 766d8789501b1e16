"""MQTT message -> central row: every field kept, device from the topic, bad input rejected
with its reason, one write per database row in a batch."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np

from edge.central.rows import (
    AlertRow,
    EventRow,
    Ignored,
    Rejected,
    StatsRow,
    StatusRow,
    merge_batch,
    parse_message,
    track_key,
)
from edge.events.schema import CameraStats, Candidate, PlateEvent, WatchlistHit, encode_crop

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
RX = T0 + timedelta(seconds=5)


def event(**kw: object) -> PlateEvent:
    fields: dict[str, object] = dict(
        type="final", device="jet-1", camera="gate", track_id=7, track_uuid=str(uuid.uuid4()),
        plate="AB-123 CD", confidence=0.91, char_confidences=[0.9] * 9,
        candidates=[Candidate(text="AB123CD", votes=9, score=0.8)], region="eu", format="it",
        first_seen=T0, last_seen=T0 + timedelta(seconds=3), first_frame=10, last_frame=90,
        video_time_s=None, vehicle_box=[1, 2, 300, 400], plate_box=[10, 20, 60, 40],
        direction="entry", zones=["lane1", "gate"],
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)  # type: ignore[arg-type]


def crop_b64() -> str:
    return encode_crop(np.full((40, 160, 3), 200, np.uint8))


def topic(kind: str, device: str = "jet-1", camera: str = "gate") -> str:
    return f"platewatch/{device}/{camera}/{kind}"


def test_event_row_keeps_every_field_plus_device() -> None:
    e = event(crop_jpeg_b64=crop_b64(), watchlist=WatchlistHit(
        name="vip", kind="allow", entry="AB123CD", distance=0, description="boss"))  # fmt: skip
    row = parse_message("platewatch", topic("events"), e.to_bytes(), RX)
    assert isinstance(row, EventRow)
    p = row.params
    assert row.device == p["device"] == "jet-1" and p["camera"] == "gate"
    assert p["event_id"] == e.event_id and p["track_uuid"] == e.track_uuid
    assert p["plate"] == "AB123CD" and p["plate_fold"] == "AB123CD" and p["plate_len"] == 7
    assert p["first_seen"] == T0 and p["last_seen"] == T0 + timedelta(seconds=3)
    assert (p["first_frame"], p["last_frame"], p["track_id"]) == (10, 90, 7)
    assert p["vehicle_box"] == [1, 2, 300, 400] and p["plate_box"] == [10, 20, 60, 40]
    assert p["zones"] == ["lane1", "gate"] and p["direction"] == "entry"
    assert (p["region"], p["format"], p["confidence"]) == ("eu", "it", 0.91)
    assert p["char_confidences"] == [0.9] * 9
    assert '"AB123CD"' in p["candidates"]
    assert (p["watchlist"], p["watchlist_kind"], p["watchlist_description"]) == (
        "vip", "allow", "boss")  # fmt: skip
    assert p["received_at"] == RX and p["schema_version"] == "1.0"
    assert row.crop == base64.b64decode(e.crop_jpeg_b64 or "") and p["has_crop"] is True
    assert row.final and row.track_key == f"u:{e.track_uuid}"


def test_folded_plate_and_hashed_plate_without_crop() -> None:
    folded = event(plate="OI7", char_confidences=[1.0] * 3)
    row = parse_message("platewatch", topic("events"), folded.to_bytes(), RX)
    assert isinstance(row, EventRow) and row.params["plate_fold"] == "017"
    assert row.params["plate"] == "OI7"  # as read; search compares the fold
    hashed = event(plate="0123456789abcdef", plate_hashed=True, char_confidences=[],
                   crop_jpeg_b64=crop_b64())  # fmt: skip
    row = parse_message("platewatch", topic("events"), hashed.to_bytes(), RX)
    assert isinstance(row, EventRow)
    assert row.params["plate"] == "0123456789abcdef" and row.crop is None
    assert row.params["has_crop"] is False  # privacy: the image would show what the hash hides


def test_device_comes_from_the_topic_and_must_agree_with_the_payload() -> None:
    legacy_payload = event(device=None).to_bytes()
    row = parse_message("platewatch", topic("events", device="jet-9"), legacy_payload, RX)
    assert isinstance(row, EventRow) and row.device == "jet-9"
    row = parse_message("platewatch", topic("events", device="jet-2"), event().to_bytes(), RX)
    assert isinstance(row, Rejected) and "payload says device 'jet-1'" in row.error
    row = parse_message("platewatch", topic("events", camera="yard"), event().to_bytes(), RX)
    assert isinstance(row, Rejected) and "camera 'gate' on 'yard'" in row.error


def test_bad_payloads_are_rejected_with_the_reason_and_kept() -> None:
    for payload, reason in [
        (b"not json", "json"),
        (b'{"type": "final"}', "camera: field required"),  # missing fields
        (event().to_bytes().replace(b'"final"', b'"maybe"'), "type"),
    ]:
        row = parse_message("platewatch", topic("events"), payload, RX)
        assert isinstance(row, Rejected), payload
        assert reason in row.error.lower() and row.payload == payload and row.topic.endswith(
            "/events")  # fmt: skip
    bad_crop = event(crop_jpeg_b64=base64.b64encode(b"GIF89a....").decode())
    row = parse_message("platewatch", topic("events"), bad_crop.to_bytes(), RX)
    assert isinstance(row, EventRow) and row.crop is None and not row.params["has_crop"]


def test_alerts_stats_status_and_ignored_topics() -> None:
    e = event(watchlist=WatchlistHit(name="stolen", kind="deny", entry="AB1*", distance=0))
    row = parse_message("platewatch", topic("alerts"), e.to_bytes(), RX)
    assert isinstance(row, AlertRow) and row.params["watchlist"] == "stolen"
    assert row.params["kind"] == "deny" and row.params["plate"] == "AB123CD"
    no_match = parse_message("platewatch", topic("alerts"), event().to_bytes(), RX)
    assert isinstance(no_match, Rejected) and "without a watchlist" in no_match.error

    stats = CameraStats(device="jet-1", camera="gate", ts=T0, online=True, fps_in=25,
                        fps_analysed=8.3, frames_dropped=1, frames_corrupt=0, reconnects=2,
                        queue_depth=1)  # fmt: skip
    row = parse_message("platewatch", topic("stats"), stats.to_bytes(), RX)
    assert isinstance(row, StatsRow) and row.params["fps_analysed"] == 8.3
    assert row.params["ts"] == T0 and row.params["reconnects"] == 2

    row = parse_message("platewatch", "platewatch/jet-1/status", b"offline", RX)
    assert row == StatusRow("jet-1", "offline", RX)
    assert parse_message("platewatch", "platewatch/jet-1/status", b"", RX) == StatusRow(
        "jet-1", None, RX)  # fmt: skip
    assert isinstance(parse_message("platewatch", "platewatch/jet-1/status", b"??", RX), Rejected)

    for t in ("platewatch/gate/events", "platewatch/status", "other/jet-1/gate/events",
              topic("plate")):  # fmt: skip
        assert isinstance(parse_message("platewatch", t, event().to_bytes(), RX), Ignored), t


def test_track_key_without_uuid_is_stable_across_provisional_and_final() -> None:
    prov = event(type="provisional", track_uuid=None, last_seen=T0 + timedelta(seconds=1))
    final = event(track_uuid=None)
    assert track_key(prov, "jet-1") == track_key(final, "jet-1")
    assert track_key(final, "jet-1") != track_key(final, "jet-2")
    assert track_key(final, "jet-1") != track_key(event(track_uuid=None, track_id=8), "jet-1")


def rows_of(*events: PlateEvent) -> list[EventRow]:
    out = []
    for e in events:
        r = parse_message("platewatch", topic("events"), e.to_bytes(), RX)
        assert isinstance(r, EventRow)
        out.append(r)
    return out


def test_merge_batch_final_wins_whatever_the_order() -> None:
    tu = str(uuid.uuid4())
    prov, final = event(type="provisional", track_uuid=tu), event(track_uuid=tu)
    other = event()
    for order in ([prov, final], [final, prov], [prov, final, prov, final]):
        merged = merge_batch(list(rows_of(*order, other)))
        by_track = {r.track_key: r.event_id for r in merged.events}
        assert by_track == {f"u:{tu}": final.event_id, f"u:{other.track_uuid}": other.event_id}
    again = merge_batch(list(rows_of(other, other)))  # a redelivery inside one batch
    assert [r.event_id for r in again.events] == [other.event_id]


def test_merge_batch_alerts_stats_status_devices() -> None:
    e = event(watchlist=WatchlistHit(name="l", kind="deny", entry="X", distance=0))
    alert = parse_message("platewatch", topic("alerts"), e.to_bytes(), RX)
    s1 = CameraStats(device="jet-1", camera="gate", ts=T0, online=True, fps_in=1,
                     fps_analysed=1, frames_dropped=0, frames_corrupt=0, reconnects=0,
                     queue_depth=0)  # fmt: skip
    st = parse_message("platewatch", topic("stats"), s1.to_bytes(), RX)
    on = parse_message("platewatch", "platewatch/jet-2/status", b"online", RX)
    off = parse_message("platewatch", "platewatch/jet-2/status", b"offline", RX)
    bad = parse_message("platewatch", topic("events"), b"{", RX)
    merged = merge_batch([alert, alert, st, st, on, off, bad, Ignored("x", "y")])
    assert len(merged.alerts) == 1 and len(merged.stats) == 1
    assert merged.statuses["jet-2"].status == "offline"  # the latest
    assert merged.devices == {"jet-1", "jet-2"} and len(merged.rejected) == 1
