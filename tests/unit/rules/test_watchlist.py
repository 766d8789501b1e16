"""Watchlists: normalisation, bounded Levenshtein, literal/regex/fuzzy matching, alert re-fire."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from edge.rules.watchlist import (
    AlertGate,
    Watchlists,
    fold_confusables,
    levenshtein,
    normalize_plate,
)


def test_normalize_and_fold() -> None:
    assert normalize_plate(" ab-12 3.cd ") == "AB123CD"
    assert fold_confusables("OIL10") == "01L10"


@pytest.mark.parametrize(
    "a,b,d",
    [("", "", 0), ("ABC", "", 3), ("ABC123", "ABC123", 0), ("ABC123", "ABC128", 1),
     ("ABC123", "ABC12", 1), ("ABC123", "XABC123", 1), ("ABC123", "BAC123", 2),
     ("KITTEN", "SITTING", 3)],
)  # fmt: skip
def test_levenshtein_known(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d
    assert levenshtein(b, a) == d


def test_banded_levenshtein_agrees_with_full_dp() -> None:
    rng = random.Random(0)
    alphabet = "AB01"
    for _ in range(3000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        full = levenshtein(a, b)
        for k in range(4):
            got = levenshtein(a, b, k)
            assert got == (full if full <= k else k + 1), (a, b, k, full, got)


LISTS = [
    {
        "name": "residents",
        "kind": "allow",
        "max_distance": 1,
        "entries": ["AB123CD", {"plate": "XY999ZZ", "description": "Anna's van"}],
    },
    {
        "name": "stolen",
        "kind": "deny",
        "max_distance": 0,
        "fold": False,
        "entries": ["AB123CE", "re:^GOV[0-9]{3}$", {"plate": "TAXI.*", "regex": True}],
    },
]


def test_literal_exact_and_description() -> None:
    wl = Watchlists(LISTS)
    m = wl.match("xy-999 zz")
    assert m is not None
    assert (m.watchlist, m.kind, m.entry, m.distance) == ("residents", "allow", "XY999ZZ", 0)
    assert m.description == "Anna's van"


def test_fuzzy_within_list_distance_only() -> None:
    wl = Watchlists(LISTS)
    m = wl.match("AB123CX")  # 1 from AB123CD (allow, d<=1); 1 from AB123CE (deny, d<=0)
    assert m is not None and (m.watchlist, m.distance) == ("residents", 1)
    assert wl.match("AB12XCX") is None  # distance 2 from everything


def test_closest_wins_over_list_order() -> None:
    wl = Watchlists(LISTS)
    # Exact on the deny list (0) beats distance 1 on the allow list listed first.
    m = wl.match("AB123CE")
    assert m is not None and (m.watchlist, m.kind, m.distance) == ("stolen", "deny", 0)


def test_tie_goes_to_deny() -> None:
    wl = Watchlists(
        [
            {"name": "ok", "kind": "allow", "max_distance": 1, "entries": ["AAA111"]},
            {"name": "bad", "kind": "deny", "max_distance": 1, "entries": ["AAA113"]},
        ]
    )
    m = wl.match("AAA112")  # distance 1 from both
    assert m is not None and m.kind == "deny"
    assert [x.watchlist for x in wl.match_all("AAA112")] == ["bad", "ok"]


def test_folding_makes_o0_i1_free() -> None:
    wl = Watchlists([{"name": "a", "kind": "allow", "max_distance": 0, "entries": ["AB0123"]}])
    m = wl.match("ABO123")
    assert m is not None and m.distance == 0
    wl2 = Watchlists(
        [{"name": "a", "kind": "allow", "max_distance": 0, "fold": False, "entries": ["AB0123"]}]
    )
    assert wl2.match("ABO123") is None


def test_regex_entries_fullmatch_and_are_not_fuzzy() -> None:
    wl = Watchlists(LISTS)
    m = wl.match("GOV123")
    assert m is not None and (m.entry, m.distance, m.is_regex) == ("re:^GOV[0-9]{3}$", 0, True)
    assert wl.match("GOV1234") is None  # fullmatch, not search
    assert wl.match("XGOV123") is None
    t = wl.match("taxi-42")
    assert t is not None and t.entry == "re:TAXI.*"


def test_literal_beats_regex_at_equal_distance() -> None:
    wl = Watchlists([{"name": "d", "kind": "deny", "entries": ["re:^AB.*", "AB1234"]}])
    m = wl.match("AB1234")
    assert m is not None and m.entry == "AB1234"


def test_bad_config_is_rejected_with_the_entry_named() -> None:
    with pytest.raises(ValidationError, match="invalid regex"):
        Watchlists([{"name": "x", "entries": ["re:AB[12"]}])
    with pytest.raises(ValidationError, match="kind"):
        Watchlists([{"name": "x", "kind": "maybe", "entries": []}])
    with pytest.raises(ValueError, match="duplicate list name"):
        Watchlists([{"name": "x"}, {"name": "x"}])
    with pytest.raises(ValidationError, match="no letters or digits"):
        Watchlists([{"name": "x", "entries": ["--"]}])


def test_match_to_hit_builds_event_field() -> None:
    from edge.events.schema import WatchlistHit

    m = Watchlists(LISTS).match("XY999ZZ")
    assert m is not None
    hit = WatchlistHit(**m.to_hit())  # type: ignore[arg-type]
    assert hit.name == "residents" and hit.kind == "allow"


# ------------------------------------------------------------------------------ alert gate


def _gate(refire: str, after: float) -> tuple[AlertGate, Watchlists]:
    wl = Watchlists(
        [
            {"name": "gate", "kind": "allow", "refire": refire, "refire_after_s": after,
             "entries": ["AB123CD", "re:^TAXI[0-9]+$"]},
        ]
    )  # fmt: skip
    return AlertGate(wl), wl


def test_interval_refire() -> None:
    gate, wl = _gate("interval", 30.0)
    m = wl.match("AB123CD")
    assert m is not None
    assert gate.should_fire("cam", "AB123CD", m, now=0.0, event_id="e1")
    assert not gate.should_fire("cam", "AB123CD", m, now=10.0, event_id="e2")
    assert not gate.should_fire("cam", "AB123CD", m, now=29.9, event_id="e3")
    assert gate.should_fire("cam", "AB123CD", m, now=30.0, event_id="e4")  # after the interval
    # Another camera is another gate.
    assert gate.should_fire("cam2", "AB123CD", m, now=30.5, event_id="e5")


def test_interval_zero_fires_every_event_but_not_redeliveries() -> None:
    gate, wl = _gate("interval", 0.0)
    m = wl.match("AB123CD")
    assert m is not None
    assert gate.should_fire("cam", "AB123CD", m, now=0.0, event_id="e1")
    assert gate.should_fire("cam", "AB123CD", m, now=0.0, event_id="e2")
    assert not gate.should_fire("cam", "AB123CD", m, now=5.0, event_id="e2")  # same message


def test_fuzzy_variants_of_one_entry_share_the_key() -> None:
    gate, wl = _gate("interval", 30.0)
    m1, m2 = wl.match("AB123CD"), wl.match("AB128CD")
    assert m1 is not None and m2 is not None and m2.entry == "AB123CD"
    assert gate.should_fire("cam", "AB123CD", m1, now=0.0, event_id="e1")
    assert not gate.should_fire("cam", "AB128CD", m2, now=1.0, event_id="e2")


def test_regex_key_includes_the_plate() -> None:
    gate, wl = _gate("interval", 30.0)
    a, b = wl.match("TAXI1"), wl.match("TAXI2")
    assert a is not None and b is not None
    assert gate.should_fire("cam", "TAXI1", a, now=0.0, event_id="e1")
    assert gate.should_fire("cam", "TAXI2", b, now=1.0, event_id="e2")  # different vehicle
    assert not gate.should_fire("cam", "TAXI1", a, now=2.0, event_id="e3")


def test_per_event_refires_for_a_new_vehicle_within_the_interval() -> None:
    gate, wl = _gate("per_event", 300.0)
    m = wl.match("AB123CD")
    assert m is not None
    # Provisional + final of one track (same track UUID): one alert.
    assert gate.should_fire("cam", "AB123CD", m, 0.0, event_id="p1", vehicle_key="track-1")
    assert not gate.should_fire("cam", "AB123CD", m, 2.0, event_id="f1", vehicle_key="track-1")
    # The same car comes back 20 s later (new track): the gate opens again.
    assert gate.should_fire("cam", "AB123CD", m, 20.0, event_id="p2", vehicle_key="track-2")
    assert not gate.should_fire("cam", "AB123CD", m, 21.0, event_id="f2", vehicle_key="track-2")
    # Without a track UUID the event id identifies the vehicle event.
    assert gate.should_fire("cam", "AB123CD", m, 22.0, event_id="e9")
    # And after the interval even the same vehicle key fires again.
    assert gate.should_fire("cam", "AB123CD", m, 400.0, event_id="f3", vehicle_key="track-2")


def test_interval_mode_does_not_refire_for_new_vehicle_within_interval() -> None:
    gate, wl = _gate("interval", 300.0)
    m = wl.match("AB123CD")
    assert m is not None
    assert gate.should_fire("cam", "AB123CD", m, 0.0, event_id="p1", vehicle_key="track-1")
    assert not gate.should_fire("cam", "AB123CD", m, 20.0, event_id="p2", vehicle_key="track-2")


def test_gate_memory_is_bounded() -> None:
    wl = Watchlists([{"name": "r", "kind": "deny", "refire_after_s": 1e9, "entries": ["re:.*"]}])
    gate = AlertGate(wl, max_keys=50)
    m = wl.match("A1")
    assert m is not None
    for i in range(500):
        assert gate.should_fire("cam", f"P{i}", m, float(i), event_id=f"e{i}")
    assert len(gate._last) <= 50 and len(gate._event_ids) <= 50
