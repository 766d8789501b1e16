"""Static text is no vehicle: a plate mostly tied to no vehicle that has not moved is a sign,
painted text or a poster (an EXIT sign read as "EXI7"), not a passing car."""

from __future__ import annotations

import math

from edge.analysis.vote_keys import KeyState
from edge.events.config import EventsConfig
from edge.types import DecisionType, PlateDecision


def is_static_text(
    state: KeyState,
    decision: PlateDecision,
    config: EventsConfig,
    diagonal: float | None,
    stream_end: bool = False,
) -> bool:
    """True when ``decision`` is about static text and must not become an event.

    A FINAL is dropped when the plate stood still for ``static_plate_s``; a PROVISIONAL of an
    unmoved, unlinked plate is held back (too early to tell a sign from a car the detector did
    not box; the final decides). Parked cars are unaffected: their plates are tied to a vehicle
    track nearly all the time, and a car passing in front of a sign links it only for a moment.
    At the end of a stream (``stream_end``: a file ended, the service stops) an unmoved, unlinked
    plate that never reached the window is not a vehicle either: a clip shorter than
    ``static_plate_s`` must not turn the sign into a final.
    """
    if config.static_plate_s is None or diagonal is None:
        return False
    if 2 * state.linked_reads >= max(1, state.reads):
        return False
    moved = math.hypot(*decision.displacement) if decision.displacement is not None else 0.0
    if moved > config.static_max_move * diagonal:
        return False
    if decision.type is DecisionType.PROVISIONAL or stream_end:
        return True
    return decision.last_seen - decision.first_seen >= config.static_plate_s
