"""Privacy: keyed plate hash, key resolution, event anonymisation."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from edge.events.schema import Candidate, PlateEvent, encode_crop
from edge.rules.privacy import (
    PrivacyConfig,
    PrivacyError,
    anonymize_event,
    apply_privacy,
    keyed_hash,
    resolve_key,
)
from edge.rules.watchlist import Watchlists

KEY = "0123456789abcdef-site-key"
T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_event(**kw: object) -> PlateEvent:
    crop = np.full((20, 80, 3), 128, dtype=np.uint8)
    fields: dict[str, object] = dict(
        type="final", camera="gate", track_id=1, plate="AB123CD", confidence=0.9,
        char_confidences=[0.9] * 7, candidates=[Candidate(text="AB123CD", votes=3, score=1.0)],
        first_seen=T0, last_seen=T0 + timedelta(seconds=2), first_frame=0, last_frame=10,
        plate_box=[0, 0, 10, 5], crop_jpeg_b64=encode_crop(crop),
    )  # fmt: skip
    fields.update(kw)
    return PlateEvent(**fields)  # type: ignore[arg-type]


def test_keyed_hash_is_stable_and_normalised() -> None:
    h = keyed_hash("AB123CD", KEY)
    assert len(h) == 16 and all(c in "0123456789abcdef" for c in h)
    assert keyed_hash("ab-123 cd", KEY) == h
    expected = hmac.new(KEY.encode(), b"AB123CD", hashlib.sha256).hexdigest()[:16]
    assert h == expected


def test_keyed_hash_depends_on_key_and_plate() -> None:
    h = keyed_hash("AB123CD", KEY)
    assert keyed_hash("AB123CD", KEY + "x") != h
    assert keyed_hash("AB123CE", KEY) != h
    assert keyed_hash("AB123CD", KEY.encode()) == h
    with pytest.raises(PrivacyError):
        keyed_hash("AB123CD", "")


def test_resolve_key_prefers_env_and_requires_one() -> None:
    cfg = PrivacyConfig(enabled=True, key="k" * 20)
    assert resolve_key(cfg, env={}) == b"k" * 20
    assert resolve_key(cfg, env={"PLATEWATCH_PRIVACY_KEY": "e" * 20}) == b"e" * 20
    assert resolve_key(PrivacyConfig(enabled=False), env={}) is None
    with pytest.raises(ValueError, match="enabled without a key.*PLATEWATCH_PRIVACY_KEY"):
        PrivacyConfig(enabled=True)  # refused with the configuration already
    with pytest.raises(PrivacyError, match="variable HOME or privacy.key"):
        # the environment that had the key at load time has lost it at start
        resolve_key(PrivacyConfig(enabled=True, key_env="HOME"), env={})
    with pytest.raises(PrivacyError, match="at least 16"):
        resolve_key(PrivacyConfig(enabled=True, key="short"), env={})


def test_anonymised_event_leaks_no_text_and_validates() -> None:
    ev = make_event()
    anon = anonymize_event(ev, KEY)
    assert anon.plate == keyed_hash("AB123CD", KEY) and anon.plate_hashed
    assert anon.char_confidences == [] and anon.candidates == [] and anon.crop_jpeg_b64 is None
    assert anon.event_id == ev.event_id and anon.camera == ev.camera
    wire = anon.to_json()
    assert "AB123CD" not in wire
    assert PlateEvent.model_validate(json.loads(wire)) == anon
    assert anonymize_event(anon, KEY) is anon  # idempotent


def test_apply_privacy_only_for_plates_on_no_list() -> None:
    lists = Watchlists([{"name": "staff", "kind": "allow", "entries": ["AB123CD"]}])
    key = resolve_key(PrivacyConfig(enabled=True, key=KEY), env={})
    listed = make_event()
    assert apply_privacy(listed, lists.match(listed.plate), key) is listed
    stranger = make_event(plate="ZZ999ZZ")
    assert apply_privacy(stranger, lists.match(stranger.plate), key).plate_hashed
    assert apply_privacy(stranger, None, None) is stranger  # privacy off
