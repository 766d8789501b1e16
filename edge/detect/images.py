"""Still images in: finding them in folders and decoding them to BGR frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


class ImageError(Exception):
    """One input could not be read; the message is meant for the user."""


def iter_images(paths: list[str]) -> Iterator[tuple[str, str | None]]:
    """Yield (path, error) in argument order; folders are walked recursively, sorted."""
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                yield arg, f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder"
            for f in found:
                yield str(f), None
        elif p.is_file():
            yield arg, None
        else:
            yield arg, "no such file or folder"


def read_image(path: str) -> np.ndarray:
    """Decode an image file to BGR uint8; ImageError with the reason if impossible."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike imread
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ImageError("file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError("not a decodable image (corrupt or unsupported format)")
    return image
