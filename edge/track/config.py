"""Tracker settings (YAML ``tracking:``): one `TrackerConfig` per class and the plate linker."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.settings import Settings


class TrackerConfig(Settings):
    """One class's ByteTrack-style thresholds (edge.track.tracker explains each stage)."""

    high_threshold: float = Field(0.5, ge=0, le=1, description="stage 1: detection score")
    low_threshold: float = Field(0.1, ge=0, le=1, description="stage 2: low-score detections")
    new_track_threshold: float = Field(0.6, ge=0, le=1, description="score to start a track")
    match_iou: float = Field(0.2, ge=0, le=1, description="stage 1: min (buffered) IoU")
    match_iou_low: float = Field(0.5, ge=0, le=1, description="stage 2: min IoU")
    iou_buffer: float = Field(
        0.2, ge=0, description="stage 1: boxes grown by this fraction of w/h on each side"
    )
    distance_gate: float | None = Field(
        2.0, gt=0, description="stage 3: max centre distance / predicted diagonal (null: off)"
    )
    # A plate crossing a 1080p frame in 2 s, analysed every 5th frame at 25 fps, moves ~2.1
    # diagonals per analysed frame (benchmarks/identity_clips.py, pop_in /5); 3, 6 and 10 score
    # the same on the dev clips. The same sure text makes a wide gate safe; 6 leaves room for
    # faster plates.
    identity_gate: float | None = Field(
        6.0, gt=0, description="stage 4: the same sure plate text matches this far (null: off)"
    )
    still_gate: float | None = Field(
        13.8,
        gt=0,
        description="stages 1-3: a still track takes only detections within this squared"
        " Mahalanobis distance of its predicted centre (chi-square, 2 dof; null: off)",
    )
    still_speed: float = Field(
        0.05,
        ge=0,
        description="a confirmed track moving less than this many box heights"
        " per source frame is still",
    )
    min_hits: int = Field(2, ge=1, description="matches before a track is confirmed")
    max_age: int = Field(30, ge=0, description="source frames a lost track survives unmatched")
    empty_max_age: int | None = Field(
        10, ge=0, description="... while no detection of its class is in view (null: max_age)"
    )
    identity_min_confidence: float | None = Field(
        0.7,
        ge=0,
        le=1,
        description="reads this sure are identity cues: another plate never joins the track"
        " (null: off)",
    )
    identity_memory: int = Field(5, ge=1, description="recent identity cues a track keeps")

    @model_validator(mode="after")
    def _order(self) -> TrackerConfig:
        if self.low_threshold > self.high_threshold:
            raise ValueError("need low_threshold <= high_threshold")
        if self.new_track_threshold < self.high_threshold:
            raise ValueError("new_track_threshold must be >= high_threshold")
        return self


# Plates are small and the detector's score on them is lower and noisier than on vehicles, so
# plate tracks start and continue at lower scores.
VEHICLE_TRACKER = TrackerConfig(high_threshold=0.4, low_threshold=0.1, new_track_threshold=0.5)
# distance_gate 3 for plates: a plate crossing 1280 px in 1.6 s at every 5th frame moves 2.7 box
# diagonals per analysed frame and never confirmed at 2 (tests/integration/
# test_identity_shipped.py); 2, 3 and 4 score the same on the dev clips, and stage 3 only
# takes tracks matched in the previous analysed frame, still ones gated by still_gate.
PLATE_TRACKER = TrackerConfig(
    high_threshold=0.3, low_threshold=0.1, new_track_threshold=0.35, distance_gate=3.0
)


class TrackingConfig(Settings):
    vehicle: TrackerConfig = Field(default=VEHICLE_TRACKER, description="vehicle tracks")
    plate: TrackerConfig = Field(default=PLATE_TRACKER, description="plate tracks")
    link_overlap: float = Field(
        0.5, gt=0, le=1, description="share of a plate box inside a vehicle box to tie them"
    )
