"""Decoding: formats, colour modes, EXIF orientation, and a typed error for every bad input."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from facegate.engine.image import (
    ImageLimits,
    decode_image,
    decoded_bytes,
    sniff_format,
    work_size,
)
from facegate.errors import (
    EmptyImageError,
    ImageBytesTooLargeError,
    ImageDecodedBytesTooLargeError,
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


def _grey16_png(side: int) -> bytes:
    """A 16-bit grey PNG of ``side`` x ``side``: a few kB of bytes (flat stripes), 2 bytes a
    pixel once decoded (the issue's attack image: 6324 x 6324, 77 kB, 40 MP)."""
    arr = np.zeros((side, side), dtype=np.uint16)
    arr[::7, :] = 40_000
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def test_a_large_16_bit_grey_png_is_reduced_without_a_full_size_float_copy() -> None:
    data = _grey16_png(6324)
    assert len(data) < 2_000_000
    tracemalloc.start()
    try:
        image = decode_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The engine works on at most work_pixels (2048 x 2048 for a square image) ...
    assert image.pixels.shape == (2048, 2048, 3)
    assert (image.full_width_px, image.full_height_px) == (6324, 6324)
    assert image.reduced
    assert image.scale_x == pytest.approx(6324 / 2048)
    # ... and decoding held at most its 8-bit copy (40 MB) in numpy, not 8 bytes a pixel in
    # float64 (320 MB, and 1.1 GiB of process memory in all, before).
    assert peak < 100_000_000
    stripes = image.pixels[..., 0].astype(float)
    assert 0 < stripes.mean() < 255  # the stripes averaged by the box filter, not lost


def test_images_within_the_work_size_decode_exactly_as_pillow_does(samples: Path) -> None:
    for path in sorted(samples.rglob("*")):
        if path.suffix not in (".jpg", ".png"):
            continue
        image = decode_image(path.read_bytes())
        assert not image.reduced
        with Image.open(path) as raw:
            upright = ImageOps.exif_transpose(raw)
            if upright.mode in ("RGBA", "LA", "P"):
                continue  # composited on white: tests above
            expected = np.asarray(upright.convert("RGB"))
        assert np.array_equal(image.pixels, expected), path.name


def test_a_large_jpeg_is_drafted_then_box_filtered_to_the_work_size(samples: Path) -> None:
    base = open_rgb(samples / "obama3.jpg")  # 1434 x 2333, a real photo
    big = base.resize((6000, 4000))
    image = decode_image(to_jpeg(big, quality=90))
    assert image.pixels.shape == (1672, 2508, 3)  # 4.19 MP at most, aspect kept
    assert (image.full_width_px, image.full_height_px) == (6000, 4000)
    reference = np.asarray(big.resize((2508, 1672), Image.Resampling.BOX), dtype=float)
    assert np.abs(image.pixels.astype(float) - reference).mean() < 3.0  # JPEG noise only


def test_a_large_rotated_jpeg_reports_its_upright_size(samples: Path) -> None:
    big = open_rgb(samples / "obama.jpg").resize((3000, 2000))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: upright it is 2000 wide, 3000 high
    buf = io.BytesIO()
    big.save(buf, format="JPEG", exif=exif)
    image = decode_image(buf.getvalue())
    assert image.exif_orientation == 6
    assert (image.full_width_px, image.full_height_px) == (2000, 3000)
    assert image.height_px > image.width_px
    assert image.width_px * image.height_px <= ImageLimits().work_pixels


def test_the_decoded_size_is_checked_from_the_header_before_decoding() -> None:
    # RGBA needs 8 bytes a pixel while it is reduced (Pillow's premultiplied copy).
    header = to_png(Image.new("RGBA", (2000, 2000)))[:100]  # no pixel data at all
    limits = ImageLimits(max_decoded_bytes=20_000_000)
    with pytest.raises(ImageDecodedBytesTooLargeError, match="2000x2000, RGBA") as info:
        decode_image(header, limits)
    assert info.value.code == "ImageTooLargeException"
    assert "32000000 bytes" in str(info.value)
    with pytest.raises(TruncatedImageError):  # within the budget: decoding finds no data
        decode_image(header, ImageLimits(max_decoded_bytes=40_000_000))


def test_decoded_bytes_by_mode_and_unknown_modes_are_refused() -> None:
    assert decoded_bytes("RGB", 10, 10) == 400  # Pillow holds RGB in 4 bytes a pixel
    assert decoded_bytes("I;16", 10, 10) == 300
    assert decoded_bytes("F", 10, 10) is None
    assert work_size(6324, 6324, 2048 * 2048) == (2048, 2048)
    assert work_size(910, 1137, 2048 * 2048) == (910, 1137)
