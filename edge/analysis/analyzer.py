"""Per-camera analysis after inference: tracks, plate-to-vehicle links, votes -> decisions.

    Frame + FrameResult --CameraAnalyzer.update--> PlateDecision (with track uuid, zones,
    direction) --edge.app.delivery--> PlateEvent, Alert

`CameraAnalyzer` is pure logic with no threads and no I/O (the pipeline feeds it), so it can be
tested frame by frame. Per frame:

- one `MultiClassTracker` tracks vehicles and plates on the frame's `Detections` (with the
  frame's reads as identity cues: `identity_reads`); a `PlateVehicleLinker` ties each plate
  track to a vehicle track by majority over its history;
- reads of a plate track go to the camera's `PlateVoter` under a vote key (edge.analysis
  .vote_keys) once the plate track is confirmed, or at once when it lies in a confirmed
  vehicle track; when a key ends, the voter's FINAL comes; a FINAL with reason
  ``text_switch`` (the voter's split rule) gives the key a new track uuid for the next car;
- decisions with ``duplicate_of`` set (the same vehicle again within the reappear window) are
  counted and never become events, nor does static text (edge.analysis.static_text);
- operator geometry (optional): every analysed frame feeds the camera's `CameraGeometry`
  (edge.rules.zones) with each matched vehicle track (anchor: bottom-centre of the box) and each
  plate track that votes on its own (anchor: plate centre). A FINAL gets the zones its vote key
  passed and its direction (``finish``) and is dropped when ``require_zones`` is set and none
  was passed; a PROVISIONAL gets the zones/direction so far (``peek``) and is held back while
  the track has not yet passed a required zone.

Watchlists, alerts, privacy and the mapping to wire events come after, in edge.app.delivery.
The clock is edge.analysis.clock's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from edge.analysis.clock import StreamClock
from edge.analysis.static_text import is_static_text
from edge.analysis.vote_keys import KeyState, VoteKeys
from edge.events.config import EventsConfig
from edge.rules.zones import CameraGeometry, CameraGeometryConfig, TrackResult
from edge.track.config import TrackingConfig
from edge.track.identity import identity_text, same_plate
from edge.track.linking import PlateVehicleLinker
from edge.track.tracker import MultiClassTracker
from edge.types import (
    PLATE,
    VEHICLE,
    BoxTuple,
    DecisionType,
    Detections,
    Frame,
    FrameResult,
    PlateDecision,
    ReadContext,
    TrackState,
    TrackStatus,
    VoteRead,
)
from edge.vote.config import VotingConfig
from edge.vote.formats import PlateFormats
from edge.vote.text import fold_confusables
from edge.vote.voter import PlateVoter, crop_quality


def identity_reads(result: FrameResult | None) -> dict[int, tuple[str, float]]:
    """Detection row -> (text, weakest character's confidence) for the tracker's identity cues:
    each read plate, and each vehicle holding exactly one read plate (two plates in one vehicle
    box are two cars overlapping: no cue)."""
    if result is None:
        return {}
    out: dict[int, tuple[str, float]] = {}
    per_vehicle: dict[int, list[tuple[str, float]]] = {}
    for p in result.plates:
        if p.read.text:
            out[p.det_index] = (p.read.text, p.read.confidence)
            if p.vehicle_index is not None:
                per_vehicle.setdefault(p.vehicle_index, []).append(out[p.det_index])
    out.update({v: reads[0] for v, reads in per_vehicle.items() if len(reads) == 1})
    return out


@dataclass(frozen=True)
class TrackOverlay:
    """A track as drawn on an annotated frame."""

    track_id: int  # the tracker's id of this track (vehicles and plates share one counter)
    kind: str  # "vehicle" | "plate"
    box: BoxTuple
    matched: bool  # matched a detection in the last analysed frame
    plate: str | None = None  # current consensus (plates)
    status: str | None = None  # None | "provisional" | "final"
    vote_key: int | None = None  # plates: the vote it feeds (its vehicle's id when linked)
    confidence: float | None = None  # plates: the consensus confidence
    linked: bool = False  # plates: tied to a vehicle track


@dataclass
class AnalyzerCounters:
    frames: int = 0  # frames given to update()
    analysed: int = 0  # frames with inference (not motion-gated)
    reads: int = 0  # non-empty plate reads added to the voter
    provisional: int = 0  # provisional decisions passed on
    final: int = 0  # final decisions passed on
    duplicates: int = 0  # decisions suppressed as the same vehicle seen again
    unpublished_provisional: int = 0  # provisionals suppressed by events.provisional
    outside_zones: int = 0  # decisions dropped/held back by require_zones
    static_plates: int = 0  # decisions dropped as static text (events.static_plate_s)


class CameraAnalyzer:
    """Tracks + links + votes for one camera; ``update`` per frame returns the decisions to
    publish (duplicates, static text and decisions outside required zones already dropped)."""

    def __init__(
        self,
        camera: str,
        *,
        voting: VotingConfig | None = None,
        formats: PlateFormats | None = None,
        tracking: TrackingConfig | None = None,
        events: EventsConfig | None = None,
        geometry: CameraGeometryConfig | None = None,
        crops: bool | None = None,
    ) -> None:
        self.camera = camera
        tracking = tracking or TrackingConfig()
        self.voter = PlateVoter(voting, formats, camera=camera)
        self.tracker = MultiClassTracker({VEHICLE: tracking.vehicle, PLATE: tracking.plate})
        self.linker = PlateVehicleLinker(tracking.link_overlap)
        self.events = events or EventsConfig()
        # Crops are copied out of the frame only when events carry them.
        self.keep_crops = self.events.crop if crops is None else crops
        self.regions = {p.name: p.region for p in formats.patterns} if formats else {}
        self.min_hits = tracking.plate.min_hits
        # reads this sure are identity cues (tracker, linker and the vote a plate track joins)
        self.identity_min_confidence = tracking.plate.identity_min_confidence
        self.counters = AnalyzerCounters()
        self.keys = VoteKeys()
        self.clock = StreamClock()
        self._overlays: list[TrackOverlay] = []
        self.geometry_config = geometry
        # Built on the first frame: normalised coordinates need the frame size.
        self.geometry: CameraGeometry | None = None
        self._diagonal: float | None = None  # frame diagonal, pixels (static-text rule)
        # Observer of every read handed to the voter, with its vote key (benchmarks trace each
        # decision back to the vehicles its reads came from).
        self.on_read: Callable[[int, VoteRead], None] | None = None

    # ------------------------------------------------------------------ per frame

    def update(self, frame: Frame, result: FrameResult | None) -> list[PlateDecision]:
        """One frame; ``result`` None means it was not analysed (motion gate): tracks age."""
        self.counters.frames += 1
        if result is not None:
            self.counters.analysed += 1
        now = self.clock.now(frame)
        if self._diagonal is None:
            self._diagonal = float(np.hypot(frame.width, frame.height))
        dets = result.detections if result is not None else Detections.empty()
        tracks = self.tracker.update(dets, frame.index, identity_reads(result))
        vehicles = tracks.of_class(VEHICLE)
        plates = tracks.of_class(PLATE)
        links = self.linker.update(plates, vehicles)
        live_vehicles = {t.track_id: t for t in vehicles}
        plate_of = {p.det_index: p for p in result.plates} if result is not None else {}

        decisions: list[tuple[int, PlateDecision]] = []
        # Two plates read in one frame are two vehicles, whatever box holds them (a near car's
        # box swallowing the plate of the car it hides): a vote takes one plate track per
        # frame, the oldest first, and a younger one reading under the same key votes alone.
        voted: dict[int, int] = {}  # vote key -> the plate track that read for it this frame
        for t in sorted(plates, key=lambda p: (-p.hits, p.track_id)):
            plate = plate_of.get(t.det_index) if t.matched else None
            if plate is None or not plate.read.text:
                continue
            confs = tuple(float(c) for c in plate.read.char_confidences)
            if len(confs) != len(plate.read.text):
                continue  # malformed read; the voter would refuse it
            vid = links.get(t.track_id)
            vbox = live_vehicles[vid].box if vid in live_vehicles else plate.vehicle_box
            crop = plate.crop.copy() if self.keep_crops and plate.crop is not None else None
            read = VoteRead(
                text=plate.read.text,
                char_confidences=confs,
                frame_index=frame.index,
                timestamp=now,
                plate_box=plate.box,
                quality=crop_quality(plate.box, confs),
                context=ReadContext(crop, vbox, frame.video_time_s),
            )
            vehicle = live_vehicles.get(vid) if vid is not None else None
            if t.hits < self.min_hits and not (
                vehicle is not None and vehicle.state == TrackStatus.CONFIRMED
            ):
                # A young plate track votes once confirmed; inside a confirmed vehicle track
                # it votes at once: at a low analysed frame rate a fast plate jumps beyond the
                # plate tracker's gate every frame and its tracks never confirm, while the
                # vehicle's (bigger box) does.
                self.keys.hold(t.track_id, read)
                continue
            key = self.keys.key_for(t.track_id, vid if vid in live_vehicles else None)
            if key != t.track_id and (key in voted or self._foreign(key, read)):
                # Another plate read for this vote in this frame, or surely read as another
                # plate than the vote it joined (a parked car's box the plate only passes
                # through, a near car overtaking a far one): it votes alone.
                for ended in self.keys.detach(t.track_id):
                    decisions += self._end_key(ended)
                key = t.track_id
            voted[key] = t.track_id
            state = self.keys.states[key]
            state.reads += 1
            state.linked_reads += vid in live_vehicles
            for r in [*self.keys.take_pending(t.track_id), read]:
                if r.timestamp < state.last_ts:
                    # A second plate track joining a vehicle's vote brings buffered reads older
                    # than the vote's latest; the voter needs time order, and the vehicle was
                    # already being read at that time: drop them.
                    continue
                state.last_ts = r.timestamp
                self.counters.reads += 1
                if self.on_read is not None:
                    self.on_read(key, r)
                d = self.voter.add(key, r)
                if d is not None:
                    decisions.append((key, d))

        if result is not None:
            self._observe(frame, vehicles, plates, links, live_vehicles)
        for t in tracks.ended:
            decisions += self._track_ended(t)
        self._overlays = self._make_overlays(tracks.live)
        out = self._publishable(decisions)
        if self.geometry is not None:
            for t in tracks.ended:
                if t.track_id not in self.keys.states:  # a live vote key keeps its geometry
                    self.geometry.forget(t.track_id)
        return out

    def _foreign(self, key: int, read: VoteRead) -> bool:
        """The read is an identity cue of another plate than the vote ``key`` stands for."""
        cue = identity_text(read.text, read.weight, self.identity_min_confidence)
        est = self.voter.established(key)
        return cue is not None and est is not None and not same_plate(cue, fold_confusables(est))

    def finish(self) -> list[PlateDecision]:
        """End of stream: end every track and return the final decisions."""
        removed = self.tracker.finish()
        decisions: list[tuple[int, PlateDecision]] = []
        for t in removed:
            decisions += self._track_ended(t)
        # Keys whose members were already gone but somehow remain (defensive): end them too.
        # Keys that just got their final stay until _publishable (it needs their state).
        decided = {key for key, _ in decisions}
        for key in list(self.keys.states):
            if key not in decided:
                decisions += self._end_key(key)
        self._overlays = []
        out = self._publishable(decisions, stream_end=True)
        if self.geometry is not None:
            for t in removed:
                self.geometry.forget(t.track_id)
        return out

    # ------------------------------------------------------------------ geometry

    def _ensure_geometry(self, frame: Frame) -> CameraGeometry | None:
        if self.geometry is None and self.geometry_config is not None:
            self.geometry = CameraGeometry(self.geometry_config, frame.width, frame.height)
        return self.geometry

    def _observe(
        self,
        frame: Frame,
        vehicles: Sequence[TrackState],
        plates: Sequence[TrackState],
        links: dict[int, int | None],
        live_vehicles: dict[int, TrackState],
    ) -> None:
        """Feed the camera geometry with this frame's matched tracks.

        Tentative tracks count too: a car's first frames decide which side of the direction line
        it came from, and a track that never confirms is forgotten when the tracker drops it.
        """
        geo = self._ensure_geometry(frame)
        if geo is None:
            return
        for t in vehicles:
            if t.matched:
                geo.observe(t.track_id, t.box)
        for t in plates:
            if not t.matched:
                continue
            key = self.keys.key_of(t.track_id)
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

    def _track_ended(self, t: TrackState) -> list[tuple[int, PlateDecision]]:
        is_plate = t.cls == PLATE
        if is_plate:
            self.linker.forget([t.track_id])
        out: list[tuple[int, PlateDecision]] = []
        for key in self.keys.track_ended(t.track_id, is_plate):
            out += self._end_key(key)
        return out

    def _end_key(self, key: int) -> list[tuple[int, PlateDecision]]:
        if key not in self.keys.states:
            return []
        self.keys.release(key)
        d = self.voter.end_track(key)
        if d is None:
            self.keys.drop(key)
            if self.geometry is not None:
                self.geometry.forget(key)
            return []
        return [(key, d)]

    # ------------------------------------------------------------------ decisions out

    def _publishable(
        self, decisions: Sequence[tuple[int, PlateDecision]], stream_end: bool = False
    ) -> list[PlateDecision]:
        out = []
        for key, d in decisions:
            published = self._publish_one(key, d, stream_end)
            if published is not None:
                out.append(published)
            state = self.keys.states.get(key)
            if d.reason == "text_switch" and state is not None:
                # the vote key now follows another vehicle (edge.vote.voter's split rule)
                state.uuid, state.status = str(uuid.uuid4()), None
        return out

    def _publish_one(self, key: int, d: PlateDecision, stream_end: bool) -> PlateDecision | None:
        state = self.keys.states.get(key) or KeyState()
        final = d.type is DecisionType.FINAL
        done = final and not state.members  # the key ends with this decision
        if done:
            self.keys.drop(key)
        # FINAL of an ended key: finish() (and forget); early FINAL of a parked car or a
        # PROVISIONAL: what the track passed so far.
        geo = self._geometry_of(key, done)
        if d.duplicate_of is not None:
            self.counters.duplicates += 1
            return None
        if is_static_text(state, d, self.events, self._diagonal, stream_end):
            self.counters.static_plates += 1
            return None
        if d.type is DecisionType.PROVISIONAL and not self.events.provisional:
            self.counters.unpublished_provisional += 1
            return None
        if geo is not None and not geo.allowed:
            # Outside the required zones: a final is dropped; a provisional is held back
            # (the vehicle may still reach the zone; its final decides).
            self.counters.outside_zones += 1
            return None
        if final:
            self.counters.final += 1
        else:
            self.counters.provisional += 1
        state.status = d.type.value
        return replace(
            d,
            track_uuid=state.uuid,
            zones=tuple(geo.zones) if geo is not None else None,
            direction=geo.direction if geo is not None else None,
        )

    # ------------------------------------------------------------------ overlays

    def _make_overlays(self, tracks: Sequence[TrackState]) -> list[TrackOverlay]:
        out = []
        for t in tracks:
            if t.state == TrackStatus.TENTATIVE:
                continue
            if t.cls == VEHICLE:
                out.append(TrackOverlay(t.track_id, "vehicle", t.box, t.matched))
                continue
            key = self.keys.key_of(t.track_id)
            plate = status = None
            confidence = None
            if key is not None:
                cons = self.voter.current(key)
                plate = cons.text if cons is not None else None
                confidence = cons.confidence if cons is not None else None
                state = self.keys.states.get(key)
                status = state.status if state is not None else None
            linked = self.linker.vehicle_of(t.track_id) is not None
            out.append(
                TrackOverlay(
                    t.track_id, "plate", t.box, t.matched, plate, status, key, confidence, linked
                )
            )
        return out

    @property
    def overlays(self) -> list[TrackOverlay]:
        """Confirmed tracks after the last update (for annotated video)."""
        return list(self._overlays)
