"""Which vote a plate track's reads go to: its *vote key*.

The key is the vehicle track id when the plate is tied to a vehicle, else the plate track id.
It is fixed when the plate track is confirmed (its reads from the tentative phase are buffered
until then), so a plate track whose link appears later never splits its reads; the one way out
is `detach` into a vote of its own (edge.analysis.analyzer), taken by a plate track surely
read as another plate than its vote's, and by the younger of two plate tracks read for one
vote in the same frame (two plates seen at once are two vehicles, even inside one vehicle box).
Several plate tracks of one vehicle over time (a tracker ID switch) vote together. A key ends
when every plate track that fed it has ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from edge.types import VoteRead


@dataclass
class KeyState:
    members: set[int] = field(default_factory=set)  # live tracker track ids feeding the key
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str | None = None  # last published event type
    last_ts: float = float("-inf")  # timestamp of the latest read given to the voter
    reads: int = 0  # reads given to the voter under this key
    linked_reads: int = 0  # ... of which came while the plate was tied to a vehicle track


class VoteKeys:
    def __init__(self) -> None:
        self.states: dict[int, KeyState] = {}  # vote key -> state
        self._key_of: dict[int, int] = {}  # plate track id -> vote key
        self._member_of: dict[int, set[int]] = {}  # tracker track id -> vote keys it feeds
        self._pending: dict[int, list[VoteRead]] = {}  # tentative plate track -> reads

    def key_of(self, plate_tid: int) -> int | None:
        return self._key_of.get(plate_tid)

    def hold(self, plate_tid: int, read: VoteRead) -> None:
        """Buffer a read of a plate track that is not confirmed yet."""
        self._pending.setdefault(plate_tid, []).append(read)

    def take_pending(self, plate_tid: int) -> list[VoteRead]:
        return self._pending.pop(plate_tid, [])

    def key_for(self, plate_tid: int, vehicle_tid: int | None) -> int:
        """The plate track's key, fixed on first use (its vehicle's id when tied to one)."""
        key = self._key_of.get(plate_tid)
        if key is not None:
            return key
        key = vehicle_tid if vehicle_tid is not None else plate_tid
        self._key_of[plate_tid] = key
        state = self.states.setdefault(key, KeyState())
        # Members are the plate tracks only: the vote is about a plate, so it ends (and its
        # final comes) within the plate tracks' max_age of the plate's last sighting, even when
        # the vehicle track lives on (a box the plate only passed through, a car parked on).
        state.members.add(plate_tid)
        self._member_of.setdefault(plate_tid, set()).add(key)
        return key

    def detach(self, plate_tid: int) -> list[int]:
        """Move a plate track out of the vote it joined into a vote of its own (its reads are
        another plate's); returns the old key if the plate track was its last member."""
        ended = []
        old = self._key_of.pop(plate_tid, None)
        if old is not None and old != plate_tid:
            self._member_of.get(plate_tid, set()).discard(old)
            state = self.states.get(old)
            if state is not None:
                state.members.discard(plate_tid)
                if not state.members:
                    ended.append(old)
        self.key_for(plate_tid, None)
        return ended

    def track_ended(self, tid: int, is_plate: bool) -> list[int]:
        """Forget an ended tracker track; the keys it was the last member of (now ending)."""
        self._pending.pop(tid, None)
        if is_plate:
            self._key_of.pop(tid, None)
        ended = []
        for key in self._member_of.pop(tid, set()):
            state = self.states.get(key)
            if state is None:
                continue
            state.members.discard(tid)
            if not state.members:
                ended.append(key)
        return ended

    def release(self, key: int) -> None:
        """The key's remaining members no longer feed it (it is ending)."""
        state = self.states.get(key)
        if state is not None:
            for m in state.members:
                self._member_of.get(m, set()).discard(key)

    def drop(self, key: int) -> None:
        self.states.pop(key, None)
