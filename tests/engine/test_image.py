"""Decoding: formats, colour modes, EXIF orientation, and a typed error for every bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.engine.image import ImageLimits, decode_image, sniff_format
from facegate.errors import (
    EmptyImageError,
    ImageBytesTooLargeError,
    ImagePixelsTooLargeError,
    ImageTooLargeException,
    ImageTooSmallError,
    InvalidImageFormatException,
    InvalidParameterException,
    TruncatedImageError,
    UnsupportedImageFormatError,
)
from tests.imaging import open_rgb, to_jpeg, to_png


def test_jpeg_decodes_to_rgb(sample_bytes: Callable[[str], bytes]) -> None:
    image = decode_image(sample_bytes("obama.jpg"))
    assert image.image_format == "JPEG"
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == (1137, 910, 3)
    assert image.pixels.flags["C_CONTIGUOUS"]
    assert len(image.sha256) == 64


def test_rgba_png_is_composited_to_rgb(sample_bytes: Callable[[str], bytes]) -> None:
    data = sample_bytes("32bit.png")
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode == "RGBA"
    image = decode_image(data)
    assert image.image_format == "PNG"
    assert image.pixels.shape[2] == 3


def test_grayscale_png_is_expanded(sample_bytes: Callable[[str], bytes]) -> None:
    data = sample_bytes("camera.png")
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode == "L"
        gray = np.asarray(raw)
    image = decode_image(data)
    assert image.pixels.shape == (*gray.shape, 3)
    assert np.array_equal(image.pixels[..., 0], gray)
    assert np.array_equal(image.pixels[..., 2], gray)


def test_palette_and_16_bit_png_decode(samples: Path) -> None:
    base = open_rgb(samples / "obama-240p.jpg")
    palette = decode_image(to_png(base.convert("P")))
    assert palette.pixels.shape == (240, 427, 3)
    gray8 = np.asarray(base.convert("L"), dtype=np.uint16)
    decoded = decode_image(to_png(Image.fromarray(gray8 * 257)))
    assert decoded.pixels.shape == (240, 427, 3)
    # Scaled from 16 to 8 bits (not clipped to white): the original grey levels come back.
    assert np.abs(decoded.pixels[..., 0].astype(int) - gray8.astype(int)).max() <= 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(samples: Path, orientation: int) -> None:
    upright = decode_image((samples / "obama.jpg").read_bytes())
    rotated = decode_image((samples / f"rotated/obama_exif_orient{orientation}.jpg").read_bytes())
    assert rotated.exif_orientation == orientation
    assert rotated.pixels.shape == upright.pixels.shape
    # Same picture up to JPEG re-encoding: mean absolute difference of a few grey levels.
    diff = np.abs(rotated.pixels.astype(int) - upright.pixels.astype(int)).mean()
    assert diff < 6.0


def test_sniff_format() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0rest") == "JPEG"
    assert sniff_format(b"\x89PNG\r\n\x1a\nrest") == "PNG"
    assert sniff_format(b"GIF89a") is None


def test_empty_bytes() -> None:
    with pytest.raises(EmptyImageError, match="empty") as info:
        decode_image(b"")
    assert isinstance(info.value, InvalidParameterException)
    assert info.value.code == "InvalidParameterException"


def test_oversized_bytes_are_refused_before_decoding() -> None:
    data = b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)
    with pytest.raises(ImageBytesTooLargeError, match="5242880") as info:
        decode_image(data)
    assert info.value.code == "ImageTooLargeException"


@pytest.mark.parametrize(
    "data",
    [b"hello, not an image", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", b"BM" + b"\0" * 100],
)
def test_other_formats_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImageFormatError, match="JPEG or PNG") as info:
        decode_image(data)
    assert info.value.code == "InvalidImageFormatException"


def test_webp_is_refused_even_though_pillow_reads_it(samples: Path) -> None:
    buf = io.BytesIO()
    open_rgb(samples / "obama-240p.jpg").save(buf, format="WEBP")
    with pytest.raises(UnsupportedImageFormatError):
        decode_image(buf.getvalue())


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(sample_bytes: Callable[[str], bytes], keep: float) -> None:
    data = sample_bytes("obama.jpg")
    with pytest.raises(TruncatedImageError, match="truncated or corrupt") as info:
        decode_image(data[: int(len(data) * keep)])
    assert isinstance(info.value, InvalidImageFormatException)


def test_truncated_png_and_header_only(sample_bytes: Callable[[str], bytes]) -> None:
    data = sample_bytes("astronaut.png")
    with pytest.raises(TruncatedImageError):
        decode_image(data[: len(data) // 2])
    with pytest.raises(TruncatedImageError):
        decode_image(data[:12])


def test_decompression_bomb_is_refused_from_the_header() -> None:
    # 12,000 x 12,000 one-bit PNG: a few kB of bytes, 144 megapixels once decoded.
    bomb = Image.new("1", (12_000, 12_000))
    data = to_png(bomb)
    assert len(data) < 100_000
    with pytest.raises(ImagePixelsTooLargeError, match="144000000 pixels") as info:
        decode_image(data)
    assert isinstance(info.value, ImageTooLargeException)


def test_pixel_cap_is_configurable(sample_bytes: Callable[[str], bytes]) -> None:
    with pytest.raises(ImagePixelsTooLargeError):
        decode_image(sample_bytes("obama.jpg"), ImageLimits(max_pixels=1_000_000))


def test_too_small_image() -> None:
    tiny = Image.new("RGB", (79, 200), (128, 128, 128))
    with pytest.raises(ImageTooSmallError, match="at least 80 pixels") as info:
        decode_image(to_jpeg(tiny))
    assert info.value.code == "InvalidParameterException"
    assert decode_image(to_jpeg(Image.new("RGB", (80, 80)))).width_px == 80
