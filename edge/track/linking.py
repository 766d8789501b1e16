"""Plates to vehicles: ONE containment rule, used per frame (edge.detect.alpr, for the
``vehicle_box`` of a still image's plate) and over a track's history (`PlateVehicleLinker`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from edge.track.identity import compatible
from edge.types import TrackState, TrackStatus


def assign_plates_to_vehicles(
    plate_boxes: np.ndarray, vehicle_boxes: np.ndarray, min_overlap: float = 0.5
) -> list[int | None]:
    """Index of the vehicle box each plate belongs to, or None.

    A plate belongs to a vehicle when the plate's centre lies inside the vehicle box and at
    least ``min_overlap`` of the plate's area is inside it. Among candidates the highest overlap
    wins, then the smallest vehicle box (overlapping vehicles: the plate of the farther, smaller
    car lies inside the nearer car's big box too, never the other way round), then the lowest
    index. Several plates may map to one vehicle (front and rear plate, a trailer).
    """
    p = np.asarray(plate_boxes, dtype=np.float64).reshape(-1, 4)
    v = np.asarray(vehicle_boxes, dtype=np.float64).reshape(-1, 4)
    if len(v) == 0:
        return [None] * len(p)
    pc = (p[:, :2] + p[:, 2:]) / 2
    inside = (
        (pc[:, None, 0] >= v[None, :, 0]) & (pc[:, None, 0] <= v[None, :, 2])
        & (pc[:, None, 1] >= v[None, :, 1]) & (pc[:, None, 1] <= v[None, :, 3])
    )  # fmt: skip
    lo = np.maximum(p[:, None, :2], v[None, :, :2])
    hi = np.minimum(p[:, None, 2:], v[None, :, 2:])
    iw, ih = (hi - lo).clip(0).transpose(2, 0, 1)
    parea = ((p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])).clip(1e-9)
    overlap = iw * ih / parea[:, None]
    varea = (v[:, 2] - v[:, 0]) * (v[:, 3] - v[:, 1])
    out: list[int | None] = []
    for i in range(len(p)):
        cands = [j for j in range(len(v)) if inside[i, j] and overlap[i, j] >= min_overlap]
        if not cands:
            out.append(None)
            continue
        out.append(min(cands, key=lambda j: (-round(float(overlap[i, j]), 6), varea[j], j)))
    return out


class PlateVehicleLinker:
    """Ties each plate track to one vehicle track by majority over its history.

    Per-frame containment is noisy when vehicles overlap; the majority (ties: the most recent
    vote) keeps a plate on the vehicle it was seen on most often.

    A vehicle carries one plate: a plate track whose latest identity cue (edge.track.identity)
    is another plate than all of the vehicle track's cues (the reads of the plate found inside
    it) casts no vote for that vehicle. When a near car overtakes a far one whose own box the
    detector lost, the far car's plate lies inside the near car's box; without this rule its
    reads joined the near car's vote and the two made one event.
    """

    def __init__(self, min_overlap: float = 0.5) -> None:
        self.min_overlap = min_overlap
        self._votes: dict[int, Counter[int]] = {}
        self._last: dict[int, int] = {}

    def update(
        self, plate_tracks: Sequence[TrackState], vehicle_tracks: Sequence[TrackState]
    ) -> dict[int, int | None]:
        """Vote with this frame's plate tracks that matched a detection (``det_index >= 0``);
        returns plate track id -> current vehicle track id for every plate track given."""
        seen = [t for t in plate_tracks if t.det_index >= 0]
        vehicles = [t for t in vehicle_tracks if t.state != TrackStatus.REMOVED]
        assign = assign_plates_to_vehicles(
            np.array([t.box for t in seen]).reshape(-1, 4),
            np.array([t.box for t in vehicles]).reshape(-1, 4),
            self.min_overlap,
        )
        for t, j in zip(seen, assign, strict=True):
            if j is not None:
                vid = vehicles[j].track_id
                if not compatible(vehicles[j].texts, t.texts[-1] if t.texts else None):
                    continue
                self._votes.setdefault(t.track_id, Counter())[vid] += 1
                self._last[t.track_id] = vid
        return {t.track_id: self.vehicle_of(t.track_id) for t in plate_tracks}

    def vehicle_of(self, plate_track_id: int) -> int | None:
        votes = self._votes.get(plate_track_id)
        if not votes:
            return None
        top = max(votes.values())
        best = [vid for vid, n in votes.items() if n == top]
        last = self._last[plate_track_id]
        return last if last in best else min(best)

    def forget(self, plate_track_ids: Sequence[int]) -> None:
        for tid in plate_track_ids:
            self._votes.pop(tid, None)
            self._last.pop(tid, None)
