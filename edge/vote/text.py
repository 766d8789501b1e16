"""Plate-text helpers shared by voting, watchlists, history and evaluation: one normalisation,
one O/0-I/1 fold and one edit distance, so every place compares plates the same way."""

from __future__ import annotations

import re

_NON_ALNUM = re.compile(r"[^0-9A-Z]")

# O/0 and I/1 are the confusions a plate font makes unreadable even to people; folding them makes
# "AB0123" and "ABO123" the same plate instead of distance 1 (which would eat the tolerance).
_FOLD = str.maketrans({"O": "0", "I": "1"})


def normalize_plate(text: str) -> str:
    """Upper case, separators/spaces/punctuation removed: ``"ab-12 3"`` -> ``"AB123"``."""
    return _NON_ALNUM.sub("", text.upper())


def fold_confusables(text: str) -> str:
    """Map O->0 and I->1 (apply after normalize_plate)."""
    return text.translate(_FOLD)


def levenshtein(a: str, b: str, max_distance: int | None = None) -> int:
    """Edit distance (insert, delete, substitute each cost 1).

    With ``max_distance`` the computation stays in the diagonal band |i-j| <= max_distance and
    returns ``max_distance + 1`` as soon as the distance is known to exceed it: this keeps fuzzy
    search over 1e5 plates fast in pure Python.
    """
    if a == b:
        return 0
    la, lb = len(a), len(b)
    if max_distance is not None:
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        if abs(la - lb) > max_distance:
            return max_distance + 1
    if la == 0 or lb == 0:
        d = max(la, lb)
        return d if max_distance is None else min(d, max_distance + 1)
    if max_distance is None:
        prev = list(range(lb + 1))
        for i in range(1, la + 1):
            cur = [i] + [0] * lb
            ca = a[i - 1]
            for j in range(1, lb + 1):
                cost = 0 if ca == b[j - 1] else 1
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            prev = cur
        return prev[lb]
    k = max_distance
    big = k + 1
    prev = [j if j <= k else big for j in range(lb + 1)]
    for i in range(1, la + 1):
        lo = max(1, i - k)
        hi = min(lb, i + k)
        cur = [big] * (lb + 1)
        if i <= k:
            cur[0] = i
        ca = a[i - 1]
        row_min = cur[0] if lo == 1 else big
        for j in range(lo, hi + 1):
            cost = 0 if ca == b[j - 1] else 1
            v = prev[j - 1] + cost
            if prev[j] + 1 < v:
                v = prev[j] + 1
            if cur[j - 1] + 1 < v:
                v = cur[j - 1] + 1
            if v > big:
                v = big
            cur[j] = v
            if v < row_min:
                row_min = v
        if row_min > k:
            return big
        prev = cur
    return min(prev[lb], big)
