"""Reading a still image like a careful person: each plate looked at a few times, one answer.

A still has no later frames to outvote a misread, so ``Alpr.process_still`` cuts every plate in
a few crop variants (`CropVariant`), reads them all in the frame's one reader batch, and keeps
one read per plate (`choose_read`, pure):

* **Vote by confidence.** Variant reads are grouped by text; a text weighs the summed
  confidence (weakest character) of the variants that read it; the heaviest wins, then the most
  confident single read. The kept read's own per-character confidences stay as they are.
* **Format, when a region is chosen.** Each variant's read is first repaired with the region's
  formats (`apply_formats`: O/0, I/1... by position, confident characters protected); a text
  fitting one of its strong formats beats one that does not, then the vote decides.
* **No region chosen: repair only towards a format the reader itself saw.** Some foreign
  pattern is one swap from almost any plate (the Californian ``0FMU202`` is the German
  ``OFMU202``, the US ``2DA044`` the Dutch ``2DAO44``), so nothing is ever swapped on a guess.
  When the winning text fits no strong format but another variant read the plate in a
  region's format, and that region's repair of the winning text gives exactly that read
  (so they differ only by confusable characters), the plate is taken to be of that region and
  that read is kept (`edge.vote.formats.region_alternative`, the rule the video voter uses
  too). One read alone (no variant saw otherwise) stays as read, however unsure. Catch-all
  patterns are left out of that decision (`MAX_LAYOUTS`).

`ReadFilter` is the junk gate of ``platewatch image`` (an empty read, a badge's single letter).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge.types import BoxTuple, Detections, Plate, StageTimings, TextRead
from edge.vote.formats import PlateFormats, region_alternative

# The default variants, chosen on openalpr-dev (155 plates, the shipped models; re-measure for
# other models with `python benchmarks/bench_stills.py --search`): the usual 8 % crop alone
# reads 44 of 81 US plates exactly, the same box 5 % shorter (the characters fill more of the
# reader's height: a slight vertical stretch) 61. Of nine hand-made sets of 3-5 variants these
# four (every side 0-20 % out, never taller) read the most: exact 83.9 % with region formats,
# 83.2 % without (the usual crop alone: 72.9 / 67.7 %). Sets grown greedily on the whole dev set
# reach 85.8 %, but grown on one half they read fewer plates of the other half than these four
# (125.4 against 129.5 exact reads of 2 x ~78, over 16 random halves): that gain is noise.
# Each variant costs about 0.5 ms of reader time per plate on one CPU thread.


@dataclass(frozen=True)
class CropVariant:
    """One way to cut a plate: each side moves out by ``margin_x`` of the box width (left,
    right) and ``margin_y`` of its height (top, bottom); negative margins cut into the box."""

    name: str
    margin_x: float
    margin_y: float


DEFAULT_VARIANTS: tuple[CropVariant, ...] = (
    CropVariant("tight", 0.0, 0.0),
    CropVariant("short", 0.04, -0.05),
    CropVariant("wide", 0.12, 0.0),
    CropVariant("wider", 0.2, 0.0),
)


def variant_box(
    box: BoxTuple, width: int, height: int, variant: CropVariant
) -> tuple[int, int, int, int]:
    """The integer crop of ``box`` for ``variant``, clipped to the frame (never empty when the
    box is inside the frame and at least a pixel wide)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * variant.margin_x, (y2 - y1) * variant.margin_y
    cx1 = min(max(0, math.floor(x1 - mx)), width - 1)
    cy1 = min(max(0, math.floor(y1 - my)), height - 1)
    cx2 = max(min(width, math.ceil(x2 + mx)), cx1 + 1)
    cy2 = max(min(height, math.ceil(y2 + my)), cy1 + 1)
    return cx1, cy1, cx2, cy2


@dataclass(frozen=True)
class ReadChoice:
    """The read kept for one plate: which variant, its (maybe repaired) read, the format."""

    variant: int  # index into the variants read
    read: TextRead
    format: str | None  # matched pattern name (weak included), None if none
    region: str | None  # that pattern's region
    # a format changed the answer: it repaired the read, or (no region chosen) it picked
    # another variant's read over the vote
    repaired: bool


@dataclass(frozen=True)
class StillPlate:
    """One plate of a still: the `Plate` (read, crop and crop box of the chosen variant) and
    how its read was chosen."""

    plate: Plate
    format: str | None
    region: str | None
    variant: str
    repaired: bool

    @property
    def text(self) -> str:
        return self.plate.read.text

    @property
    def confidence(self) -> float:
        return self.plate.read.confidence

    @property
    def box(self) -> BoxTuple:
        return self.plate.box


@dataclass(frozen=True)
class StillResult:
    """What ``Alpr.process_still`` found in one still image."""

    detections: Detections
    plates: tuple[StillPlate, ...] = ()
    timings: StageTimings = StageTimings()


def _vote(reads: Sequence[TextRead], strong: Mapping[str, bool] | None = None) -> tuple[str, int]:
    """(winning text, index of its most confident read). A text ``strong`` marks beats one it
    does not; then the heaviest summed confidence, the most confident read, the earliest."""
    weight: dict[str, float] = {}
    best: dict[str, int] = {}
    for i, r in enumerate(reads):
        weight[r.text] = weight.get(r.text, 0.0) + r.confidence
        if r.text not in best or r.confidence > reads[best[r.text]].confidence:
            best[r.text] = i
    order = sorted(
        weight,
        key=lambda t: (
            not (strong or {}).get(t, False),
            -weight[t],
            -reads[best[t]].confidence,
            best[t],
        ),
    )
    return order[0], best[order[0]]


def choose_read(
    reads: Sequence[TextRead],
    formats: PlateFormats | None,
    shipped: PlateFormats,
    by_region: Mapping[str, PlateFormats],
) -> ReadChoice:
    """One read from the reads of one plate's variants (see the module doc).

    ``formats``: the chosen region's formats (they repair each read), or None (no region
    chosen: `region_alternative` decides). ``shipped``: every shipped format (labels the reads
    when no region is chosen); ``by_region``: the shipped formats of each region, unprotected
    (they only ever pick a text a variant read)."""
    if not reads:
        raise ValueError("choose_read: no reads")
    label = formats if formats is not None else shipped
    regions = {p.name: p.region or None for p in label.patterns}
    if formats is not None:
        fixed = [apply_formats(r, formats) for r in reads]
        strong = {r.text: formats.is_strong(formats.match(r.text)) for r in fixed}
        text, i = _vote(fixed, strong)
        name = formats.match(text) if text else None
        return ReadChoice(i, fixed[i], name, regions.get(name or ""), text != reads[i].text)
    text, i = _vote(reads)
    alt = region_alternative(text, (r.text for r in reads), shipped, by_region)
    if alt is not None:
        i = max(
            (j for j, r in enumerate(reads) if r.text == alt), key=lambda j: reads[j].confidence
        )
        text = alt
    name = shipped.match(text) if text else None
    return ReadChoice(i, reads[i], name, regions.get(name or ""), alt is not None)


def apply_formats(read: TextRead, formats: PlateFormats | None) -> TextRead:
    """Repair a single read with the configured region formats (O/0, I/1... by position).

    Like OpenALPR's country setting: a read that already matches a format, or that no format
    can be reached from with a few confusable swaps, is returned unchanged. Swaps are 1:1, so
    the per-character confidences still line up.
    """
    if formats is None or not read.text:
        return read
    fixed = formats.repair(read.text, read.char_confidences)
    if fixed is None or fixed[0] == read.text:
        return read
    return TextRead(fixed[0], read.confidence, read.char_confidences)


@dataclass(frozen=True)
class ReadFilter:
    """What ``platewatch image`` prints: reads at least ``min_confidence`` sure (weakest
    character), at least ``min_length`` characters (the runtime's ``voting.min_plate_length``),
    and (``fit_format``) fitting some shipped format, weak ones included (2-8 letters or digits,
    or a longer country format)."""

    min_confidence: float = 0.5
    min_length: int = 4
    fit_format: bool = True

    def __str__(self) -> str:
        return f"confidence >= {self.min_confidence:g}, length >= {self.min_length}" + (
            ", fitting a plate format" if self.fit_format else ""
        )

    def keeps(self, read: TextRead, shipped: PlateFormats) -> bool:
        return (
            len(read.text) >= self.min_length
            and read.confidence >= self.min_confidence
            and (not self.fit_format or shipped.match(read.text) is not None)
        )
