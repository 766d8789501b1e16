"""Synthetic licence plates and plate-in-scene composites for reader and detector training.

Public API: ``generate_plate``, ``SynthPlate``, ``STYLES``, ``style_region``, ``style_regex``,
``composite_scene``, ``composite_on_vehicle``. Rendering is offline: glyphs come from the shared
``plate-chars`` data (when present) and DejaVu TTFs shipped with matplotlib / the OS.
"""

from .layouts import ALPHABET, REGIONS, STYLE_SPECS, STYLES, style_regex, style_region
from .plates import SynthPlate, generate_plate

__all__ = [
    "ALPHABET",
    "REGIONS",
    "STYLE_SPECS",
    "STYLES",
    "SynthPlate",
    "generate_plate",
    "style_regex",
    "style_region",
    "composite_scene",
    "composite_on_vehicle",
]


def __getattr__(name: str):  # composites pull in records; import them on first use
    if name in ("composite_scene", "composite_on_vehicle"):
        from . import composite

        return getattr(composite, name)
    raise AttributeError(name)
