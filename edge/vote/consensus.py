"""The consensus of a track's reads: many noisy reads of one plate -> one voted text.

Pure and incremental: `ReadTally` aggregates reads per distinct text as they come (a long track
has hundreds of reads but a handful of texts), `consensus_of` votes on the tally.

Consensus, step by step (``consensus_of``):
1. every read weighs its weakest character's confidence (a junk read of a blurred crop often
   has several sure characters and one or two guesses: its mean confidence would let twenty
   such reads outweigh five clean ones, its weakest character does not);
2. a first position-wise vote over the reads of the confidence-weighted modal length gives a
   centroid; each read votes for its character with that character's confidence;
3. outlier rejection: only reads within ``cluster_similarity`` of the centroid (or one edit)
   stay (another plate seen by the same track, junk text);
4. the vote is repeated on them (modal length again, then position-wise), so a plate no single
   read got right can still win when each position is right in most reads;
5. per-character confidence = (vote share of the winner) x (probability that at least one of
   the winner's reads is right, 1 - prod(1 - c)); plate confidence = the weakest character
   (as ``edge.detect.ctc.Decoded.confidence``); ``agreement`` = weight of the reads that voted /
   weight of all reads;
6. optional region formats validate and repair the voted text (``edge.vote.formats``); with
   no region chosen (``guess_region``) only towards a region format that reads of the track
   themselves fit, read at least ``region_from_reads`` times (`region_alternative`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from edge.types import Consensus, TextCandidate, VoteRead
from edge.vote.config import ConsensusConfig
from edge.vote.formats import (
    DIGITS,
    LETTERS,
    PlateFormats,
    edge_alternative,
    region_alternative,
)
from edge.vote.text import levenshtein as _levenshtein

# --------------------------------------------------------------------------- string distance


# Only recent plates are ever compared (a track's reads, the dedupe window): a small cache
# holds them all, and a large one was most of the slow RSS growth of a 100k-frame soak.
@lru_cache(maxsize=4096)
def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1), cached."""
    return _levenshtein(a, b)


def similarity(a: str, b: str) -> float:
    """1 - levenshtein / longer length, in [0, 1]; two empty strings are identical (1.0)."""
    n = max(len(a), len(b))
    return 1.0 if n == 0 else 1.0 - levenshtein(a, b) / n


# --------------------------------------------------------------------------- reads & consensus


_CLEAN = re.compile(r"[A-Z0-9]*")


@dataclass
class _Group:
    text: str
    csum: list[float]  # per position: summed confidence
    log_miss: list[float]  # per position: sum of log(1 - confidence)
    n: int = 0
    weight: float = 0.0  # summed weakest-character confidences of its reads


class ReadTally:
    """Reads aggregated per distinct text, updated incrementally (a long track has hundreds of
    reads but a handful of texts): count, weight, per-position confidence sum and sum of
    log(1 - confidence). Texts are normalised like ``edge.vote.formats`` (upper case, A-Z0-9)."""

    def __init__(self, min_char_confidence: float = 1e-3) -> None:
        self.floor = min_char_confidence
        self.groups: dict[str, _Group] = {}

    def _norm(self, r: VoteRead) -> tuple[str, tuple[float, ...]]:
        if _CLEAN.fullmatch(r.text):
            text, confs = r.text, r.char_confidences
        else:  # keep confidences aligned with the characters that survive
            kept = [
                (ch.upper(), c)
                for ch, c in zip(r.text, r.char_confidences, strict=True)
                if ch.upper() in LETTERS or ch.upper() in DIGITS
            ]
            text, confs = "".join(ch for ch, _ in kept), tuple(c for _, c in kept)
        return text, tuple(max(self.floor, float(c)) for c in confs)

    def add(self, r: VoteRead, sign: int = 1) -> None:
        text, confs = self._norm(r)
        if not text:
            return
        g = self.groups.get(text)
        if g is None:
            if sign < 0:
                return
            self.groups[text] = g = _Group(text, [0.0] * len(text), [0.0] * len(text))
        g.n += sign
        if g.n <= 0:
            del self.groups[text]
            return
        g.weight += sign * min(confs)
        for i, c in enumerate(confs):
            g.csum[i] += sign * c
            g.log_miss[i] += sign * math.log(max(1e-12, 1.0 - c))

    def remove(self, r: VoteRead) -> None:
        self.add(r, -1)


def consensus_of(
    tally: ReadTally, formats: PlateFormats | None = None, config: ConsensusConfig | None = None
) -> Consensus | None:
    """Vote one plate out of a track's aggregated reads (the steps are in the module
    docstring); None if no non-empty read."""
    cfg = config or ConsensusConfig()
    groups = tally.groups
    if not groups:
        return None

    total_w = sum(g.weight for g in groups.values())
    heaviest = max(groups.values(), key=lambda g: (g.weight, g.text)).text

    def vote(members: list[_Group]) -> tuple[list[_Group], str, list[float]]:
        """Modal length (confidence-weighted), then a position-wise vote of that length."""
        len_w: dict[int, float] = {}
        for g in members:
            len_w[len(g.text)] = len_w.get(len(g.text), 0.0) + g.weight
        length = max(len_w, key=lambda n: (len_w[n], n == len(heaviest), n))
        voters = [g for g in members if len(g.text) == length]
        ref = heaviest if len(heaviest) == length else ""
        chars: list[str] = []
        conf: list[float] = []
        for pos in range(length):
            score: dict[str, float] = {}
            log_miss: dict[str, float] = {}
            for g in voters:
                ch = g.text[pos]
                score[ch] = score.get(ch, 0.0) + g.csum[pos]
                log_miss[ch] = log_miss.get(ch, 0.0) + g.log_miss[pos]
            # ties: the heaviest text's character, so a vote of two equal reads is one of them
            best = max(score, key=lambda ch: (score[ch], ref != "" and ch == ref[pos], ch))
            share = score[best] / sum(score.values())
            chars.append(best)
            conf.append(share * (1.0 - math.exp(log_miss[best])))
        return voters, "".join(chars), conf

    def close(a: str, b: str) -> bool:
        return levenshtein(a, b) <= 1 or similarity(a, b) >= cfg.cluster_similarity

    # round 1: a centroid from every read; round 2: only reads close to it (outliers out)
    _, centroid, _ = vote(list(groups.values()))
    members = [g for g in groups.values() if close(centroid, g.text)]
    if not members:  # reads too diverse for a centroid: fall back to the heaviest text
        members = [groups[heaviest]]
    voters, raw, char_conf = vote(members)

    text, fmt, repaired = raw, None, False
    if formats is not None:
        fixed = formats.repair(raw, char_conf)
        if fixed is not None:
            text, fmt = fixed
            repaired = text != raw
        if formats.guess_region and cfg.region_from_reads is not None:
            # No region chosen: a voted text fitting no format (a BR plate voted 0UW5216) takes
            # the track's own read of one region's specific format that differs from it only
            # by confusables (OUW5216), if read that many times: never a swap on a guess.
            seen = [g.text for g in groups.values() if g.n >= cfg.region_from_reads]
            alt = region_alternative(text, seen, formats)
            if alt is not None:
                text, fmt, repaired = alt, formats.match(alt), True
            elif cfg.edge_mark_share is not None:
                # ... or a read one character shorter at either end, read about as much: a
                # border or flag-band mark taken for a character (PRK828AG, RK828AG)
                top = max(g.weight for g in groups.values())
                heavy = [t for t in seen if groups[t].weight >= cfg.edge_mark_share * top]
                alt = edge_alternative(text, heavy, formats)
                if alt is not None:
                    cut = 1 if alt == text[1:] else 0
                    char_conf = char_conf[cut : cut + len(alt)]
                    text, fmt, repaired = alt, formats.match(alt), True
    ranked = sorted(groups.values(), key=lambda g: (-g.weight, -g.n, g.text))[: cfg.top_k]
    return Consensus(
        text=text,
        confidence=round(min(char_conf), 6),
        char_confidences=tuple(round(c, 6) for c in char_conf),
        candidates=tuple(TextCandidate(g.text, g.n, round(g.weight, 6)) for g in ranked),
        format=fmt,
        n_reads=sum(g.n for g in groups.values()),
        n_voting=sum(g.n for g in voters),
        agreement=round(sum(g.weight for g in voters) / total_w, 6),
        raw_text=raw,
        repaired=repaired,
    )
