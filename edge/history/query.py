"""One search plan for both history stores (SQLite on a device, PostgreSQL at the centre).

`edge.history.store.HistoryStore` and `edge.central.pg_history.PgHistory` differ only in SQL
spelling and in how they run a query; what a search means (its filters, the plate query, the
pigeonhole prefilter and the ranking) is written once here, so the two cannot drift apart.
A `Dialect` names the spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.rules.privacy import keyed_hash
from edge.vote.text import fold_confusables, levenshtein, normalize_plate


@dataclass(frozen=True)
class Dialect:
    mark: str  # bound-parameter placeholder: "?" or "%s"
    ts: str  # the column ordered and filtered by time
    not_hashed: str  # the condition "the plate is stored in clear"
    hashed: str  # ... "stored as a keyed hash"
    time_arg: Callable[[float], Any]  # epoch seconds -> the time column's parameter
    glob: Callable[[str], tuple[str, Any]]  # glob query -> (condition, parameter)
    contains: Callable[[str, str], tuple[str, Any]]  # (column, piece) -> (condition, parameter)


def check_args(max_distance: int, limit: int | None) -> None:
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")


def filters(
    dialect: Dialect,
    *,
    device: str | None,
    camera: str | None,
    since: float | None,
    until: float | None,
    watchlist: str | None,
    has_device: bool = True,
) -> tuple[list[str], list[Any]]:
    """The WHERE conditions and their parameters shared by every search. ``has_device``
    False (a database from before the device column): a device filter matches nothing."""
    m = dialect.mark
    where: list[str] = []
    args: list[Any] = []
    if device is not None:
        where.append(f"e.device = {m}" if has_device else "0")
        if has_device:
            args.append(device)
    if camera is not None:
        where.append(f"e.camera = {m}")
        args.append(camera)
    for value, op in ((since, ">="), (until, "<=")):
        if value is not None:
            where.append(f"{dialect.ts} {op} {m}")
            args.append(dialect.time_arg(value))
    if watchlist == "*":
        where.append("e.watchlist IS NOT NULL")
    elif watchlist is not None:
        where.append(f"e.watchlist = {m}")
        args.append(watchlist)
    return where, args


@dataclass(frozen=True)
class PlateQuery:
    glob: bool  # ``*``/``?`` pattern: matched as is, no fuzziness, no hash
    text: str  # the glob, or the normalised plate
    hashed: str | None  # the keyed hash to look for too (privacy_key given)


def plate_query(plate: str, privacy_key: str | bytes | None) -> PlateQuery:
    glob = "*" in plate or "?" in plate
    text = plate.upper().replace(" ", "") if glob else normalize_plate(plate)
    if not text:
        raise ValueError(f"plate {plate!r} has no letters or digits")
    hashed = keyed_hash(text, privacy_key) if privacy_key is not None and not glob else None
    return PlateQuery(glob, text, hashed)


def pieces(text: str, n: int) -> list[str]:
    """Split ``text`` into ``n`` contiguous, near-equal, non-empty pieces (pigeonhole filter)."""
    size, extra = divmod(len(text), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def fuzzy_conditions(dialect: Dialect, col: str, probe: str, d: int) -> tuple[list[str], list[Any]]:
    """Clear-text rows that can be within ``d`` edits of ``probe``: length within ``d`` and, by
    pigeonhole, holding one of its ``d + 1`` pieces intact (no false negatives)."""
    m = dialect.mark
    cond = [dialect.not_hashed, f"e.plate_len BETWEEN {m} AND {m}"]
    args: list[Any] = [len(probe) - d, len(probe) + d]
    parts = pieces(probe, d + 1) if len(probe) >= d + 1 else []
    if parts:
        sql_args = [dialect.contains(col, p) for p in parts]
        cond.append("(" + " OR ".join(s for s, _ in sql_args) + ")")
        args += [a for _, a in sql_args]
    return cond, args


def epoch(ts: float | datetime) -> float:
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def rank(
    rows: Iterable[tuple[int, float | datetime, str]], probe: str, d: int
) -> list[tuple[int, float, int]]:
    """(distance, -time, id) of the candidate rows within ``d`` edits (banded Levenshtein,
    once per distinct text)."""
    scored = []
    cache: dict[str, int] = {}
    for rid, ts, text in rows:
        dist = cache.get(text)
        if dist is None:
            dist = cache[text] = levenshtein(probe, text, d)
        if dist <= d:
            scored.append((dist, -epoch(ts), rid))
    return scored


def probe_of(query: PlateQuery, fold: bool) -> tuple[str, str]:
    """(probe text, column) of a literal plate query: O/0-I/1-folded when ``fold``."""
    return (fold_confusables(query.text), "e.plate_fold") if fold else (query.text, "e.plate")
