"""Image decoding with limits checked before any pixel is decoded, and large images decoded
reduced.

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
7. a pixel format (Pillow mode) other than 1-, 2-, 4-, 8- or 16-bit grey, palette, grey+alpha,
   RGB, RGBA (8 or 16 bits a channel) or CMYK JPEG -> UnsupportedImageFormatError
8. more than ``max_decoded_bytes`` to decode     -> ImageDecodedBytesTooLargeError
   (ImageTooLargeException; from the header: the bytes Pillow holds at full size, see
   :func:`decoded_bytes`, after JPEG's draft reduction)
9. pixel data truncated or corrupt               -> TruncatedImageError
Then the EXIF orientation is applied and the image converted to 8-bit RGB (RGBA is composited on
white, grayscale and palette images are expanded, 16-bit grey is scaled to 8 bits).

**Large images are decoded reduced.** Above ``work_pixels`` (4,194,304, 2048x2048, by default)
the image is reduced to the largest size of the same aspect ratio within ``work_pixels``, before
any conversion: JPEG decodes at 1/2, 1/4 or 1/8 scale in libjpeg itself (``Image.draft``, far
less work and memory), then a box filter takes it to the exact size; PNG (which cannot decode
reduced) is box-filtered right after decoding, in its own mode (16-bit grey first goes to 8
bits through a lookup table, palette and 1-bit images are subsampled as Pillow does). The
engine then never works on more pixels than that: detection already ran on at most 2048 px a
side (``DetectorConfig.detect_max_side_px``), and landmarks and face chips need no more than a
face a few hundred pixels wide. Rekognition itself asks for proportionally larger faces above
1920x1080. :class:`DecodedImage` keeps the image's own size (``source_*_px``) and the scale, so
the engine reports boxes and points in the image's own pixels; ratios (BoundingBox,
Landmarks) are the same in both. Images within ``work_pixels`` (every sample image; the largest
is 3.3 MP) decode exactly as before, bit for bit.

Why: a 77 kB 16-bit grey PNG of 6324x6324 (40 MP, under the pixel cap) decoded to float64 at
full size took 1.1 GiB and seconds per request; it now takes its 80 MB 16-bit buffer, a 40 MB
8-bit copy and a 4 MP working image.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from facegate.errors import (
    EmptyImageError,
    ImageBytesTooLargeError,
    ImageDecodedBytesTooLargeError,
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

DEFAULT_WORK_PIXELS = 2048 * 2048
"""Images with more pixels are decoded reduced to at most this many (module docstring)."""

DEFAULT_MAX_DECODED_BYTES = 4 * DEFAULT_MAX_PIXELS
"""160 MB: an RGB image at the pixel cap as Pillow holds it (4 bytes a pixel); a 16-bit grey
image at the cap needs 120 MB, an RGBA one above 20 MP is refused (it needs 8 bytes a pixel
while it is reduced)."""

# Bytes a pixel Pillow holds at full size while decoding and reducing, by mode (RGB and CMYK
# are stored in 4 bytes; 16-bit grey adds its 8-bit copy; grey+alpha and RGBA add the
# premultiplied copy Pillow's box filter makes). Modes not listed are refused.
_FULL_SIZE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "I;16": 3,
    "I;16B": 3,
    "I;16L": 3,
    "LA": 8,
    "RGBA": 8,
    "RGB": 4,
    "CMYK": 4,
}
_GREY_16 = frozenset({"I;16", "I;16B", "I;16L"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

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
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    work_pixels: int = DEFAULT_WORK_PIXELS


@dataclass(frozen=True)
class DecodedImage:
    """A decoded, upright RGB image and facts about its source bytes.

    ``pixels`` may be a reduced copy of a large image (``ImageLimits.work_pixels``):
    ``width_px`` x ``height_px`` is the size of ``pixels``, ``source_width_px`` x
    ``source_height_px`` the upright image's own size (0: the same as ``pixels``), and
    :attr:`scale_x` / :attr:`scale_y` the image's pixels per pixel of ``pixels`` (1.0 when not
    reduced). A ratio of one is the same ratio of the other.
    """

    pixels: RGBImage
    image_format: str
    sha256: str
    exif_orientation: int
    source_width_px: int = 0
    source_height_px: int = 0

    @property
    def width_px(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height_px(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def full_width_px(self) -> int:
        """The upright image's own width."""
        return self.source_width_px or self.width_px

    @property
    def full_height_px(self) -> int:
        """The upright image's own height."""
        return self.source_height_px or self.height_px

    @property
    def reduced(self) -> bool:
        return (self.full_width_px, self.full_height_px) != (self.width_px, self.height_px)

    @property
    def scale_x(self) -> float:
        return self.full_width_px / self.width_px

    @property
    def scale_y(self) -> float:
        return self.full_height_px / self.height_px


def sniff_format(data: bytes) -> str | None:
    """``"JPEG"`` or ``"PNG"`` from the magic bytes, else ``None``."""
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return None


def work_size(width: int, height: int, work_pixels: int) -> tuple[int, int]:
    """The size an image of ``width`` x ``height`` is decoded at: itself when it has at most
    ``work_pixels`` pixels, else the largest size of (nearly) the same aspect ratio within."""
    if width * height <= work_pixels:
        return width, height
    factor = math.sqrt(work_pixels / (width * height))
    return max(1, math.floor(width * factor)), max(1, math.floor(height * factor))


def decoded_bytes(mode: str, width: int, height: int) -> int | None:
    """The bytes Pillow holds to decode (and reduce) a ``mode`` image of ``width`` x ``height``
    at full size; None for a mode facegate does not decode."""
    per_pixel = _FULL_SIZE_BYTES.get(mode)
    return None if per_pixel is None else per_pixel * width * height


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> DecodedImage:
    """Decode JPEG or PNG bytes into an upright RGB array, enforcing ``limits`` (reduced above
    ``limits.work_pixels``, see the module docstring).

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
            target = work_size(width, height, limits.work_pixels)
            extent: tuple[float, float, float, float] = (0.0, 0.0, float(width), float(height))
            if fmt == "JPEG" and target != (width, height):
                try:
                    drafted = img.draft(img.mode, target)  # libjpeg decodes at 1/2, 1/4, 1/8
                except (OSError, SyntaxError, ValueError) as exc:
                    raise TruncatedImageError(f"The {fmt} header cannot be read: {exc}.") from exc
                if drafted is not None:
                    extent = tuple(float(v) for v in drafted[1])  # type: ignore[assignment]
            _check_decoded_size(img, limits)
            try:
                img.load()
                orientation = int(img.getexif().get(0x0112, 1) or 1)
                reduced = _reduce(img, target, extent)
                method = _TRANSPOSE.get(orientation)
                upright = reduced.transpose(method) if method is not None else reduced
                rgb = _to_rgb(upright)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise TruncatedImageError(
                    f"The {fmt} image data is truncated or corrupt: {exc}."
                ) from exc
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    turned = orientation in (5, 6, 7, 8)
    return DecodedImage(
        pixels=pixels,
        image_format=fmt,
        sha256=hashlib.sha256(data).hexdigest(),
        exif_orientation=orientation if 1 <= orientation <= 8 else 1,
        source_width_px=height if turned else width,
        source_height_px=width if turned else height,
    )


def _check_decoded_size(img: Image.Image, limits: ImageLimits) -> None:
    """Refuse, from the header, a mode facegate does not decode or an image that would take
    more than ``limits.max_decoded_bytes`` to decode (after JPEG's draft reduction)."""
    width, height = img.size
    need = decoded_bytes(img.mode, width, height)
    if need is None:
        raise UnsupportedImageFormatError(
            f"The image's pixel format ({img.mode}) is not supported; send 8-bit (or 16-bit) "
            "grey, palette, RGB or RGBA."
        )
    if need > limits.max_decoded_bytes:
        raise ImageDecodedBytesTooLargeError(
            f"The image ({width}x{height}, {img.mode}) would take {need} bytes to decode; "
            f"the limit is {limits.max_decoded_bytes} bytes."
        )


def _reduce(
    img: Image.Image, target: tuple[int, int], extent: tuple[float, float, float, float]
) -> Image.Image:
    """``img`` (loaded) at ``target`` size; ``extent`` is the box of ``img`` that covers the
    whole image (smaller than ``img.size`` only after a JPEG draft). Unchanged when it is
    already that size."""
    if img.size == target and extent == (0.0, 0.0, float(img.width), float(img.height)):
        return img
    if img.mode in _GREY_16:
        img = _grey16_to_8bit(img)
    # Box filter: each target pixel averages the source pixels it covers (Pillow subsamples
    # palette and 1-bit images instead, and premultiplies alpha for LA and RGBA).
    return img.resize(target, Image.Resampling.BOX, box=extent)


def _grey16_scale(peak: float) -> float:
    """16-bit grey scaled to 8 bits rather than clipped: by 255/65535 when some value exceeds
    255, else kept (an 8-bit picture stored in 16 bits)."""
    return 255.0 / (65535.0 if peak > 255.0 else 255.0)


def _grey16_to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit grey image as 8-bit ``L`` through a 65,536-entry lookup table, strip by strip:
    the same values as scaling the whole image in float64 (as before), without its 8 bytes a
    pixel."""
    _, peak = img.getextrema()
    scale = _grey16_scale(float(peak))  # type: ignore[arg-type]
    table = np.clip(np.arange(65536, dtype=np.float64) * scale, 0, 255).astype(np.uint8)
    out = np.empty((img.height, img.width), dtype=np.uint8)
    step = max(1, (1 << 20) // max(1, img.width))  # strips of about 1 M pixels
    for top in range(0, img.height, step):
        strip = np.asarray(img.crop((0, top, img.width, min(img.height, top + step))))
        out[top : top + strip.shape[0]] = table[strip.astype(np.uint16, copy=False)]
    return Image.fromarray(out)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any supported Pillow mode to RGB; transparency is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in _GREY_16:
        return _grey16_to_8bit(img).convert("RGB")
    return img.convert("RGB")


def encode_jpeg(pixels: RGBImage, quality: int = 95) -> bytes:
    """Encode an RGB array as JPEG bytes (used by tests, tools and benchmarks)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
