"""Still images read like a careful person (edge.detect.stills, Alpr.process_still): crop
variants, the choice of one read per plate, the region decision without a region, the filter."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.alpr import PROTECT_CONFIDENCE, Alpr
from edge.detect.stills import (
    DEFAULT_VARIANTS,
    CropVariant,
    ReadFilter,
    choose_read,
    variant_box,
)
from edge.types import PLATE, VEHICLE, Detections, TextRead
from edge.vote.formats import (
    MAX_LAYOUTS,
    PlateFormats,
    pattern_layouts,
    region_alternative,
    region_formats,
)

SHIPPED = PlateFormats.default(None)
BY_REGION = region_formats(SHIPPED)


def read(text: str, conf: float = 0.9, confs: tuple[float, ...] | None = None) -> TextRead:
    confs = confs if confs is not None else (conf,) * len(text)
    return TextRead(text, min(confs) if confs else 0.0, confs)


def choose(reads: list[TextRead], formats: PlateFormats | None = None):  # type: ignore[no-untyped-def]
    return choose_read(reads, formats, SHIPPED, BY_REGION)


# --- the vote ------------------------------------------------------------------------------


def test_the_text_most_variants_read_surely_wins_and_keeps_its_own_confidences() -> None:
    a = read("7ABC123", confs=(0.95, 0.7, 0.99, 0.99, 0.99, 0.99, 0.99))
    b = read("7ABC123", confs=(0.9, 0.8, 0.99, 0.99, 0.99, 0.99, 0.99))
    c = read("7ABC128", 0.97)  # one confident read loses to two agreeing ones (0.7 + 0.8)
    choice = choose([a, c, b])
    assert choice.read.text == "7ABC123"
    assert choice.variant == 2  # the more confident of the two that read it
    assert choice.read.char_confidences == b.char_confidences
    assert not choice.repaired
    # a lone read, and a tie broken by the more confident read, then the earlier variant
    assert choose([c]).read is c
    assert choose([read("AB123", 0.6), read("AB128", 0.6)]).variant == 0


def test_empty_reads_weigh_nothing() -> None:
    assert choose([TextRead("", 0.0, ()), read("ABC123", 0.4)]).read.text == "ABC123"
    only_empty = choose([TextRead("", 0.0, ())] * 3)
    assert only_empty.read.text == "" and only_empty.format is None


def test_a_chosen_region_repairs_each_variant_and_prefers_its_formats() -> None:
    br = PlateFormats.default(["br"], protect_confidence=PROTECT_CONFIDENCE)
    unsure_zero = read("0LA1208", confs=(0.6,) + (0.99,) * 6)
    choice = choose([unsure_zero, read("0LA12O8", 0.95)], br)
    assert (choice.read.text, choice.format, choice.region) == ("OLA1208", "br-old", "br")
    assert choice.repaired and choice.read.char_confidences == unsure_zero.char_confidences
    # a read fitting the region's format beats a heavier one that fits none
    fits = read("ABC1D23", 0.6)
    assert choose([read("ABC1DX3", 0.99), read("ABC1DX3", 0.99), fits], br).read is fits


# --- no region chosen ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0FMU202", "2DA044"])
@pytest.mark.parametrize("conf", [0.5, 0.99])
def test_no_region_never_repairs_towards_a_foreign_pattern_one_swap_away(
    text: str, conf: float
) -> None:
    # The Californian 0FMU202 is one swap from the German OFMU202, the US 2DA044 from the Dutch
    # 2DAO44: read once, or always read the same, they stay as read, however unsure.
    assert SHIPPED.repair(text, [0.5] * len(text))[0] != text  # the trap is real
    for reads in ([read(text, conf)], [read(text, conf)] * 4):
        choice = choose(reads)
        assert choice.read.text == text and not choice.repaired
        assert not SHIPPED.is_strong(choice.format)


def test_no_region_a_plate_read_in_one_regions_format_is_read_so() -> None:
    # Brazil: the reader wavers between 0 and O on the first letter; one variant reads O,
    # which fits the Brazilian format, so that read is kept: its own text and confidences.
    zeros = [read("0LA1208", confs=(c,) + (0.99,) * 6) for c in (0.6, 0.55, 0.5)]
    seen = read("OLA1208", confs=(0.54,) + (0.99,) * 6)
    choice = choose([*zeros, seen])
    assert (choice.read.text, choice.format, choice.region) == ("OLA1208", "br-old", "br")
    assert choice.read is seen and choice.variant == 3 and choice.repaired
    # Croatia (EU): BB135B0 / BB135BO
    eu = choose([read("BB135B0", 0.67), read("BB135B0", 0.57), read("BB135BO", 0.53)])
    assert eu.read.text == "BB135BO" and eu.region == "hr"


def test_no_region_a_catch_all_pattern_decides_nothing() -> None:
    # A US 4FCW533 with one variant reading AFCW533: that fits only Germany's catch-all
    # format (32 layouts), which fits a third of US plates one swap away.
    assert pattern_layouts(next(p for p in SHIPPED.patterns if p.name == "de")) > MAX_LAYOUTS
    reads = [read("4FCW533", 0.62), read("AFCW533", 0.56), read("4FCW533", 0.41)]
    assert choose(reads).read.text == "4FCW533"


def test_no_region_only_one_alternative_and_only_confusable_differences() -> None:
    # already a strong format: nothing to decide
    assert region_alternative("ABC1234", ["ABC1Z34"], SHIPPED, BY_REGION) is None
    # the alternative differs by a non-confusable character: another plate, not a repair
    assert region_alternative("XLA1208", ["OLA1208"], SHIPPED, BY_REGION) is None
    # two regions, two different repairs, each read by a variant (Croatia's O, France's D,
    # which bans O): undecided
    assert region_alternative("BB135B0", ["BB135BO"], SHIPPED, BY_REGION) == "BB135BO"
    assert region_alternative("BB135B0", ["BB135BD"], SHIPPED, BY_REGION) == "BB135BD"
    assert region_alternative("BB135B0", ["BB135BO", "BB135BD"], SHIPPED, BY_REGION) is None
    assert region_alternative("0LA1208", ["OLA1208", "0LA1208"], SHIPPED, BY_REGION) == "OLA1208"
    assert region_alternative("", ["OLA1208"], SHIPPED, BY_REGION) is None


def test_pattern_layouts() -> None:
    layouts = {p.name: pattern_layouts(p) for p in SHIPPED.patterns}
    assert layouts["br-old"] == layouts["br-mercosul"] == layouts["nl-8"] == 1
    assert layouts["ec"] == 2 and layouts["hr"] == 4 and layouts["de"] == 32


# --- crop variants --------------------------------------------------------------------------


def test_variant_boxes_grow_shrink_and_clip() -> None:
    box = (100.0, 50.0, 200.0, 70.0)  # 100 x 20
    assert variant_box(box, 640, 480, CropVariant("t", 0.0, 0.0)) == (100, 50, 200, 70)
    assert variant_box(box, 640, 480, CropVariant("w", 0.2, 0.0)) == (80, 50, 220, 70)
    assert variant_box(box, 640, 480, CropVariant("s", 0.04, -0.05)) == (96, 51, 204, 69)
    assert variant_box((0.0, 0.0, 30.0, 10.0), 25, 8, CropVariant("w", 0.2, 0.2)) == (0, 0, 25, 8)
    # a sliver at the frame's edge still gives a non-empty crop
    x1, y1, x2, y2 = variant_box((639.5, 10.0, 640.0, 10.4), 640, 480, CropVariant("s", 0, -0.5))
    assert x2 > x1 and y2 > y1 and x2 <= 640


class _Detector:
    classes = (VEHICLE, PLATE)

    def __init__(self, rows: list[tuple[tuple[float, float, float, float], float, int]]) -> None:
        self.rows = rows

    def detect(self, image: np.ndarray) -> Detections:
        return Detections(
            np.array([r[0] for r in self.rows], np.float32).reshape(-1, 4),
            np.array([r[1] for r in self.rows], np.float32),
            np.array([r[2] for r in self.rows], np.int64),
            self.classes,
        )

    def close(self) -> None:
        pass


class _Reader:
    """Reads a crop by its width: the first plate (wide) as 7ABC123, surest on the widest
    crop; the second (narrow) as XY99 everywhere. Records every batch."""

    def __init__(self) -> None:
        self.batches: list[list[np.ndarray]] = []

    def read(self, crops: list[np.ndarray]) -> list[TextRead]:
        self.batches.append(crops)
        out = []
        for c in crops:
            w = c.shape[1]
            out.append(read("7ABC123", min(0.99, w / 150)) if w > 60 else read("XY99", 0.8))
        return out

    def close(self) -> None:
        pass


def test_process_still_reads_every_variant_of_every_plate_in_one_batch() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    det = _Detector(
        [
            ((50.0, 40.0, 600.0, 400.0), 0.9, 0),  # vehicle
            ((200.0, 300.0, 300.0, 330.0), 0.8, 1),  # plate 1 (100 px wide)
            ((400.0, 300.0, 440.0, 312.0), 0.7, 1),  # plate 2 (40 px wide)
        ]
    )
    reader = _Reader()
    alpr = Alpr(det, reader)  # type: ignore[arg-type]
    result = alpr.process_still(image)
    assert len(reader.batches) == 1 and len(reader.batches[0]) == 2 * len(DEFAULT_VARIANTS)
    assert all(np.shares_memory(c, image) for c in reader.batches[0])  # views, not copies
    first, second = result.plates
    assert first.text == "7ABC123" and second.text == "XY99"
    # the widest variant read the first plate most surely; its crop is the one kept
    wider = max(DEFAULT_VARIANTS, key=lambda v: v.margin_x)
    assert first.variant == wider.name
    assert first.plate.crop_box == variant_box(first.box, 640, 480, wider)
    assert first.plate.crop is not None and first.plate.crop.shape[1] == 140
    assert first.plate.vehicle_index == 0 and first.plate.vehicle_box == (50, 40, 600, 400)
    assert first.plate.read.char_confidences == (min(0.99, 140 / 150),) * 7
    assert result.timings.read_ms >= 0 and len(result.detections) == 3


def test_process_still_with_no_plate_does_not_call_the_reader_with_crops() -> None:
    reader = _Reader()
    alpr = Alpr(_Detector([((0.0, 0.0, 10.0, 10.0), 0.9, 0)]), reader)  # type: ignore[arg-type]
    assert alpr.process_still(np.zeros((20, 20, 3), np.uint8)).plates == ()
    assert all(len(b) == 0 for b in reader.batches)


def test_alpr_refuses_no_variants() -> None:
    with pytest.raises(ValueError, match="variant"):
        Alpr(_Detector([]), _Reader(), still_variants=())  # type: ignore[arg-type]


# --- what image prints ----------------------------------------------------------------------


def test_read_filter() -> None:
    keep = ReadFilter()
    assert keep.keeps(read("ABC123", 0.9), SHIPPED)
    assert not keep.keeps(TextRead("", 0.0, ()), SHIPPED)  # nothing read
    assert not keep.keeps(read("H", 0.99), SHIPPED)  # a badge's letter
    assert not keep.keeps(read("ABC123", 0.3), SHIPPED)  # no character even 50 % sure
    assert not keep.keeps(read("RRVAEPH96RTX", 0.9), SHIPPED)  # fits no format (12 chars)
    assert ReadFilter(min_length=2).keeps(read("HX", 0.99), SHIPPED)
    assert ReadFilter(fit_format=False).keeps(read("RRVAEPH96RTX", 0.9), SHIPPED)
    assert "0.5" in str(keep) and "4" in str(keep)
