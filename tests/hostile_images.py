"""Generated image files for the still-image tests: real encodings and hostile ones."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` RGB, with a few rows of data: what a
    decoder sees first in a 50000 x 50000 decompression bomb (its 2.4 MB of zlib follow)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def encoded(ext: str, width: int = 96, height: int = 40) -> bytes:
    """A noise image of that size in that format (cv2.imencode extension)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()
