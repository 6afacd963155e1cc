"""Logging in logfmt or JSON, with every known secret scrubbed from each line."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
REDACTED = "<redacted>"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": {"WARNING": "warn", "CRITICAL": "error"}.get(
            record.levelname, record.levelname.lower()
        ),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
    return fields


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class RedactingFormatter(logging.Formatter):
    """Formats a record as logfmt or JSON, then removes every current secret from the line."""

    def __init__(self, fmt: str, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._json = fmt == "json"
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if self._json:
            line = json.dumps(fields, default=str, ensure_ascii=False)
        else:
            line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())
        for secret in self._secrets():
            if secret and len(secret) >= 4:
                line = line.replace(secret, REDACTED)
        return line


def setup_logging(
    level: str = "info", fmt: str = "logfmt", secrets: Callable[[], Iterable[str]] = tuple
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # httpx logs every request URL at INFO; keep it to debug-level detail of our own.
    logging.getLogger("httpx").setLevel(max(LEVELS[level], logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(LEVELS[level], logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(max(LEVELS[level], logging.WARNING))
