"""Multi-object tracking for the edge runtime: a compact ByteTrack-class tracker in numpy.

Owns the track life cycle (tentative -> confirmed -> lost -> removed) and per-class tracking:
``MultiClassTracker.update(Detections, frame_index) -> Tracks``. The filter is in
edge.track.kalman, the association maths in edge.track.assignment, plates-to-vehicles in
edge.track.linking. Pure logic: no I/O, no clock; time is the caller's ``frame_index``.

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
   plate moving several widths between analysed frames has zero IoU with its prediction. Only
   tracks matched in the previous analysed frame take part: a *lost* track is revived by
   overlap with its prediction only (stages 1-2), never by mere nearness, which is how the
   next car at a barrier used to inherit the last one's track.
4. still-unmatched high detections whose plate read is an identity cue vs still-unmatched
   tracks that hold that very cue, matched in the previous analysed frame, gated at
   ``identity_gate`` diagonals: a fast plate at every 5th frame jumps beyond ``distance_gate``
   every time and its tracks would never confirm; the same sure text is the same plate.

Still gate (stages 1-3): a confirmed track moving less than ``still_speed`` box heights per
source frame takes only detections whose centre is within ``still_gate`` (squared Mahalanobis
distance, the filter's own uncertainty) of its prediction. A plate-like sign tracked since the
first frame, or a parked car's plate, otherwise takes over a passing car's plate by overlap.

Identity (edge.track.identity): detections may come with their plate read (vehicles: the read
of the plate inside them). A read whose weakest character has ``identity_min_confidence`` is
an identity cue; a track remembers its last ``identity_memory`` cues, and a detection whose cue
is the same plate as none of them is never associated with that track, in any stage.

Track end: an unmatched track ends after ``max_age`` source frames, or after
``empty_max_age`` while its class has no detection at all in the frame (the road is empty: a
car that left is not coming back, and the next one must start a track of its own).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from edge.detect.vision import box_iou
from edge.track.assignment import buffered, centre_similarity, match_pairs
from edge.track.config import PLATE_TRACKER, VEHICLE_TRACKER, TrackerConfig
from edge.track.identity import compatible, identity_text
from edge.track.kalman import KalmanXYAH, xyah_to_xyxy, xyxy_to_xyah
from edge.types import PLATE, VEHICLE, Detections, Tracks, TrackState, TrackStatus


class _Track:
    def __init__(
        self, tid: int, box: np.ndarray, score: float, frame: int, det: int, cls: str,
        kf: KalmanXYAH, cue: str | None = None, memory: int = 5,
    ) -> None:  # fmt: skip
        self.id = tid
        self.cls = cls
        self.mean, self.cov = kf.initiate(xyxy_to_xyah(box))
        self.score = score
        self.hits = 1
        self.first_frame = self.last_frame = self.frame = frame
        self.det_index = det
        self.status = TrackStatus.TENTATIVE
        self.misses = 0  # consecutive analysed frames without a match
        # recent identity cues (edge.track.identity)
        self.texts: deque[str] = deque([cue] if cue else [], maxlen=memory)

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
            texts=tuple(self.texts),
        )


class Tracker:
    """Tracks one class of objects. ``update`` once per analysed frame, frames increasing.

    ``update`` returns `Tracks`: the live tracks (tentative, confirmed, lost) and the ones that
    ended in that update (each reported exactly once). ``finish()`` ends every track (end of
    stream) and returns them.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        cls: str = "",
        id_source: Iterator[int] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.cls = cls
        self._ids = id_source if id_source is not None else itertools.count(1)
        self._kf = KalmanXYAH()
        self._tracks: list[_Track] = []
        self._frame: int | None = None

    @property
    def tracks(self) -> list[TrackState]:
        return [t.snapshot() for t in self._tracks]

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, frame_index: int,
        det_indices: np.ndarray | None = None,
        reads: Sequence[tuple[str, float] | None] | None = None,
    ) -> Tracks:  # fmt: skip
        """Advance to ``frame_index`` with this frame's detections (xyxy pixels, scores).

        ``det_indices`` (optional) are the indices reported back in ``det_index``; by default the
        row numbers of ``boxes``. ``reads`` (optional): per detection its plate read (text,
        weakest character's confidence) or None, the identity cues.
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
        if reads is not None and len(reads) != len(boxes):
            raise ValueError(f"tracker: {len(reads)} reads for {len(boxes)} boxes")
        cues = [
            identity_text(r[0], r[1], cfg.identity_min_confidence) if r is not None else None
            for r in (reads if reads is not None else [None] * len(boxes))
        ]
        dt = 1 if self._frame is None else frame_index - self._frame
        self._frame = frame_index
        ended: list[TrackState] = []

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
        # identity gate: 1 where a track and a detection may be the same object
        allowed = np.ones((len(tracks), len(boxes)))
        for d, cue in enumerate(cues):
            if cue is not None:
                for i, t in enumerate(tracks):
                    allowed[i, d] = compatible(t.texts, cue)
        # still gate: a still confirmed track (a parked car's plate, a plate-like sign) has a
        # prediction it can trust; a detection well outside it (a passing car's plate) is
        # another object. Moving tracks are not gated: the filter learns a fast plate's
        # velocity over many frames, and gating on it would drop the plate meanwhile.
        still = [
            i for i, t in enumerate(tracks)
            if t.hits >= cfg.min_hits
            and np.hypot(t.mean[4], t.mean[5]) <= cfg.still_speed * max(t.mean[3], 1e-6)
        ]  # fmt: skip
        if cfg.still_gate is not None and still and len(boxes):
            d2 = self._kf.position_distance(
                np.stack([tracks[i].mean for i in still]),
                np.stack([tracks[i].cov for i in still]),
                (boxes[:, :2] + boxes[:, 2:]) / 2,
            )
            allowed[still] *= d2 <= cfg.still_gate

        # stage 1: high-score detections vs all tracks, buffered IoU
        sim = box_iou(buffered(pred, cfg.iou_buffer), buffered(boxes[high], cfg.iou_buffer))
        for r, c in match_pairs(sim * allowed[:, high], cfg.match_iou):
            matched[r] = int(high[c])
        # stage 2: low-score detections vs unmatched confirmed tracks, plain IoU
        rest = [i for i, t in enumerate(tracks) if i not in matched and t.hits >= cfg.min_hits]
        if rest and len(low):
            sim = box_iou(pred[rest], boxes[low]) * allowed[np.ix_(np.asarray(rest, np.intp), low)]
            for r, c in match_pairs(sim, cfg.match_iou_low):
                matched[rest[r]] = int(low[c])
        # stage 3: centre distance for motion the filter has not learnt (young/fast tracks);
        # not for lost tracks (see the module docstring)
        used = set(matched.values())
        left_high = [int(d) for d in high if int(d) not in used]
        rest = [i for i, t in enumerate(tracks) if i not in matched and t.misses == 0]
        if cfg.distance_gate is not None and rest and left_high:
            sim = centre_similarity(pred[rest], boxes[left_high], cfg.distance_gate)
            for r, c in match_pairs(
                sim * allowed[np.ix_(np.asarray(rest, np.intp), np.asarray(left_high, np.intp))],
                1e-9,
            ):
                matched[rest[r]] = left_high[c]
        # stage 4: the same plate, read surely in both, beyond the distance gate (a fast plate
        # at a low analysed frame rate moves further than any gate that keeps next cars apart)
        used = set(matched.values())
        left = [int(d) for d in high if int(d) not in used and cues[int(d)] is not None]
        rest = [i for i, t in enumerate(tracks) if i not in matched and t.misses == 0 and t.texts]
        if cfg.identity_gate is not None and rest and left:
            sim = centre_similarity(pred[rest], boxes[left], cfg.identity_gate)
            for i, row in enumerate(rest):
                for j, d in enumerate(left):
                    if cues[d] not in tracks[row].texts:
                        sim[i, j] = 0.0
            for r, c in match_pairs(sim, 1e-9):
                matched[rest[r]] = left[c]

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
            t.misses = 0
            if cues[d] is not None:
                t.texts.append(cues[d])  # type: ignore[arg-type]
            if t.hits >= cfg.min_hits:
                t.status = TrackStatus.CONFIRMED

        empty = len(high) + len(low) == 0
        max_age = cfg.max_age
        if empty and cfg.empty_max_age is not None:
            max_age = min(max_age, cfg.empty_max_age)
        survivors: list[_Track] = []
        for i, t in enumerate(tracks):
            if i not in matched:
                t.misses += 1
                if t.status == TrackStatus.TENTATIVE or frame_index - t.last_frame > max_age:
                    t.status = TrackStatus.REMOVED
                    ended.append(t.snapshot())
                    continue
                t.status = TrackStatus.LOST
            survivors.append(t)

        used = set(matched.values())
        for d in high.tolist():
            if d not in used and scores[d] >= cfg.new_track_threshold:
                t = _Track(
                    next(self._ids), boxes[d], float(scores[d]), frame_index, int(ids[d]),
                    self.cls, self._kf, cues[d], cfg.identity_memory,
                )  # fmt: skip
                if cfg.min_hits <= 1:
                    t.status = TrackStatus.CONFIRMED
                survivors.append(t)
        self._tracks = survivors
        return Tracks(tuple(t.snapshot() for t in survivors), tuple(ended))

    def finish(self) -> list[TrackState]:
        """End every live track (end of stream); returns them with state REMOVED."""
        out = []
        for t in self._tracks:
            t.status = TrackStatus.REMOVED
            t.det_index = -1
            out.append(t.snapshot())
        self._tracks = []
        return out


class MultiClassTracker:
    """One ``Tracker`` per class name (vehicles and plates never match each other); track ids
    are unique across classes. Detections of classes without a tracker are ignored."""

    def __init__(self, configs: Mapping[str, TrackerConfig] | None = None) -> None:
        ids = itertools.count(1)
        if configs is None:
            configs = {VEHICLE: VEHICLE_TRACKER, PLATE: PLATE_TRACKER}
        self.trackers = {c: Tracker(cfg, cls=c, id_source=ids) for c, cfg in configs.items()}

    def update(
        self, detections: Detections, frame_index: int,
        reads: Mapping[int, tuple[str, float]] | None = None,
    ) -> Tracks:  # fmt: skip
        """Every class at once; ``TrackState.det_index`` is a row of ``detections``. ``reads``:
        detection row -> (plate text, weakest character's confidence), the identity cues."""
        live: list[TrackState] = []
        ended: list[TrackState] = []
        boxes = np.asarray(detections.boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(detections.scores, dtype=np.float64).reshape(-1)
        reads = reads or {}
        for name, tr in self.trackers.items():
            idx = detections.indices_of(name)
            cues = [reads.get(int(i)) for i in idx]
            out = tr.update(boxes[idx], scores[idx], frame_index, det_indices=idx, reads=cues)
            live += out.live
            ended += out.ended
        return Tracks(tuple(live), tuple(ended))

    def finish(self) -> list[TrackState]:
        """End every track of every class (end of stream)."""
        return [s for tr in self.trackers.values() for s in tr.finish()]
