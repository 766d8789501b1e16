"""Plate text as a track's appearance: when two reads can be the same plate.

The tracker is geometric, and geometry alone cannot tell two cars apart that stop at the same
spot one after the other (a barrier, a kiosk): the next car's box lands where the last one's
lost track is predicted. Like DeepSORT's appearance embedding, a confident read is a cue that
costs nothing here (the reader runs before tracking): a track and a detection whose confident
reads cannot be the same plate are never associated. Everything else stays geometric, so a track
without confident reads (far away, blurred, a vehicle before its plate is readable) is matched
exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.vote.text import fold_confusables, levenshtein, normalize_plate


def identity_text(
    text: str, confidence: float, min_confidence: float | None, min_length: int = 4
) -> str | None:
    """The read as an identity cue: normalised and O/0-I/1-folded when its weakest character
    has ``min_confidence`` and it is long enough to tell plates apart; else None (no cue)."""
    t = fold_confusables(normalize_plate(text))
    if min_confidence is None or confidence < min_confidence or len(t) < min_length:
        return None
    return t


def same_plate(a: str, b: str) -> bool:
    """Can two (folded) reads be one plate? Yes within ``max(2, 35 %)`` edits of the longer
    (two misread characters, or one missed at the frame's edge), or when one is a piece of the
    other (a plate entering the frame, cut by an occluder). Different plates of one country are
    typically 4 or more edits apart."""
    if a == b or a in b or b in a:
        return True
    limit = max(2, round(0.35 * max(len(a), len(b))))
    return levenshtein(a, b, max_distance=limit) <= limit


def compatible(track_texts: Iterable[str], text: str | None) -> bool:
    """A detection may join a track unless both carry identity texts and the detection's text
    is the same plate as none of the track's recent ones."""
    texts = list(track_texts)
    if text is None or not texts:
        return True
    return any(same_plate(t, text) for t in texts)
