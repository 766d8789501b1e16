"""The messages of the pipeline, one per stage, defined once.

    capture        Frame                 one decoded picture of one camera
    detect + read  FrameResult           Detections (every class) + the plates read + timings
    track          Tracks                live and ended tracks; rows point into the Detections
    vote           VoteRead -> PlateDecision   one read of a tracked plate -> voter decision
    events         PlateEvent (edge.events.schema, the wire format) and Alert (edge.events.alerts)

Boxes are xyxy in the pixels of the full-resolution frame. Nothing here does work beyond small
views of its own fields; the stages that make these messages own the logic.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import NamedTuple

import numpy as np

BoxTuple = tuple[float, float, float, float]

VEHICLE = "vehicle"
PLATE = "plate"


# ----------------------------------------------------------------------------- capture


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame on its way to the pipeline. ``image`` is the decoder's array, not a copy.

    ``index`` is the source frame number (for files: from the container timestamps, so skipped
    corrupt frames leave a gap); ``timestamp`` is wall-clock UTC (seconds since the epoch) when
    the frame was read; ``video_time_s`` is the position in the file (None for live sources);
    ``monotonic`` is `time.monotonic()` at read time, for latency measurements.
    """

    camera: str
    index: int
    timestamp: float
    image: np.ndarray
    is_live: bool
    video_time_s: float | None = None
    monotonic: float = 0.0

    @property
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, tz=timezone.utc)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# ----------------------------------------------------------------------------- detect + read


@dataclass(frozen=True)
class Detections:
    """One frame's detector output after decoding, NMS and mapping back to frame pixels.

    Every class stays in this one object from the detector to the tracker: rows are addressed
    by index (``Plate.det_index``, ``TrackState.det_index``), never split and re-stacked.
    """

    boxes: np.ndarray  # (K, 4) float32 xyxy, frame pixels
    scores: np.ndarray  # (K,) float32
    class_ids: np.ndarray  # (K,) int64, index into ``classes``
    classes: tuple[str, ...]  # the model's class names

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.classes[int(c)] for c in self.class_ids]

    def indices_of(self, name: str) -> np.ndarray:
        """Row indices of the detections of class ``name`` (empty if the model has none)."""
        if name not in self.classes:
            return np.zeros((0,), np.int64)
        return np.flatnonzero(self.class_ids == self.classes.index(name))

    def select(self, rows: np.ndarray | list[int]) -> Detections:
        """These rows only, in this order (a view for callers that need one class)."""
        idx = np.asarray(rows, np.int64).reshape(-1)
        return Detections(self.boxes[idx], self.scores[idx], self.class_ids[idx], self.classes)

    def of_class(self, name: str) -> Detections:
        return self.select(self.indices_of(name))

    @staticmethod
    def empty(classes: tuple[str, ...] = (VEHICLE, PLATE)) -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int64),
            classes,
        )


@dataclass(frozen=True)
class TextRead:
    """The reader's answer for one crop. ``confidence`` is the weakest character's."""

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()


@dataclass(frozen=True)
class Plate:
    """One plate found and read in a frame.

    ``crop`` is the region the reader saw: a view into the frame (no copy; whoever keeps it past
    the frame copies it). ``vehicle_index`` is the row in the frame's `Detections` of the vehicle
    box this plate lies in (one rule: edge.track.linking.assign_plates_to_vehicles), or None.
    """

    det_index: int
    box: BoxTuple
    score: float
    read: TextRead
    crop_box: tuple[int, int, int, int]
    vehicle_index: int | None = None
    vehicle_box: BoxTuple | None = None
    crop: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        return self.read.text

    @property
    def confidence(self) -> float:
        return self.read.confidence


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent on one frame by the detector and by the reader."""

    detect_ms: float = 0.0
    read_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.read_ms


@dataclass(frozen=True)
class FrameResult:
    """Everything detection and reading found in one frame (returned, no side channels)."""

    detections: Detections
    plates: tuple[Plate, ...] = ()
    timings: StageTimings = StageTimings()

    @staticmethod
    def empty(classes: tuple[str, ...] = (VEHICLE, PLATE)) -> FrameResult:
        return FrameResult(Detections.empty(classes))


# ----------------------------------------------------------------------------- track


class TrackStatus(str, Enum):
    TENTATIVE = "tentative"  # fewer than min_hits matches; dropped on its first miss
    CONFIRMED = "confirmed"  # matched in this update
    LOST = "lost"  # confirmed, unmatched now; keeps predicting until max_age
    REMOVED = "removed"  # ended; reported once in Tracks.ended


@dataclass(frozen=True)
class TrackState:
    """Snapshot of one track after an update (immutable: safe to keep)."""

    track_id: int
    box: BoxTuple  # filtered xyxy (predicted when unmatched)
    score: float  # score of the last matched detection
    hits: int  # number of matched detections
    age: int  # source frames since the first detection
    time_since_update: int  # source frames since the last match (0 when matched now)
    state: TrackStatus
    det_index: int  # row of the Detections matched now, -1 if none
    first_frame: int
    last_frame: int  # frame of the last match
    velocity: tuple[float, float]  # centre velocity, pixels per source frame
    cls: str = ""  # class name (edge.types.VEHICLE / PLATE)
    texts: tuple[str, ...] = ()  # recent identity cues, oldest first (edge.track.identity)

    @property
    def is_confirmed(self) -> bool:
        return self.state in (TrackStatus.CONFIRMED, TrackStatus.LOST)

    @property
    def matched(self) -> bool:
        return self.det_index >= 0


@dataclass(frozen=True)
class Tracks:
    """One tracker update: the live tracks (tentative, confirmed, lost) and the tracks that
    ended in this update (each reported exactly once)."""

    live: tuple[TrackState, ...] = ()
    ended: tuple[TrackState, ...] = ()

    def of_class(self, name: str) -> list[TrackState]:
        return [t for t in self.live if t.cls == name]


# ----------------------------------------------------------------------------- vote


@dataclass(frozen=True)
class ReadContext:
    """What an event needs about a read besides its text (kept as ``VoteRead.context``).

    ``crop`` is a copy (the frame it came from is gone by the time an event is built)."""

    crop: np.ndarray | None
    vehicle_box: BoxTuple | None
    video_time_s: float | None


@dataclass(frozen=True)
class VoteRead:
    """One reading of a tracked plate in one frame, as the voter takes it."""

    text: str
    char_confidences: tuple[float, ...]
    frame_index: int
    timestamp: float  # seconds (video time for files, epoch for live; the caller's clock)
    plate_box: BoxTuple | None = None  # xyxy, frame pixels
    quality: float = 0.0  # crop quality; higher is better (edge.vote.voter.crop_quality)
    context: ReadContext | None = field(default=None, compare=False, repr=False)  # voter: opaque

    def __post_init__(self) -> None:
        if len(self.char_confidences) != len(self.text):
            raise ValueError(
                f"vote read {self.text!r}: {len(self.char_confidences)} confidences for "
                f"{len(self.text)} characters"
            )

    @property
    def weight(self) -> float:
        """What the read weighs in a vote: its weakest character's confidence."""
        return min(self.char_confidences) if self.char_confidences else 0.0


class TextCandidate(NamedTuple):
    """One distinct read text of a track: how often it was read and its summed weight."""

    text: str
    votes: int
    score: float


@dataclass(frozen=True)
class Consensus:
    text: str  # after format repair, if any
    confidence: float  # weakest character
    char_confidences: tuple[float, ...]
    candidates: tuple[TextCandidate, ...]  # top-k distinct read texts, best first
    format: str | None  # matched pattern name (weak patterns included), None if no formats/match
    n_reads: int  # all non-empty reads considered
    n_voting: int  # reads that took part in the position-wise vote
    agreement: float  # weight of voting reads / weight of all reads
    raw_text: str = ""  # voted text before repair
    repaired: bool = False


class DecisionType(str, Enum):
    PROVISIONAL = "provisional"
    FINAL = "final"


@dataclass(frozen=True)
class PlateDecision:
    """What the voter decided for one vote key (a vehicle, or a plate voting on its own).

    The analyzer fills ``track_uuid``, ``zones`` and ``direction`` (edge.analysis); the voter
    leaves them empty.
    """

    event_id: str  # unique per decision (provisional and final of one track differ)
    type: DecisionType
    camera: str
    track_id: Hashable
    consensus: Consensus
    first_seen: float  # timestamp of the track's first read
    last_seen: float  # timestamp of its latest read
    first_frame: int
    last_frame: int
    best_read: VoteRead  # highest-quality read (its crop and box go in the event)
    plate_box: BoxTuple | None  # latest read's box
    displacement: tuple[float, float] | None  # plate centre motion first->latest read, pixels
    reason: str  # "confident" | "track_end" | "max_duration" | "stable"
    duplicate_of: str | None = None  # event id of the same vehicle's earlier event: don't publish
    track_uuid: str | None = None
    zones: tuple[str, ...] | None = None  # None: the camera has no geometry
    direction: str | None = None

    @property
    def plate(self) -> str:
        return self.consensus.text
