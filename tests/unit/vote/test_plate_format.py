"""Region plate formats: parsing, matching and positional repair (edge.vote.formats)."""

from __future__ import annotations

import pytest

from edge.vote.formats import (
    DEFAULT_PATTERNS,
    PlateFormats,
    PlatePattern,
    normalize_plate,
    parse_pattern,
)

BR = PlateFormats.default(["br"])


def test_parse_pattern_positions() -> None:
    slots = parse_pattern("[A-Z]{3}[0-9][A-Z][0-9]{2}")
    assert [s.kind for s in slots] == ["letter"] * 3 + ["digit", "letter", "digit", "digit"]
    assert not any(s.optional for s in slots)
    p = PlatePattern("in", "[A-Z]{2}[0-9]{1,2}[A-Z]{0,3}[0-9]{4}")
    assert (p.min_len, p.max_len) == (7, 11)
    assert [s.optional for s in p.slots].count(True) == 4
    assert parse_pattern("[A-Z0-9]{2}")[0].kind == "alnum"
    assert parse_pattern("BH")[0].kind == "literal"
    assert parse_pattern("[A-HJ-NP-Z]")[0].chars == frozenset("ABCDEFGHJKLMNPQRSTUVWXYZ")


@pytest.mark.parametrize("bad", ["[A-Z]+", "[A-Z]{3}-[0-9]{4}", "(AB)", "[a-z]{2}", "[A-Z", ""])
def test_unsupported_patterns_are_rejected_with_the_name(bad: str) -> None:
    with pytest.raises(ValueError, match="'mine'"):
        PlatePattern("mine", bad)


def test_default_patterns_all_parse_and_names_unique() -> None:
    fmts = PlateFormats(DEFAULT_PATTERNS)
    assert len(fmts.names) == len(set(fmts.names)) == len(DEFAULT_PATTERNS)
    assert {"br-old", "br-mercosul", "de", "fr", "es", "nl-6", "fi", "uk", "in", "ec"} <= set(
        fmts.names
    )
    assert [p.name for p in fmts.patterns if p.weak] == ["us-generic"]


@pytest.mark.parametrize(
    "text,name",
    [
        ("ABC1D23", "br-mercosul"),
        ("ABC1234", "br-old"),
        ("abc-1234", "br-old"),  # normalised first
        ("ZZ9", None),
    ],
)
def test_match_br(text: str, name: str | None) -> None:
    assert BR.match(text) == name


@pytest.mark.parametrize(
    "text,region,name",
    [
        ("AB123CD", "fr", "fr"),
        ("1234BCD", "es", "es"),
        ("1234ABC", "es", None),  # vowels are not issued in Spain
        ("AB12CDE", "uk", "uk"),
        ("MH12AB1234", "in", "in"),
        ("22BH1234AB", "in", "in-bh"),
        ("PBA1234", "ec", "ec"),
        ("XX99XX", "nl", "nl-6"),
        ("ABC123", "fi", "fi"),
        ("MAB1234", "de", "de"),
        ("7ABC123", "us", "us-generic"),
    ],
)
def test_match_regions(text: str, region: str, name: str | None) -> None:
    assert PlateFormats.default([region]).match(text) == name


def test_weak_pattern_never_beats_a_strong_one() -> None:
    f = PlateFormats.default(["us", "br"])  # us-generic listed last, but order is irrelevant
    f2 = PlateFormats([DEFAULT_PATTERNS[-1], *DEFAULT_PATTERNS[:2]])
    assert f.match("ABC1234") == f2.match("ABC1234") == "br-old"


@pytest.mark.parametrize(
    "read,fixed,name",
    [
        ("A8C1234", "ABC1234", "br-old"),  # 8 -> B where a letter is required
        ("ABCI234", "ABC1234", "br-old"),  # I -> 1 where a digit is required
        ("A8C1D23", "ABC1D23", "br-mercosul"),
        ("ABC1D2S", "ABC1D25", "br-mercosul"),
        ("0BC1234", "OBC1234", "br-old"),
    ],
)
def test_repair_br(read: str, fixed: str, name: str) -> None:
    assert BR.repair(read) == (fixed, name)


@pytest.mark.parametrize("valid", ["ABC1D23", "ABC1234", "ABC1O23", "OOO0000"])
def test_repair_leaves_valid_strings_alone(valid: str) -> None:
    assert BR.repair(valid, [0.1] * len(valid)) == (valid, BR.match(valid))


def test_repair_prefers_fewest_swaps_then_least_confident() -> None:
    # br-old needs I->1 (1 swap); Mercosul "ABC1Z34" would need I->1 and 2->Z (2 swaps)
    assert BR.repair("ABCI234") == ("ABC1234", "br-old")
    # br-old: I->1, S->5 (2 swaps); Mercosul: I->1, 2->Z, S->5 (3 swaps)
    assert BR.repair("ABCI2S4") == ("ABC1254", "br-old")
    # a tie in swap count is broken by confidence: the less sure character is the one changed
    f = PlateFormats(
        [{"name": "ldl", "pattern": "[A-Z][0-9][A-Z]"}, {"name": "lld", "pattern": "[A-Z]{2}[0-9]"}]
    )
    assert f.repair("A88", [0.9, 0.3, 0.9]) == ("AB8", "lld")
    assert f.repair("A88", [0.9, 0.9, 0.3]) == ("A8B", "ldl")
    assert f.repair("A88", [0.9, 0.9, 0.9]) == ("A8B", "ldl")  # full tie: list order


def test_repair_respects_class_exclusions() -> None:
    # French SIV does not issue O: a 0 where a letter is required becomes D, not O
    fr = PlateFormats.default(["fr"])
    assert fr.repair("AB1230D") == ("AB123DD", "fr")


def test_repair_limits_and_failures() -> None:
    assert BR.repair("ABC") is None  # wrong length for every pattern
    assert BR.repair("A8CI2S4") is None  # 3 swaps > max_swaps=2
    assert PlateFormats.default(["br"], max_swaps=3).repair("A8CI2S4") == ("ABC1254", "br-old")
    assert BR.repair("ABC12X4") is None  # X has no digit look-alike
    protected = PlateFormats.default(["br"], protect_confidence=0.9)
    assert protected.repair("A8C1234", [0.9, 0.95, 0.9, 0.9, 0.9, 0.9, 0.9]) is None
    assert protected.repair("A8C1234", [0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9]) == ("ABC1234", "br-old")


def test_repair_falls_back_to_weak_match_unchanged() -> None:
    f = PlateFormats.default(["br", "us"])
    assert f.repair("7XK99") == ("7XK99", "us-generic")


def test_repair_confidence_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="confidences"):
        BR.repair("ABC1234", [0.9])


def test_config_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        PlateFormats([{"name": "x", "pattern": "[A-Z]"}, {"name": "x", "pattern": "[0-9]"}])
    with pytest.raises(ValueError, match="unknown fields"):
        PlateFormats([{"name": "x", "pattern": "[A-Z]", "regexp": "?"}])
    with pytest.raises(ValueError, match="unknown regions"):
        PlateFormats.default(["atlantis"])


def test_normalize_plate() -> None:
    assert normalize_plate(" ab-12 cd ") == "AB12CD"


def test_config_style_patterns_regex_alias_and_anchors() -> None:
    # edge.config.schema writes patterns as {name, regex} and users write anchors: both accepted
    f = PlateFormats([{"name": "br", "regex": "^[A-Z]{3}[0-9]{4}$"}])
    assert f.match("ABC1234") == "br" and f.match("XABC1234") is None
    assert f.repair("A8C1234") == ("ABC1234", "br")
