"""Where the shipped models and the demo clip are, in a checkout and in an installed wheel.

In a checkout (and an editable install) they are the repository's ``models/`` and
``samples/``; a wheel carries copies in ``edge/_bundled/`` (setup.py puts them there).
``$PLATEWATCH_MODELS`` points at another models folder.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
_BUNDLED = _PACKAGE / "_bundled"


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]  # the checkout path: the error then names where they belong


def models_dir() -> Path:
    """``$PLATEWATCH_MODELS``, else the checkout's ``models/``, else the wheel's copy."""
    env = os.environ.get("PLATEWATCH_MODELS")
    if env:
        return Path(env)
    return _first_existing(_CHECKOUT / "models", _BUNDLED / "models")


def demo_clip() -> Path:
    """``samples/demo.mp4`` of the checkout, else the wheel's copy."""
    return _first_existing(_CHECKOUT / "samples" / "demo.mp4", _BUNDLED / "samples" / "demo.mp4")
