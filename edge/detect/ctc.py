"""CTC decoding for the plate reader. Pure numpy, shared by every backend and by training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLANK = 0


@dataclass(frozen=True)
class Decoded:
    text: str
    char_confidences: tuple[float, ...]

    @property
    def confidence(self) -> float:
        """Plate confidence = product-free, length-fair: the weakest character decides.

        A plate is only as trustworthy as its least certain character; the mean would let seven
        sure characters hide one guess."""
        return min(self.char_confidences) if self.char_confidences else 0.0


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def greedy_decode(probs: np.ndarray, alphabet: str) -> Decoded:
    """Best-path decode of one sequence of per-timestep probabilities (T, C), blank = class 0.

    ``alphabet[i]`` is class ``i + 1``. Repeats are collapsed unless separated by a blank; a
    character's confidence is the highest probability it reached over the frames it spans.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != len(alphabet) + 1:
        raise ValueError(
            f"expected (T, {len(alphabet) + 1}) probabilities for a {len(alphabet)}-character"
            f" alphabet, got {probs.shape}"
        )
    best = probs.argmax(axis=1)
    best_p = probs[np.arange(probs.shape[0]), best]
    chars: list[str] = []
    confs: list[float] = []
    prev = BLANK
    for cls, p in zip(best.tolist(), best_p.tolist(), strict=True):
        if cls != BLANK:
            if cls != prev:
                chars.append(alphabet[cls - 1])
                confs.append(p)
            else:
                confs[-1] = max(confs[-1], p)
        prev = cls
    return Decoded("".join(chars), tuple(confs))


def greedy_decode_batch(probs: np.ndarray, alphabet: str) -> list[Decoded]:
    """(B, T, C) probabilities -> one Decoded per row."""
    return [greedy_decode(p, alphabet) for p in probs]
