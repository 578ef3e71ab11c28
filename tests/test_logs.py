"""The JSON log line (:class:`facegate.logs.JsonFormatter`)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from facegate.logs import JsonFormatter


def test_a_line_carries_the_utc_time_to_the_millisecond_and_known_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "facegate.test", "levelname": "INFO", "msg": "hello %s", "args": ("you",)}
    )
    record.created = datetime(2026, 12, 7, 14, 51, 46, 123_400, tzinfo=UTC).timestamp()
    record.client_address = "192.0.2.1"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["time"] == "2026-12-07T14:51:46.123Z"
    assert (doc["level"], doc["logger"], doc["message"]) == ("info", "facegate.test", "hello you")
    assert doc["client_address"] == "192.0.2.1"
