"""JSON logs with the request id, and with phone numbers, codes and tokens masked before output."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from linli_kit import context

_SECRET_KEYS = re.compile(r"phone|mobile|token|password|secret|code|authorization|api_key", re.I)
_PATTERNS = [
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"(?i)bearer\s+\S+"), "Bearer [redacted]"),
    (re.compile(r"(?<![\w-])\+?(?:86)?1[3-9]\d{9}(?!\d)"), "[phone]"),
    (re.compile(r"(?<![\w-])\+\d{8,15}(?!\d)"), "[phone]"),
]
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks personal data in the message, its arguments and every extra field of a record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key in _STANDARD:
                continue
            record.__dict__[key] = self._clean(key, value)
        record.service = self.service
        record.request_id = context.request_id.get()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def _clean(self, key: str, value: Any) -> Any:
        if _SECRET_KEYS.search(key):
            return "[redacted]"
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        return value


def configure_logging(service: str, *, level: str = "INFO", json_format: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if json_format:
        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pika reports every failed connect at ERROR with a traceback; our own code logs the outcome once.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
