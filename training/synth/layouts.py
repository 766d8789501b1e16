"""Plate styles: what each synthetic plate looks like and which texts it may carry.

This module owns the *description* of every style (size, colours, decorations, fonts, text
patterns) and the text generator; ``render.py`` turns a description into pixels.

Text patterns use one character per slot:
  ``D`` digit, ``N`` digit 1-9 (a number that never starts with 0, e.g. Germany's), ``L`` any
  letter, ``C`` consonant (Spain, Netherlands), ``V`` letter without I/O/Q
  (UK memory tags, Brazil), ``-`` a dash that is drawn but never labelled, `` `` a gap,
  ``*`` an emblem gap (state seal, orange, star), ``.`` a raised dot (Brazil, US) and ``|``
  the break between the two rows of a two-line plate. Labels keep only the character slots,
  so ``B-AB 1234`` is labelled ``BAB1234``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CONSONANTS = "BCDFGHJKLMNPRSTVWXYZ"
_NO_IOQ = "ABCDEFGHJKLMNPRSTUVWXYZ"
_NONZERO = "123456789"
SLOT_CHARS: dict[str, str] = {
    "D": _DIGITS, "N": _NONZERO, "L": _LETTERS, "C": _CONSONANTS, "V": _NO_IOQ,
}  # fmt: skip
SEPARATORS = "- *.|"

Colour = tuple[int, int, int]  # BGR

# A few named colours (BGR) shared by several styles.
WHITE: Colour = (245, 245, 245)
BLACK: Colour = (25, 25, 25)
EU_BLUE: Colour = (153, 51, 0)
UK_YELLOW: Colour = (0, 205, 250)
NL_YELLOW: Colour = (0, 190, 245)
NAVY: Colour = (110, 40, 20)
RED: Colour = (40, 30, 200)


@dataclass(frozen=True)
class StyleSpec:
    """Everything the renderer needs to draw one style, in plate-relative units."""

    name: str
    region: str
    patterns: tuple[str, ...]
    aspect: tuple[float, float]  # plate width / height range (plate only, no margin)
    backgrounds: tuple[Colour, ...]
    text_colours: tuple[Colour, ...]
    fonts: tuple[str, ...]  # glyph bank names, see fonts.py; one is picked per plate
    # Area the characters live in, as fractions of the plate (x0, y0, x1, y1).
    text_box: tuple[float, float, float, float] = (0.05, 0.15, 0.95, 0.85)
    char_height: float = 0.7  # glyph height as a fraction of the text box height (per row)
    condense: tuple[float, float] = (0.75, 0.95)  # horizontal squeeze of glyphs
    border: float = 0.0  # border thickness as a fraction of plate height; 0: none
    border_colour: Colour | None = None  # None: text colour
    decorations: tuple[str, ...] = ()  # names understood by render.draw_decoration
    header: tuple[str, ...] = ()  # candidate header texts (state names, country)
    header_colours: tuple[Colour, ...] = ()
    footer: tuple[str, ...] = ()
    corner_radius: float = 0.06  # fraction of plate height
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def two_line(self) -> bool:
        return "|" in self.patterns[0]


def _us(name: str, patterns: tuple[str, ...], **kw: object) -> StyleSpec:
    base: dict[str, object] = dict(
        region="us",
        aspect=(1.95, 2.05),
        text_box=(0.06, 0.24, 0.94, 0.84),
        char_height=0.86,
        condense=(0.72, 0.9),
        border=0.02,
        fonts=(
            "dejavu_cond",
            "dejavu_mono",
            "dejavu_bold",
            "dejavu_sans",
            "dejavu_cond_book",
            "rs",
            "be",
        ),
    )
    base.update(kw)
    # every US plate may carry a pictorial background and registration stickers
    base["decorations"] = ("us_picture",) + tuple(base.get("decorations", ())) + ("us_stickers",)
    return StyleSpec(name=name, patterns=patterns, **base)  # type: ignore[arg-type]


def _eu(name: str, patterns: tuple[str, ...], code: str, **kw: object) -> StyleSpec:
    base: dict[str, object] = dict(
        region="eu",
        aspect=(4.4, 4.75),
        backgrounds=(WHITE, (235, 238, 240), (228, 232, 235)),
        text_colours=(BLACK,),
        text_box=(0.11, 0.12, 0.97, 0.88),
        char_height=0.86,
        condense=(0.8, 0.95),
        border=0.035,
        decorations=(f"eu_band:{code}",),
        fonts=("de",),
    )
    base.update(kw)
    return StyleSpec(name=name, patterns=patterns, **base)  # type: ignore[arg-type]


_US_STATES = (
    "OHIO",
    "Michigan",
    "ILLINOIS",
    "Georgia",
    "ARIZONA",
    "Virginia",
    "Pennsylvania",
    "NEW JERSEY",
    "Colorado",
    "Oregon",
    "WASHINGTON",
    "Maryland",
    "Nevada",
    "INDIANA",
)

STYLE_SPECS: dict[str, StyleSpec] = {
    s.name: s
    for s in (
        _us(
            "us_ca",
            ("DLLLDDD",),
            backgrounds=(WHITE, (240, 240, 236)),
            text_colours=(NAVY, (90, 35, 25)),
            border_colour=(180, 180, 180),
            header=("California",),
            header_colours=(RED, (50, 40, 180)),
            footer=("dmv.ca.gov", ""),
            extra={"header_script": True},
        ),
        _us(
            "us_ny",
            ("LLL-DDDD",),
            backgrounds=(WHITE, (60, 175, 235), (90, 195, 240)),
            text_colours=(NAVY, (120, 50, 10)),
            header=("NEW YORK",),
            header_colours=(NAVY,),
            footer=("EXCELSIOR", "THE EMPIRE STATE"),
            decorations=("us_top_band",),
        ),
        _us(
            "us_tx",
            ("LLL-DDDD", "LLL DDDD", "DLL-LDDD", "LLL.DDDD"),
            backgrounds=(WHITE, (232, 238, 240)),
            text_colours=(BLACK,),
            header=("TEXAS",),
            header_colours=(BLACK, (60, 30, 20)),
            footer=("THE LONE STAR STATE", ""),
            decorations=("us_skyline",),
        ),
        _us(
            "us_fl",
            ("LLL*DLL", "DDD*LLL", "LLLL*DD", "LLL*LDD"),
            backgrounds=(WHITE,),
            text_colours=((40, 100, 20), (50, 90, 30)),
            header=("MYFLORIDA.COM", "FLORIDA"),
            header_colours=((40, 100, 20),),
            footer=("SUNSHINE STATE", "Sunshine State"),
            extra={"emblem": "orange"},
        ),
        _us(
            "us_generic",
            (
                "LLLDDDD",
                "LLL-DDD",
                "DDD-LLL",
                "DLLLDDD",
                "LLL DDDD",
                "LL-DDDDD",
                "DDD.LLL",
                "LLL.DDD",
                "DLL.DDD",
            ),
            backgrounds=(WHITE, (235, 225, 205), (205, 235, 245), (225, 240, 230), (250, 250, 250)),
            text_colours=(NAVY, BLACK, (30, 80, 20), (40, 30, 130), (100, 60, 10)),
            header=_US_STATES,
            header_colours=(NAVY, RED, BLACK, (30, 80, 20)),
            footer=("", "IN GOD WE TRUST", "COUNTY"),
            decorations=("us_gradient",),
        ),
        _eu(
            "eu_fi",
            ("LLL-DDD", "LL-DDD"),
            "FIN",
            fonts=("de", "rs", "dejavu_cond"),
            aspect=(3.65, 3.9),
        ),
        _eu(
            "eu_de",
            (  # the number is 1-9999: never a leading 0
                "L-LL NDDD",
                "LL-L NDDD",
                "LLL-LL NDD",
                "L-L NDDD",
                "LL-LL NDDD",
                "LLL-L NDD",
                "L-LL NDD",
            ),
            "D",
            extra={"seals": True},
        ),
        _eu("eu_es", ("DDDD CCC",), "E", fonts=("rs", "de", "dejavu_cond")),
        _eu(
            "eu_fr",
            ("LL-DDD-LL",),
            "F",
            fonts=("fr",),
            decorations=("eu_band:F", "right_band"),
            text_box=(0.11, 0.12, 0.89, 0.88),
        ),
        _eu(
            "eu_nl",
            ("DD-CCC-D", "D-CCC-DD", "CC-DDD-C", "C-DDD-CC", "DD-CC-CC", "CC-DD-CC"),
            "NL",
            backgrounds=(NL_YELLOW, (0, 200, 250)),
            fonts=("nl",),
        ),
        _eu(
            "eu_be",
            ("D-LLL-DDD",),
            "B",
            backgrounds=(WHITE,),
            text_colours=((40, 20, 170), (45, 30, 150)),
            fonts=("be",),
            border_colour=(40, 20, 170),
        ),
        _eu(
            "eu_it",
            ("LL DDDLL",),
            "I",
            decorations=("eu_band:I", "right_band"),
            text_box=(0.11, 0.12, 0.89, 0.88),
            fonts=("de", "rs", "dejavu_cond"),
        ),
        _eu("eu_pl", ("LL DDDDD", "LLL DDDD", "LL DDDLL", "LLL DDLL"), "PL", fonts=("rs", "de")),
        # the rest of Europe: random country code, common national patterns, common fonts
        _eu(
            "eu_generic",
            ("LL DDDD LL", "L DDDD LL", "LLL DDD", "LL-DDDD", "LL DDD LL", "LLL-DDDD", "DDD-LLL"),
            "*",
            fonts=("rs", "de", "be", "dejavu_cond", "dejavu_cond_book"),
            text_colours=(BLACK, (20, 20, 20), (90, 40, 20)),
        ),
        StyleSpec(
            "uk_rear",
            "uk",
            ("VVDD VVV",),
            (4.5, 4.75),
            (UK_YELLOW, (10, 195, 240)),
            (BLACK,),
            ("uk",),
            text_box=(0.05, 0.1, 0.97, 0.9),
            char_height=0.82,
            condense=(0.85, 1.0),
            decorations=("uk_band",),
        ),
        StyleSpec(
            "uk_front",
            "uk",
            ("VVDD VVV",),
            (4.5, 4.75),
            (WHITE, (240, 240, 238)),
            (BLACK,),
            ("uk",),
            text_box=(0.05, 0.1, 0.97, 0.9),
            char_height=0.82,
            condense=(0.85, 1.0),
            decorations=("uk_band",),
        ),
        StyleSpec(
            "uk_square",
            "uk",
            ("VVDD|VVV",),
            (1.2, 1.37),
            (UK_YELLOW, WHITE),
            (BLACK,),
            ("uk",),
            text_box=(0.07, 0.08, 0.93, 0.92),
            char_height=0.78,
            condense=(0.85, 1.0),
        ),
        StyleSpec(
            "br_old",
            "br",
            ("LLL-DDDD", "LLL.DDDD"),
            (3.0, 3.15),
            ((185, 185, 180), (200, 200, 196), (170, 172, 170)),
            (BLACK, (40, 40, 40)),
            ("br",),
            text_box=(0.04, 0.26, 0.96, 0.95),
            char_height=0.88,
            condense=(0.85, 1.0),
            border=0.03,
            header=(
                "SP - SAO PAULO",
                "RJ - RIO DE JANEIRO",
                "MG - BELO HORIZONTE",
                "PR - CURITIBA",
                "RS - PORTO ALEGRE",
                "BA - SALVADOR",
            ),
            header_colours=(BLACK,),
        ),
        StyleSpec(
            "br_mercosul",
            "br",
            ("LLLDLDD",),
            (3.0, 3.15),
            (WHITE, (240, 240, 240)),
            (BLACK,),
            ("de",),
            text_box=(0.04, 0.27, 0.96, 0.96),
            char_height=0.86,
            condense=(0.85, 1.0),
            border=0.025,
            decorations=("mercosul_band",),
        ),
        StyleSpec(
            "br_moto",
            "br",
            ("LLL|DDDD",),
            (1.1, 1.25),
            ((185, 185, 180), (200, 200, 196)),
            (BLACK,),
            ("br",),
            text_box=(0.06, 0.2, 0.94, 0.96),
            char_height=0.8,
            condense=(0.85, 1.0),
            border=0.03,
            header=("SP - SAO PAULO", "MG - UBERLANDIA"),
            header_colours=(BLACK,),
        ),
        StyleSpec(
            "br_moto_mercosul",
            "br",
            ("LLL|DLDD",),
            (1.1, 1.25),
            (WHITE,),
            (BLACK,),
            ("de",),
            text_box=(0.06, 0.24, 0.94, 0.97),
            char_height=0.8,
            condense=(0.85, 1.0),
            border=0.025,
            decorations=("mercosul_band",),
        ),
        StyleSpec(
            "in_one",
            "in",
            ("LL DD LL DDDD", "LL DD L DDDD", "LL DD LL DDDD"),
            (4.0, 4.4),
            (WHITE, (0, 210, 250), WHITE),
            (BLACK,),
            ("dejavu_cond", "dejavu_bold", "rs", "uk"),
            text_box=(0.1, 0.12, 0.97, 0.88),
            char_height=0.84,
            condense=(0.75, 0.92),
            border=0.03,
            decorations=("ind_band",),
        ),
        StyleSpec(
            "in_two",
            "in",
            ("LL DD|LL DDDD", "LL DD|L DDDD"),
            (1.2, 1.37),
            (WHITE, (0, 210, 250)),
            (BLACK,),
            ("dejavu_cond", "dejavu_bold", "rs", "uk"),
            text_box=(0.07, 0.08, 0.95, 0.92),
            char_height=0.8,
            condense=(0.7, 0.85),
            border=0.03,
        ),
        StyleSpec(
            "ec",
            "ec",
            ("LLL-DDDD", "LLL-DDD"),
            (2.55, 2.7),
            (WHITE, (236, 236, 236)),
            (BLACK, (30, 30, 30)),
            ("rs", "be", "dejavu_cond"),
            text_box=(0.05, 0.3, 0.95, 0.92),
            char_height=0.9,
            condense=(0.8, 0.95),
            border=0.025,
            decorations=("ec_band",),
        ),
    )
}

STYLES: tuple[str, ...] = tuple(STYLE_SPECS)
REGIONS: tuple[str, ...] = ("us", "eu", "br", "uk", "in", "ec")


def style_region(style: str) -> str:
    """Region code ("us", "eu", "br", "uk", "in", "ec") of a style name."""
    try:
        return STYLE_SPECS[style].region
    except KeyError:
        raise ValueError(f"unknown plate style {style!r}; known: {', '.join(STYLES)}") from None


def _pattern_regex(pattern: str) -> str:
    parts = []
    for slot in pattern:
        if slot in SLOT_CHARS:
            parts.append(f"[{SLOT_CHARS[slot]}]")
        elif slot not in SEPARATORS:
            raise ValueError(f"bad pattern slot {slot!r} in {pattern!r}")
    return "".join(parts)


def style_regex(style: str) -> re.Pattern[str]:
    """Regex every label of ``style`` matches (full match, no separators)."""
    spec = STYLE_SPECS[style]
    return re.compile("|".join(f"(?:{_pattern_regex(p)})" for p in spec.patterns))


def make_text(rng: np.random.Generator, style: str) -> tuple[str, list[str]]:
    """Random plate text for ``style``: (label, display rows with separators)."""
    spec = STYLE_SPECS[style]
    pattern = spec.patterns[int(rng.integers(len(spec.patterns)))]
    out = []
    for slot in pattern:
        chars = SLOT_CHARS.get(slot)
        out.append(chars[int(rng.integers(len(chars)))] if chars else slot)
    display = "".join(out)
    label = "".join(c for c in display if c not in SEPARATORS)
    return label, display.split("|")
