"""Voting settings (YAML ``voting:``): the voter's thresholds and the plate formats it uses.

One model, used as is by `edge.vote.voter.PlateVoter`: the decision policy each threshold
belongs to is documented in edge.vote.voter.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from edge.settings import Settings
from edge.vote.formats import PlateFormats, PlatePattern


class ConsensusConfig(Settings):
    # same cluster as the centroid: similarity >= this (7 chars: <= 2 edits) or 1 edit apart.
    # Two different plates are ~5+ edits apart; 0.8 (1 edit) measurably hurt noisy tracks.
    cluster_similarity: float = Field(
        0.6, ge=0, le=1, description="reads this similar to the centroid take part in the vote"
    )
    top_k: int = Field(5, ge=1, description="candidates listed in events")
    min_char_confidence: float = Field(
        1e-3, ge=0, le=1, description="floor so a 0-confidence read still counts once"
    )
    # No region chosen: a voted text that fits no format becomes the track's own read that fits
    # one region's specific format and differs only by O/0-style characters, when read this
    # many times. 2 (not 1): one junk read must not decide the plate's country. Chosen on the
    # dev half of benchmarks/identity_clips.py.
    region_from_reads: int | None = Field(
        2, ge=1, description="no region: reads of a region's format that may correct the vote"
    )
    # ... and a read one character shorter at either end fitting such a format replaces a vote
    # fitting none when its weight is at least this share of the heaviest read's.
    edge_mark_share: float | None = Field(
        0.5, ge=0, le=1, description="no region: weight share of a read without the end mark"
    )


class PatternConfig(Settings):
    """A plate format (edge.vote.formats syntax); ``regex`` is e.g. ``[A-Z]{2}[0-9]{4}``."""

    name: str = Field(min_length=1, description="format name (in events)")
    regex: str = Field(description="letters [A-Z], digits [0-9], counts {n}; e.g. [A-Z]{2}[0-9]{4}")
    region: str = Field("", description="region code events report for this format")
    weak: bool = Field(False, description="a weak format labels reads but never repairs them")

    @model_validator(mode="after")
    def _parses(self) -> PatternConfig:
        # Validate with the real parser now, so an unsupported pattern is a config error with a
        # line number instead of a crash when the pipeline starts.
        try:
            PlatePattern.from_dict(self.as_dict())
        except (ValueError, re.error) as e:
            raise ValueError(str(e)) from e
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pattern": self.regex, "region": self.region, "weak": self.weak}


class VotingConfig(Settings):
    provisional_min_reads: int = Field(3, ge=1, description="reads before a provisional")
    provisional_min_confidence: float = Field(
        0.8, ge=0, le=1, description="the consensus's weakest character, for a provisional"
    )
    provisional_min_agreement: float = Field(
        0.6, ge=0, le=1, description="share of read weight that voted for it, for a provisional"
    )
    max_provisionals: int = Field(
        3, ge=1, description="per track: the first plus corrections when the text changes"
    )
    final_min_reads: int = Field(2, ge=1, description="reads that voted, for a final")
    final_min_confidence: float = Field(
        0.5, ge=0, le=1, description="the consensus's weakest character, for a final"
    )
    final_min_agreement: float = Field(
        0.5, ge=0, le=1, description="share of read weight that voted for it, for a final"
    )
    # A short track whose every read differs (a plate far away, before its car was tracked) can
    # compose a confident-looking string that no frame showed.
    final_min_repeats: int = Field(
        2, ge=1, description="a final with no provisional: its text read exactly this many times"
    )
    require_format: bool = Field(False, description="decisions need a strong format match")
    # Shorter consensus strings are fragments (a plate half out of view, a sticker, one
    # character of a blurred crop), never an event: Frigate's min_plate_length, default 4.
    min_plate_length: int = Field(4, ge=1, description="shorter consensus reads are no event")
    reappear_window_s: float = Field(10.0, ge=0, description="same plate again = same vehicle")
    dedupe_max_distance: int = Field(1, ge=0, description="edits that still mean the same plate")
    dedupe_min_similarity: float = Field(
        0.8, ge=0, le=1, description="and this similar (1 - edits / length)"
    )
    max_track_duration_s: float | None = Field(
        60.0, gt=0, description="parked car: its final after this long (null: only at the end)"
    )
    stable_final_s: float | None = Field(
        None, gt=0, description="or: final once the text is unchanged this long (null: off)"
    )
    split_reads: int | None = Field(
        3, ge=1, description="sure reads in a row of another plate that split a track (null: off)"
    )
    split_min_confidence: float = Field(
        0.7, ge=0, le=1, description="a read's weakest character, to count towards a split"
    )
    max_reads_per_track: int = Field(
        200, ge=1, description="older reads are dropped (the best crop is kept apart)"
    )
    consensus: ConsensusConfig = Field(
        default_factory=ConsensusConfig, description="how a track's reads are voted"
    )
    regions: list[str] | None = Field(
        None,
        description="shipped formats of these regions only; they also repair reads (unset: all"
        " formats label reads, none repairs them)",
    )
    patterns: list[PatternConfig] = Field(
        default_factory=list, description="custom formats; replace the shipped ones when given"
    )
    max_swaps: int = Field(2, ge=0, description="most O/0-style repairs per read")

    @field_validator("patterns", mode="before")
    @classmethod
    def _plain_strings(cls, v: Any) -> Any:
        # `- '[A-Z]{2}[0-9]{4}'` is shorthand for {name: <regex>, regex: <regex>}; `pattern:` is
        # accepted as another name for `regex:` (edge.vote.formats's own spelling).
        if isinstance(v, list):
            out = []
            for p in v:
                if isinstance(p, str):
                    p = {"name": p, "regex": p}
                elif isinstance(p, dict) and "pattern" in p and "regex" not in p:
                    p = {("regex" if k == "pattern" else k): val for k, val in p.items()}
                out.append(p)
            return out
        return v

    @field_validator("regions")
    @classmethod
    def _regions_known(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            PlateFormats.default(v)  # raises ValueError naming the unknown regions
        return v

    @model_validator(mode="after")
    def _unique_patterns(self) -> VotingConfig:
        names = [p.name for p in self.patterns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate pattern names {dupes}")
        return self

    def plate_formats(self) -> PlateFormats:
        """The custom patterns, else the shipped ones of ``regions``."""
        if self.patterns:
            return PlateFormats([p.as_dict() for p in self.patterns], max_swaps=self.max_swaps)
        if self.regions is None:
            # No country chosen: every shipped format names the reads it matches, but none may
            # repair them. Some foreign pattern is one swap from almost any plate (a Californian
            # 0FMU202 became the German OFMU202): on 13 rendered clips, repairing towards every
            # format got 43 of 52 plates right, no repair 47 (benchmarks/synthetic_clips.py).
            return PlateFormats.default(None, max_swaps=0, guess_region=True)
        return PlateFormats.default(self.regions, max_swaps=self.max_swaps)
