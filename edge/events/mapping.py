"""Voter decisions -> wire events: the one place a `PlateDecision` becomes a `PlateEvent`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from edge.events.config import EventsConfig
from edge.events.schema import Candidate, PlateEvent, WatchlistHit, encode_crop
from edge.rules.watchlist import Match
from edge.types import PlateDecision


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _direction(value: str | None) -> Literal["entry", "exit", "unknown"] | None:
    if value is None or value in ("entry", "exit", "unknown"):
        return value  # type: ignore[return-value]
    raise ValueError(f"direction {value!r} is not entry, exit or unknown")


def watchlist_hit(match: Match) -> WatchlistHit:
    return WatchlistHit(
        name=match.watchlist,
        kind=match.kind,
        entry=match.entry,
        distance=match.distance,
        description=match.description,
    )


def to_plate_event(
    decision: PlateDecision,
    *,
    to_utc: float = 0.0,
    options: EventsConfig | None = None,
    regions: dict[str, str] | None = None,
    is_file: bool = False,
    match: Match | None = None,
) -> PlateEvent:
    """Map a voter decision (with the analyzer's track fields) to the wire event.

    ``to_utc`` is added to the decision's clock to get epoch seconds (the file origin; 0 for
    live sources, whose clock already is epoch seconds). ``regions`` maps format names to their
    region. ``match`` fills ``watchlist`` (the closest list entry, or None). Candidate ``score``
    is the candidate's share of the confidence weight of the listed (top-k) candidates. Boxes
    and the crop are the best read's (the voter keeps the highest-quality read).
    """
    opts = options or EventsConfig()
    cons = decision.consensus
    best = decision.best_read
    ctx = best.context
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
    if not isinstance(decision.track_id, int):
        raise TypeError(f"decision {decision.event_id}: track id {decision.track_id!r} is no int")
    vehicle_box = ctx.vehicle_box if ctx is not None else None
    return PlateEvent(
        event_id=decision.event_id,
        type=decision.type.value,
        camera=decision.camera,
        track_id=decision.track_id,
        track_uuid=decision.track_uuid,
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
        # boxes are whole pixels on the wire (PlateEvent rounds; this says so to the checker)
        vehicle_box=[round(v) for v in vehicle_box] if vehicle_box is not None else None,
        plate_box=[max(0, round(v)) for v in plate_box],
        direction=_direction(decision.direction),
        zones=list(decision.zones or ()),
        watchlist=watchlist_hit(match) if match is not None else None,
        crop_jpeg_b64=crop_b64,
    )
