"""Region formats on single reads (still images): repair only what the reader was unsure of."""

from edge.detect.alpr import PROTECT_CONFIDENCE, apply_formats
from edge.eval.evaluate import formats_chooser
from edge.types import TextRead
from edge.vote.formats import PlateFormats


def test_unsure_digit_in_a_letter_slot_is_repaired() -> None:
    formats = PlateFormats.default(["br"], protect_confidence=PROTECT_CONFIDENCE)
    read = TextRead("A8C1234", 0.55, (0.99, 0.55, 0.98, 0.99, 0.99, 0.99, 0.97))
    fixed = apply_formats(read, formats)
    assert fixed.text == "ABC1234"
    assert fixed.char_confidences == read.char_confidences  # swaps are 1:1


def test_confident_characters_are_never_swapped() -> None:
    formats = PlateFormats.default(["br"], protect_confidence=PROTECT_CONFIDENCE)
    read = TextRead("A8C1234", 0.95, (0.99, 0.97, 0.98, 0.99, 0.99, 0.99, 0.97))
    assert apply_formats(read, formats).text == "A8C1234"


def test_eu_zero_in_letter_slot_becomes_o_not_d() -> None:
    formats = PlateFormats.default(["eu"], protect_confidence=PROTECT_CONFIDENCE)
    read = TextRead("RK896A0", 0.6, (0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.6))
    assert apply_formats(read, formats).text == "RK896AO"


def test_valid_reads_and_no_formats_pass_through() -> None:
    read = TextRead("ABC1D23", 0.5, (0.5,) * 7)
    assert apply_formats(read, PlateFormats.default(["br"])) is read
    assert apply_formats(read, None) is read


def test_eval_region_choice() -> None:
    assert formats_chooser("none") is None
    auto = formats_chooser("auto")
    assert auto("br") is not None
    assert auto("atlantis") is None  # a folder platewatch has no formats for: raw reads
    fixed = formats_chooser("br,eu")
    assert fixed("us") is fixed("br")
