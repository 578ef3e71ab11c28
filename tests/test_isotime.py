"""ISO 8601 UTC text from epoch seconds and from aware datetimes (:mod:`facegate.isotime`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from facegate.isotime import iso_millis, iso_seconds

MOMENT = datetime(2026, 12, 7, 14, 51, 46, 123_999, tzinfo=UTC)


def test_seconds_and_millis_truncate_from_epoch_and_datetime_alike() -> None:
    epoch = MOMENT.timestamp()
    assert iso_seconds(MOMENT) == iso_seconds(epoch) == "2026-12-07T14:51:46Z"
    assert iso_millis(MOMENT) == "2026-12-07T14:51:46.123Z"
    assert iso_millis(0) == "1970-01-01T00:00:00.000Z"


def test_other_zones_are_converted_to_utc() -> None:
    paris = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert iso_seconds(paris) == "2026-12-07T14:51:46Z"


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_seconds(datetime(2026, 12, 7, 14, 51, 46))
