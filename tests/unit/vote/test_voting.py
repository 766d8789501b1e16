"""Per-track consensus and the decision policy (edge.vote.voter)."""

from __future__ import annotations

import itertools
import random
import string

import pytest

from edge.types import DecisionType, ReadContext, TextCandidate, VoteRead
from edge.vote.config import VotingConfig
from edge.vote.consensus import ReadTally, consensus_of, levenshtein, similarity
from edge.vote.formats import PlateFormats
from edge.vote.voter import PlateVoter, crop_quality

ALNUM = string.ascii_uppercase + string.digits


def read(
    text: str, conf: float | list[float] = 0.9, frame: int = 0, ts: float | None = None, **kw
) -> VoteRead:
    confs = tuple(conf) if isinstance(conf, list) else (conf,) * len(text)
    return VoteRead(text, confs, frame, float(frame) if ts is None else ts, **kw)


def consensus(reads: list[VoteRead], formats: PlateFormats | None = None):  # type: ignore[no-untyped-def]
    """The consensus of a list of reads, as a track's running tally gives it."""
    tally = ReadTally()
    for r in reads:
        tally.add(r)
    return consensus_of(tally, formats)


def voter(**cfg) -> PlateVoter:
    ids = (f"ev{i}" for i in itertools.count(1))
    return PlateVoter(VotingConfig(**cfg), camera="cam1", id_factory=lambda: next(ids))


# --------------------------------------------------------------------------- string distance


@pytest.mark.parametrize(
    "a,b,d",
    [
        ("", "", 0),
        ("ABC", "", 3),
        ("", "AB", 2),
        ("kitten", "sitting", 3),
        ("ABC1234", "ABC1234", 0),
        ("ABC1234", "A8C1234", 1),  # substitution
        ("ABC1234", "ABC123", 1),  # deletion
        ("ABC1234", "ABC12344", 1),  # insertion
        ("ABC1234", "BC12345", 2),  # shift
        ("ABC1234", "XYZ9876", 7),
    ],
)
def test_levenshtein(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d
    assert levenshtein(b, a) == d


def test_similarity() -> None:
    assert similarity("", "") == 1.0
    assert similarity("ABC1234", "ABC1234") == 1.0
    assert similarity("ABC1234", "A8C1234") == pytest.approx(6 / 7)
    assert similarity("ABC", "") == 0.0


# --------------------------------------------------------------------------- consensus


def _noisy_track(truth: str, rng: random.Random, per_read: float = 0.0, per_char: float = 0.0):
    reads, single_ok = [], 0
    for f in range(10):
        t = list(truth)
        if rng.random() < per_read:
            i = rng.randrange(len(t))
            t[i] = rng.choice(ALNUM.replace(t[i], ""))
        for i in range(len(t)):
            if rng.random() < per_char:
                t[i] = rng.choice(ALNUM.replace(t[i], ""))
        text = "".join(t)
        single_ok += text == truth
        # wrong characters get the same confidence distribution as right ones: no free hint
        reads.append(read(text, [rng.uniform(0.5, 1.0) for _ in t], frame=f))
    return reads, single_ok


def test_ten_reads_with_20pct_single_char_errors_give_the_plate() -> None:
    for seed in range(100):
        rng = random.Random(seed)
        truth = "".join(rng.choice(ALNUM) for _ in range(7))
        reads, _ = _noisy_track(truth, rng, per_read=0.2)
        c = consensus(reads)
        assert c is not None and c.text == truth, (seed, [r.text for r in reads])


def test_voting_beats_single_reads_when_most_reads_are_wrong() -> None:
    # every character wrong with p=0.2: only ~21% of single reads are exactly right
    ok = single = 0
    for seed in range(100):
        rng = random.Random(1000 + seed)
        truth = "".join(rng.choice(ALNUM) for _ in range(7))
        reads, s = _noisy_track(truth, rng, per_char=0.2)
        single += s
        ok += consensus(reads).text == truth
    assert single / 1000 < 0.3
    assert ok >= 97


def test_plate_no_single_read_got_right_is_composed() -> None:
    reads = [read(t) for t in ["XBC1234", "AYC1234", "ABZ1234", "ABC12W4"]]
    c = consensus(reads)
    assert c.text == "ABC1234"
    assert c.n_voting == 4
    # weakest position: 3 of 4 votes, x P(at least one of the 3 reads right)
    assert c.confidence == pytest.approx(0.75 * (1 - 0.1**3))


def test_minority_wrong_length_read_does_not_win() -> None:
    reads = [read("ABC1234", 0.8, f) for f in range(4)]
    reads += [read("ABC12344", 0.99, 4), read("ABC124", 0.99, 5)]
    c = consensus(reads)
    assert c.text == "ABC1234"
    assert c.n_reads == 6 and c.n_voting == 4
    assert c.agreement == pytest.approx(3.2 / (3.2 + 1.98))


def test_many_junk_reads_with_some_sure_characters_do_not_outvote_clean_reads() -> None:
    # Measured on a replayed openalpr-dev clip (YG9X2G): 6 clean reads, 18 long junk reads of
    # blurred frames. Each junk read has sure characters and a few guesses: by mean confidence
    # the junk outweighed the clean reads (agreement 0.38 -> no final at all).
    junk_conf = [0.95, 0.9, 0.95, 0.2, 0.9, 0.1, 0.9, 0.95, 0.15]
    rng = random.Random(3)
    reads = [read("YG9X2G", 0.97, f) for f in range(6)]
    for f in range(6, 24):
        text = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(9))
        reads.append(read(text, junk_conf, f))
    c = consensus(reads)
    assert c.text == "YG9X2G"
    assert c.agreement >= 0.5  # the weakest character weighs a read: 6 x 0.97 vs 18 x 0.1
    v = voter(final_min_reads=2, final_min_confidence=0.5, final_min_agreement=0.5)
    for r in reads:
        v.add(1, r)
    assert v.end_track(1).plate == "YG9X2G"


def test_outlier_plate_is_rejected() -> None:
    reads = [read("ABC1234", 0.8, f) for f in range(5)]
    reads += [read("XYZ9876", 0.95, 5 + f) for f in range(3)]  # another car, read very surely
    c = consensus(reads)
    assert c.text == "ABC1234" and c.n_voting == 5
    assert c.agreement == pytest.approx(4.0 / (4.0 + 2.85))
    assert c.candidates[0] == TextCandidate("ABC1234", 5, 4.0)
    assert c.candidates[1].text == "XYZ9876" and c.candidates[1].votes == 3


def test_char_confidences() -> None:
    one = consensus([read("ABC1234", [0.9, 0.8, 0.7, 0.6, 0.99, 0.9, 0.9])])
    assert one.char_confidences == (0.9, 0.8, 0.7, 0.6, 0.99, 0.9, 0.9)
    assert one.confidence == pytest.approx(0.6)
    # two equally sure reads that disagree on one character: that character is a coin flip
    two = consensus([read("ABC1234", 0.9), read("ABC1284", 0.9)])
    assert two.char_confidences[5] == pytest.approx(0.5 * 0.9)
    assert two.char_confidences[0] == pytest.approx(1 - 0.1 * 0.1)  # both agree: surer
    assert two.confidence == pytest.approx(0.45)


def test_candidates_top_k() -> None:
    reads = [read("AAA111", 0.9)] * 3 + [read("AAA112", 0.9)] * 2 + [read("AAA113", 0.5)] * 2
    reads += [read(f"AAA11{i}", 0.1) for i in range(4, 9)]
    c = consensus(reads)
    assert len(c.candidates) == 5
    assert [x.text for x in c.candidates[:3]] == ["AAA111", "AAA112", "AAA113"]
    assert c.candidates[0].votes == 3 and c.candidates[0].score == pytest.approx(2.7)


def test_consensus_repairs_with_formats() -> None:
    reads = [read("A8C1234", 0.9, f) for f in range(3)]
    c = consensus(reads, PlateFormats.default(["br"]))
    assert (c.text, c.raw_text, c.repaired, c.format) == ("ABC1234", "A8C1234", True, "br-old")
    valid = consensus([read("ABC1D23")], PlateFormats.default(["br"]))
    assert (valid.text, valid.repaired, valid.format) == ("ABC1D23", False, "br-mercosul")
    assert consensus([read("ABC1D23")]).format is None


def test_consensus_normalises_and_ignores_empty_reads() -> None:
    assert consensus([]) is None
    assert consensus([read("")]) is None
    c = consensus([read("ab-c1234", [0.9, 0.9, 0.0, 0.9, 0.9, 0.9, 0.9, 0.9]), read("ABC1234")])
    assert c.text == "ABC1234" and c.n_reads == 2


def test_read_validation() -> None:
    with pytest.raises(ValueError, match="confidences"):
        VoteRead("ABC", (0.9,), 0, 0.0)


def test_crop_quality() -> None:
    assert crop_quality((0, 0, 100, 20), [0.5, 1.0]) == pytest.approx(1500)
    assert crop_quality(None, [0.5, 1.0]) == pytest.approx(0.75)


# --------------------------------------------------------------------------- decisions


def test_provisional_once_then_final_once() -> None:
    v = voter(provisional_min_reads=3, provisional_min_confidence=0.8)
    out = [v.add(7, read("ABC1234", 0.9, f)) for f in range(8)]
    assert [d is not None for d in out] == [False, False, True] + [False] * 5
    prov = out[2]
    assert prov.type == DecisionType.PROVISIONAL and prov.plate == "ABC1234"
    assert (prov.track_id, prov.camera, prov.event_id, prov.reason) == (
        7,
        "cam1",
        "ev1",
        "confident",
    )
    assert (prov.first_frame, prov.last_frame, prov.consensus.n_reads) == (0, 2, 3)
    final = v.end_track(7)
    assert final.type == DecisionType.FINAL and final.plate == "ABC1234"
    assert final.event_id == "ev2" and final.reason == "track_end" and final.duplicate_of is None
    assert (final.first_seen, final.last_seen, final.consensus.n_reads) == (0.0, 7.0, 8)
    assert v.end_track(7) is None and v.active_tracks == []


def test_second_provisional_only_when_text_changes() -> None:
    texts = ["ABC1234"] * 3 + ["ABC1284"] * 15 + ["ABC1234"] * 65
    for cap, expect in [
        (2, [(2, "ABC1234"), (10, "ABC1284")]),
        # flipping back is a third provisional, allowed only when the cap permits
        (3, [(2, "ABC1234"), (10, "ABC1284"), (53, "ABC1234")]),
    ]:
        v = voter(
            provisional_min_reads=3,
            provisional_min_confidence=0.72,
            max_provisionals=cap,
            max_track_duration_s=None,
        )
        out = [v.add(1, read(t, 0.95, f)) for f, t in enumerate(texts)]
        # a text is confident once it has >= 72% of the votes at the disputed position
        # ("1284": 8 of 11 reads; "1234" again: 39 of 54)
        assert [(f, d.plate) for f, d in enumerate(out) if d is not None] == expect


def test_no_final_for_a_single_weak_read() -> None:
    v = voter(final_min_reads=2, final_min_confidence=0.5)
    assert v.add(3, read("ABC1234", 0.4)) is None
    assert v.end_track(3) is None
    v.add(4, read("ABC1234", 0.9, 0))
    assert v.end_track(4) is None  # confident, but one read is not enough
    v.add(5, read("ABC1234", 0.9, 0))
    v.add(5, read("ABC1234", 0.9, 1))
    assert v.end_track(5).plate == "ABC1234"


def test_final_needs_the_text_read_twice_unless_a_provisional_was_published() -> None:
    # Measured on a rendered clip: a plate far away, before its car was tracked, gave three
    # different reads (1NKIH1, X0K361, XR1361); their position vote composed "XR?361", a final
    # beside the car's own. No frame showed that text, so it is not final-worthy on its own.
    v = voter(final_min_repeats=2, final_min_confidence=0.3, final_min_agreement=0.3)
    for f, t in enumerate(["XRK361", "XR1361", "XRK3G1"]):
        v.add(1, read(t, 0.8, f))
    assert v.end_track(1) is None
    for f, t in enumerate(["XRK361", "XR1361", "XRK361"]):  # read twice: final
        v.add(2, read(t, 0.8, f))
    assert v.end_track(2).plate == "XRK361"
    one = voter(final_min_repeats=1, final_min_confidence=0.3, final_min_agreement=0.3)
    for f, t in enumerate(["XRK361", "XR1361", "XRK3G1"]):
        one.add(1, read(t, 0.8, f))
    assert one.end_track(1).plate == "XRK361"  # composed, allowed when repeats are not asked
    with pytest.raises(ValueError, match="final_min_repeats"):
        VotingConfig(final_min_repeats=0)


def test_final_always_follows_a_published_provisional() -> None:
    v = voter(provisional_min_reads=2, final_min_confidence=0.7)
    assert v.add(1, read("ABC1234", 0.9, 0)) is None
    assert v.add(1, read("ABC1234", 0.9, 1)).type == DecisionType.PROVISIONAL
    for f in range(2, 6):  # the rest of the track is a mess
        v.add(1, read("XBC12Z4", 0.3, f))
    d = v.end_track(1)
    assert d is not None and d.type == DecisionType.FINAL


def test_reappearing_plate_is_deduped_only_within_the_window() -> None:
    v = voter(reappear_window_s=10.0)
    for t in range(3):
        v.add(1, read("ABC1234", 0.9, ts=float(t)))
    first = v.end_track(1)
    assert first.duplicate_of is None and first.last_seen == 2.0

    for t in (8.0, 9.0, 10.0):  # back 6 s later (an occlusion, a track break)
        v.add(2, read("ABC1234", 0.9, ts=t))
    again = v.end_track(2)
    assert again.duplicate_of == first.event_id

    for t in (12.0, 13.0):  # one edit away, still the same car (a misread)
        v.add(3, read("ABC1284", 0.9, ts=t))
    assert v.end_track(3).duplicate_of == first.event_id

    for t in (14.0, 15.0):  # a different plate in the window is a different car
        v.add(4, read("XYZ9876", 0.9, ts=t))
    assert v.end_track(4).duplicate_of is None

    # the window runs from the last sighting (13 s, track 3): 24 s is 11 s later -> new event
    for t in (24.0, 25.0):
        v.add(5, read("ABC1234", 0.9, ts=t))
    late = v.end_track(5)
    assert late.duplicate_of is None and late.event_id != first.event_id


def test_concurrent_tracks_of_one_plate_publish_one_vehicle() -> None:
    v = voter(provisional_min_reads=2, reappear_window_s=5.0)
    v.add("a", read("ABC1234", 0.9, ts=0.0))
    pa = v.add("a", read("ABC1234", 0.9, ts=1.0))
    v.add("b", read("ABC1234", 0.9, ts=1.5))  # an ID switch: a second track, same plate
    pb = v.add("b", read("ABC1234", 0.9, ts=2.0))
    assert pa.duplicate_of is None and pb.duplicate_of == pa.event_id
    fb = v.end_track("b")  # b ends first: a's provisional owns the vehicle
    assert fb.duplicate_of == pa.event_id
    fa = v.end_track("a")
    assert fa.duplicate_of is None
    published = [d for d in (pa, pb, fb, fa) if d.duplicate_of is None]
    assert [(d.type, d.track_id) for d in published] == [
        (DecisionType.PROVISIONAL, "a"),
        (DecisionType.FINAL, "a"),
    ]


def test_parked_car_gets_one_final_then_silence() -> None:
    v = voter(max_track_duration_s=60.0, reappear_window_s=10.0)
    decisions = [v.add(9, read("ABC1234", 0.9, f, ts=float(f))) for f in range(0, 300, 2)]
    finals = [d for d in decisions if d is not None and d.type == DecisionType.FINAL]
    assert len(finals) == 1 and finals[0].reason == "max_duration"
    assert finals[0].last_seen == 60.0
    assert v.end_track(9) is None  # already decided
    # the parked car's track breaks and re-forms: its later reads kept the dedupe window alive
    v.add(10, read("ABC1234", 0.9, ts=305.0))
    v.add(10, read("ABC1234", 0.9, ts=306.0))
    assert v.end_track(10).duplicate_of == finals[0].event_id


def test_stable_text_gives_an_early_final() -> None:
    v = voter(max_track_duration_s=None, stable_final_s=5.0)
    out = [v.add(1, read("ABC1234", 0.9, f, ts=f * 0.5)) for f in range(20)]
    finals = [(i, d.reason) for i, d in enumerate(out) if d and d.type == DecisionType.FINAL]
    # final-worthy from the 2nd read (final_min_reads=2, t=0.5), so stable for 5 s at t=5.5
    assert finals == [(11, "stable")]


def test_best_crop_and_motion_are_kept() -> None:
    v = voter()
    sizes = [20, 60, 40]
    for f, w in enumerate(sizes):
        box = (100.0 + 10 * f, 200.0, 100.0 + 10 * f + w, 200.0 + w / 4)
        v.add(
            1,
            read(
                "ABC1234",
                0.9,
                f,
                plate_box=box,
                quality=crop_quality(box, [0.9]),
                context=ReadContext(None, None, float(f)),
            ),
        )
    d = v.end_track(1)
    assert d.best_read.context.video_time_s == 1.0 and d.best_read.frame_index == 1
    assert d.plate_box == (120.0, 200.0, 160.0, 210.0)
    assert d.displacement == pytest.approx((30.0, 2.5))


def test_require_format_blocks_invalid_plates() -> None:
    ids = (f"e{i}" for i in itertools.count())
    v = PlateVoter(
        VotingConfig(require_format=True),
        PlateFormats.default(["br", "us"]),
        id_factory=lambda: next(ids),
    )
    for f in range(5):
        assert v.add(1, read("7XK99", 0.99, f)) is None  # only the weak US pattern matches
    assert v.end_track(1) is None
    for f in range(5):
        v.add(2, read("A8C1234", 0.99, f))
    d = v.end_track(2)
    assert d.plate == "ABC1234" and d.consensus.format == "br-old"


def test_voter_input_errors() -> None:
    v = voter()
    v.add(1, read("ABC1234", ts=5.0))
    with pytest.raises(ValueError, match="older"):
        v.add(1, read("ABC1234", ts=4.0))
    with pytest.raises(ValueError, match="final_min_confidence"):
        VotingConfig(final_min_confidence=1.5)
    with pytest.raises(ValueError, match="provisional_min_reads"):
        VotingConfig(provisional_min_reads=0)


def test_tracker_and_voter_together_one_final_per_vehicle() -> None:
    """Two cars cross the frame (every 3rd frame analysed, missed detections, noisy reads):
    plates are tied to vehicles, votes are keyed by vehicle track, one final per car."""
    import numpy as np

    from edge.track.config import TrackerConfig
    from edge.track.linking import PlateVehicleLinker
    from edge.track.tracker import MultiClassTracker
    from edge.types import PLATE, VEHICLE, Detections

    VEH = VEHICLE
    rng = random.Random(7)
    cars = {"ABC1D23": (100.0, 400.0, 8.0), "XYZ9876": (1700.0, 520.0, -5.0)}  # boxes overlap
    tracker = MultiClassTracker({VEH: TrackerConfig(), PLATE: TrackerConfig()})
    linker = PlateVehicleLinker()
    v = voter(provisional_min_reads=3, reappear_window_s=5.0)
    decisions = []
    for frame in range(0, 300, 3):
        boxes, scores, classes, texts = [], [], [], {}
        for plate, (x0, y, vx) in cars.items():
            cx = x0 + vx * frame
            if not 0 < cx < 1900 or rng.random() < 0.1:  # out of view, or missed
                continue
            boxes.append([cx - 150, y - 100, cx + 150, y + 100])
            boxes.append([cx - 40, y + 50, cx + 40, y + 70])
            scores += [0.9, 0.8]
            classes += [0, 1]
            texts[len(boxes) - 1] = plate
        dets = Detections(
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(scores, np.float32),
            np.array(classes, np.int64),
            (VEH, PLATE),
        )
        out = tracker.update(dets, frame)
        states = out.live
        plates = [s for s in states if s.cls == PLATE]
        vehicles = [s for s in states if s.cls == VEH]
        link = linker.update(plates, vehicles)
        for s in plates:
            if s.det_index < 0 or link[s.track_id] is None:
                continue
            truth = texts[s.det_index]
            t = list(truth)
            if rng.random() < 0.2:
                i = rng.randrange(len(t))
                t[i] = rng.choice(ALNUM.replace(t[i], ""))
            r = read("".join(t), [rng.uniform(0.6, 1.0) for _ in t], frame, ts=frame / 30)
            d = v.add(link[s.track_id], r)
            if d:
                decisions.append(d)
        for s in out.ended:
            if s.cls == VEH:
                d = v.end_track(s.track_id)
                if d:
                    decisions.append(d)
            else:
                linker.forget([s.track_id])
    for tid in v.active_tracks:  # end of the clip: every track still open ends
        d = v.end_track(tid)
        if d:
            decisions.append(d)
    finals = [d for d in decisions if d.type == DecisionType.FINAL and d.duplicate_of is None]
    assert sorted(d.plate for d in finals) == sorted(cars)
    provisional = [d for d in decisions if d.type == DecisionType.PROVISIONAL]
    assert sorted(d.plate for d in provisional if d.duplicate_of is None) == sorted(cars)


def test_bounded_history_tally_matches_a_fresh_vote() -> None:
    from edge.vote.voter import TrackVote

    rng = random.Random(3)
    first = read("ABC1234", 0.9, 0)
    tv = TrackVote(first, max_reads=20)
    history = [first]
    for f in range(1, 120):
        text = rng.choice(["ABC1234", "ABC1284", "A8C1234", "ABC123", "abc-1234"])
        r = read(text, [rng.uniform(0.3, 1.0) for _ in text], f)
        tv.add(r)
        history = (history + [r])[-20:]
        a, b = tv.consensus(), consensus(history)
        assert (a.text, a.n_reads, a.n_voting) == (b.text, b.n_reads, b.n_voting), f
        assert [(c.text, c.votes) for c in a.candidates] == [
            (c.text, c.votes) for c in b.candidates
        ]
        assert a.char_confidences == pytest.approx(b.char_confidences, abs=1e-6)
        assert a.agreement == pytest.approx(b.agreement, abs=1e-6)
    assert tv.consensus().n_reads == 20 and len(tv.reads) == 20


def test_old_reads_fall_out_of_a_long_track() -> None:
    v = voter(max_reads_per_track=5, max_track_duration_s=None)
    for f in range(5):
        v.add(1, read("ABC1234", 0.9, f))
    for f in range(5, 10):
        v.add(1, read("XYZ9876", 0.9, f))
    c = v.current(1)
    assert c.text == "XYZ9876" and c.n_reads == 5


def test_fragments_shorter_than_min_plate_length_are_no_event() -> None:
    v = voter(min_plate_length=4)
    for f in range(6):
        assert v.add(1, read("XI", 0.99, f)) is None  # confident, agreed, but a fragment
    assert v.end_track(1) is None
    for f in range(6):
        v.add(2, read("K7T9", 0.99, f))
    assert v.end_track(2).plate == "K7T9"
    with pytest.raises(ValueError, match="min_plate_length"):
        VotingConfig(min_plate_length=0)


# --------------------------------------------------------------------------- split (issue 10)


def test_sure_reads_of_another_plate_split_the_track_into_two_finals() -> None:
    v = voter()
    out = [v.add("k", read("7AWV401", 0.95, f)) for f in range(6)]
    assert [d.type for d in out if d] == [DecisionType.PROVISIONAL]
    # the next car's plate, sure, three times in a row under the same track id
    out = [v.add("k", read("8BXK552", 0.95, f)) for f in range(6, 9)]
    (first,) = [d for d in out if d]
    assert first.type is DecisionType.FINAL and first.reason == "text_switch"
    assert first.plate == "7AWV401" and first.last_frame == 5
    out = [v.add("k", read("8BXK552", 0.95, f)) for f in range(9, 12)]
    assert [(d.type, d.plate) for d in out if d] == [(DecisionType.PROVISIONAL, "8BXK552")]
    last = v.end_track("k")
    assert last is not None and last.plate == "8BXK552" and last.first_frame == 6
    assert last.duplicate_of is None


def test_unsure_or_scattered_misreads_never_split() -> None:
    v = voter()
    for f in range(6):
        v.add("k", read("7AWV401", 0.95, f))
    # three wrong reads, but unsure ones, then sure ones that are not one plate
    for f, (text, conf) in enumerate(
        [("8BXK552", 0.5), ("8BXK552", 0.6), ("8BXK552", 0.5), ("ZZ9QQ11", 0.95),
         ("8BXK552", 0.95), ("7AWV401", 0.95), ("8BXK552", 0.95), ("8BXK552", 0.95)],
        start=6,
    ):  # fmt: skip
        assert v.add("k", read(text, conf, f)) is None
    final = v.end_track("k")
    assert final is not None and final.plate == "7AWV401" and final.reason == "track_end"


def test_split_is_off_with_null_and_a_close_misread_is_the_same_plate() -> None:
    v = voter(split_reads=None)
    for f in range(6):
        v.add("k", read("7AWV401", 0.95, f))
    assert all(v.add("k", read("8BXK552", 0.95, f)) is None for f in range(6, 12))
    v = voter()
    for f in range(6):
        v.add("k", read("7AWV401", 0.95, f))
    # one character off (a sure misread) is the same plate: no split
    assert all(v.add("k", read("7AWV4O1", 0.95, f)) is None for f in range(6, 12))


def test_a_parked_cars_early_final_then_another_car_gets_its_own() -> None:
    v = voter(max_track_duration_s=5.0)
    decided = [d for f in range(8) if (d := v.add("k", read("7AWV401", 0.95, f)))]
    assert decided[-1].type is DecisionType.FINAL and decided[-1].reason == "max_duration"
    assert all(v.add("k", read("8BXK552", 0.95, f)) is None for f in range(8, 11))
    final = v.end_track("k")
    assert final is not None and final.plate == "8BXK552"


# ------------------------------------------------- no region chosen: the region the reads fit


def test_no_region_vote_takes_the_tracks_own_read_of_a_specific_format() -> None:
    """A BR plate voted 0UW5216 (fits no format) while the track read OUW5216 twice: with no
    region chosen the vote becomes that read; once is not enough; never a catch-all's swap."""
    guess = VotingConfig().plate_formats()
    assert guess.guess_region
    heavy = [read("0UW5216", 0.95, frame=i) for i in range(5)]
    c = consensus([*heavy, read("OUW5216", 0.6, frame=6), read("OUW5216", 0.6, frame=7)], guess)
    assert (c.text, c.format, c.repaired, c.raw_text) == ("OUW5216", "br-old", True, "0UW5216")
    # one read of the BR format alone does not decide the plate's country
    c = consensus([*heavy, read("OUW5216", 0.6, frame=6)], guess)
    assert c.text == "0UW5216"
    # a Californian 0FMU202: the German OFMU202 is a catch-all format's read, no evidence
    c = consensus([*(read("0FMU202", 0.95, frame=i) for i in range(5))] + [
        read("OFMU202", 0.6, frame=6), read("OFMU202", 0.6, frame=7)], guess)  # fmt: skip
    assert c.text == "0FMU202"
    # a chosen region repairs as before; without formats nothing changes
    assert consensus(heavy, PlateFormats.default(["br"])).text == "OUW5216"
    assert consensus([*heavy, read("OUW5216"), read("OUW5216")]).text == "0UW5216"


def test_region_from_reads_null_turns_the_guess_off() -> None:
    from edge.vote.config import ConsensusConfig

    guess = VotingConfig().plate_formats()
    tally = ReadTally()
    for r in [*(read("0UW5216", 0.95, frame=i) for i in range(5)), read("OUW5216", frame=6),
              read("OUW5216", frame=7)]:  # fmt: skip
        tally.add(r)
    assert consensus_of(tally, guess, ConsensusConfig(region_from_reads=None)).text == "0UW5216"
    assert consensus_of(tally, guess, ConsensusConfig()).text == "OUW5216"


def test_no_region_vote_drops_an_end_mark_read_as_a_letter() -> None:
    """A Croatian RK828AG voted PRK828AG (the border read as a P in most frames) while the
    track read RK828AG nearly as much: the vote becomes RK828AG, its confidences aligned.
    A leading digit is never dropped, and a light shorter read does not decide."""
    guess = VotingConfig().plate_formats()
    marked = [read("PRK828AG", 0.6, frame=i) for i in range(31)]
    clean = [read("RK828AG", 0.95, frame=40 + i) for i in range(18)]
    c = consensus([*marked, *clean], guess)
    assert (c.text, c.format, c.raw_text) == ("RK828AG", "hr", "PRK828AG")
    assert len(c.char_confidences) == 7
    # the plate's own first digit: 7AWV401 stays, although AWV401 fits Ecuador's format
    c = consensus([*(read("7AWV401", 0.95, frame=i) for i in range(6)),
                   *(read("AWV401", 0.9, frame=10 + i) for i in range(4))], guess)  # fmt: skip
    assert c.text == "7AWV401"
    # a shorter read of under half the heaviest read's weight is a fragment, not the plate
    c = consensus([*marked, read("RK828AG", 0.95, frame=60), read("RK828AG", 0.95, frame=61)],
                  guess)  # fmt: skip
    assert c.text == "PRK828AG"
