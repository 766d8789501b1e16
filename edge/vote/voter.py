"""Per-track plate voting: a track's reads and its end -> at most a few decisions.

Owns ``PlateVoter``, which turns reads and track ends into at most a few decisions per track
(PROVISIONAL early, FINAL at the end) and de-duplicates a plate that reappears. Pure and
deterministic: no clock (timestamps come in with the reads), no I/O; event ids come from an
injectable factory.

The consensus of a track's reads is edge.vote.consensus's.

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
- Split (one track, two vehicles): when ``split_reads`` reads in a row, each with its weakest
  character at ``split_min_confidence`` or more, agree with each other and are another plate
  than the track's established text (its published provisional, its final, or a final-worthy
  consensus; "another plate" = below the consensus's ``cluster_similarity``, O/0-I/1 folded),
  the track's reads before that run are decided (a FINAL with reason ``text_switch`` when they
  earn one, as at a track end) and the run starts a new decision under the same track id. A
  tracker that carries one identity across two cars (the next car stopping where the last one
  stood) thus still gives one event per car; less sure reads never split (a misread is not a
  new car).
- Dedupe: a decision whose plate equals, or is within ``dedupe_max_distance`` edits and
  ``dedupe_min_similarity`` of, a plate decided on this voter (one voter per camera) whose last
  sighting is at most ``reappear_window_s`` before this track's first read, is the SAME vehicle:
  it is still returned, with ``duplicate_of`` = the earlier event's id, and must not be
  published. Decisions are compared with earlier finals and with the published provisionals of
  other live, not yet finalised tracks (that track's own final will be the published one). The
  window is measured from the earlier plate's last sighting,
  which keeps moving while it is seen (also through a later track found to repeat it: a parked
  car whose track broke and restarted), so a car that lingers stays one event.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from edge.types import Consensus, DecisionType, PlateDecision, VoteRead
from edge.vote.config import ConsensusConfig, VotingConfig
from edge.vote.consensus import ReadTally, consensus_of, levenshtein, similarity
from edge.vote.formats import PlateFormats, normalize_plate
from edge.vote.text import fold_confusables


def crop_quality(plate_box: Sequence[float] | None, char_confidences: Sequence[float]) -> float:
    """Default crop quality: plate box area x mean character confidence (bigger, surer = better)."""
    conf = sum(char_confidences) / len(char_confidences) if char_confidences else 0.0
    if plate_box is None:
        return conf
    area = max(0.0, plate_box[2] - plate_box[0]) * max(0.0, plate_box[3] - plate_box[1])
    return area * conf


# --------------------------------------------------------------------------- decisions


@dataclass
class _TrackVotes:
    reads: deque[VoteRead]
    first: VoteRead
    last: VoteRead
    best: VoteRead
    n_total: int = 1
    provisional_texts: list[str] = field(default_factory=list)
    provisional_id: str | None = None
    duplicate_of: str | None = None  # the earlier event this track was found to repeat
    final: PlateDecision | None = None
    stable_text: str | None = None
    stable_since: float = 0.0
    switch_run: int = 0  # trailing confident reads of another plate (split rule)


class TrackVote:
    """The reads of one track: bounded history (with its running tally), first/latest/best."""

    def __init__(
        self, first: VoteRead, max_reads: int, config: ConsensusConfig | None = None
    ) -> None:
        self.config = config or ConsensusConfig()
        self._tally = ReadTally(self.config.min_char_confidence)
        self._tally.add(first)
        self._v = _TrackVotes(deque([first], maxlen=max_reads), first, first, first)

    def add(self, read: VoteRead) -> None:
        v = self._v
        if len(v.reads) == v.reads.maxlen:
            self._tally.remove(v.reads[0])  # about to fall out of the bounded history
        v.reads.append(read)
        self._tally.add(read)
        v.n_total += 1
        v.last = read
        if read.quality >= v.best.quality:  # ties: the later read (the vehicle is closer)
            v.best = read

    def split_off(self, n: int) -> TrackVote:
        """Move the last ``n`` reads into a new TrackVote (returned); this one keeps the rest."""
        v = self._v
        moved = [v.reads.pop() for _ in range(n)][::-1]
        for r in moved:
            self._tally.remove(r)
        v.n_total -= n
        v.last = v.reads[-1]
        if v.best in moved:
            v.best = max(v.reads, key=lambda r: r.quality)
        new = TrackVote(moved[0], v.reads.maxlen or len(moved), self.config)
        for r in moved[1:]:
            new.add(r)
        return new

    @property
    def reads(self) -> list[VoteRead]:
        return list(self._v.reads)

    @property
    def best(self) -> VoteRead:
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
        config: VotingConfig | None = None,
        formats: PlateFormats | None = None,
        camera: str = "",
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.config = config or VotingConfig()
        self.formats = formats
        self.camera = camera
        self._new_id = id_factory or (lambda: str(uuid.uuid4()))
        self._tracks: dict[Hashable, TrackVote] = {}
        self._finals: list[_Seen] = []  # recent finals, for dedupe

    @property
    def active_tracks(self) -> list[Hashable]:
        return list(self._tracks)

    def established(self, track_id: Hashable) -> str | None:
        """The text the track stands for so far (its final, last provisional or a final-worthy
        consensus), or None: what a read must agree with to belong to this vote."""
        tv = self._tracks.get(track_id)
        return self._established(tv._v) if tv else None

    def current(self, track_id: Hashable) -> Consensus | None:
        """The track's consensus now (for overlays); None for unknown tracks."""
        tv = self._tracks.get(track_id)
        return tv.consensus(self.formats) if tv else None

    def add(self, track_id: Hashable, read: VoteRead) -> PlateDecision | None:
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
            split = self._maybe_split(track_id, tv, read)
            if split is not False:
                return split
        v = tv._v
        if v.duplicate_of is not None:  # still the same vehicle: keep its event's window open
            self._touch(v.duplicate_of, read.timestamp)
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
            else:
                v.duplicate_of = dup
                self._touch(dup, read.timestamp)
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

    # ---------------------------------------------------------------- internals

    def _established(self, v: _TrackVotes) -> str | None:
        if v.final is not None:
            return v.final.consensus.text
        if v.provisional_texts:
            return v.provisional_texts[-1]
        return v.stable_text

    def _maybe_split(
        self, track_id: Hashable, tv: TrackVote, read: VoteRead
    ) -> PlateDecision | None | Literal[False]:
        """The split rule (module docstring), checked on the read just added. False: no split;
        else the split happened and this is the earlier reads' FINAL (or None)."""
        cfg = self.config
        v = tv._v
        if cfg.split_reads is None:
            return False
        est = self._established(v)
        if est is None or read.weight < cfg.split_min_confidence:
            return False  # nothing to split from, or too unsure to count either way
        text = fold_confusables(normalize_plate(read.text))
        other = similarity(text, fold_confusables(est)) < cfg.consensus.cluster_similarity
        if not other:
            v.switch_run = 0
            return False
        if v.switch_run:
            # the run must be one plate: compare with the run's first read
            first = v.reads[-1 - v.switch_run]
            same = similarity(text, fold_confusables(normalize_plate(first.text)))
            if same < cfg.consensus.cluster_similarity:
                v.switch_run = 0
        v.switch_run += 1
        if v.switch_run < cfg.split_reads or len(v.reads) <= v.switch_run:
            return False
        new = tv.split_off(v.switch_run)
        v.switch_run = 0
        decision = None
        if v.final is None:
            cons = tv.consensus(self.formats)
            if cons is not None and (
                v.provisional_id is not None
                or (self._passes(cons, final=True) and self._repeats(cons) >= cfg.final_min_repeats)
            ):
                decision = self._finalise(track_id, tv, cons, "text_switch", keep=False)
        self._tracks[track_id] = new
        return decision

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
            for other in self._tracks.values():  # tracks repeating this one's provisional
                if v.provisional_id is not None and other._v.duplicate_of == v.provisional_id:
                    other._v.duplicate_of = d.event_id
                    self._touch(d.event_id, other._v.last.timestamp)
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
