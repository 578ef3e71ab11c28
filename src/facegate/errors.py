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


class AccessDeniedException(FacegateError):
    """The caller is not allowed to perform the action (policy denial, revoked key)."""

    http_status = 403


class ResourceNotFoundException(FacegateError):
    """The collection, face or user does not exist."""

    http_status = 400


class ResourceAlreadyExistsException(FacegateError):
    """A collection with this id already exists."""

    http_status = 400


class ServiceQuotaExceededException(FacegateError):
    """A size limit (faces per collection, users per collection, tags...) would be exceeded."""

    http_status = 400


class ConflictException(FacegateError):
    """A user with the same id already exists, or the resource is in an inconsistent state."""

    http_status = 400


class IdempotentParameterMismatchException(FacegateError):
    """A ClientRequestToken was reused with different parameters."""

    http_status = 400


class InvalidPaginationTokenException(FacegateError):
    """The NextToken is not one this server issued for this listing."""

    http_status = 400


class InvalidS3ObjectException(FacegateError):
    """Amazon S3 input is not supported by facegate (images are passed as Bytes)."""

    http_status = 400


class ThrottlingException(FacegateError):
    """The server is temporarily unable to process the request; retry later."""

    http_status = 400


class ProvisionedThroughputExceededException(FacegateError):
    """The caller exceeded its request-rate limit."""

    http_status = 400


# --- authentication (AWS's common error codes, not in Rekognition's model) ----------------------


class UnknownOperationException(FacegateError):
    """The X-Amz-Target names no operation facegate serves."""

    http_status = 400


class SerializationException(FacegateError):
    """The request body is not valid JSON of the expected shape."""

    http_status = 400


class MissingAuthenticationTokenException(FacegateError):
    """The request is not signed."""

    http_status = 403


class IncompleteSignatureException(FacegateError):
    """The Authorization header is malformed or lacks a required part."""

    http_status = 400


class InvalidSignatureException(FacegateError):
    """The signature does not match, or the request date is outside the allowed window."""

    http_status = 403


class UnrecognizedClientException(FacegateError):
    """The access key is unknown, revoked or expired."""

    http_status = 403


class RequestEntityTooLargeException(FacegateError):
    """The request body exceeds the server's limit."""

    http_status = 413


class RequestTimeoutException(FacegateError):
    """The request body did not arrive within the server's deadline (botocore retries this
    code as a transient error)."""

    http_status = 408


class ServerBusyError(ThrottlingException):
    """The server holds as many request bodies being read as its budget allows (wire code
    ThrottlingException, HTTP 503: retry later)."""

    http_status = 503


class EngineBusyError(ThrottlingException):
    """The caller's organisation already has as many images waiting for or in the engine as it
    may (wire code ThrottlingException: retry later)."""


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


class ImageDecodedBytesTooLargeError(ImageTooLargeException):
    """The image would decode to more bytes than the decoder's budget (from its header)."""


class EngineUnavailableError(InternalServerError):
    """The face engine's models could not be loaded or a worker process died."""
