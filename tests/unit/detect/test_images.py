"""Decoding still images safely (edge.detect.images): headers read before decoding, hostile
files refused with a reason, large JPEGs decoded reduced."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_images import encoded, png_bomb

from edge.detect import images
from edge.detect.images import (
    ImageError,
    ImageHeader,
    decode_image,
    decode_reduction,
    image_header,
    read_image,
)


@pytest.mark.parametrize("ext,fmt", [(".jpg", "jpeg"), (".png", "png"), (".bmp", "bmp"),
                                     (".webp", "webp"), (".tiff", "tiff")])  # fmt: skip
def test_headers_of_every_format(ext: str, fmt: str) -> None:
    assert image_header(encoded(ext, 96, 40)) == ImageHeader(fmt, 96, 40)


def test_lossless_webp_and_exif_jpeg_headers() -> None:
    img = np.zeros((33, 77, 3), np.uint8)
    ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
    assert ok and buf.tobytes()[12:16] == b"VP8L"
    assert image_header(buf.tobytes()) == ImageHeader("webp", 77, 33)
    # an APP1 segment holding a thumbnail's own frame header must not be taken for the image's
    jpeg = encoded(".jpg", 64, 32)
    thumb = encoded(".jpg", 8, 8)
    app1 = b"\xff\xe1" + struct.pack(">H", len(thumb) + 8) + b"Exif\x00\x00" + thumb
    assert image_header(jpeg[:2] + app1 + jpeg[2:]) == ImageHeader("jpeg", 64, 32)


@pytest.mark.parametrize(
    "data,why",
    [
        (b"hello, this is a text file named car.jpg\n", "not JPEG, PNG"),
        (b"\xff\xd8\xff\xe0 this is not really a jpeg", "JPEG"),
        (encoded(".jpg")[:300], "JPEG"),  # cut in the middle of the scan
        (encoded(".png")[:-20], "truncated PNG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"BM\x00", "BMP"),
    ],
)
def test_broken_headers_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(ImageError, match="not a decodable image") as exc:
        image_header(data)
    assert why in str(exc.value)


def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    assert bomb.stat().st_size < 100_000

    def never(*_: object) -> None:
        raise AssertionError("decoded a 2.5 gigapixel image")

    monkeypatch.setattr(images.cv2, "imdecode", never)
    with pytest.raises(ImageError, match="too large: 50000 x 50000 PNG") as exc:
        read_image(str(bomb))
    assert "100 megapixels" in str(exc.value) and "--max-pixels" in str(exc.value)


def test_pixel_limit_is_an_option(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encoded(".png", 100, 50))
    assert read_image(str(path), max_pixels=5000).shape == (50, 100, 3)
    with pytest.raises(ImageError, match="too large"):
        read_image(str(path), max_pixels=4999)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_image(str(empty))
    with pytest.raises(ImageError, match="cannot read"):
        read_image(str(tmp_path / "missing.jpg"))


def test_decode_reduction_keeps_the_long_side() -> None:
    big = ImageHeader("jpeg", 20_000, 20_000)
    assert decode_reduction(big, 4160) == 4  # 5000 px kept; 1/8 would leave 2500
    assert decode_reduction(ImageHeader("jpeg", 50_000, 30_000), 4160) == 8
    assert decode_reduction(ImageHeader("jpeg", 8000, 6000), 4160) == 1  # 4000 < 4160
    assert decode_reduction(ImageHeader("jpeg", 1280, 720), 4160) == 1
    assert decode_reduction(big, None) == 1
    assert decode_reduction(ImageHeader("png", 20_000, 20_000), 4160) == 1  # decodes whole


def test_large_jpeg_decodes_reduced_and_says_by_how_much(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(encoded(".jpg", 2400, 1000))
    full = decode_image(str(path))
    assert full.image.shape == (1000, 2400, 3) and full.scale == 1.0
    small = decode_image(str(path), min_long_side=600)
    assert small.image.shape == (250, 600, 3)
    assert (small.width, small.height, small.scale) == (2400, 1000, 4.0)
    # the pixel limit counts what is decoded: 150000 pixels at 1/4
    assert decode_image(str(path), max_pixels=150_000, min_long_side=600).scale == 4.0
    with pytest.raises(ImageError, match="decoded at 1/4"):
        decode_image(str(path), max_pixels=149_999, min_long_side=600)


def test_grey_and_alpha_images_come_out_bgr(tmp_path: Path) -> None:
    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), np.full((10, 20), 7, np.uint8))
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.full((10, 20, 4), 9, np.uint8))
    assert read_image(str(grey)).shape == read_image(str(rgba)).shape == (10, 20, 3)
