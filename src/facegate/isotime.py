"""Instants as ISO 8601 UTC text: the one format facegate writes times in.

``2026-12-07T14:51:46Z`` (:func:`iso_seconds`) in the admin API, the console, command output,
log lines and fitted files; ``2026-12-07T14:51:46.123Z`` (:func:`iso_millis`) where a
millisecond matters (the JSON log's ``time``, the instant Cedar policies compare). An instant is
epoch seconds or a timezone-aware datetime; a naive datetime has no instant and is refused with
``ValueError``. Imports nothing of facegate.
"""

from __future__ import annotations

from datetime import UTC, datetime

Instant = float | datetime


def _utc(moment: Instant) -> datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("a naive datetime is not an instant: give it a timezone (UTC)")
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(moment, UTC)


def iso_seconds(moment: Instant) -> str:
    """``moment`` in UTC to the second (truncated), ``YYYY-MM-DDTHH:MM:SSZ``."""
    return f"{_utc(moment):%Y-%m-%dT%H:%M:%S}Z"


def iso_millis(moment: Instant) -> str:
    """``moment`` in UTC to the millisecond (truncated), ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    utc = _utc(moment)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
