"""Image decoding with limits checked before any pixel is decoded.

Accepted formats: JPEG and PNG only, Rekognition's two formats. Everything else (GIF, BMP, WebP,
TIFF, HEIC, ...) is refused with :class:`UnsupportedImageFormatError`, even though Pillow could read
some of them: fewer decoders means a smaller attack surface for hostile images.

Order of checks, each a typed error from ``facegate.errors``:
1. no bytes                                     -> EmptyImageError (InvalidParameterException)
2. more than ``max_bytes`` (5 MiB by default)    -> ImageBytesTooLargeError (ImageTooLargeException)
3. magic bytes not JPEG / PNG                    -> UnsupportedImageFormatError
4. header unreadable                             -> TruncatedImageError
5. width x height above ``max_pixels``           -> ImagePixelsTooLargeError (decompression bombs;
   checked from the header, before decoding)
6. a side below ``min_side_px`` (80, Rekognition) -> ImageTooSmallError
7. pixel data truncated or corrupt               -> TruncatedImageError
Then the EXIF orientation is applied and the image converted to 8-bit RGB (RGBA is composited on
white, grayscale and palette images are expanded).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.errors import (
    EmptyImageError,
    ImageBytesTooLargeError,
    ImagePixelsTooLargeError,
    ImageTooSmallError,
    TruncatedImageError,
    UnsupportedImageFormatError,
)

REKOGNITION_MAX_IMAGE_BYTES = 5 * 1024 * 1024
"""Rekognition's limit for ``Image.Bytes`` (5,242,880 bytes, botocore's ImageBlob max)."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Decompression-bomb cap: 40 megapixels (e.g. 8000x5000) decodes to 120 MB of RGB at most."""

REKOGNITION_MIN_SIDE_PX = 80
"""Rekognition's minimum image dimension."""

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

RGBImage = npt.NDArray[np.uint8]
"""An image as a C-contiguous (height, width, 3) uint8 array in RGB order."""


@dataclass(frozen=True)
class ImageLimits:
    """Bounds applied to every input image. The defaults are Rekognition's where it has one."""

    max_bytes: int = REKOGNITION_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side_px: int = REKOGNITION_MIN_SIDE_PX


@dataclass(frozen=True)
class DecodedImage:
    """A decoded, upright RGB image and facts about its source bytes."""

    pixels: RGBImage
    image_format: str
    sha256: str
    exif_orientation: int

    @property
    def width_px(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.pixels.shape[0])


def sniff_format(data: bytes) -> str | None:
    """``"JPEG"`` or ``"PNG"`` from the magic bytes, else ``None``."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> DecodedImage:
    """Decode JPEG or PNG bytes into an upright RGB array, enforcing ``limits``.

    Raises one of the typed errors listed in the module docstring; never returns a partial image.
    """
    if not data:
        raise EmptyImageError("The image is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise ImageBytesTooLargeError(
            f"The image is {len(data)} bytes; the limit is {limits.max_bytes} bytes."
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageFormatError(
            "The image is not a JPEG or PNG; only those two formats are accepted."
        )
    with warnings.catch_warnings():
        # Pillow warns (DecompressionBombWarning) on large images; our own cap applies instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow warns (UserWarning) on corrupt EXIF and then treats it as absent: the pixels
        # still decode, so the image is accepted upright as stored (found by hypothesis,
        # tests/engine/test_image_fuzz.py; a warning must not escape as an error either).
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:
            raise ImagePixelsTooLargeError(
                f"The image has too many pixels; the limit is {limits.max_pixels} pixels."
            ) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise TruncatedImageError(f"The {fmt} header cannot be read: {exc}.") from exc
        with img:
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImagePixelsTooLargeError(
                    f"The image is {width}x{height} = {width * height} pixels; "
                    f"the limit is {limits.max_pixels} pixels."
                )
            if min(width, height) < limits.min_side_px:
                raise ImageTooSmallError(
                    f"The image is {width}x{height} pixels; each side must be at least "
                    f"{limits.min_side_px} pixels."
                )
            try:
                img.load()
                orientation = int(img.getexif().get(0x0112, 1) or 1)
                upright = ImageOps.exif_transpose(img)
                rgb = _to_rgb(upright)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise TruncatedImageError(
                    f"The {fmt} image data is truncated or corrupt: {exc}."
                ) from exc
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    return DecodedImage(
        pixels=pixels,
        image_format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        exif_orientation=orientation if 1 <= orientation <= 8 else 1,
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale PNG: scale to 8 bits rather than clipping.
        arr = np.asarray(img, dtype=np.float64)
        peak = max(float(arr.max()), 1.0)
        scale = 255.0 / (65535.0 if peak > 255.0 else 255.0)
        gray = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    return img.convert("RGB")


def encode_jpeg(pixels: RGBImage, quality: int = 95) -> bytes:
    """Encode an RGB array as JPEG bytes (used by tests, tools and benchmarks)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
