"""Still images in: finding them in folders and decoding them to BGR frames, safely.

A file's header is read before anything is decoded (`image_header`, pure, our own small
parser for JPEG, PNG, BMP, WebP and TIFF: no extra dependency), because a hostile file is
small on disk and huge in memory: a 50000 x 50000 PNG of one colour is 2.4 MB of zlib and
7.5 GB of pixels (OpenCV then raises instead of returning, and a batch would stop there).
`read_image` refuses an image above ``max_pixels`` with a message, so the caller reports it and
goes on with the next file. A truncated file (no JPEG end marker, no PNG ``IEND``) is refused
too: decoders disagree on those (some return the top of the picture over grey, some nothing).

A very large JPEG is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg scales while decoding:
less time, a fraction of the memory) when the plate search allows it (`decode_reduction`):
the detector sees a ~416 px letterbox anyway, and plates are read from the decoded pixels, so
the reduced image keeps at least ``min_long_side`` pixels on its long side (the commands use
10x the detector's input: a plate the detector can still find, about 12 of its 416 px, is then
still about 120 px wide, the reader's input width).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

# Default refusal limit: 100 million pixels decoded (300 MB as BGR; a 12000 x 8000 photo is 96).
# JPEGs count at the size they are decoded to (`decode_reduction`).
MAX_PIXELS = 100_000_000
# Default smallest long side a reduced decode keeps (the commands pass 10x the detector input).
MIN_LONG_SIDE = 4160
REDUCTIONS = (1, 2, 4, 8)  # what libjpeg can scale by while decoding
_REDUCED_FLAG = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


class ImageError(Exception):
    """One input could not be read; the message is meant for the user."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says: its format and stored size in pixels."""

    format: str  # "jpeg", "png", "bmp", "webp", "tiff"
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class DecodedImage:
    """A decoded still: ``image`` (BGR) is ``scale`` times smaller than the file's
    ``width`` x ``height`` (1 unless decoded reduced); multiply its pixel coordinates by
    ``scale`` to get the file's."""

    image: np.ndarray
    width: int
    height: int
    scale: float = 1.0


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


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC
# share the range but are tables.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_NO_LENGTH = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: bare markers


def _jpeg(data: bytes) -> ImageHeader:
    i, n = 2, len(data)
    size: tuple[int, int] | None = None
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageError("not a decodable image (corrupt JPEG: marker expected)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _NO_LENGTH:
            i += 2
            continue
        (length,) = struct.unpack_from(">H", data, i + 2)
        if marker in _SOF and size is None and i + 9 <= n:
            height, width = struct.unpack_from(">HH", data, i + 5)
            size = (width, height)
        if marker == 0xDA:  # start of scan: the entropy-coded picture follows
            if size is None:
                raise ImageError("not a decodable image (corrupt JPEG: no frame header)")
            if data.rfind(b"\xff\xd9", i) < 0:
                raise ImageError("not a decodable image (truncated JPEG: no end marker)")
            return ImageHeader("jpeg", *size)
        i += 2 + length
    raise ImageError("not a decodable image (truncated or corrupt JPEG header)")


def _png(data: bytes) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("not a decodable image (corrupt PNG: no IHDR)")
    width, height = struct.unpack_from(">II", data, 16)
    if data.rfind(b"IEND") < 0:
        raise ImageError("not a decodable image (truncated PNG: no IEND)")
    return ImageHeader("png", width, height)


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise ImageError("not a decodable image (truncated BMP header)")
    (dib,) = struct.unpack_from("<I", data, 14)
    if dib == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return ImageHeader("bmp", abs(width), abs(height))  # negative height: top-down rows


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", w, h)
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack_from("<I", data, 21)
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack_from("<HH", data, 26)
        return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF)
    raise ImageError("not a decodable image (corrupt WebP header)")


def _tiff(data: bytes) -> ImageHeader:
    end = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", data, 4)
        (count,) = struct.unpack_from(end + "H", data, ifd)
        size: dict[int, int] = {}
        for k in range(count):
            tag, kind, _, value = struct.unpack_from(end + "HHI4s", data, ifd + 2 + 12 * k)
            if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
                fmt = end + ("H" if kind == 3 else "I")
                size[tag] = struct.unpack_from(fmt, value)[0]
    except struct.error:
        raise ImageError("not a decodable image (truncated TIFF header)") from None
    if 256 not in size or 257 not in size:
        raise ImageError("not a decodable image (TIFF without a size)")
    return ImageHeader("tiff", size[256], size[257])


def image_header(data: bytes) -> ImageHeader:
    """Format and size from the first bytes of an image file; ImageError if the file is not
    one of the formats read here or its header is broken. Reads headers only, decodes nothing
    (the whole file is only searched for its end marker: a truncated file is refused)."""
    try:
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:2] == b"BM":
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)
    except struct.error:
        raise ImageError("not a decodable image (truncated header)") from None
    raise ImageError(
        f"not a decodable image (not JPEG, PNG, BMP, WebP or TIFF: starts with {data[:8]!r})"
    )


def decode_reduction(header: ImageHeader, min_long_side: int | None) -> int:
    """The largest factor (1, 2, 4, 8) to decode ``header``'s image down by while its long side
    stays at least ``min_long_side`` pixels; only JPEG scales while decoding, other formats
    always decode whole (1); ``min_long_side`` None: never reduce."""
    if header.format != "jpeg" or min_long_side is None:
        return 1
    long_side = max(header.width, header.height)
    return max(f for f in REDUCTIONS if f == 1 or long_side / f >= min_long_side)


def decode_image(
    path: str, max_pixels: int = MAX_PIXELS, min_long_side: int | None = None
) -> DecodedImage:
    """Decode an image file to BGR uint8, reduced on decode when allowed (`decode_reduction`);
    ImageError with the reason when it cannot or should not be decoded."""
    try:
        with open(path, "rb") as fh:  # any path, unlike cv2.imread (non-ASCII names)
            raw = fh.read()
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    if not raw:
        raise ImageError("file is empty")
    header = image_header(raw)
    data = np.frombuffer(raw, np.uint8)  # no copy
    if header.width == 0 or header.height == 0:
        raise ImageError(f"not a decodable image ({header.format} of size 0)")
    factor = decode_reduction(header, min_long_side)
    decoded = -(-header.width // factor) * -(-header.height // factor)
    if decoded > max_pixels:
        raise ImageError(
            f"image too large: {header.width} x {header.height} {header.format.upper()} "
            f"({header.pixels / 1e6:.0f} megapixels"
            + (f", {decoded / 1e6:.0f} decoded at 1/{factor}" if factor > 1 else "")
            + f"), above the limit of {max_pixels / 1e6:g} megapixels (--max-pixels)"
        )
    try:
        image = cv2.imdecode(data, _REDUCED_FLAG[factor])
    except cv2.error as exc:  # OpenCV's own limits, a decoder's hard failure
        raise ImageError(f"not a decodable image ({str(exc).strip().splitlines()[-1]})") from None
    if image is None:
        raise ImageError("not a decodable image (corrupt or unsupported format)")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # EXIF orientation may have turned the picture: compare long sides, not widths.
    scale = max(header.width, header.height) / max(image.shape[:2])
    h, w = image.shape[:2]
    return DecodedImage(image, int(round(w * scale)), int(round(h * scale)), scale)


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to BGR uint8 at full resolution (header checked first); ImageError
    with the reason if impossible."""
    return decode_image(path, max_pixels).image
