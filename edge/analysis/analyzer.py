"""Per-camera analysis after inference: tracks, plate-to-vehicle links, votes, and events.

Owns the middle of the pipeline, as typed messages:

    Frame (edge.capture.camera) --inference--> FrameAnalysis --CameraAnalyzer--> PlateDecision
        --to_plate_event--> PlateEvent (edge.events.schema)

`CameraAnalyzer` is pure logic with no threads and no I/O (the pipeline feeds it), so it can be
tested frame by frame:

- plate fragments (a box mostly inside a higher-scoring plate box) are dropped first;
- plate fragments (a box mostly inside a higher-scoring plate box: half a plate, a group of
  characters) are dropped before tracking: their reads would only dilute the vote;
- one `MultiClassTracker` per camera tracks vehicles and plates; a `PlateVehicleLinker` ties
  each plate track to a vehicle track by majority over its history;
- reads of a plate track go to the camera's `PlateVoter` under a *vote key*: the vehicle track
  id when the plate is linked, else the plate track id. The key is fixed when the plate track is
  confirmed (its reads from the tentative phase are buffered until then), so a plate track whose
  link appears later never splits its reads. Several plate tracks of one vehicle (a tracker ID
  switch, front and rear plate) vote together;
- a vote key ends when every tracker track that fed it has ended; then the voter's FINAL comes;
- decisions with ``duplicate_of`` set (the same vehicle again within the reappear window) are
  counted and never turned into events;
- operator rules (optional): every analysed frame feeds the camera's `CameraGeometry`
  (edge.rules.zones) with each matched vehicle track (anchor: bottom-centre of the box) and each
  plate
  track that votes on its own (anchor: plate centre). A FINAL event gets the zones its vote key
  passed and its direction (``finish``) and is dropped when ``require_zones`` is set and none was
  passed; a PROVISIONAL gets the zones/direction so far (``peek``) and is held back while the
  track has not yet passed a required zone. Both get the closest `Watchlists` match
  (``event.watchlist``). Alerts, privacy and history are the pipeline's (edge.app.pipeline).

Clock: files vote on their video time (so dedupe windows and parked-car limits mean video
seconds even when replayed faster than real time) and report UTC as ``origin + video_time``
where origin is the wall time of the first frame minus its video time; live sources use the
frame's wall clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from edge.events.schema import Candidate, PlateEvent, WatchlistHit, encode_crop
from edge.rules.watchlist import Match, Watchlists
from edge.rules.zones import CameraGeometry, CameraGeometryConfig, TrackResult
from edge.track.tracker import (
    MultiClassTracker,
    PlateVehicleLinker,
    TrackerConfig,
    TrackState,
    TrackStatus,
)
from edge.types import BoxTuple, PlateResult
from edge.vote.formats import PlateFormats
from edge.vote.voter import (
    DecisionType,
    PlateDecision,
    PlateRead,
    PlateVoter,
    VoterConfig,
    crop_quality,
)

VEHICLE_CLS = 0
PLATE_CLS = 1

# Tracker defaults for the two classes. Plates are small and the detector's score on them is
# lower and noisier than on vehicles, so plate tracks start and continue at lower scores.
DEFAULT_TRACKERS: dict[int, TrackerConfig] = {
    VEHICLE_CLS: TrackerConfig(high_threshold=0.4, low_threshold=0.1, new_track_threshold=0.5),
    PLATE_CLS: TrackerConfig(high_threshold=0.3, low_threshold=0.1, new_track_threshold=0.35),
}


@dataclass(frozen=True)
class FrameAnalysis:
    """One frame after inference: what the detector and reader found, in frame pixels.

    ``analysed`` is False for a frame the motion gate skipped: no detections, but the trackers
    still advance (tracks age). ``crops[i]`` is the (copied) image region plate ``i`` was read
    from, or None when events carry no crops.
    """

    camera: str
    index: int
    timestamp: float  # wall clock (epoch seconds) when the frame was read
    video_time_s: float | None
    monotonic: float
    analysed: bool
    vehicle_boxes: np.ndarray  # (V, 4) xyxy
    vehicle_scores: np.ndarray  # (V,)
    plates: tuple[PlateResult, ...] = ()
    crops: tuple[np.ndarray | None, ...] = ()
    detect_ms: float = 0.0
    read_ms: float = 0.0
    frame_size: tuple[int, int] | None = None  # (width, height): normalised zone coordinates

    @staticmethod
    def empty_boxes() -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


@dataclass(frozen=True)
class ReadContext:
    """What an event needs about a read besides the text: kept as ``PlateRead.crop``."""

    crop: np.ndarray | None
    vehicle_box: BoxTuple | None
    video_time_s: float | None


@dataclass(frozen=True)
class EventOptions:
    crop: bool = True
    crop_max_width: int = 320
    crop_quality: int = 85
    provisional: bool = True  # publish provisional events (finals are always published)
    # A plate tied to no vehicle that stays put is a sign, painted text or a poster (an EXIT
    # sign read as "EXI7"), not a passing car: no event once it has stood still this long
    # (None: off). Parked cars are not affected: their plates are tied to a vehicle track.
    static_plate_s: float | None = 2.0
    static_max_move: float = 0.01  # "stood still": centre moved < this x frame diagonal


@dataclass(frozen=True)
class TrackOverlay:
    """A track as drawn on an annotated frame."""

    track_id: int
    kind: str  # "vehicle" | "plate"
    box: BoxTuple
    matched: bool  # matched a detection in the last analysed frame
    plate: str | None = None  # current consensus (plates)
    status: str | None = None  # None | "provisional" | "final"


def nested_plates(boxes: np.ndarray, scores: np.ndarray, containment: float = 0.5) -> list[int]:
    """Indices of plate boxes to keep: a box lying mostly (``containment`` of its own area)
    inside a higher-scoring plate box is a detector fragment (half a plate, a character group),
    never a second plate; its read would only dilute the vote. Plain NMS keeps such fragments
    because their IoU with the whole plate is small."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable")
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    kept: list[int] = []
    for i in order.tolist():
        inside = False
        for j in kept:
            iw = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])
            ih = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])
            if iw > 0 and ih > 0 and iw * ih >= containment * max(area[i], 1e-9):
                inside = True
                break
        if not inside:
            kept.append(i)
    return sorted(kept)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def to_plate_event(
    decision: PlateDecision,
    *,
    track_id: int,
    track_uuid: str | None = None,
    to_utc: float = 0.0,
    options: EventOptions | None = None,
    regions: dict[str, str] | None = None,
    is_file: bool = False,
    geometry: TrackResult | None = None,
    watchlist: Match | None = None,
) -> PlateEvent:
    """Map a voter decision to the wire event.

    ``geometry`` fills ``zones`` and ``direction`` (None: the camera has no geometry);
    ``watchlist`` fills ``watchlist`` (the closest list entry, or None).

    ``to_utc`` is added to the decision's clock to get epoch seconds (the file origin; 0 for
    live sources, whose clock already is epoch seconds). Candidate ``score`` is the candidate's
    share of the confidence weight of the listed (top-k) candidates. Boxes and the crop are the
    best read's (the voter keeps the highest-quality read).
    """
    opts = options or EventOptions()
    cons = decision.consensus
    best = decision.best_read
    ctx = best.crop if isinstance(best.crop, ReadContext) else None
    total = sum(c.score for c in cons.candidates) or 1.0
    candidates = [
        Candidate(text=c.text, votes=c.votes, score=min(1.0, c.score / total))
        for c in cons.candidates
        if c.text
    ]
    crop_b64 = None
    if opts.crop and ctx is not None and ctx.crop is not None and ctx.crop.size:
        crop_b64 = encode_crop(ctx.crop, opts.crop_max_width, opts.crop_quality)
    plate_box = best.plate_box or decision.plate_box
    if plate_box is None:
        raise ValueError(f"decision {decision.event_id}: no plate box")
    return PlateEvent(
        event_id=decision.event_id,
        type=decision.type.value,
        camera=decision.camera,
        track_id=track_id,
        track_uuid=track_uuid,
        plate=cons.text,
        confidence=cons.confidence,
        char_confidences=list(cons.char_confidences),
        candidates=candidates,
        region=(regions or {}).get(cons.format or "") or None,
        format=cons.format,
        first_seen=_utc(decision.first_seen + to_utc),
        last_seen=_utc(decision.last_seen + to_utc),
        first_frame=decision.first_frame,
        last_frame=decision.last_frame,
        video_time_s=(ctx.video_time_s if ctx is not None else None) if is_file else None,
        vehicle_box=ctx.vehicle_box if ctx is not None else None,
        plate_box=[max(0.0, float(v)) for v in plate_box],
        direction=geometry.direction if geometry is not None else None,
        zones=list(geometry.zones) if geometry is not None else [],
        watchlist=WatchlistHit(**watchlist.to_hit()) if watchlist is not None else None,
        crop_jpeg_b64=crop_b64,
    )


@dataclass
class AnalyzerCounters:
    frames: int = 0  # frames given to update()
    analysed: int = 0  # frames with inference (not motion-gated)
    reads: int = 0  # non-empty plate reads added to the voter
    provisional: int = 0  # provisional events emitted
    final: int = 0  # final events emitted
    duplicates: int = 0  # decisions suppressed as the same vehicle seen again
    unpublished_provisional: int = 0  # provisionals suppressed by EventOptions.provisional
    outside_zones: int = 0  # decisions dropped/held back by require_zones
    static_plates: int = 0  # decisions dropped as static text (EventOptions.static_plate_s)
    watchlist_matches: int = 0  # events that matched a watchlist entry


@dataclass
class _KeyState:
    members: set[int] = field(default_factory=set)  # live tracker track ids feeding the key
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str | None = None  # last published event type
    last_ts: float = float("-inf")  # timestamp of the latest read given to the voter
    reads: int = 0  # reads given to the voter under this key
    linked_reads: int = 0  # ... of which came while the plate was tied to a vehicle track


class CameraAnalyzer:
    """Tracks + links + votes for one camera; ``update`` per frame returns publishable events."""

    def __init__(
        self,
        camera: str,
        *,
        voter_config: VoterConfig | None = None,
        formats: PlateFormats | None = None,
        trackers: dict[int, TrackerConfig] | None = None,
        link_overlap: float = 0.5,
        events: EventOptions | None = None,
        geometry: CameraGeometryConfig | None = None,
        watchlists: Watchlists | None = None,
    ) -> None:
        self.camera = camera
        self.voter = PlateVoter(voter_config, formats, camera=camera)
        self.tracker = MultiClassTracker(dict(trackers or DEFAULT_TRACKERS))
        self.linker = PlateVehicleLinker(link_overlap)
        self.events = events or EventOptions()
        self.regions = {p.name: p.region for p in formats.patterns} if formats else {}
        self.min_hits = self.tracker.trackers[PLATE_CLS].config.min_hits
        self.counters = AnalyzerCounters()
        self._keys: dict[int, _KeyState] = {}  # vote key -> state
        self._key_of: dict[int, int] = {}  # plate track id -> vote key
        self._member_of: dict[int, set[int]] = {}  # tracker track id -> vote keys it feeds
        self._pending: dict[int, list[PlateRead]] = {}  # tentative plate track -> reads
        self._origin: float | None = None  # file clock -> epoch offset (None: live clock)
        self._is_file: bool | None = None
        self._last_clock: float | None = None
        self._overlays: list[TrackOverlay] = []
        self.geometry_config = geometry
        # Built on the first frame: normalised coordinates need the frame size.
        self.geometry: CameraGeometry | None = None
        self.watchlists = watchlists if watchlists is not None and len(watchlists) else None
        self._diagonal: float | None = None  # frame diagonal, pixels (static-plate rule)

    # ------------------------------------------------------------------ clock

    def _clock(self, fa: FrameAnalysis) -> float:
        if self._is_file is None:
            self._is_file = fa.video_time_s is not None
            if self._is_file:
                self._origin = fa.timestamp - float(fa.video_time_s or 0.0)
        t = (
            float(fa.video_time_s)
            if self._is_file and fa.video_time_s is not None
            else fa.timestamp
        )
        if self._last_clock is not None and t < self._last_clock:
            t = self._last_clock  # never let the voter's clock run backwards
        self._last_clock = t
        return t

    @property
    def utc_offset(self) -> float:
        return self._origin if self._is_file and self._origin is not None else 0.0

    # ------------------------------------------------------------------ per frame

    def update(self, fa: FrameAnalysis) -> list[PlateEvent]:
        self.counters.frames += 1
        if fa.analysed:
            self.counters.analysed += 1
        now = self._clock(fa)
        if self._diagonal is None and fa.frame_size is not None:
            self._diagonal = float(np.hypot(*fa.frame_size))
        if len(fa.plates) > 1:
            keep = nested_plates(
                np.array([p.box for p in fa.plates]),
                np.array([p.detection_score for p in fa.plates]),
            )
            if len(keep) < len(fa.plates):
                crops = tuple(fa.crops[i] for i in keep) if fa.crops else ()
                fa = replace(fa, plates=tuple(fa.plates[i] for i in keep), crops=crops)
        nv = len(fa.vehicle_boxes)
        plate_boxes = np.array([p.box for p in fa.plates], np.float64).reshape(-1, 4)
        boxes = np.vstack([np.asarray(fa.vehicle_boxes, np.float64).reshape(-1, 4), plate_boxes])
        scores = np.concatenate(
            [
                np.asarray(fa.vehicle_scores, np.float64).reshape(-1),
                np.array([p.detection_score for p in fa.plates], np.float64),
            ]
        )
        classes = np.array([VEHICLE_CLS] * nv + [PLATE_CLS] * len(fa.plates), np.int64)
        tracks = self.tracker.update(boxes, scores, classes, fa.index)
        removed = list(self.tracker.last_removed)
        vehicles = [t for t in tracks if t.cls == VEHICLE_CLS]
        plates = [t for t in tracks if t.cls == PLATE_CLS]
        links = self.linker.update(plates, vehicles)
        live_vehicles = {t.track_id: t for t in vehicles}

        decisions: list[tuple[int, PlateDecision]] = []
        for t in plates:
            if t.det_index < nv:
                continue  # not matched in this frame (det_index -1) or not a plate row
            result = fa.plates[t.det_index - nv]
            if not result.read.text:
                continue
            crop = fa.crops[t.det_index - nv] if fa.crops else None
            vid = links.get(t.track_id)
            vbox = live_vehicles[vid].box if vid in live_vehicles else result.vehicle_box
            confs = tuple(float(c) for c in result.read.char_confidences)
            if len(confs) != len(result.read.text):
                continue  # malformed read; the voter would refuse it
            read = PlateRead(
                text=result.read.text,
                char_confidences=confs,
                frame_index=fa.index,
                timestamp=now,
                plate_box=result.box,
                quality=crop_quality(result.box, confs),
                crop=ReadContext(crop, vbox, fa.video_time_s),
            )
            if t.hits < self.min_hits:
                self._pending.setdefault(t.track_id, []).append(read)
                continue
            key = self._key_for(t.track_id, vid if vid in live_vehicles else None)
            state = self._keys[key]
            state.reads += 1
            state.linked_reads += vid in live_vehicles
            for r in [*self._pending.pop(t.track_id, []), read]:
                if r.timestamp < state.last_ts:
                    # A second plate track joining a vehicle's vote brings buffered reads older
                    # than the vote's latest; the voter needs time order, and the vehicle was
                    # already being read at that time: drop them.
                    continue
                state.last_ts = r.timestamp
                self.counters.reads += 1
                d = self.voter.add(key, r)
                if d is not None:
                    decisions.append((key, d))

        if fa.analysed:
            self._observe(fa, vehicles, plates, links, live_vehicles)
        for t in removed:
            decisions += self._track_ended(t)
        self._overlays = self._make_overlays(tracks)
        out = self._publishable(decisions)
        if self.geometry is not None:
            for t in removed:
                if t.track_id not in self._keys:  # a live vote key keeps its geometry
                    self.geometry.forget(t.track_id)
        return out

    def finish(self) -> list[PlateEvent]:
        """End of stream: end every track and return the final events."""
        removed = self.tracker.finish()
        decisions: list[tuple[int, PlateDecision]] = []
        for t in removed:
            decisions += self._track_ended(t)
        # Keys whose members were already gone but somehow remain (defensive): end them too.
        # Keys that just got their final stay until _publishable (it needs their state).
        decided = {key for key, _ in decisions}
        for key in list(self._keys):
            if key not in decided:
                decisions += self._end_key(key)
        self._overlays = []
        out = self._publishable(decisions)
        if self.geometry is not None:
            for t in removed:
                self.geometry.forget(t.track_id)
        return out

    # ------------------------------------------------------------------ geometry

    def _ensure_geometry(self, fa: FrameAnalysis) -> CameraGeometry | None:
        if self.geometry is None and self.geometry_config is not None:
            cfg = self.geometry_config
            if fa.frame_size is None:
                if cfg.normalized:
                    raise ValueError(f"camera {self.camera}: normalized zones need the frame size")
                w, h = 1, 1  # pixel coordinates: the size is not used
            else:
                w, h = fa.frame_size
            self.geometry = CameraGeometry(cfg, w, h)
        return self.geometry

    def _observe(
        self,
        fa: FrameAnalysis,
        vehicles: Sequence[TrackState],
        plates: Sequence[TrackState],
        links: dict[int, int],
        live_vehicles: dict[int, TrackState],
    ) -> None:
        """Feed the camera geometry with this frame's matched tracks.

        Tentative tracks count too: a car's first frames decide which side of the direction line
        it came from, and a track that never confirms is forgotten when the tracker drops it.
        """
        geo = self._ensure_geometry(fa)
        if geo is None:
            return
        for t in vehicles:
            if t.det_index >= 0:
                geo.observe(t.track_id, t.box)
        for t in plates:
            if t.det_index < 0:
                continue
            key = self._key_of.get(t.track_id)
            if key is None:
                # Not voting yet: it will vote under its own id unless it is linked now.
                if links.get(t.track_id) in live_vehicles:
                    continue
                key = t.track_id
            if key == t.track_id:
                geo.observe(key, None, t.box)

    def _geometry_of(self, key: int, done: bool) -> TrackResult | None:
        if self.geometry is None:
            if self.geometry_config is None:
                return None
            # No analysed frame yet (e.g. everything motion-gated): nothing was passed.
            return TrackResult(
                [],
                "unknown" if self.geometry_config.direction_line is not None else None,
                not self.geometry_config.require_zones,
            )
        return self.geometry.finish(key) if done else self.geometry.peek(key)

    # ------------------------------------------------------------------ keys

    def _key_for(self, plate_tid: int, vehicle_tid: int | None) -> int:
        key = self._key_of.get(plate_tid)
        if key is not None:
            return key
        key = vehicle_tid if vehicle_tid is not None else plate_tid
        self._key_of[plate_tid] = key
        state = self._keys.setdefault(key, _KeyState())
        for member in {plate_tid, key}:
            state.members.add(member)
            self._member_of.setdefault(member, set()).add(key)
        return key

    def _track_ended(self, t: TrackState) -> list[tuple[int, PlateDecision]]:
        tid = t.track_id
        self._pending.pop(tid, None)
        if t.cls == PLATE_CLS:
            self.linker.forget([tid])
            self._key_of.pop(tid, None)
        out: list[tuple[int, PlateDecision]] = []
        for key in self._member_of.pop(tid, set()):
            state = self._keys.get(key)
            if state is None:
                continue
            state.members.discard(tid)
            if not state.members:
                out += self._end_key(key)
        return out

    def _end_key(self, key: int) -> list[tuple[int, PlateDecision]]:
        state = self._keys.get(key)
        if state is None:
            return []
        for m in state.members:
            self._member_of.get(m, set()).discard(key)
        d = self.voter.end_track(key)
        if d is None:
            del self._keys[key]
            if self.geometry is not None:
                self.geometry.forget(key)
            return []
        return [(key, d)]

    # ------------------------------------------------------------------ events

    def _publishable(self, decisions: Sequence[tuple[int, PlateDecision]]) -> list[PlateEvent]:
        out = []
        for key, d in decisions:
            state = self._keys.get(key) or _KeyState()
            final = d.type is DecisionType.FINAL
            done = final and not state.members  # the key ends with this decision
            if done:
                self._keys.pop(key, None)
            # FINAL of an ended key: finish() (and forget); early FINAL of a parked car or a
            # PROVISIONAL: what the track passed so far.
            geo = self._geometry_of(key, done)
            if d.duplicate_of is not None:
                self.counters.duplicates += 1
                continue
            if self._static_text(state, d):
                self.counters.static_plates += 1
                continue
            if d.type is DecisionType.PROVISIONAL and not self.events.provisional:
                self.counters.unpublished_provisional += 1
                continue
            if geo is not None and not geo.allowed:
                # Outside the required zones: a final is dropped; a provisional is held back
                # (the vehicle may still reach the zone; its final decides).
                self.counters.outside_zones += 1
                continue
            match = self.watchlists.match(d.consensus.text) if self.watchlists else None
            if match is not None:
                self.counters.watchlist_matches += 1
            if final:
                self.counters.final += 1
            else:
                self.counters.provisional += 1
            state.status = d.type.value
            out.append(
                to_plate_event(
                    d,
                    track_id=key,
                    track_uuid=state.uuid,
                    to_utc=self.utc_offset,
                    options=self.events,
                    regions=self.regions,
                    is_file=bool(self._is_file),
                    geometry=geo,
                    watchlist=match,
                )
            )
        return out

    def _static_text(self, state: _KeyState, d: PlateDecision) -> bool:
        """A plate mostly tied to no vehicle that has not moved: a sign or painted text.

        A FINAL is dropped when the plate stood still for ``static_plate_s``; a PROVISIONAL of
        an unmoved, unlinked plate is held back (too early to tell a sign from a car the
        detector did not box; the final decides).
        """
        opts = self.events
        if opts.static_plate_s is None or self._diagonal is None:
            return False
        # "No vehicle": most reads came unlinked. A car passing in front of a sign can cover it
        # (and link it) for a moment; a parked car's plate is linked nearly all the time.
        if 2 * state.linked_reads >= max(1, state.reads):
            return False
        moved = float(np.hypot(*d.displacement)) if d.displacement is not None else 0.0
        if moved > opts.static_max_move * self._diagonal:
            return False
        if d.type is DecisionType.PROVISIONAL:
            return True
        return d.last_seen - d.first_seen >= opts.static_plate_s

    # ------------------------------------------------------------------ overlays

    def _make_overlays(self, tracks: Sequence[TrackState]) -> list[TrackOverlay]:
        out = []
        for t in tracks:
            if t.state == TrackStatus.TENTATIVE:
                continue
            if t.cls == VEHICLE_CLS:
                out.append(TrackOverlay(t.track_id, "vehicle", t.box, t.det_index >= 0))
                continue
            key = self._key_of.get(t.track_id)
            plate = status = None
            if key is not None:
                cons = self.voter.current(key)
                plate = cons.text if cons is not None else None
                state = self._keys.get(key)
                status = state.status if state is not None else None
            out.append(
                TrackOverlay(
                    key if key is not None else t.track_id,
                    "plate",
                    t.box,
                    t.det_index >= 0,
                    plate,
                    status,
                )
            )
        return out

    @property
    def overlays(self) -> list[TrackOverlay]:
        """Confirmed tracks after the last update (for annotated video)."""
        return list(self._overlays)


__all__ = [
    "CameraAnalyzer",
    "DEFAULT_TRACKERS",
    "EventOptions",
    "FrameAnalysis",
    "PLATE_CLS",
    "ReadContext",
    "TrackOverlay",
    "VEHICLE_CLS",
    "nested_plates",
    "to_plate_event",
]
