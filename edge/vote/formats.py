"""Region plate formats: validate reads and repair confusable characters by position.

Owns: parsing the small regex subset plate formats are written in, matching a read against a
configurable list of named patterns, and the O/0-style repair. Pure functions and immutable
data; patterns are plain dicts so they can come from YAML config.

Texts are compared in the reader's alphabet (A-Z, 0-9, no separators): ``normalize_plate``
upper-cases and drops everything else, so patterns are written without spaces or dashes.

Supported pattern syntax (enough for plate formats, small enough to reason about per position):
``[...]`` classes of single characters and ranges (``[A-Z]``, ``[0-9]``, ``[A-HJ-NP-Z]``),
``\\d``, literal letters/digits, and the quantifiers ``{n}``, ``{m,n}`` and ``?``. Anything else
is rejected with an error naming the pattern, because repair has to know what every position
accepts.
"""

from __future__ import annotations

import functools
import itertools
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from edge.vote.text import normalize_plate

LETTERS = frozenset(string.ascii_uppercase)
DIGITS = frozenset(string.digits)

# Letter -> digit a CTC reader confuses it with, and digit -> letters in order of preference
# (the first one the position's class accepts is used: "0" becomes "O" unless the format bans O,
# then "D", then "Q").
LETTER_TO_DIGIT: dict[str, str] = {
    "O": "0", "D": "0", "Q": "0", "I": "1", "Z": "2", "S": "5",
    "B": "8", "G": "6", "T": "7", "A": "4",
}  # fmt: skip
DIGIT_TO_LETTERS: dict[str, tuple[str, ...]] = {
    "0": ("O", "D", "Q"), "1": ("I",), "2": ("Z",), "5": ("S",),
    "8": ("B",), "6": ("G",), "7": ("T",), "4": ("A",),
}  # fmt: skip

# Default formats. Only the reader's alphabet appears (no separators). "weak" marks patterns that
# accept nearly anything: they never win over a real format and never drive a repair.
DEFAULT_PATTERNS: list[dict[str, object]] = [
    # Brazil: Mercosul (2018+) first, so a string valid in both is reported as the current format.
    {"name": "br-mercosul", "region": "br", "pattern": "[A-Z]{3}[0-9][A-Z][0-9]{2}"},
    {"name": "br-old", "region": "br", "pattern": "[A-Z]{3}[0-9]{4}"},
    # Germany: district (1-3 letters), 1-2 letters, a number 1-9999 (never a leading 0, so
    # "VGAT0194" can only be VGA-TO 194), optional E (electric)/H (historic).
    {"name": "de", "region": "de", "pattern": "[A-Z]{1,3}[A-Z]{1,2}[1-9][0-9]{0,3}[EH]?"},
    # Croatia and Italy come before France: they accept every letter, and equal-cost repairs
    # go to the earlier pattern, so an ambiguous 0 becomes O (the likelier letter), not D.
    # Croatia: RK 123-AB (city code, 3-4 digits, 1-2 letters).
    {"name": "hr", "region": "hr", "pattern": "[A-Z]{2}[0-9]{3,4}[A-Z]{1,2}"},
    # Italy (1994+): AB 123 CD.
    {"name": "it", "region": "it", "pattern": "[A-Z]{2}[0-9]{3}[A-Z]{2}"},
    # France SIV (2009+): AA-123-AA; I, O and U are not issued.
    {"name": "fr", "region": "fr", "pattern": "[A-HJ-NP-TV-Z]{2}[0-9]{3}[A-HJ-NP-TV-Z]{2}"},
    # Spain (2000+): 1234 BCD, consonants only (no vowels, no Q).
    {"name": "es", "region": "es", "pattern": "[0-9]{4}[BCDFGHJKLMNPRSTVWXYZ]{3}"},
    # Netherlands: the current side codes (6-11).
    {"name": "nl-6", "region": "nl", "pattern": "[A-Z]{2}[0-9]{2}[A-Z]{2}"},
    {"name": "nl-7", "region": "nl", "pattern": "[0-9]{2}[A-Z]{3}[0-9]"},
    {"name": "nl-8", "region": "nl", "pattern": "[0-9][A-Z]{3}[0-9]{2}"},
    {"name": "nl-9", "region": "nl", "pattern": "[A-Z]{2}[0-9]{3}[A-Z]"},
    {"name": "nl-10", "region": "nl", "pattern": "[A-Z][0-9]{3}[A-Z]{2}"},
    {"name": "nl-11", "region": "nl", "pattern": "[A-Z]{3}[0-9]{2}[A-Z]"},
    # Finland: ABC-123 (2-3 letters, 1-3 digits).
    {"name": "fi", "region": "fi", "pattern": "[A-Z]{2,3}[0-9]{1,3}"},
    # United Kingdom (2001+): AB12 CDE; I and Q are not used.
    {"name": "uk", "region": "uk", "pattern": "[A-HJ-PR-Z]{2}[0-9]{2}[A-HJ-PR-Z]{3}"},
    # India: state, district number, 0-3 series letters, 4 digits (MH12AB1234); and BH series.
    {"name": "in", "region": "in", "pattern": "[A-Z]{2}[0-9]{1,2}[A-Z]{0,3}[0-9]{4}"},
    {"name": "in-bh", "region": "in", "pattern": "[0-9]{2}BH[0-9]{4}[A-Z]{1,2}"},
    # Ecuador: ABC-1234 (older plates ABC-123).
    {"name": "ec", "region": "ec", "pattern": "[A-Z]{3}[0-9]{3,4}"},
    # USA: every state differs (vanity plates too), so only a weak sanity check.
    {"name": "us-generic", "region": "us", "pattern": "[A-Z0-9]{2,8}", "weak": True},
]


@dataclass(frozen=True)
class Slot:
    """One character position of a pattern: the characters it accepts; optional if it may be
    absent (from ``{m,n}`` with m < n, or ``?``)."""

    chars: frozenset[str]
    optional: bool

    @property
    def kind(self) -> str:
        """'letter', 'digit', 'alnum', or 'mixed'/'literal' for narrower classes."""
        if len(self.chars) == 1:
            return "literal"
        if self.chars <= LETTERS:
            return "letter"
        if self.chars <= DIGITS:
            return "digit"
        if self.chars == LETTERS | DIGITS:
            return "alnum"
        return "mixed"


_QUANT = re.compile(r"\{(\d+)(?:,(\d+))?\}|\?")


def _parse_class(body: str, name: str) -> frozenset[str]:
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = body[i], body[i + 2]
            if lo > hi:
                raise ValueError(f"plate pattern {name!r}: bad range {lo}-{hi}")
            chars.update(chr(c) for c in range(ord(lo), ord(hi) + 1))
            i += 3
        else:
            chars.add(body[i])
            i += 1
    bad = chars - LETTERS - DIGITS
    if bad:
        raise ValueError(
            f"plate pattern {name!r}: class [{body}] has characters outside A-Z0-9: "
            f"{''.join(sorted(bad))!r} (patterns are matched against normalised reads)"
        )
    return frozenset(chars)


def parse_pattern(pattern: str, name: str = "?") -> tuple[Slot, ...]:
    """Expand a pattern into per-position slots; raises ValueError naming the pattern.

    Leading ``^`` and trailing ``$`` are accepted and ignored (matching is always whole-string).
    """
    pattern = _strip_anchors(pattern)
    slots: list[Slot] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            end = pattern.find("]", i)
            if end < 0:
                raise ValueError(f"plate pattern {name!r}: unclosed '[' at {i}")
            chars = _parse_class(pattern[i + 1 : end], name)
            i = end + 1
        elif c == "\\" and pattern[i + 1 : i + 2] == "d":
            chars, i = DIGITS, i + 2
        elif c in LETTERS or c in DIGITS:
            chars, i = frozenset(c), i + 1
        else:
            raise ValueError(
                f"plate pattern {name!r}: unsupported syntax {c!r} at {i} (use [..] classes, "
                "literal A-Z0-9, {n}, {m,n}, ?)"
            )
        lo = hi = 1
        q = _QUANT.match(pattern, i)
        if q:
            if q.group(0) == "?":
                lo, hi = 0, 1
            else:
                lo = int(q.group(1))
                hi = int(q.group(2)) if q.group(2) is not None else lo
            if hi < lo or hi == 0:
                raise ValueError(f"plate pattern {name!r}: bad quantifier {q.group(0)}")
            i = q.end()
        slots += [Slot(chars, False)] * lo + [Slot(chars, True)] * (hi - lo)
    if not slots:
        raise ValueError(f"plate pattern {name!r}: empty")
    return tuple(slots)


def _strip_anchors(pattern: str) -> str:
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


@dataclass(frozen=True)
class PlatePattern:
    name: str
    pattern: str
    region: str = ""
    weak: bool = False
    slots: tuple[Slot, ...] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"plate pattern {self.pattern!r}: 'name' is empty")
        object.__setattr__(self, "slots", parse_pattern(self.pattern, self.name))
        object.__setattr__(self, "_regex", re.compile(_strip_anchors(self.pattern)))

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> PlatePattern:
        """From config: {name, pattern (or its alias regex), region?, weak?}."""
        if "regex" in d and "pattern" not in d:
            d = {("pattern" if k == "regex" else k): v for k, v in d.items()}
        unknown = set(d) - {"name", "pattern", "region", "weak"}
        if unknown:
            raise ValueError(f"plate pattern {d.get('name')!r}: unknown fields {sorted(unknown)}")
        for key in ("name", "pattern"):
            if not isinstance(d.get(key), str):
                raise ValueError(f"plate pattern {d.get('name')!r}: field {key!r} must be a string")
        return cls(
            name=str(d["name"]),
            pattern=str(d["pattern"]),
            region=str(d.get("region", "")),
            weak=bool(d.get("weak", False)),
        )

    @property
    def min_len(self) -> int:
        return sum(not s.optional for s in self.slots)

    @property
    def max_len(self) -> int:
        return len(self.slots)

    def matches(self, text: str) -> bool:
        return self._regex.fullmatch(text) is not None

    def repair(
        self, text: str, char_confidences: Sequence[float] | None = None
    ) -> tuple[str, int, float] | None:
        """Cheapest confusable-swap rewrite of ``text`` into this pattern.

        Returns (repaired text, number of swaps, summed confidence of swapped characters), or
        None when no rewrite exists. Only cross-class swaps (letter<->digit, from the confusion
        tables) are tried, and only where the position's class rejects the character read.
        Cost is compared as (swaps, confidence): fewest swaps first, then least-confident ones.
        """
        n, m = len(text), len(self.slots)
        if not self.min_len <= n <= m:
            return None
        confs = list(char_confidences) if char_confidences is not None else [1.0] * n
        inf = (10**9, 0.0)
        # best[j][i]: cheapest way to place text[:i] into slots[:j]; back[j][i]: char used or None
        best: list[list[tuple[int, float]]] = [[inf] * (n + 1) for _ in range(m + 1)]
        back: list[list[tuple[int, str | None]]] = [[(-1, None)] * (n + 1) for _ in range(m + 1)]
        best[0][0] = (0, 0.0)
        used: str | None
        for j, slot in enumerate(self.slots):
            for i in range(n + 1):
                cur = best[j][i]
                if cur == inf:
                    continue
                if slot.optional and cur < best[j + 1][i]:
                    best[j + 1][i], back[j + 1][i] = cur, (i, None)
                if i == n:
                    continue
                ch = text[i]
                if ch in slot.chars:
                    cand, used = cur, ch
                else:
                    used = _swap_into(ch, slot.chars)
                    if used is None:
                        continue
                    cand = (cur[0] + 1, cur[1] + float(confs[i]))
                if cand < best[j + 1][i + 1]:
                    best[j + 1][i + 1], back[j + 1][i + 1] = cand, (i, used)
        if best[m][n] == inf:
            return None
        out: list[str] = []
        j, i = m, n
        while j > 0:
            pi, used = back[j][i]
            if used is not None:
                out.append(used)
            j, i = j - 1, pi
        swaps, conf = best[m][n]
        return "".join(reversed(out)), swaps, conf


def _swap_into(ch: str, allowed: frozenset[str]) -> str | None:
    if ch in LETTER_TO_DIGIT:
        d = LETTER_TO_DIGIT[ch]
        return d if d in allowed else None
    for letter in DIGIT_TO_LETTERS.get(ch, ()):
        if letter in allowed:
            return letter
    return None


# The most O/0-style swaps between a text fitting no format and a read of the same plate that
# fits one region's (`region_alternative`): the repair budget of a chosen region.
REGION_GUESS_SWAPS = 2

# Region names that stand for several countries' formats (as OpenALPR's "eu" country does).
REGION_GROUPS: dict[str, tuple[str, ...]] = {
    "eu": ("de", "es", "fi", "fr", "hr", "it", "nl"),
}


class PlateFormats:
    """An ordered list of named patterns (order breaks ties) plus the repair policy.

    ``max_swaps`` bounds how much a repair may change a read (a read needing three swaps is more
    likely a different plate than a misread); ``protect_confidence`` (optional) forbids swapping
    characters the reader was at least that sure of. ``guess_region``: no region was chosen, so
    a text fitting no format may still be turned into a read of the same plate that fits one
    region's specific format (`region_alternative`; the voter and the still reader do).
    """

    def __init__(
        self,
        patterns: Iterable[PlatePattern | Mapping[str, object]],
        max_swaps: int = 2,
        protect_confidence: float | None = None,
        guess_region: bool = False,
    ) -> None:
        self.patterns: tuple[PlatePattern, ...] = tuple(
            p if isinstance(p, PlatePattern) else PlatePattern.from_dict(p) for p in patterns
        )
        names = [p.name for p in self.patterns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"plate patterns: duplicate names {dupes}")
        if max_swaps < 0:
            raise ValueError("plate formats: max_swaps must be >= 0")
        self.max_swaps = max_swaps
        self.protect_confidence = protect_confidence
        self.guess_region = guess_region

    @functools.cached_property
    def by_region(self) -> dict[str, PlateFormats]:
        """These patterns split by region, each repairing with `REGION_GUESS_SWAPS`."""
        return region_formats(self, REGION_GUESS_SWAPS)

    @classmethod
    def default(cls, regions: Iterable[str] | None = None, **kwargs: object) -> PlateFormats:
        """The shipped patterns, optionally only those of ``regions`` (e.g. ["br"])."""
        wanted: set[str] | None = None
        if regions is not None:
            wanted = set()
            for r in regions:
                wanted.update(REGION_GROUPS.get(r.lower(), (r.lower(),)))
        if wanted is not None:
            known = {str(p["region"]) for p in DEFAULT_PATTERNS}
            if wanted - known:
                raise ValueError(
                    f"plate formats: unknown regions {sorted(wanted - known)}; "
                    f"known: {sorted(known)}"
                )
        pats = [p for p in DEFAULT_PATTERNS if wanted is None or p["region"] in wanted]
        return cls(pats, **kwargs)  # type: ignore[arg-type]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.patterns]

    def match(self, text: str) -> str | None:
        """Name of the first strong pattern ``text`` matches, else the first weak one, else None."""
        text = normalize_plate(text)
        weak: str | None = None
        for p in self.patterns:
            if p.matches(text):
                if not p.weak:
                    return p.name
                weak = weak or p.name
        return weak

    def is_strong(self, name: str | None) -> bool:
        return any(p.name == name and not p.weak for p in self.patterns)

    def repair(
        self, text: str, char_confidences: Sequence[float] | None = None
    ) -> tuple[str, str] | None:
        """Validate and, if needed, repair a read: returns (text, pattern name) or None.

        A read matching a strong pattern is returned unchanged. Otherwise each strong pattern is
        tried with confusable swaps (O<->0, I<->1, ...) only where the pattern demands the other
        class; the cheapest (fewest swaps, then lowest summed confidence of swapped chars, then
        list order) within ``max_swaps`` wins. Failing that, a weak match returns the text as-is.
        """
        text = normalize_plate(text)
        if char_confidences is not None and len(char_confidences) != len(text):
            raise ValueError(
                f"plate repair: {len(char_confidences)} confidences for {len(text)} characters "
                f"({text!r}; pass confidences of the normalised text)"
            )
        confs = list(char_confidences) if char_confidences is not None else [0.5] * len(text)
        if self.protect_confidence is not None:
            # a protected character costs more swaps than allowed, so it is never changed
            text_conf = [c if c < self.protect_confidence else float("inf") for c in confs]
        else:
            text_conf = confs
        weak: str | None = None
        for p in self.patterns:
            if p.matches(text):
                if not p.weak:
                    return text, p.name
                weak = weak or p.name
        best: tuple[tuple[int, float], str, str] | None = None
        for p in self.patterns:
            if p.weak:
                continue
            r = p.repair(text, text_conf)
            if r is None:
                continue
            fixed, swaps, cost = r
            if swaps > self.max_swaps or cost == float("inf"):
                continue
            if best is None or (swaps, cost) < best[0]:
                best = ((swaps, cost), fixed, p.name)
        if best is not None:
            return best[1], best[2]
        return (text, weak) if weak is not None else None


# A pattern accepting more letter/digit layouts than this is a catch-all (Germany: 32 layouts,
# India 8, Finland 6): Germany's fits 22 of openalpr-dev's 77 found US plates one swap away, so
# a read fitting it says little about the plate's country. The one-layout formats of Brazil,
# the Netherlands, Italy, France, Spain and the UK say more, as do Ecuador's 2 and Croatia's 4.
MAX_LAYOUTS = 4


@functools.cache
def pattern_layouts(pattern: PlatePattern) -> int:
    """How many letter/digit layouts a pattern accepts (``[A-Z]{3}[0-9]{3,4}``: 2)."""
    kinds = [
        "L" if s.chars <= LETTERS else "D" if s.chars <= DIGITS else "X" for s in pattern.slots
    ]
    optional = [i for i, s in enumerate(pattern.slots) if s.optional]
    layouts = set()
    for drop in itertools.product((False, True), repeat=len(optional)):
        gone = {i for i, d in zip(optional, drop, strict=True) if d}
        layouts.add("".join(k for i, k in enumerate(kinds) if i not in gone))
    return len(layouts)


def region_alternative(
    text: str,
    others: Iterable[str],
    shipped: PlateFormats,
    by_region: Mapping[str, PlateFormats] | None = None,
    max_layouts: int = MAX_LAYOUTS,
) -> str | None:
    """The one read among ``others`` that the plate should be read as when no region is chosen.

    ``text`` (the voted read) must fit no strong format; an alternative must fit a strong,
    specific (at most ``max_layouts`` layouts) format of some region, and that region's repair
    of ``text`` must give exactly it, so the two differ only by confusable characters in the
    positions the format fixes. None unless exactly one such read exists. ``by_region``: the
    per-region formats that repair (default ``shipped.by_region``)."""
    if not text or shipped.is_strong(shipped.match(text)):
        return None
    by_region = shipped.by_region if by_region is None else by_region
    found = set()
    for alt in set(others):
        if alt == text or len(alt) != len(text):
            continue
        for p in shipped.patterns:
            if p.weak or not p.matches(alt) or pattern_layouts(p) > max_layouts:
                continue
            region = by_region.get(p.region)
            fixed = region.repair(text) if region is not None else None
            if fixed is not None and fixed[0] == alt:
                found.add(alt)
                break
    return found.pop() if len(found) == 1 else None


def edge_alternative(
    text: str, others: Iterable[str], shipped: PlateFormats, max_layouts: int = MAX_LAYOUTS
) -> str | None:
    """The one read among ``others`` that is ``text`` without its first or its last character
    and fits a strong, specific (at most ``max_layouts`` layouts) format, when ``text`` fits
    none: a border, sticker or flag-band mark read as a character of the plate (``PRK828AG``
    for the Croatian ``RK828AG``). The character dropped must be a letter (marks read as B, Q,
    I, P): a digit is more likely the plate's own, and a Californian ``7AWV401`` whose first
    digit a partial read missed must not become the Ecuadorian-shaped ``AWV401``. None unless
    exactly one such read exists."""
    if len(text) < 2 or shipped.is_strong(shipped.match(text)):
        return None
    found = set()
    for alt in set(others):
        if not (
            (alt == text[1:] and text[0] in LETTERS) or (alt == text[:-1] and text[-1] in LETTERS)
        ):
            continue
        if any(
            not p.weak and p.matches(alt) and pattern_layouts(p) <= max_layouts
            for p in shipped.patterns
        ):
            found.add(alt)
    return found.pop() if len(found) == 1 else None


def region_formats(patterns: PlateFormats, max_swaps: int | None = None) -> dict[str, PlateFormats]:
    """The patterns of ``patterns`` split by region (order kept), for `region_alternative`;
    each repairs with ``max_swaps`` (default: that of ``patterns``)."""
    by: dict[str, list[PlatePattern]] = {}
    for p in patterns.patterns:
        if p.region:
            by.setdefault(p.region, []).append(p)
    swaps = patterns.max_swaps if max_swaps is None else max_swaps
    return {r: PlateFormats(ps, max_swaps=swaps) for r, ps in by.items()}
