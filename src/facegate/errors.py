"""The one error hierarchy of facegate.

Every error the service can report is a subclass of :class:`FacegateError`. The classes whose
names end in ``Exception`` carry Rekognition's ``__type`` names and are the only names that reach
the wire; finer-grained subclasses (``TruncatedImageError`` ...) keep the wire name of their
nearest Rekognition ancestor in :attr:`FacegateError.code` so callers inside the process can tell
them apart while boto3 sees exactly what Rekognition would send.

Contract: ``str(error)`` is a single line that is safe to show to the caller (no secrets, no
stack traces, no biometric data).
"""

from __future__ import annotations

from typing import ClassVar


class FacegateError(Exception):
    """Base of every facegate error. ``code`` is the Rekognition ``__type`` sent on the wire."""

    code: ClassVar[str] = "InternalServerError"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A class named like a Rekognition error names its own wire code; a finer subclass
        # inherits its parent's.
        if cls.__name__.endswith("Exception") or cls.__name__ == "InternalServerError":
            cls.code = cls.__name__


class InternalServerError(FacegateError):
    """Something failed inside facegate; the caller may retry."""

    http_status = 500


class InvalidParameterException(FacegateError):
    """A request parameter violated a constraint (Rekognition's wording)."""

    http_status = 400


class InvalidImageFormatException(FacegateError):
    """The bytes are not an image in a supported format, or cannot be decoded."""

    http_status = 400


class ImageTooLargeException(FacegateError):
    """The image exceeds the byte or pixel limit."""

    http_status = 400


# --- image decoding: finer-grained errors with Rekognition's wire codes -------------------------


class EmptyImageError(InvalidParameterException):
    """The image has no bytes at all (Rekognition requires at least one byte)."""


class ImageTooSmallError(InvalidParameterException):
    """The image is smaller than the minimum dimension (80 px per side, as Rekognition)."""


class UnsupportedImageFormatError(InvalidImageFormatException):
    """The bytes are an image, or something else, in a format facegate does not accept."""


class TruncatedImageError(InvalidImageFormatException):
    """The bytes start like a supported image but end early or are corrupt."""


class ImageBytesTooLargeError(ImageTooLargeException):
    """More bytes than the limit (5 MB, as Rekognition)."""


class ImagePixelsTooLargeError(ImageTooLargeException):
    """More pixels than the decompression-bomb cap."""


class EngineUnavailableError(InternalServerError):
    """The face engine's models could not be loaded or a worker process died."""
