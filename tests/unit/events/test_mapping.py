"""Voter decisions -> wire events (edge.events.mapping)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge.events.config import EventsConfig
from edge.events.mapping import to_plate_event
from edge.events.schema import decode_crop
from edge.types import ReadContext, VoteRead
from edge.vote.config import VotingConfig
from edge.vote.voter import PlateVoter


def _voter_decisions(text: str = "AB123CD") -> list:
    voter = PlateVoter(VotingConfig(provisional_min_reads=3), camera="gate")
    out = []
    crop = np.full((20, 80, 3), 200, np.uint8)
    for i in range(6):
        box = (100.0 + i * 5, 200.0, 180.0 + i * 5, 220.0)
        read = VoteRead(
            text,
            (0.95,) * len(text),
            frame_index=10 + i,
            timestamp=2.0 + 0.4 * i,
            plate_box=box,
            quality=float(i),
            context=ReadContext(crop, (50.0, 100.0, 300.0, 260.0), 2.0 + 0.4 * i),
        )
        d = voter.add(7, read)
        if d is not None:
            out.append(d)
    out.append(voter.end_track(7))
    return out


def test_event_mapping_is_schema_valid(validate_message) -> None:  # type: ignore[no-untyped-def]
    decisions = _voter_decisions()
    assert [d.type.value for d in decisions] == ["provisional", "final"]
    final = decisions[-1]
    origin = 1_700_000_000.0
    ev = to_plate_event(replace(final, track_uuid="x"), to_utc=origin, is_file=True)
    obj = ev.model_dump(mode="json")
    validate_message(obj, "plate_event.schema.json")
    assert obj["plate"] == "AB123CD"
    assert obj["type"] == "final" and obj["event_id"] == final.event_id
    assert obj["track_id"] == 7 and obj["track_uuid"] == "x"
    assert obj["first_frame"] == 10 and obj["last_frame"] == 15
    assert obj["first_seen"] == "2023-11-14T22:13:22.000Z"  # origin + 2.0 s
    assert obj["last_seen"] == "2023-11-14T22:13:24.000Z"
    assert obj["video_time_s"] == pytest.approx(4.0)  # the best (last, highest quality) read
    assert obj["plate_box"] == [125, 200, 205, 220]
    assert obj["vehicle_box"] == [50, 100, 300, 260]
    assert obj["candidates"][0] == {"text": "AB123CD", "votes": 6, "score": 1.0}
    assert decode_crop(obj["crop_jpeg_b64"]).shape[:2] == (20, 80)
    # crops off, live source: no crop, no video time
    ev = to_plate_event(final, options=EventsConfig(crop=False), to_utc=origin)
    assert ev.crop_jpeg_b64 is None and ev.video_time_s is None
