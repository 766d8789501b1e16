"""Multi-object tracking for the edge runtime: a compact ByteTrack-class tracker in numpy.

Owns: the constant-velocity Kalman filter, two-stage (high then low score) association with an
optimal assignment, track life cycle (tentative -> confirmed -> lost -> removed), per-class
tracking, and tying plate tracks to vehicle tracks. Pure logic: no I/O, no clock; time is the
caller's ``frame_index``.

Frame indices may skip (the pipeline analyses every Nth frame): the filter predicts by the gap,
velocities are in pixels per source frame, and ``max_age`` counts source frames, so a track
survives the same wall time whatever the sampling.

Association per update (ByteTrack, plus two additions for low analysed frame rates):
1. detections with score >= ``high_threshold`` vs every live track, IoU of boxes enlarged by
   ``iou_buffer`` (C-BIoU: tolerates motion the filter has not learnt yet);
2. detections with ``low_threshold`` <= score < ``high_threshold`` vs still-unmatched confirmed
   tracks, plain IoU (low-score boxes only keep existing tracks alive, never start new ones);
3. still-unmatched high detections vs still-unmatched tracks by centre distance, gated at
   ``distance_gate`` box diagonals with similar size: a young track has no velocity yet, and a
   plate moving several widths between analysed frames has zero IoU with its prediction.
Assignments are optimal (Hungarian, implemented below: no scipy/lap in the edge runtime).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from edge.detect.vision import box_iou


class TrackStatus(str, Enum):
    TENTATIVE = "tentative"  # fewer than min_hits matches; dropped on its first miss
    CONFIRMED = "confirmed"  # matched in this update
    LOST = "lost"  # confirmed, unmatched now; keeps predicting until max_age
    REMOVED = "removed"  # ended; reported once in Tracker.last_removed


@dataclass(frozen=True)
class TrackerConfig:
    high_threshold: float = 0.5
    low_threshold: float = 0.1
    new_track_threshold: float = 0.6
    match_iou: float = 0.2  # stage 1: min (buffered) IoU
    match_iou_low: float = 0.5  # stage 2: min IoU for low-score detections
    iou_buffer: float = 0.2  # stage 1: boxes grown by this fraction of w/h on each side
    distance_gate: float | None = 2.0  # stage 3: max centre distance / predicted diagonal
    min_hits: int = 2  # matches before a track is confirmed
    max_age: int = 30  # source frames a lost track survives without a match

    def __post_init__(self) -> None:
        if not 0 <= self.low_threshold <= self.high_threshold <= 1:
            raise ValueError("tracker config: need 0 <= low_threshold <= high_threshold <= 1")
        if self.new_track_threshold < self.high_threshold:
            raise ValueError("tracker config: new_track_threshold must be >= high_threshold")
        if self.min_hits < 1:
            raise ValueError("tracker config: min_hits must be >= 1")
        if self.max_age < 0:
            raise ValueError("tracker config: max_age must be >= 0")
        if self.iou_buffer < 0 or (self.distance_gate is not None and self.distance_gate <= 0):
            raise ValueError("tracker config: iou_buffer must be >= 0 and distance_gate > 0")


@dataclass(frozen=True)
class TrackState:
    """Snapshot of one track after an update (immutable: safe to keep in events)."""

    track_id: int
    box: tuple[float, float, float, float]  # filtered xyxy (predicted when unmatched)
    score: float  # score of the last matched detection
    hits: int  # number of matched detections
    age: int  # source frames since the first detection
    time_since_update: int  # source frames since the last match (0 when matched now)
    state: TrackStatus
    det_index: int  # index of the input detection matched now, -1 if none
    first_frame: int
    last_frame: int  # frame of the last match
    velocity: tuple[float, float]  # centre velocity, pixels per source frame
    cls: int = 0

    @property
    def is_confirmed(self) -> bool:
        return self.state in (TrackStatus.CONFIRMED, TrackStatus.LOST)


# --------------------------------------------------------------------------- Kalman filter


def xyxy_to_xyah(b: np.ndarray) -> np.ndarray:
    w, h = b[2] - b[0], b[3] - b[1]
    return np.array([b[0] + w / 2, b[1] + h / 2, w / max(h, 1e-6), h], dtype=np.float64)


def xyah_to_xyxy(m: np.ndarray) -> np.ndarray:
    h = max(float(m[3]), 1e-6)
    w = float(m[2]) * h
    return np.array([m[0] - w / 2, m[1] - h / 2, m[0] + w / 2, m[1] + h / 2], dtype=np.float64)


class KalmanXYAH:
    """Constant-velocity filter on (cx, cy, aspect, height) with noise proportional to height
    (the ByteTrack/DeepSORT parametrisation), generalised to a frame gap ``dt``."""

    std_pos = 1.0 / 20
    std_vel = 1.0 / 160

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.r_[z, np.zeros(4)]
        h = z[3]
        std = [
            2 * self.std_pos * h, 2 * self.std_pos * h, 1e-2, 2 * self.std_pos * h,
            10 * self.std_vel * h, 10 * self.std_vel * h, 1e-5, 10 * self.std_vel * h,
        ]  # fmt: skip
        return mean, np.diag(np.square(std))

    def predict(
        self, means: np.ndarray, covs: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched: means (N, 8), covs (N, 8, 8), all advanced by ``dt`` frames."""
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * dt
        h = means[:, 3:4]
        std = np.array(
            [self.std_pos] * 2 + [0.0, self.std_pos] + [self.std_vel] * 2 + [0.0, self.std_vel]
        )
        fixed = np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])
        q = np.square(std * h + fixed)
        covs = f @ covs @ f.T
        # process noise grows with the gap: a random walk over dt frames
        idx = np.arange(8)
        covs[:, idx, idx] += q * dt
        return means @ f.T, covs

    def update(
        self, means: np.ndarray, covs: np.ndarray, zs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batched: fold measurements zs (N, 4) into means (N, 8), covs (N, 8, 8)."""
        h = means[:, 3:4]
        r = np.square(
            np.array([self.std_pos, self.std_pos, 0.0, self.std_pos]) * h + [0, 0, 0.1, 0]
        )
        proj = covs[:, :4, :4].copy()
        idx = np.arange(4)
        proj[:, idx, idx] += r
        gain = np.linalg.solve(proj, covs[:, :4, :]).transpose(0, 2, 1)  # (N,8,4)
        means = means + (gain @ (zs - means[:, :4])[:, :, None])[:, :, 0]
        covs = covs - gain @ proj @ gain.transpose(0, 2, 1)
        return means, covs


# --------------------------------------------------------------------------- assignment


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one assignment of rows to columns (Hungarian, O(n^2 m)).

    Rectangular matrices are fine: min(n, m) pairs are returned. Costs must be finite; callers
    gate pairs afterwards.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"linear_assignment: expected a 2-D cost matrix, got {cost.shape}")
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost
    n, m = a.shape
    # potentials-based shortest augmenting path (e-maxx), 1-based with a virtual column 0
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row assigned to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = a[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j]]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def _match(sim: np.ndarray, min_sim: float) -> list[tuple[int, int]]:
    """Most pairs with ``sim >= min_sim``, then the highest total similarity among them.

    Solved per connected component of the valid pairs: most components are a single track and
    a single detection, which needs no Hungarian at all.
    """
    valid = sim >= min_sim
    if not valid.any():
        return []
    n, m = sim.shape
    parent = list(range(n + m))  # union-find over rows 0..n-1 and columns n..n+m-1

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rows, cols = np.nonzero(valid)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        parent[find(r)] = find(n + c)
    comps: dict[int, tuple[list[int], list[int]]] = {}
    for r in sorted(set(rows.tolist())):
        comps.setdefault(find(r), ([], []))[0].append(r)
    for c in sorted(set(cols.tolist())):
        comps.setdefault(find(n + c), ([], []))[1].append(c)
    pairs: list[tuple[int, int]] = []
    for rs, cs in comps.values():
        if len(rs) == 1 and len(cs) == 1:
            pairs.append((rs[0], cs[0]))
            continue
        if len(rs) == 1 or len(cs) == 1:
            sub = sim[np.ix_(rs, cs)]
            k = int(np.argmax(sub))
            pairs.append((rs[k // len(cs)], cs[k % len(cs)]))
            continue
        sub = np.where(valid[np.ix_(rs, cs)], sim[np.ix_(rs, cs)], -1e6)  # invalid: last resort
        pairs += [(rs[i], cs[j]) for i, j in linear_assignment(-sub) if valid[rs[i], cs[j]]]
    return sorted(pairs)


def _buffered(boxes: np.ndarray, b: float) -> np.ndarray:
    if b == 0:
        return boxes
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes + np.hstack([-w, -h, w, h]) * b


# --------------------------------------------------------------------------- tracker


class _Track:
    def __init__(
        self, tid: int, box: np.ndarray, score: float, frame: int, det: int, cls: int,
        kf: KalmanXYAH,
    ) -> None:  # fmt: skip
        self.id = tid
        self.cls = cls
        self.mean, self.cov = kf.initiate(xyxy_to_xyah(box))
        self.score = score
        self.hits = 1
        self.first_frame = self.last_frame = self.frame = frame
        self.det_index = det
        self.status = TrackStatus.TENTATIVE

    def box(self) -> np.ndarray:
        return xyah_to_xyxy(self.mean[:4])

    def snapshot(self) -> TrackState:
        b = self.box()
        return TrackState(
            track_id=self.id,
            box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            score=float(self.score),
            hits=self.hits,
            age=self.frame - self.first_frame,
            time_since_update=self.frame - self.last_frame,
            state=self.status,
            det_index=self.det_index,
            first_frame=self.first_frame,
            last_frame=self.last_frame,
            velocity=(float(self.mean[4]), float(self.mean[5])),
            cls=self.cls,
        )


class Tracker:
    """Tracks one class of objects. ``update`` once per analysed frame, frames increasing.

    ``update`` returns the live tracks (tentative, confirmed, lost); tracks that ended in that
    update are in ``last_removed`` (each reported exactly once). ``finish()`` ends every track
    (end of stream) and returns them.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        cls: int = 0,
        id_source: Iterator[int] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.cls = cls
        self._ids = id_source if id_source is not None else itertools.count(1)
        self._kf = KalmanXYAH()
        self._tracks: list[_Track] = []
        self._frame: int | None = None
        self.last_removed: list[TrackState] = []

    @property
    def tracks(self) -> list[TrackState]:
        return [t.snapshot() for t in self._tracks]

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, frame_index: int,
        det_indices: np.ndarray | None = None,
    ) -> list[TrackState]:  # fmt: skip
        """Advance to ``frame_index`` with this frame's detections (xyxy pixels, scores).

        ``det_indices`` (optional) are the indices reported back in ``det_index``; by default the
        row numbers of ``boxes``.
        """
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"tracker: {len(boxes)} boxes but {len(scores)} scores")
        ids = np.arange(len(boxes)) if det_indices is None else np.asarray(det_indices).reshape(-1)
        if len(ids) != len(boxes):
            raise ValueError(f"tracker: {len(ids)} det_indices for {len(boxes)} boxes")
        if self._frame is not None and frame_index <= self._frame:
            raise ValueError(
                f"tracker: frame_index must increase (got {frame_index} after {self._frame})"
            )
        dt = 1 if self._frame is None else frame_index - self._frame
        self._frame = frame_index
        self.last_removed = []

        if self._tracks:
            means, covs = self._kf.predict(
                np.stack([t.mean for t in self._tracks]),
                np.stack([t.cov for t in self._tracks]),
                dt,
            )
            for t, mean, cov in zip(self._tracks, means, covs, strict=True):
                t.mean, t.cov = mean, cov
                t.frame = frame_index
                t.det_index = -1
        ok = (
            np.isfinite(boxes).all(axis=1)
            & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
        )
        high = np.flatnonzero(ok & (scores >= cfg.high_threshold))
        low = np.flatnonzero(ok & (scores >= cfg.low_threshold) & (scores < cfg.high_threshold))

        tracks = list(self._tracks)
        pred = np.array([t.box() for t in tracks]).reshape(-1, 4)
        matched: dict[int, int] = {}  # track position -> detection row

        # stage 1: high-score detections vs all tracks, buffered IoU
        sim = box_iou(_buffered(pred, cfg.iou_buffer), _buffered(boxes[high], cfg.iou_buffer))
        for r, c in _match(sim, cfg.match_iou):
            matched[r] = int(high[c])
        # stage 2: low-score detections vs unmatched confirmed tracks, plain IoU
        rest = [i for i, t in enumerate(tracks) if i not in matched and t.hits >= cfg.min_hits]
        if rest and len(low):
            sim = box_iou(pred[rest], boxes[low])
            for r, c in _match(sim, cfg.match_iou_low):
                matched[rest[r]] = int(low[c])
        # stage 3: centre distance for motion the filter has not learnt (young/fast tracks)
        used = set(matched.values())
        left_high = [int(d) for d in high if int(d) not in used]
        rest = [i for i in range(len(tracks)) if i not in matched]
        if cfg.distance_gate is not None and rest and left_high:
            sim = _centre_similarity(pred[rest], boxes[left_high], cfg.distance_gate)
            for r, c in _match(sim, 1e-9):
                matched[rest[r]] = left_high[c]

        if matched:
            pos = list(matched)
            means, covs = self._kf.update(
                np.stack([tracks[i].mean for i in pos]),
                np.stack([tracks[i].cov for i in pos]),
                np.stack([xyxy_to_xyah(boxes[matched[i]]) for i in pos]),
            )
            for i, mean, cov in zip(pos, means, covs, strict=True):
                tracks[i].mean, tracks[i].cov = mean, cov
        for i, d in matched.items():
            t = tracks[i]
            t.score = float(scores[d])
            t.hits += 1
            t.last_frame = frame_index
            t.det_index = int(ids[d])
            if t.hits >= cfg.min_hits:
                t.status = TrackStatus.CONFIRMED

        survivors: list[_Track] = []
        for i, t in enumerate(tracks):
            if i not in matched:
                if t.status == TrackStatus.TENTATIVE or frame_index - t.last_frame > cfg.max_age:
                    t.status = TrackStatus.REMOVED
                    self.last_removed.append(t.snapshot())
                    continue
                t.status = TrackStatus.LOST
            survivors.append(t)

        used = set(matched.values())
        for d in high:
            if int(d) not in used and scores[d] >= cfg.new_track_threshold:
                t = _Track(
                    next(self._ids), boxes[d], float(scores[d]), frame_index, int(ids[d]),
                    self.cls, self._kf,
                )  # fmt: skip
                if cfg.min_hits <= 1:
                    t.status = TrackStatus.CONFIRMED
                survivors.append(t)
        self._tracks = survivors
        return [t.snapshot() for t in survivors]

    def finish(self) -> list[TrackState]:
        """End every live track (end of stream); returns them with state REMOVED."""
        out = []
        for t in self._tracks:
            t.status = TrackStatus.REMOVED
            t.det_index = -1
            out.append(t.snapshot())
        self._tracks = []
        self.last_removed = out
        return out


def _centre_similarity(pred: np.ndarray, dets: np.ndarray, gate: float) -> np.ndarray:
    """1 - distance / (gate * predicted diagonal), 0 outside the gate or when sizes differ >2x."""
    pc = (pred[:, :2] + pred[:, 2:]) / 2
    dc = (dets[:, :2] + dets[:, 2:]) / 2
    pwh = pred[:, 2:] - pred[:, :2]
    dwh = dets[:, 2:] - dets[:, :2]
    diag = np.hypot(pwh[:, 0], pwh[:, 1])[:, None]
    dist = np.hypot(*(pc[:, None, :] - dc[None, :, :]).transpose(2, 0, 1))
    ratio = np.sqrt(pwh[:, None, 0] * pwh[:, None, 1] / (dwh[None, :, 0] * dwh[None, :, 1]))
    sim = 1 - dist / (gate * np.maximum(diag, 1e-6))
    sim[(ratio > 2) | (ratio < 0.5)] = 0
    return sim.clip(0)


class MultiClassTracker:
    """One ``Tracker`` per class (vehicles and plates never match each other); track ids are
    unique across classes."""

    def __init__(self, configs: dict[int, TrackerConfig] | Sequence[int]) -> None:
        ids = itertools.count(1)
        if not isinstance(configs, dict):
            configs = {int(c): TrackerConfig() for c in configs}
        self.trackers = {c: Tracker(cfg, cls=c, id_source=ids) for c, cfg in configs.items()}
        self.last_removed: list[TrackState] = []

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, frame_index: int
    ) -> list[TrackState]:
        """Detections of every class at once; classes without a tracker are ignored.
        ``det_index`` refers to rows of these arrays."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores).reshape(-1)
        classes = np.asarray(classes).reshape(-1)
        if not len(boxes) == len(scores) == len(classes):
            raise ValueError(
                f"tracker: {len(boxes)} boxes, {len(scores)} scores, {len(classes)} classes"
            )
        out: list[TrackState] = []
        self.last_removed = []
        for c, tr in self.trackers.items():
            idx = np.flatnonzero(classes == c)
            out += tr.update(boxes[idx], scores[idx], frame_index, det_indices=idx)
            self.last_removed += tr.last_removed
        return out

    def finish(self) -> list[TrackState]:
        self.last_removed = [s for tr in self.trackers.values() for s in tr.finish()]
        return self.last_removed


# --------------------------------------------------------------------------- plates -> vehicles


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
