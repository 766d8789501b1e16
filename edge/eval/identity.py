"""One event per vehicle, scored: which vehicle each published decision came from, and per
vehicle whether it got exactly one right final.

Pure functions over plain records, so the video benchmark (benchmarks/identity_clips.py) and the
regression tests share one definition of right/missed/wrong/merged/duplicated:

- a decision's **reads** are attributed to the true vehicle whose plate box overlaps the read's
  box best (IoU >= ``min_iou``), else to nobody (background text, a sticker);
- a decision is **merged** when two or more vehicles each gave at least ``max(2, 20 %)`` of its
  reads: one event for two vehicles;
- per vehicle, with its finals being the unmerged published finals whose majority is that
  vehicle: **merged** if any merged final covers it, else **missed** with no final,
  **duplicated** with more than one, **right** when the one final's text is the plate, else
  **wrong**. Finals attributed to nobody are **false** events;
- **readable**: the vehicle's plate was read exactly in at least 3 analysed frames (by the
  detection overlapping its plate), the vehicles that any voting could get right;
- single-frame accuracy beside the voted one: per analysed frame with the plate fully in view,
  whether that frame's read equals the plate (a missed plate counts wrong), and per vehicle,
  whether its single most confident read does ("best single frame", what a system that picks
  one frame per vehicle would report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.analysis.analyzer import CameraAnalyzer
from edge.types import Frame, FrameResult, PlateDecision, VoteRead

BoxT = tuple[float, float, float, float]
OUTCOMES = ("right", "missed", "wrong", "merged", "duplicated")


def iou(a: BoxT, b: BoxT) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class FrameRead:
    """One plate read in one analysed frame."""

    frame: int
    box: BoxT
    text: str
    confidence: float


@dataclass(frozen=True)
class Decided:
    """A published decision: its type, text, the frame at which it was emitted, and the reads
    (frame, box) it was voted from."""

    kind: str  # "provisional" | "final"
    text: str
    emitted_frame: int
    reads: tuple[tuple[int, BoxT], ...]


@dataclass(frozen=True)
class TruthVehicle:
    """A vehicle of the clip: its plate and, per frame, its plate box (unclipped) and whether
    the plate is fully in view."""

    id: int
    text: str
    plates: Mapping[int, BoxT]
    full: frozenset[int]
    last_frame: int


@dataclass
class VehicleScore:
    id: int
    text: str
    outcome: str
    readable_frames: int
    finals: list[str] = field(default_factory=list)
    best_single: str = ""
    provisional_latency: float | None = None  # frames from first readable to first provisional
    final_latency: float | None = None  # frames from first readable to the final
    final_after_leave: float | None = None  # frames from the vehicle's last frame to the final

    @property
    def readable(self) -> bool:
        return self.readable_frames >= 3


@dataclass
class ClipScore:
    vehicles: list[VehicleScore]
    false_events: int
    frame_reads: int  # analysed frames with the plate fully in view
    frame_right: int  # ... whose read was exactly the plate

    def count(self, outcome: str, readable_only: bool = False) -> int:
        return sum(
            1 for v in self.vehicles if v.outcome == outcome and (v.readable or not readable_only)
        )


def owner(
    frame: int, box: BoxT, vehicles: Sequence[TruthVehicle], min_iou: float = 0.3
) -> int | None:
    """The vehicle whose plate in ``frame`` overlaps ``box`` best, if any overlaps enough."""
    best, best_iou = None, min_iou
    for v in vehicles:
        pb = v.plates.get(frame)
        if pb is not None:
            o = iou(box, pb)
            if o >= best_iou:
                best, best_iou = v.id, o
    return best


def members(
    decision: Decided, vehicles: Sequence[TruthVehicle], min_iou: float = 0.3
) -> tuple[int | None, list[int]]:
    """(majority vehicle, the vehicles that each gave a real share of the reads)."""
    votes = Counter(
        o for f, b in decision.reads if (o := owner(f, b, vehicles, min_iou)) is not None
    )
    if not votes:
        return None, []
    need = max(2, int(0.2 * len(decision.reads)))
    return votes.most_common(1)[0][0], sorted(v for v, n in votes.items() if n >= need)


def score_clip(
    vehicles: Sequence[TruthVehicle],
    analysed: Sequence[int],
    reads: Sequence[FrameRead],
    decisions: Sequence[Decided],
    min_iou: float = 0.3,
) -> ClipScore:
    """Score one replay of one clip (see the module docstring)."""
    by_frame: dict[int, list[FrameRead]] = {}
    for r in reads:
        by_frame.setdefault(r.frame, []).append(r)
    frame_reads = frame_right = 0
    scores = {}
    for v in vehicles:
        readable, best = 0, None
        first_readable = None
        for f in analysed:
            pb = v.plates.get(f)
            if pb is None:
                continue
            cands = [(iou(r.box, pb), r) for r in by_frame.get(f, [])]
            cands = [c for c in cands if c[0] >= min_iou]
            read = max(cands, key=lambda c: c[0])[1] if cands else None
            if f in v.full:
                frame_reads += 1
                frame_right += read is not None and read.text == v.text
            if read is not None:
                if read.text == v.text:
                    readable += 1
                    first_readable = f if first_readable is None else first_readable
                if best is None or read.confidence > best.confidence:
                    best = read
        s = VehicleScore(v.id, v.text, "missed", readable, best_single=best.text if best else "")
        s.provisional_latency = None
        scores[v.id] = (s, first_readable)

    false_events = 0
    merged: set[int] = set()
    finals: dict[int, list[Decided]] = {}
    for d in decisions:
        major, covered = members(d, vehicles, min_iou)
        if d.kind != "final":
            if major is not None:
                s, first = scores[major]
                if s.provisional_latency is None and first is not None:
                    s.provisional_latency = float(d.emitted_frame - first)
            continue
        if major is None:
            false_events += 1
        elif len(covered) >= 2:
            merged.update(covered)
        else:
            finals.setdefault(major, []).append(d)
    for vid, (s, first) in scores.items():
        fs = finals.get(vid, [])
        s.finals = [d.text for d in fs]
        if vid in merged:
            s.outcome = "merged"
        elif not fs:
            s.outcome = "missed"
        elif len(fs) > 1:
            s.outcome = "duplicated"
        else:
            s.outcome = "right" if fs[0].text == s.text else "wrong"
        if fs:
            veh = next(v for v in vehicles if v.id == vid)
            emitted = fs[0].emitted_frame
            s.final_after_leave = float(emitted - veh.last_frame)
            if first is not None:
                s.final_latency = float(emitted - first)
    return ClipScore([s for s, _ in scores.values()], false_events, frame_reads, frame_right)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Recorder:
    """Feeds a `CameraAnalyzer` frame by frame and keeps what scoring needs: the analysed
    frames, every plate read, and each published decision with the reads it was voted from
    (the analyzer's ``on_read`` hook sees every read with its vote key)."""

    def __init__(self, analyzer: CameraAnalyzer) -> None:
        self.analyzer = analyzer
        self.analysed: list[int] = []
        self.reads: list[FrameRead] = []
        self.decisions: list[Decided] = []
        self._by_key: dict[int, list[tuple[int, BoxT]]] = {}
        analyzer.on_read = self._on_read

    def _on_read(self, key: int, read: VoteRead) -> None:
        if read.plate_box is not None:
            self._by_key.setdefault(key, []).append((read.frame_index, read.plate_box))

    def update(self, frame: Frame, result: FrameResult | None) -> list[PlateDecision]:
        if result is not None:
            self.analysed.append(frame.index)
            for p in result.plates:
                if p.read.text:
                    self.reads.append(FrameRead(frame.index, p.box, p.read.text, p.read.confidence))
        out = self.analyzer.update(frame, result)
        self._keep(out, frame.index)
        return out

    def finish(self, last_frame: int) -> list[PlateDecision]:
        out = self.analyzer.finish()
        self._keep(out, last_frame)
        return out

    def _keep(self, decisions: Sequence[PlateDecision], frame: int) -> None:
        for d in decisions:
            key = int(d.track_id)  # type: ignore[call-overload]
            reads = tuple(
                r for r in self._by_key.get(key, []) if d.first_frame <= r[0] <= d.last_frame
            )
            self.decisions.append(Decided(d.type.value, d.consensus.text, frame, reads))
