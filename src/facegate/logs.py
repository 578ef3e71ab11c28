"""Structured logs: one JSON object per line on stderr.

Only whitelisted fields are emitted (message, level, logger, time and the ``extra`` fields the
code passes on purpose), so request bodies, headers and secrets cannot reach the log by accident.
"""

from __future__ import annotations

import json
import logging
import sys

from facegate.isotime import iso_millis

_FIELDS = (
    "request_id",
    "operation",
    "access_key_id",
    "code",
    "latency_ms",
    "startup_s",
    "client_address",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": iso_millis(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                doc[name] = getattr(record, name)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send facegate's logs to stderr as JSON lines (called by ``serve`` only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("facegate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
