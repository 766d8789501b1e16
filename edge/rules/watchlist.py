"""Watchlists: named allow/deny lists of plates and regexes, fuzzy matching, and the alert gate.

Owns plate normalisation (``normalize_plate``, ``fold_confusables``) and the bounded edit distance
(``levenshtein``) that history search reuses, so a plate matches a list and a search the same way.

Config (YAML, under ``watchlists:``)::

    - name: residents
      kind: allow               # allow (open a gate) | deny (alert)
      max_distance: 1           # Levenshtein tolerance for literal entries (not regexes)
      fold: true                # compare with O->0 and I->1 folded (common OCR confusions)
      refire: interval          # interval | per_event (see AlertGate)
      refire_after_s: 60
      entries:
        - AB123CD                       # literal
        - "re:^GOV[0-9]{3}$"            # regex (re: prefix) ...
        - {plate: "TAXI.*", regex: true, description: "any taxi"}   # ... or regex: true

Matching: the plate and literal entries are normalised (upper case, only A-Z/0-9); regexes are
``fullmatch``-ed against the normalised plate (distance 0). The closest entry over all lists
wins; ties go to deny before allow (never open a gate when a list also says alert), then literal
before regex, then configuration order.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.settings import Settings
from edge.vote.text import fold_confusables, levenshtein, normalize_plate

Kind = Literal["allow", "deny"]
RefireMode = Literal["interval", "per_event"]

# --------------------------------------------------------------------------------- config


class WatchlistEntryConfig(Settings):
    """One list entry in its long form; a bare string is also accepted (see WatchlistConfig)."""

    plate: str = Field(min_length=1, description="Literal plate, or a regex ('re:' or regex)")
    regex: bool = Field(False, description="treat 'plate' as a regular expression")
    description: str | None = Field(None, description="free text shown with the alert")

    @model_validator(mode="after")
    def _compile(self) -> WatchlistEntryConfig:
        if self.is_regex:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"entry {self.plate!r}: invalid regex: {exc}") from exc
        elif not normalize_plate(self.plate):
            raise ValueError(f"entry {self.plate!r} has no letters or digits")
        return self

    @property
    def is_regex(self) -> bool:
        return self.regex or self.plate.startswith("re:")

    @property
    def pattern(self) -> str:
        return self.plate[3:] if self.plate.startswith("re:") else self.plate

    @property
    def label(self) -> str:
        """How the entry is reported: literal as written, regex with the ``re:`` prefix."""
        return f"re:{self.pattern}" if self.is_regex else self.plate


class WatchlistConfig(Settings):
    name: str = Field(min_length=1, max_length=64, description="list name (reported on match)")
    kind: Kind = Field("deny", description="allow (e.g. open a gate) or deny (alert)")
    max_distance: int = Field(1, ge=0, le=4, description="Levenshtein tolerance, literals only")
    fold: bool = Field(True, description="compare with O->0 and I->1 folded")
    refire: RefireMode = Field("interval", description="when the same plate alerts again")
    refire_after_s: float = Field(60.0, ge=0.0, description="suppress repeats within this time")
    entries: list[WatchlistEntryConfig] = Field(
        default_factory=list, description="plates (literal, or a regex with re:) on this list"
    )

    @field_validator("entries", mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"plate": v} if isinstance(v, str) else v for v in value]
        return value


def parse_watchlists(data: Iterable[dict[str, object] | WatchlistConfig]) -> list[WatchlistConfig]:
    """Validate raw dicts (e.g. from YAML) into configs; duplicate list names are an error."""
    out = [d if isinstance(d, WatchlistConfig) else WatchlistConfig.model_validate(d) for d in data]
    seen: set[str] = set()
    for wl in out:
        if wl.name in seen:
            raise ValueError(f"watchlists: duplicate list name {wl.name!r}")
        seen.add(wl.name)
    return out


# --------------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    """The closest entry a plate matched. ``entry`` is the label (regexes carry ``re:``)."""

    watchlist: str
    kind: Kind
    entry: str
    distance: int
    description: str | None = None
    is_regex: bool = False

    def to_hit(self) -> dict[str, object]:
        """Field values for ``edge.events.schema.WatchlistHit`` (``PlateEvent.watchlist``)."""
        return {
            "name": self.watchlist,
            "kind": self.kind,
            "entry": self.entry,
            "distance": self.distance,
            "description": self.description,
        }


@dataclass(frozen=True)
class _Compiled:
    list_index: int
    entry_index: int
    config: WatchlistConfig
    entry: WatchlistEntryConfig
    literal: str | None  # normalised (and folded if the list folds)
    regex: re.Pattern[str] | None


class Watchlists:
    """All configured lists, compiled once. ``match`` is pure and thread-safe."""

    def __init__(self, lists: Sequence[WatchlistConfig | dict[str, object]] = ()) -> None:
        self.lists = parse_watchlists(lists)
        self._by_name = {wl.name: wl for wl in self.lists}
        self._compiled: list[_Compiled] = []
        for li, wl in enumerate(self.lists):
            for ei, e in enumerate(wl.entries):
                if e.is_regex:
                    self._compiled.append(_Compiled(li, ei, wl, e, None, re.compile(e.pattern)))
                else:
                    lit = normalize_plate(e.plate)
                    if wl.fold:
                        lit = fold_confusables(lit)
                    self._compiled.append(_Compiled(li, ei, wl, e, lit, None))

    def __len__(self) -> int:
        return len(self.lists)

    def get(self, name: str) -> WatchlistConfig:
        return self._by_name[name]

    def match_all(self, plate: str) -> list[Match]:
        """Every matching entry, best first (distance, deny before allow, literal, order)."""
        norm = normalize_plate(plate)
        if not norm:
            return []
        folded = fold_confusables(norm)
        scored: list[tuple[tuple[int, int, int, int, int], Match]] = []
        for c in self._compiled:
            wl = c.config
            if c.regex is not None:
                if c.regex.fullmatch(norm) is None:
                    continue
                dist = 0
            else:
                assert c.literal is not None
                probe = folded if wl.fold else norm
                dist = levenshtein(probe, c.literal, wl.max_distance)
                if dist > wl.max_distance:
                    continue
            key = (
                dist,
                0 if wl.kind == "deny" else 1,
                1 if c.regex is not None else 0,
                c.list_index,
                c.entry_index,
            )
            scored.append(
                (
                    key,
                    Match(
                        watchlist=wl.name,
                        kind=wl.kind,
                        entry=c.entry.label,
                        distance=dist,
                        description=c.entry.description,
                        is_regex=c.regex is not None,
                    ),
                )
            )
        scored.sort(key=lambda kv: kv[0])
        return [m for _, m in scored]

    def match(self, plate: str) -> Match | None:
        """The closest matching entry over all lists, or None."""
        found = self.match_all(plate)
        return found[0] if found else None


# --------------------------------------------------------------------------------- alert gate


class AlertGate:
    """Decides whether a watchlist match publishes an alert now (re-fire policy per list).

    The key of "the same alert" is (camera, list, entry) for literal entries (so a provisional
    ``AB123C`` and a final ``AB123CD`` that both fuzzily match ``AB123CD`` count once) and
    (camera, list, entry, plate) for regexes (one regex covers many vehicles).

    - ``refire: interval``: fires when the key last fired ``refire_after_s`` or more ago
      (0 = every event fires).
    - ``refire: per_event``: additionally fires at once for a new vehicle (``vehicle_key``: the
      track UUID, else the event id), even within the interval: a gate re-opens for the same car
      coming back (Frigate #18738), while the provisional and final event of one vehicle (same
      track UUID) fire once.

    A redelivered message (same ``event_id``) never fires twice. Memory is bounded (LRU).
    Thread-safe; ``now`` is any monotonic clock in seconds (tests pass it explicitly).
    """

    def __init__(self, watchlists: Watchlists, max_keys: int = 10_000) -> None:
        self.watchlists = watchlists
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # key -> (last fire time, vehicle keys that fired since)
        self._last: OrderedDict[tuple[str, ...], tuple[float, set[str]]] = OrderedDict()
        self._event_ids: OrderedDict[str, None] = OrderedDict()

    @staticmethod
    def alert_key(camera: str, match: Match, plate: str) -> tuple[str, ...]:
        if match.is_regex:
            return (camera, match.watchlist, match.entry, normalize_plate(plate))
        return (camera, match.watchlist, match.entry)

    def should_fire(
        self,
        camera: str,
        plate: str,
        match: Match,
        now: float,
        event_id: str | None = None,
        vehicle_key: str | None = None,
    ) -> bool:
        """True if this match should publish an alert now; records the firing if so."""
        cfg = self.watchlists.get(match.watchlist)
        key = self.alert_key(camera, match, plate)
        vehicle = vehicle_key or event_id
        with self._lock:
            if event_id is not None and event_id in self._event_ids:
                return False
            last = self._last.get(key)
            if last is None:
                fire = True
            else:
                last_t, vehicles = last
                fire = now - last_t >= cfg.refire_after_s
                if not fire and cfg.refire == "per_event" and vehicle is not None:
                    fire = vehicle not in vehicles
            if not fire:
                return False
            if (
                last is not None
                and cfg.refire == "per_event"
                and now - last[0] < cfg.refire_after_s
            ):
                vehicles = set(last[1])
            else:
                vehicles = set()
            if vehicle is not None:
                vehicles.add(vehicle)
            self._last[key] = (now, vehicles)
            self._last.move_to_end(key)
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            if event_id is not None:
                self._event_ids[event_id] = None
                while len(self._event_ids) > self.max_keys:
                    self._event_ids.popitem(last=False)
            return True
