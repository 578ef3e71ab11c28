"""Errors of the audit trail.

All derive from :class:`facegate.errors.InternalServerError` (wire code ``InternalServerError``,
HTTP 500): a request whose audit record cannot be written fails, and the caller may retry later.
The messages name files and reasons, never key material or record contents.
"""

from __future__ import annotations

from facegate.errors import InternalServerError


class AuditWriteError(InternalServerError):
    """An audit record could not be made durable, or the log refuses appends (fail closed).

    Raised by :meth:`facegate.audit.log.AuditLog.append` and ``checkpoint``, and by ``open``
    for a log whose tail fails verification. After an I/O failure the log stays refused until
    it has repaired itself (see :mod:`facegate.audit.log`)."""


class AuditKeyError(InternalServerError):
    """The audit signing key or public key is missing, malformed, unsafe or does not match the
    log it is meant to sign or verify."""


class AuditReadError(InternalServerError):
    """The audit directory or one of its entries cannot be read as the documented format
    (for readers; :func:`facegate.audit.verify.verify` reports such problems instead)."""
