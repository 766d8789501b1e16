"""Per-track plate voting: many noisy reads of one plate -> one trustworthy decision.

Owns: the consensus of a track's reads (``consensus``), and ``PlateVoter``, which turns reads
and track ends into at most a few decisions per track (PROVISIONAL early, FINAL at the end) and
de-duplicates a plate that reappears. Pure and deterministic: no clock (timestamps come in with
the reads), no I/O; event ids come from an injectable factory.

Consensus, step by step (``consensus``):
1. every read weighs its weakest character's confidence (a junk read of a blurred crop often
   has several sure characters and one or two guesses: its mean confidence would let twenty
   such reads outweigh five clean ones, its weakest character does not);
2. a first position-wise vote over the reads of the confidence-weighted modal length gives a
   centroid; each read votes for its character with that character's confidence;
3. outlier rejection: only reads within ``cluster_similarity`` of the centroid (or one edit)
   stay (another plate seen by the same track, junk text);
4. the vote is repeated on them (modal length again, then position-wise), so a plate no single
   read got right can still win when each position is right in most reads;
5. per-character confidence = (vote share of the winner) x (probability that at least one of
   the winner's reads is right, 1 - prod(1 - c)); plate confidence = the weakest character
   (as ``edge.detect.ctc.Decoded.confidence``); ``agreement`` = weight of the reads that voted /
   weight
   of all reads;
6. optional region formats validate and repair the voted text (``edge.vote.formats``).

Decision policy (``PlateVoter``), documented here because the pipeline and event consumers rely
on it:
- PROVISIONAL: emitted from ``add`` as soon as the consensus has ``provisional_min_reads`` reads,
  ``provisional_min_confidence`` and ``provisional_min_agreement`` (and a strong format match if
  ``require_format``). At most one per track, except that a later consensus with a *different*
  text emits another one (a correction), up to ``max_provisionals`` per track.
- FINAL: emitted by ``end_track`` when the track ends and the consensus meets the final
  thresholds, its text having been read exactly at least ``final_min_repeats`` times (a
  string composed from all-different reads is no final on its own). If a provisional was
  published, a final is always emitted (consumers get closure; the track already passed the
  stricter provisional bar). Exactly one final per track.
- Never-ending tracks (parked cars): ``add`` emits the FINAL early when the track has lasted
  ``max_track_duration_s``, or when the consensus text has been unchanged and final-worthy for
  ``stable_final_s``. Later reads of that track only extend the dedupe window (read once, never
  spam); ``end_track`` then returns None.
- Dedupe: a decision whose plate equals, or is within ``dedupe_max_distance`` edits and
  ``dedupe_min_similarity`` of, a plate decided on this voter (one voter per camera) whose last
  sighting is at most ``reappear_window_s`` before this track's first read, is the SAME vehicle:
  it is still returned, with ``duplicate_of`` = the earlier event's id, and must not be
  published. Decisions are compared with earlier finals and with the published provisionals of
  other live, not yet finalised tracks (that track's own final will be the published one). The
  window is measured from the earlier plate's last sighting,
  which keeps moving while it is seen, so a car that lingers stays one event.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

from edge.vote.formats import DIGITS, LETTERS, PlateFormats, normalize_plate
from edge.vote.text import levenshtein as _levenshtein

# --------------------------------------------------------------------------- string distance


# Only recent plates are ever compared (a track's reads, the dedupe window): a small cache
# holds them all, and a large one was most of the slow RSS growth of a 100k-frame soak.
@lru_cache(maxsize=4096)
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1), cached."""
    return _levenshtein(a, b)


def similarity(a: str, b: str) -> float:
    """1 - levenshtein / longer length, in [0, 1]; two empty strings are identical (1.0)."""
    n = max(len(a), len(b))
    return 1.0 if n == 0 else 1.0 - levenshtein(a, b) / n


# --------------------------------------------------------------------------- reads & consensus


@dataclass(frozen=True)
class PlateRead:
    """One reading of a plate in one frame."""

    text: str
    char_confidences: tuple[float, ...]
    frame_index: int
    timestamp: float  # seconds (video time for files, epoch for live; the caller's clock)
    plate_box: tuple[float, float, float, float] | None = None  # xyxy, frame pixels
    quality: float = 0.0  # crop quality; higher is better (see crop_quality)
    crop: Any = field(default=None, compare=False, repr=False)  # opaque: crop image or its ref

    def __post_init__(self) -> None:
        if len(self.char_confidences) != len(self.text):
            raise ValueError(
                f"plate read {self.text!r}: {len(self.char_confidences)} confidences for "
                f"{len(self.text)} characters"
            )

    @property
    def confidence(self) -> float:
        """Mean character confidence (the vote weighs the weakest character instead)."""
        c = self.char_confidences
        return sum(c) / len(c) if c else 0.0


def crop_quality(plate_box: Sequence[float] | None, char_confidences: Sequence[float]) -> float:
    """Default crop quality: plate box area x mean character confidence (bigger, surer = better)."""
    conf = sum(char_confidences) / len(char_confidences) if char_confidences else 0.0
    if plate_box is None:
        return conf
    area = max(0.0, plate_box[2] - plate_box[0]) * max(0.0, plate_box[3] - plate_box[1])
    return area * conf


class Candidate(NamedTuple):
    text: str
    votes: int  # number of reads with this text
    score: float  # summed read weight


@dataclass(frozen=True)
class Consensus:
    text: str  # after format repair, if any
    confidence: float  # weakest character
    char_confidences: tuple[float, ...]
    candidates: tuple[Candidate, ...]  # top-k distinct read texts, best first
    format: str | None  # matched pattern name (weak patterns included), None if no formats/match
    n_reads: int  # all non-empty reads considered
    n_voting: int  # reads that took part in the position-wise vote
    agreement: float  # weight of voting reads / weight of all reads
    raw_text: str = ""  # voted text before repair
    repaired: bool = False


@dataclass(frozen=True)
class ConsensusConfig:
    # same cluster as the centroid: similarity >= this (7 chars: <= 2 edits) or 1 edit apart.
    # Two different plates are ~5+ edits apart; 0.8 (1 edit) measurably hurt noisy tracks.
    cluster_similarity: float = 0.6
    top_k: int = 5
    min_char_confidence: float = 1e-3  # floor so a 0-confidence read still counts once


_CLEAN = re.compile(r"[A-Z0-9]*")


@dataclass
class _Group:
    text: str
    csum: list[float]  # per position: summed confidence
    log_miss: list[float]  # per position: sum of log(1 - confidence)
    n: int = 0
    weight: float = 0.0  # summed weakest-character confidences of its reads


class ReadTally:
    """Reads aggregated per distinct text, updated incrementally (a long track has hundreds of
    reads but a handful of texts): count, weight, per-position confidence sum and sum of
    log(1 - confidence). Texts are normalised like ``edge.vote.formats`` (upper case, A-Z0-9)."""

    def __init__(self, min_char_confidence: float = 1e-3) -> None:
        self.floor = min_char_confidence
        self.groups: dict[str, _Group] = {}

    def _norm(self, r: PlateRead) -> tuple[str, tuple[float, ...]]:
        if _CLEAN.fullmatch(r.text):
            text, confs = r.text, r.char_confidences
        else:  # keep confidences aligned with the characters that survive
            kept = [
                (ch.upper(), c)
                for ch, c in zip(r.text, r.char_confidences, strict=True)
                if ch.upper() in LETTERS or ch.upper() in DIGITS
            ]
            text, confs = "".join(ch for ch, _ in kept), tuple(c for _, c in kept)
        return text, tuple(max(self.floor, float(c)) for c in confs)

    def add(self, r: PlateRead, sign: int = 1) -> None:
        text, confs = self._norm(r)
        if not text:
            return
        g = self.groups.get(text)
        if g is None:
            if sign < 0:
                return
            self.groups[text] = g = _Group(text, [0.0] * len(text), [0.0] * len(text))
        g.n += sign
        if g.n <= 0:
            del self.groups[text]
            return
        g.weight += sign * min(confs)
        for i, c in enumerate(confs):
            g.csum[i] += sign * c
            g.log_miss[i] += sign * math.log(max(1e-12, 1.0 - c))

    def remove(self, r: PlateRead) -> None:
        self.add(r, -1)


def consensus(
    reads: Sequence[PlateRead],
    formats: PlateFormats | None = None,
    config: ConsensusConfig | None = None,
) -> Consensus | None:
    """Vote one plate out of a track's reads (see the module docstring); None if no non-empty
    read."""
    cfg = config or ConsensusConfig()
    tally = ReadTally(cfg.min_char_confidence)
    for r in reads:
        tally.add(r)
    return consensus_of(tally, formats, cfg)


def consensus_of(
    tally: ReadTally, formats: PlateFormats | None = None, config: ConsensusConfig | None = None
) -> Consensus | None:
    """``consensus`` of an already aggregated tally."""
    cfg = config or ConsensusConfig()
    groups = tally.groups
    if not groups:
        return None

    total_w = sum(g.weight for g in groups.values())
    heaviest = max(groups.values(), key=lambda g: (g.weight, g.text)).text

    def vote(members: list[_Group]) -> tuple[list[_Group], str, list[float]]:
        """Modal length (confidence-weighted), then a position-wise vote of that length."""
        len_w: dict[int, float] = {}
        for g in members:
            len_w[len(g.text)] = len_w.get(len(g.text), 0.0) + g.weight
        length = max(len_w, key=lambda n: (len_w[n], n == len(heaviest), n))
        voters = [g for g in members if len(g.text) == length]
        ref = heaviest if len(heaviest) == length else ""
        chars: list[str] = []
        conf: list[float] = []
        for pos in range(length):
            score: dict[str, float] = {}
            log_miss: dict[str, float] = {}
            for g in voters:
                ch = g.text[pos]
                score[ch] = score.get(ch, 0.0) + g.csum[pos]
                log_miss[ch] = log_miss.get(ch, 0.0) + g.log_miss[pos]
            # ties: the heaviest text's character, so a vote of two equal reads is one of them
            best = max(score, key=lambda ch: (score[ch], ref != "" and ch == ref[pos], ch))
            share = score[best] / sum(score.values())
            chars.append(best)
            conf.append(share * (1.0 - math.exp(log_miss[best])))
        return voters, "".join(chars), conf

    def close(a: str, b: str) -> bool:
        return levenshtein(a, b) <= 1 or similarity(a, b) >= cfg.cluster_similarity

    # round 1: a centroid from every read; round 2: only reads close to it (outliers out)
    _, centroid, _ = vote(list(groups.values()))
    members = [g for g in groups.values() if close(centroid, g.text)]
    if not members:  # reads too diverse for a centroid: fall back to the heaviest text
        members = [groups[heaviest]]
    voters, raw, char_conf = vote(members)

    text, fmt, repaired = raw, None, False
    if formats is not None:
        fixed = formats.repair(raw, char_conf)
        if fixed is not None:
            text, fmt = fixed
            repaired = text != raw
    ranked = sorted(groups.values(), key=lambda g: (-g.weight, -g.n, g.text))[: cfg.top_k]
    return Consensus(
        text=text,
        confidence=round(min(char_conf), 6),
        char_confidences=tuple(round(c, 6) for c in char_conf),
        candidates=tuple(Candidate(g.text, g.n, round(g.weight, 6)) for g in ranked),
        format=fmt,
        n_reads=sum(g.n for g in groups.values()),
        n_voting=sum(g.n for g in voters),
        agreement=round(sum(g.weight for g in voters) / total_w, 6),
        raw_text=raw,
        repaired=repaired,
    )


# --------------------------------------------------------------------------- decisions


class DecisionType(str, Enum):
    PROVISIONAL = "provisional"
    FINAL = "final"


@dataclass(frozen=True)
class VoterConfig:
    provisional_min_reads: int = 3
    provisional_min_confidence: float = 0.8
    provisional_min_agreement: float = 0.6
    max_provisionals: int = 3  # per track: the first plus corrections when the text changes
    final_min_reads: int = 2
    final_min_confidence: float = 0.5
    final_min_agreement: float = 0.5
    # A final with no provisional before it must have been read exactly this many times: a
    # short track whose every read differs (a plate far away, before its car was tracked) can
    # compose a confident-looking string that no frame showed.
    final_min_repeats: int = 2
    require_format: bool = False  # decisions need a strong (non-weak) format match
    # Shorter consensus strings are fragments (a plate half out of view, a sticker, one
    # character of a blurred crop), never an event: Frigate's min_plate_length, default 4.
    min_plate_length: int = 4
    reappear_window_s: float = 10.0
    dedupe_max_distance: int = 1
    dedupe_min_similarity: float = 0.8
    max_track_duration_s: float | None = 60.0  # parked car: final after this long
    stable_final_s: float | None = None  # or: final once the text is unchanged this long
    max_reads_per_track: int = 200  # older reads are dropped (the best crop is kept apart)
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)

    def __post_init__(self) -> None:
        for name in (
            "provisional_min_reads", "final_min_reads", "max_reads_per_track", "min_plate_length",
            "final_min_repeats",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"voter config: {name} must be >= 1")
        for name in (
            "provisional_min_confidence", "provisional_min_agreement", "final_min_confidence",
            "final_min_agreement", "dedupe_min_similarity",
        ):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"voter config: {name} must be in [0, 1]")
        if self.reappear_window_s < 0 or self.dedupe_max_distance < 0:
            raise ValueError("voter config: reappear_window_s and dedupe_max_distance must be >= 0")
        for name in ("max_track_duration_s", "stable_final_s"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"voter config: {name} must be > 0 or null")


@dataclass(frozen=True)
class PlateDecision:
    event_id: str  # unique per decision (provisional and final of one track differ)
    type: DecisionType
    camera: str
    track_id: Hashable
    consensus: Consensus
    first_seen: float  # timestamp of the track's first read
    last_seen: float  # timestamp of its latest read
    first_frame: int
    last_frame: int
    best_read: PlateRead  # highest-quality read (its crop and box go in the event)
    plate_box: tuple[float, float, float, float] | None  # latest read's box
    displacement: tuple[float, float] | None  # plate centre motion first->latest read, pixels
    reason: str  # "confident" | "track_end" | "max_duration" | "stable"
    duplicate_of: str | None = None  # event id of the same vehicle's earlier event: don't publish

    @property
    def plate(self) -> str:
        return self.consensus.text


@dataclass
class _TrackVotes:
    reads: deque[PlateRead]
    first: PlateRead
    last: PlateRead
    best: PlateRead
    n_total: int = 1
    provisional_texts: list[str] = field(default_factory=list)
    provisional_id: str | None = None
    final: PlateDecision | None = None
    stable_text: str | None = None
    stable_since: float = 0.0


class TrackVote:
    """The reads of one track: bounded history (with its running tally), first/latest/best."""

    def __init__(
        self, first: PlateRead, max_reads: int, config: ConsensusConfig | None = None
    ) -> None:
        self.config = config or ConsensusConfig()
        self._tally = ReadTally(self.config.min_char_confidence)
        self._tally.add(first)
        self._v = _TrackVotes(deque([first], maxlen=max_reads), first, first, first)

    def add(self, read: PlateRead) -> None:
        v = self._v
        if len(v.reads) == v.reads.maxlen:
            self._tally.remove(v.reads[0])  # about to fall out of the bounded history
        v.reads.append(read)
        self._tally.add(read)
        v.n_total += 1
        v.last = read
        if read.quality >= v.best.quality:  # ties: the later read (the vehicle is closer)
            v.best = read

    @property
    def reads(self) -> list[PlateRead]:
        return list(self._v.reads)

    @property
    def best(self) -> PlateRead:
        return self._v.best

    def consensus(self, formats: PlateFormats | None = None) -> Consensus | None:
        return consensus_of(self._tally, formats, self.config)


class _Seen(NamedTuple):
    text: str
    event_id: str
    last_seen: float
    track_id: Hashable


class PlateVoter:
    """Per-camera decisions from per-track reads (policy in the module docstring)."""

    def __init__(
        self,
        config: VoterConfig | None = None,
        formats: PlateFormats | None = None,
        camera: str = "",
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.config = config or VoterConfig()
        self.formats = formats
        self.camera = camera
        self._new_id = id_factory or (lambda: str(uuid.uuid4()))
        self._tracks: dict[Hashable, TrackVote] = {}
        self._finals: list[_Seen] = []  # recent finals, for dedupe

    @property
    def active_tracks(self) -> list[Hashable]:
        return list(self._tracks)

    def current(self, track_id: Hashable) -> Consensus | None:
        """The track's consensus now (for overlays); None for unknown tracks."""
        tv = self._tracks.get(track_id)
        return tv.consensus(self.formats) if tv else None

    def add(self, track_id: Hashable, read: PlateRead) -> PlateDecision | None:
        """Add one read; returns a PROVISIONAL (or an early FINAL for a never-ending track) when
        the policy says so, else None. Reads with empty text are ignored."""
        cfg = self.config
        if not normalize_plate(read.text):
            return None
        tv = self._tracks.get(track_id)
        if tv is None:
            self._tracks[track_id] = tv = TrackVote(read, cfg.max_reads_per_track, cfg.consensus)
        else:
            if read.timestamp < tv._v.last.timestamp:
                raise ValueError(
                    f"plate voter: track {track_id!r} read at {read.timestamp} is older than "
                    f"its previous read at {tv._v.last.timestamp}"
                )
            tv.add(read)
        v = tv._v
        self._prune(read.timestamp)
        if v.final is not None:  # already decided (parked car): only keep the dedupe alive
            self._touch(v.final.event_id, read.timestamp)
            return None

        cons = tv.consensus(self.formats)
        if cons is None:
            return None
        final_ok = self._passes(cons, final=True)
        if cons.text != v.stable_text or not final_ok:
            v.stable_text, v.stable_since = (cons.text if final_ok else None), read.timestamp
        duration = read.timestamp - v.first.timestamp
        if (
            final_ok
            and cfg.max_track_duration_s is not None
            and duration >= cfg.max_track_duration_s
        ):
            return self._finalise(track_id, tv, cons, "max_duration")
        if (
            final_ok
            and cfg.stable_final_s is not None
            and read.timestamp - v.stable_since >= cfg.stable_final_s
        ):
            return self._finalise(track_id, tv, cons, "stable")

        if (
            self._passes(cons, final=False)
            and cons.text not in v.provisional_texts[-1:]
            and len(v.provisional_texts) < cfg.max_provisionals
        ):
            v.provisional_texts.append(cons.text)
            dup = self._find_duplicate(cons.text, v.first.timestamp, track_id)
            d = self._decision(track_id, tv, cons, DecisionType.PROVISIONAL, "confident", dup)
            if dup is None:
                v.provisional_id = d.event_id
            return d
        return None

    def end_track(self, track_id: Hashable) -> PlateDecision | None:
        """The track ended: its FINAL decision, or None (unknown track, already finalised, or
        not good enough and never published as provisional). Forgets the track either way."""
        tv = self._tracks.pop(track_id, None)
        if tv is None or tv._v.final is not None:
            return None
        cons = tv.consensus(self.formats)
        if cons is None:
            return None
        if tv._v.provisional_id is None and not (
            self._passes(cons, final=True) and self._repeats(cons) >= self.config.final_min_repeats
        ):
            return None
        return self._finalise(track_id, tv, cons, "track_end", keep=False)

    def flush(self) -> list[PlateDecision]:
        """End every track (shutdown / end of file), in the order tracks started."""
        out = []
        for tid in list(self._tracks):
            d = self.end_track(tid)
            if d is not None:
                out.append(d)
        return out

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _repeats(c: Consensus) -> int:
        """How many reads were exactly the consensus text (before or after format repair)."""
        return max((x.votes for x in c.candidates if x.text in (c.text, c.raw_text)), default=0)

    def _passes(self, c: Consensus, final: bool) -> bool:
        cfg = self.config
        if final:
            need = (cfg.final_min_reads, cfg.final_min_confidence, cfg.final_min_agreement)
        else:
            need = (
                cfg.provisional_min_reads,
                cfg.provisional_min_confidence,
                cfg.provisional_min_agreement,
            )
        if cfg.require_format and not (self.formats and self.formats.is_strong(c.format)):
            return False
        if len(c.text) < cfg.min_plate_length:
            return False
        return c.n_voting >= need[0] and c.confidence >= need[1] and c.agreement >= need[2]

    def _finalise(
        self, track_id: Hashable, tv: TrackVote, cons: Consensus, reason: str, keep: bool = True
    ) -> PlateDecision:
        v = tv._v
        dup = self._find_duplicate(cons.text, v.first.timestamp, track_id)
        d = self._decision(track_id, tv, cons, DecisionType.FINAL, reason, dup)
        v.final = d
        if dup is None:
            self._finals.append(_Seen(cons.text, d.event_id, v.last.timestamp, track_id))
        else:
            self._touch(dup, v.last.timestamp)
        if keep:  # a never-ending track stays registered so its later reads are absorbed
            self._tracks[track_id] = tv
        return d

    def _decision(
        self, track_id: Hashable, tv: TrackVote, cons: Consensus, kind: DecisionType, reason: str,
        dup: str | None,
    ) -> PlateDecision:  # fmt: skip
        v = tv._v
        disp = None
        if v.first.plate_box is not None and v.last.plate_box is not None:
            a, b = v.first.plate_box, v.last.plate_box
            disp = ((b[0] + b[2] - a[0] - a[2]) / 2, (b[1] + b[3] - a[1] - a[3]) / 2)
        return PlateDecision(
            event_id=self._new_id(),
            type=kind,
            camera=self.camera,
            track_id=track_id,
            consensus=cons,
            first_seen=v.first.timestamp,
            last_seen=v.last.timestamp,
            first_frame=v.first.frame_index,
            last_frame=v.last.frame_index,
            best_read=v.best,
            plate_box=v.last.plate_box,
            displacement=disp,
            reason=reason,
            duplicate_of=dup,
        )

    def _same_plate(self, a: str, b: str) -> bool:
        cfg = self.config
        return a == b or (
            levenshtein(a, b) <= cfg.dedupe_max_distance
            and similarity(a, b) >= cfg.dedupe_min_similarity
        )

    def _find_duplicate(self, text: str, first_seen: float, track_id: Hashable) -> str | None:
        window = self.config.reappear_window_s
        for s in reversed(self._finals):
            if (
                s.track_id != track_id
                and first_seen - s.last_seen <= window
                and self._same_plate(text, s.text)
            ):
                return s.event_id
        # a live track (an ID switch, or the same car seen twice) that already published a
        # provisional for this plate owns the vehicle: its final will be the one published
        for tid, tv in self._tracks.items():
            v = tv._v
            if (
                tid != track_id
                and v.provisional_id is not None
                and v.final is None
                and first_seen - v.last.timestamp <= window
                and self._same_plate(text, v.provisional_texts[-1])
            ):
                return v.provisional_id
        return None

    def _touch(self, event_id: str, ts: float) -> None:
        for i, s in enumerate(self._finals):
            if s.event_id == event_id and ts > s.last_seen:
                self._finals[i] = s._replace(last_seen=ts)

    def _prune(self, now: float) -> None:
        window = self.config.reappear_window_s
        live = {tv._v.final.event_id for tv in self._tracks.values() if tv._v.final}
        self._finals = [
            s for s in self._finals if now - s.last_seen <= window or s.event_id in live
        ]
